# ngx_http_hris_module: build, demo and test entry points.
#
#   make         build build/ngx_http_hris_module.so against Debian's nginx-dev
#   make demo    install what is missing, build, start nginx + sandbox providers
#   make test    install what is missing, build, run the test suite (prove)
#   make bench   run the benchmarks in bench/ (see bench/README.md)

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

CFLAGS_EXTRA ?= -Wall -Wextra -Wno-unused-parameter -Werror

.PHONY: all deps bench-deps demo demo-stop test bench clean

all: $(MODULE) $(SEAL)

deps:
	@sh .ci/install-deps $(DEB_PKGS)

bench-deps:
	@sh .ci/install-deps $(BENCH_CMDS)
	@# the peer's mapping engine (JSONata), pinned in bench/jsonata/package.json
	npm install --prefix bench/jsonata --no-audit --no-fund --no-package-lock

$(NGX_BUILD)/Makefile: config
	@test -d $(NGINX_SRC) || { echo "nginx-dev is missing: run 'make deps'"; exit 1; }
	mkdir -p $(NGX_BUILD)
	cd $(NGINX_SRC) && bash -c '. ./conf_flags && ./configure \
	    --with-cc-opt="$$(dpkg-buildflags --get CFLAGS) -fPIC $$(dpkg-buildflags --get CPPFLAGS)" \
	    --with-ld-opt="$$(dpkg-buildflags --get LDFLAGS) -fPIC" \
	    "$${NGX_CONF_FLAGS[@]}" \
	    --add-dynamic-module=$(CURDIR) --builddir=$(NGX_BUILD)' > $(NGX_BUILD)/configure.log 2>&1 \
	    || { tail -30 $(NGX_BUILD)/configure.log; exit 1; }
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

test: deps $(MODULE) $(SEAL)
	prove -I t/lib t/

bench: deps bench-deps $(MODULE)
	@sh bench/run

clean:
	rm -rf $(BUILD)
