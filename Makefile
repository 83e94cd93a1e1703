# ngx_http_hris_module: build, demo and test entry points.
#
#   make         build build/ngx_http_hris_module.so against Debian's nginx-dev
#   make demo    install what is missing, build, start nginx + sandbox providers
#   make test    install what is missing, build, run the test suite (prove)
#   make bench   run the benchmarks in bench/ (see bench/README.md)
#   make deb     build the Debian package libnginx-mod-http-hris into build/deb/
#   make asan    build build/asan/ngx_http_hris_module.so with ASan and UBSan
#   make test-asan  run the test suite's nginx with that module

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
        test-asan clean

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

clean:
	rm -rf $(BUILD)
