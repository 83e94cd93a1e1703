# ngx_http_hris_module: build, demo and test entry points.
#
#   make         build build/ngx_http_hris_module.so against Debian's nginx-dev
#   make demo    install what is missing, build, start nginx + sandbox providers
#   make test    install what is missing, build, run the test suite (prove)
#   make bench   run the benchmarks in bench/ (see bench/README.md)
#   make deb     build the Debian package libnginx-mod-http-hris into build/deb/
#   make asan    build build/asan/ngx_http_hris_module.so with ASan and UBSan
#   make test-asan  run the test suite's nginx with that module
#   make fuzz    build the libFuzzer targets in fuzz/ and run each for
#                FUZZ_SECONDS (default 60) on its seed corpus

NGINX_SRC  ?= /usr/share/nginx/src
BUILD      := $(CURDIR)/build
NGX_BUILD  := $(BUILD)/nginx
MODULE     := $(BUILD)/ngx_http_hris_module.so
SEAL       := $(BUILD)/hris-seal
SOURCES    := config ngx_http_hris_module.c $(wildcard src/*.c src/*.h)

# Debian packages the build, the demo and the tests need (chromium: the
# connect page's tests in a real browser, t/88).
DEB_PKGS   := nginx nginx-dev libcurl4-openssl-dev libjansson-dev \
              libpcre2-dev libssl-dev python3 perl curl openssl \
              redis-server chromium
# What the benchmarks run, as command=package: a package is installed only
# when its command is missing (some builds of nodejs bring their own npm and
# conflict with Debian's npm package).
BENCH_CMDS := wrk=wrk /usr/bin/time=time node=nodejs npm=npm
# and what 'make deb' and 'make asan' need besides them
DEB_BUILD_PKGS := build-essential debhelper dpkg-dev
ASAN_PKGS  := clang libclang-rt-14-dev

CFLAGS_EXTRA ?= -Wall -Wextra -Wno-unused-parameter -Werror

.PHONY: all deps bench-deps deb-deps asan-deps demo demo-stop test bench deb asan \
        test-asan fuzz fuzz-build clean

all: $(MODULE) $(SEAL)

deps:
	@sh .ci/install-deps $(DEB_PKGS)

deb-deps:
	@sh .ci/install-deps $(DEB_PKGS) $(DEB_BUILD_PKGS)

asan-deps:
	@sh .ci/install-deps $(DEB_PKGS) $(ASAN_PKGS)

bench-deps:
	@sh .ci/install-deps $(BENCH_CMDS)
	@# the peer's mapping engine (JSONata), pinned in bench/jsonata/package.json
	npm install --prefix bench/jsonata --no-audit --no-fund --no-package-lock

# configures Debian's nginx source tree, with its own flags and this module,
# into the build directory $(1) (nginx writes nothing into $(NGINX_SRC));
# $(2): more options of configure
define ngx_configure
@test -d $(NGINX_SRC) || { echo "nginx-dev is missing: run 'make deps'"; exit 1; }
mkdir -p $(1)
cd $(NGINX_SRC) && bash -c '. ./conf_flags && ./configure \
    --with-cc-opt="$$(dpkg-buildflags --get CFLAGS) -fPIC $$(dpkg-buildflags --get CPPFLAGS)" \
    --with-ld-opt="$$(dpkg-buildflags --get LDFLAGS) -fPIC" \
    "$${NGX_CONF_FLAGS[@]}" \
    --add-dynamic-module=$(CURDIR) --builddir=$(1) $(2)' > $(1)/configure.log 2>&1 \
    || { tail -30 $(1)/configure.log; exit 1; }
endef

$(NGX_BUILD)/Makefile: config
	$(call ngx_configure,$(NGX_BUILD))
	@# our warnings only for compiling, not for configure's feature probes
	sed -i 's|^CFLAGS = \(.*\)$$|CFLAGS = \1 $(CFLAGS_EXTRA)|' $(NGX_BUILD)/Makefile

$(MODULE): $(NGX_BUILD)/Makefile $(SOURCES)
	$(MAKE) -s -f $(NGX_BUILD)/Makefile -C $(NGINX_SRC) modules
	@# rename, not copy over: running nginx processes map the old file
	cp $(NGX_BUILD)/ngx_http_hris_module.so $(MODULE).tmp
	mv -f $(MODULE).tmp $(MODULE)

# the command-line tool that seals credentials (hris_secrets_key)
$(SEAL): tools/hris-seal.c
	mkdir -p $(BUILD)
	$(CC) -O2 -Wall -Wextra -Werror $$(dpkg-buildflags --get CFLAGS) \
	    $$(dpkg-buildflags --get LDFLAGS) -o $@ $< -lcrypto

demo: deps $(MODULE)
	@sh sandbox/demo/run

demo-stop:
	@sh sandbox/demo/stop

# test files run two at a time (the machine's cores); PROVE_JOBS=1 for one
PROVE_JOBS ?= 2

test: deps $(MODULE) $(SEAL)
	prove -j$(PROVE_JOBS) -I t/lib t/

bench: deps bench-deps $(MODULE)
	@sh bench/run

# The Debian package, built by dpkg-buildpackage in a copy of what it needs
# under build/deb/src (dpkg-buildpackage writes its results to the parent
# directory: build/deb/). The package's own build (dh-sequence-nginx) is
# independent of build/nginx.
DEB_DIR    := $(BUILD)/deb
DEB_FILES  := config ngx_http_hris_module.c src tools mappings debian README.md

deb: deb-deps
	rm -rf $(DEB_DIR)
	mkdir -p $(DEB_DIR)/src
	cp -a $(DEB_FILES) $(DEB_DIR)/src/
	cd $(DEB_DIR)/src && dpkg-buildpackage -b -uc -us > $(DEB_DIR)/build.log 2>&1 \
	    || { tail -40 $(DEB_DIR)/build.log; exit 1; }
	@ls $(DEB_DIR)/*.deb

# The module with AddressSanitizer and UndefinedBehaviorSanitizer, in its
# own nginx build tree (build/asan/nginx) so that the normal build is left
# alone. Debian's nginx is not built with ASan: the tests' nginx runs with
# the ASan runtime preloaded (t/lib/HRIS/Nginx.pm, HRIS_PRELOAD), and a test
# file whose nginx wrote a sanitizer report fails. clang, not gcc: its ASan
# runtime carries UBSan's and starts with nginx, so UBSan's options hold in
# the workers too (gcc's libubsan reads them only at its first report, when
# a worker can no longer see the environment: no stack, no log file).
ASAN_CC     := clang
ASAN_BUILD  := $(BUILD)/asan
ASAN_NGX    := $(ASAN_BUILD)/nginx
ASAN_MODULE := $(ASAN_BUILD)/ngx_http_hris_module.so
ASAN_FLAGS  := -fsanitize=address,undefined -shared-libsan -fno-omit-frame-pointer
ASAN_IGNORE := $(ASAN_BUILD)/ignorelist.txt
ASAN_CFLAGS := -O1 -g $(ASAN_FLAGS) -fsanitize-ignorelist=$(ASAN_IGNORE)
ASAN_RT      = $(shell $(ASAN_CC) -print-file-name=libclang_rt.asan-$(shell uname -m).so)
# every test file that starts nginx but the package's
ASAN_TESTS  ?= $(filter-out t/95-deb.t,$(shell grep -l 'HRIS::Nginx' t/*.t))

$(ASAN_NGX)/Makefile: config
	$(call ngx_configure,$(ASAN_NGX),--with-cc=$(ASAN_CC))
	@# the module's list of modules (generated by configure) is named
	@# ngx_modules like nginx's own, whose symbol it resolves to: with
	@# redzones around it, ASan would poison nginx's bigger array and report
	@# nginx's reading it at the next reload
	printf 'src:*/ngx_http_hris_module_modules.c\n' > $(ASAN_IGNORE)
	sed -i -e 's|^CFLAGS = \(.*\)$$|CFLAGS = \1 $(CFLAGS_EXTRA) $(ASAN_CFLAGS)|' \
	    -e 's|^LINK =\(.*\)$$|LINK =\1 $(ASAN_FLAGS)|' $(ASAN_NGX)/Makefile

$(ASAN_MODULE): $(ASAN_NGX)/Makefile $(SOURCES)
	$(MAKE) -s -f $(ASAN_NGX)/Makefile -C $(NGINX_SRC) modules
	cp $(ASAN_NGX)/ngx_http_hris_module.so $(ASAN_MODULE).tmp
	mv -f $(ASAN_MODULE).tmp $(ASAN_MODULE)

asan: asan-deps $(ASAN_MODULE)

test-asan: asan-deps $(ASAN_MODULE) $(SEAL)
	@test -f "$(ASAN_RT)" || { echo "the ASan runtime of $(ASAN_CC) is missing: $(ASAN_RT)"; exit 1; }
	HRIS_MODULE=$(ASAN_MODULE) HRIS_PRELOAD=$(ASAN_RT) prove -j$(PROVE_JOBS) -I t/lib $(ASAN_TESTS)

# libFuzzer targets (fuzz/*_fuzz.c) of the module's pure parts, built with
# clang outside nginx like t/unit (Debian's nginx-dev headers, the nginx
# functions they call stubbed in t/unit/stubs.c). 'make fuzz' builds them
# all and runs each for FUZZ_SECONDS on its seed corpus (fuzz/corpus/NAME,
# in the repository), growing it in build/fuzz/corpus/NAME; a finding is
# written to build/fuzz/crash/NAME/ and fails the run (replay it with
# build/fuzz/NAME_fuzz FILE; keep it in fuzz/corpus/NAME once fixed).
FUZZ_SECONDS ?= 60
FUZZ_BUILD   := $(BUILD)/fuzz
FUZZ_TARGETS := parse resp cursor template expr admin link webhook \
                webhook_events
FUZZ_BINS    := $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/%_fuzz)
FUZZ_CFLAGS  := -g -O1 -fsanitize=fuzzer,address,undefined \
                -fno-sanitize-recover=undefined -fno-omit-frame-pointer \
                -Wall -Wextra -Wno-unused-parameter -Werror \
                $(addprefix -I$(NGINX_SRC)/src/,core event event/modules \
                    os/unix http http/modules http/v2) \
                -I$(NGX_BUILD) -I$(CURDIR)/src
FUZZ_STUBS   := t/unit/stubs.c
FUZZ_LIBS    := -ljansson -lpcre2-8
FUZZ_HDRS    := $(wildcard src/*.h) $(NGX_BUILD)/Makefile

FUZZ_SRCS_parse  := $(addprefix src/ngx_http_hris_,parse.c parse_select.c \
                        parse_slots.c)
FUZZ_SRCS_resp   := src/ngx_http_hris_resp.c
FUZZ_SRCS_cursor := $(addprefix src/ngx_http_hris_,cursor.c digest.c) \
                    fuzz/base64.c
FUZZ_LIBS_cursor := -lcrypto
FUZZ_SRCS_template := src/ngx_http_hris_template.c
FUZZ_SRCS_expr   := $(addprefix src/ngx_http_hris_,map.c eval.c convert.c path.c)
# the administration API's checks: the account's compile and the link's
# making, around one table made by hand (fuzz/admin_stubs.c)
FUZZ_SRCS_admin  := $(addprefix src/ngx_http_hris_,store.c accounts.c \
                        template.c url.c secret.c digest.c) \
                    fuzz/admin_stubs.c \
                    fuzz/base64.c
FUZZ_LIBS_admin  := -lcrypto
FUZZ_SRCS_link   := $(FUZZ_SRCS_admin) src/ngx_http_hris_connect_link.c \
                    src/ngx_http_hris_cursor.c
FUZZ_LIBS_link   := -lcrypto
# a provider's webhook POST against the three ways a table verifies one
FUZZ_SRCS_webhook := src/ngx_http_hris_webhooks_verify.c fuzz/webhook_stubs.c
FUZZ_LIBS_webhook := -lcrypto
# the event reader of webhooks_in.c, whose file the target includes
FUZZ_SRCS_webhook_events := src/ngx_http_hris_path.c fuzz/webhook_stubs.c \
                            src/ngx_http_hris_webhooks_verify.c
FUZZ_LIBS_webhook_events := -lcrypto

# (a second expansion: each target's own sources as prerequisites)
.SECONDEXPANSION:
$(FUZZ_BUILD)/%_fuzz: fuzz/%_fuzz.c $$(FUZZ_SRCS_$$*) $(FUZZ_STUBS) $(FUZZ_HDRS)
	mkdir -p $(FUZZ_BUILD)
	$(ASAN_CC) $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_SRCS_$*) $(FUZZ_STUBS) \
	    $(FUZZ_LIBS) $(FUZZ_LIBS_$*)

$(FUZZ_BUILD)/webhook_events_fuzz: src/ngx_http_hris_webhooks_in.c

fuzz-build: asan-deps $(FUZZ_BINS)

# libFuzzer writes new inputs into the first directory only: the seeds in
# the repository are read, never changed; -max_total_time bounds each run
fuzz: fuzz-build
	@for t in $(FUZZ_TARGETS); do \
	    mkdir -p $(FUZZ_BUILD)/corpus/$$t $(FUZZ_BUILD)/crash/$$t || exit 1; \
	    echo "fuzz: $$t for $(FUZZ_SECONDS)s"; \
	    $(FUZZ_BUILD)/$${t}_fuzz -max_total_time=$(FUZZ_SECONDS) \
	        -max_len=65536 -timeout=10 -rss_limit_mb=1024 -print_final_stats=1 \
	        -artifact_prefix=$(FUZZ_BUILD)/crash/$$t/ \
	        $(FUZZ_BUILD)/corpus/$$t fuzz/corpus/$$t \
	        > $(FUZZ_BUILD)/$$t.log 2>&1 \
	        || { tail -60 $(FUZZ_BUILD)/$$t.log; exit 1; }; \
	    grep -E '^stat::(number_of_executed_units|new_units_added)' $(FUZZ_BUILD)/$$t.log; \
	done

clean:
	rm -rf $(BUILD)
