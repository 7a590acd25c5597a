# devbox: see README.md.  `make` builds build/devbox and the static guest init build/devbox-init.
CC      ?= gcc
BUILD   ?= build
CSTD    := -std=gnu11
WARN    := -Wall -Wextra -Werror -Wjump-misses-init -Wno-unused-parameter -Wshadow \
           -Wmissing-prototypes -Wformat=2
CFLAGS  ?= -O2 -g
override CFLAGS += $(CSTD) $(WARN) -D_GNU_SOURCE= -I.
SAN     ?=
# `make install` (GNU conventions): PREFIX, DESTDIR for staging.
PREFIX  ?= /usr/local
DESTDIR ?=
# `devbox --version`: git's name for the checkout, "unknown" outside one (a release tarball:
# `make VERSION=1.0`).  Only this checkout's .git: a tarball unpacked inside another repository
# must not take that one's name.  Without writing to it: `describe --dirty` refreshes the index
# (as root, `make install` left .git/index root's) and can meet a commit's index.lock, so dirty
# is `status` without optional locks.  A git that refuses the checkout (root's `make install` in
# a user's: "dubious ownership") keeps the version the build recorded.  Evaluated once.
VERSION ?= $(shell test -e .git && v=$$(GIT_OPTIONAL_LOCKS=0 git describe --always 2>/dev/null) && \
             { test -z "$$(GIT_OPTIONAL_LOCKS=0 git status --porcelain -uno 2>/dev/null)" || \
               v=$$v-dirty; echo "$$v"; } || cat $(BUILD)/version.stamp 2>/dev/null || echo unknown)
VERSION := $(VERSION)

# Debian 12 packages devbox needs to build, run and test.  `make deps` installs them (root).
DEPS_BUILD := gcc make pkg-config libgit2-dev libarchive-dev libinih-dev libjansson-dev \
              libssl-dev libcurl4-openssl-dev libseccomp-dev libcmocka-dev
DEPS_RUN   := qemu-system-x86 qemu-system-common qemu-utils uidmap kmod e2fsprogs genext2fs \
              apt dpkg zstd mmdebstrap passt ca-certificates
DEPS_TEST  := busybox-static python3 binutils util-linux procps hyperfine passwd adduser expect git clang-format zsh strace entr \
              docker-registry skopeo umoci apache2-utils openssl curl iproute2 dpkg-dev
# The devbox guest kernel (`make kernel`, `devbox kernel build`): Debian's kernel source and what
# building it takes.
DEPS_KERNEL := linux-source-6.1 bc bison flex libelf-dev libssl-dev xz-utils build-essential
DEPS       := $(DEPS_BUILD) $(DEPS_RUN) $(DEPS_TEST) $(DEPS_KERNEL)
# Node.js for tests/kube (check-kube: the output of `devbox export kubernetes` against the
# Kubernetes, agent-sandbox and Cilium schemas), from Debian only when no node is installed; its
# npm packages (tests/kube/package-lock.json) with `npm ci`.  Debian 12 has node 18 and npm 9.
DEPS_KUBE  := nodejs npm

PKGS      := libgit2 libarchive inih jansson libssl libcrypto libseccomp libcurl
HOST_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
HOST_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lutil -pthread

COMMON_SRCS := $(wildcard common/*.c)
GUEST_SRCS  := $(wildcard guest/*.c)
LIB_SRCS    := $(COMMON_SRCS) \
               $(wildcard vm/*.c mounts/*.c policy/*.c proxy/*.c profiles/*.c oci/*.c export/*.c) \
               $(filter-out sandbox/main.c sandbox/lean-main.c sandbox/guard-main.c,$(wildcard sandbox/*.c))
UNIT_SRCS   := $(wildcard tests/unit/test-*.c)
FUZZ_SRCS   := $(wildcard tests/fuzz/fuzz-*.c)
HELPER_SRCS := $(wildcard tests/unit/helpers*.c)

LIB_OBJS   := $(LIB_SRCS:%.c=$(BUILD)/host/%.o)
GUEST_OBJS := $(COMMON_SRCS:%.c=$(BUILD)/guest/%.o) $(GUEST_SRCS:%.c=$(BUILD)/guest/%.o)
UNIT_BINS  := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_BINS  := $(FUZZ_SRCS:tests/fuzz/%.c=$(BUILD)/tests/%)
UNIT_HELPERS := $(HELPER_SRCS:tests/unit/%.c=$(BUILD)/tests/helpers/%.o)
FUZZ_CC    ?= clang
FUZZ_TIME  ?= 60

# build/devbox is the lean client (sandbox/lean-main.c): exec and enter on a running VM with
# libc alone, everything else by exec'ing build/devbox-full, the whole devbox.  Its sources that
# also serve the full devbox are compiled again with DBX_LEAN (which leaves out what needs a
# library), the rest is shared as is; an archive, so only what the exec path uses is linked
# (an undefined symbol is a build failure, not a library quietly pulled in).  Static (no dynamic
# loader at all) except under a sanitizer, whose runtime is a shared library.
LEAN_SRCS   := sandbox/lean-main.c sandbox/cmd-exec.c sandbox/cmd-common.c sandbox/sandbox-exec.c \
               sandbox/sandbox-status.c sandbox/sandbox-stats.c
LEAN_SHARED := $(COMMON_SRCS) sandbox/sandbox-lean.c sandbox/sandbox-paths.c
LEAN_OBJS   := $(filter-out $(BUILD)/lean/sandbox/lean-main.o,$(LEAN_SRCS:%.c=$(BUILD)/lean/%.o)) \
               $(LEAN_SHARED:%.c=$(BUILD)/host/%.o)
LEAN_STATIC := $(if $(SAN),,-static)

all: $(BUILD)/devbox $(BUILD)/devbox-full $(BUILD)/devbox-guard $(BUILD)/devbox-init

# The version goes to the two mains alone (-DDBX_VERSION), which depend on a stamp rewritten only
# when the string changes: a new commit rebuilds those two objects and relinks, not the archive
# every unit test links.
VERSION_OBJS := $(BUILD)/host/sandbox/main.o $(BUILD)/lean/sandbox/lean-main.o
# target-specific: make names a target without a leading ./ (BUILD=./out), which $(filter) missed
$(VERSION_OBJS): VERSION_DEF = -DDBX_VERSION='"$(VERSION)"'
$(BUILD)/version.stamp: FORCE
	@mkdir -p $(dir $@)
	@echo '$(VERSION)' | cmp -s - $@ || echo '$(VERSION)' >$@
$(VERSION_OBJS): $(BUILD)/version.stamp

$(BUILD)/host/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SAN) $(HOST_CFLAGS) $(VERSION_DEF) -MMD -MP -c $< -o $@

# The guest init is static and must not pull in NSS (getpwnam & co. warn at link time, and
# --fatal-warnings turns that into a build failure).
$(BUILD)/guest/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DDBX_GUEST -MMD -MP -c $< -o $@

$(BUILD)/libdevbox.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/devbox-full: $(BUILD)/host/sandbox/main.o $(BUILD)/libdevbox.a
	$(CC) $(CFLAGS) $(SAN) -o $@ $^ $(HOST_LIBS)

# virtiofsd's guard alone (sandbox/guard-main.c): the archive's mounts and common objects,
# libseccomp and libc.  Not static: mounts-idmap.o, which it pulls in, has a getpwuid.
$(BUILD)/devbox-guard: $(BUILD)/host/sandbox/guard-main.o $(BUILD)/libdevbox.a
	$(CC) $(CFLAGS) $(SAN) -Wl,--as-needed -o $@ $^ -lseccomp -pthread

$(BUILD)/lean/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SAN) $(HOST_CFLAGS) -DDBX_LEAN -DDBX_USAGE_FILE='"$(BUILD)/lean/usage.txt"' \
	  $(VERSION_DEF) -MMD -MP -c $< -o $@

# `devbox --help` of the lean client is the full devbox's, captured here (lean-main.c includes it).
$(BUILD)/lean/usage.txt: $(BUILD)/devbox-full
	@mkdir -p $(dir $@)
	$< --help >$@.tmp && mv $@.tmp $@
$(BUILD)/lean/sandbox/lean-main.o: $(BUILD)/lean/usage.txt

$(BUILD)/lean/liblean.a: $(LEAN_OBJS)
	@rm -f $@
	ar rcs $@ $^

# jansson: `status --json` (static like the rest; about 60 KiB)
$(BUILD)/devbox: $(BUILD)/lean/sandbox/lean-main.o $(BUILD)/lean/liblean.a
	$(CC) $(CFLAGS) $(SAN) $(LEAN_STATIC) -Wl,--fatal-warnings -o $@ $^ -ljansson

$(BUILD)/devbox-init: $(GUEST_OBJS)
	$(CC) $(CFLAGS) -static -Wl,--fatal-warnings -o $@ $^

# A guest init that speaks another protocol version, for t-init-skew (devbox and devbox-init from
# different builds).
$(BUILD)/tests/devbox-init-v1: $(COMMON_SRCS) $(GUEST_SRCS) $(wildcard guest/*.h common/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DDBX_GUEST -DDBX_PROTO_VERSION=1 -static -Wl,--fatal-warnings -o $@ \
	  $(COMMON_SRCS) $(GUEST_SRCS)

# Fixtures shared by the unit tests (tests/unit/helpers*.c), linked into every test binary
# (kept: not intermediate files make would delete after the link).
.SECONDARY: $(UNIT_HELPERS)
$(BUILD)/tests/helpers/%.o: tests/unit/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SAN) $(HOST_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/tests/%: tests/unit/%.c $(UNIT_HELPERS) $(wildcard tests/unit/*.h) $(BUILD)/libdevbox.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SAN) $(HOST_CFLAGS) -o $@ $< $(UNIT_HELPERS) $(BUILD)/libdevbox.a \
	  $(HOST_LIBS) -lcmocka

# test-guest-ca compiles guest/init-ca.c in (guest code run on the host, in a temporary root).
$(BUILD)/tests/test-guest-ca: guest/init-ca.c guest/init-internal.h
# test-guest-env compiles guest/init-env.c in (the environment of a command).
$(BUILD)/tests/test-guest-env: guest/init-env.c guest/init-internal.h
# test-guest-locale compiles guest/init-locale.c in (the box's time zone and LANG).
$(BUILD)/tests/test-guest-locale: guest/init-locale.c guest/init-ca.c guest/init-internal.h
# test-guest-hosts compiles guest/init-hosts.c in (the box's names in /etc/hosts).
$(BUILD)/tests/test-guest-hosts: guest/init-hosts.c guest/init-ca.c guest/init-internal.h
# test-guest-skel compiles guest/init-skel.c in (a new home's files from /etc/skel).
$(BUILD)/tests/test-guest-skel: guest/init-skel.c guest/init-internal.h
# test-guest-stats compiles guest/init-stats.c in (the box cgroup's counters, NOTICE).
$(BUILD)/tests/test-guest-stats: guest/init-stats.c guest/init-internal.h
# test-guest-clock compiles guest/init-clock.c in (when the box's clock steps, and which way).
$(BUILD)/tests/test-guest-clock: guest/init-clock.c guest/init-internal.h
# test-guest-audit compiles guest/init-audit.c in (which failed syscalls count as write attempts).
$(BUILD)/tests/test-guest-audit: guest/init-audit.c guest/init-internal.h
# test-guest-watch compiles guest/init-watch.c and init-procs.c in (the box's inotify watches).
$(BUILD)/tests/test-guest-watch: guest/init-watch.c guest/init-procs.c guest/init-internal.h

# Test driver for the registry tests (tests/e2e/t-oci-*.sh): pull/import/inspect/gc over a store.
$(BUILD)/tests/oci-tool: tests/tools/oci-tool.c $(BUILD)/libdevbox.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SAN) $(HOST_CFLAGS) -o $@ $< $(BUILD)/libdevbox.a $(HOST_LIBS)

# Replay build of every fuzz harness (gcc, no libFuzzer): each corpus file through the same
# entry point, so CI runs the corpus on every change.
$(FUZZ_BINS): $(BUILD)/tests/fuzz-%: tests/fuzz/fuzz-%.c tests/fuzz/replay.h $(BUILD)/libdevbox.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SAN) $(HOST_CFLAGS) -o $@ $< $(BUILD)/libdevbox.a $(HOST_LIBS)

# build/devbox-full too: the virtiofsd tests start it as virtiofsd's guard (and build/devbox,
# for check-docs); build/devbox-guard for the e2e tests' supervisors.
unit: $(UNIT_BINS) $(FUZZ_BINS) $(BUILD)/devbox $(BUILD)/devbox-full $(BUILD)/devbox-guard \
  $(BUILD)/devbox-init
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done; \
	for f in $(FUZZ_BINS); do c=$${f##*/fuzz-}; echo "== $$f tests/fuzz/corpus/$$c"; \
	  $$f tests/fuzz/corpus/$$c; done
	$(MAKE) --no-print-directory check-docs
	$(MAKE) --no-print-directory check-kube

# Checks that need no VM (part of unit): the completion scripts and docs/devbox.1 against the
# usage, the recipes of docs/agents.md, and `make install` into a scratch DESTDIR.
check-docs: $(BUILD)/devbox $(BUILD)/devbox-init
	tests/cli-check.sh $(BUILD)/devbox
	tests/docs-check.sh $(BUILD)/devbox
	@set -e; d=$$(mktemp -d /tmp/devbox-install.XXXXXX); \
	$(MAKE) --no-print-directory -s install BUILD=$(BUILD) DESTDIR=$$d PREFIX=/opt/dbx >/dev/null; \
	for f in bin/devbox bin/devbox-shell-prefix lib/devbox/devbox-init lib/devbox/devbox-full \
	  lib/devbox/devbox-guard \
	  share/man/man1/devbox.1 share/doc/devbox/README.md share/doc/devbox/profiles.md \
	  share/bash-completion/completions/devbox share/zsh/site-functions/_devbox \
	  share/devbox/profiles/default.ini share/devbox/devbox-kernel.config; do \
	  test -s $$d/opt/dbx/$$f || { echo "make install: no $$f" >&2; rm -rf --one-file-system $$d; exit 1; }; \
	done; rm -rf --one-file-system $$d; echo "make install: ok"

# The manifests of `devbox export kubernetes` (its golden outputs, tests/golden/kubernetes/, or
# until they exist the samples of tests/kube/) validated offline against the real schemas, and the
# negative samples refused: tests/kube/run.sh.  Needs `make deps` (node and tests/kube/node_modules).
check-kube:
	tests/kube/run.sh

# The lean client as bin/devbox, the full devbox, virtiofsd's guard and the guest init in
# lib/devbox (the client finds devbox-full there from itself; the full devbox finds the guard and
# the init next to itself), the prefix
# script for agents (docs/agents.md), the man page and the documents it cites (share/doc/devbox),
# completions, and the built-in profiles (compiled into devbox; installed for reading, as
# `devbox profile show` cites them).  share/doc/devbox is flat, as the man page says: README's
# links into docs/ and to the kernel config are rewritten to where they are installed.
install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/devbox \
	  $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/devbox/profiles \
	  $(DESTDIR)$(PREFIX)/share/doc/devbox \
	  $(DESTDIR)$(PREFIX)/share/bash-completion/completions \
	  $(DESTDIR)$(PREFIX)/share/zsh/site-functions
	install -m 755 $(BUILD)/devbox tools/devbox-shell-prefix $(DESTDIR)$(PREFIX)/bin/
	install -m 755 $(BUILD)/devbox-full $(BUILD)/devbox-guard $(DESTDIR)$(PREFIX)/lib/devbox/
	install -m 644 $(BUILD)/devbox-init $(DESTDIR)$(PREFIX)/lib/devbox/
	install -m 644 docs/devbox.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	install -m 644 docs/*.md $(DESTDIR)$(PREFIX)/share/doc/devbox/
	sed -e 's#](docs/#](#g' -e 's#](vm/devbox-kernel.config)#](../../devbox/devbox-kernel.config)#g' \
	  README.md >$(DESTDIR)$(PREFIX)/share/doc/devbox/README.md
	chmod 644 $(DESTDIR)$(PREFIX)/share/doc/devbox/README.md
	install -m 644 profiles/*.ini $(DESTDIR)$(PREFIX)/share/devbox/profiles/
	install -m 644 vm/devbox-kernel.config $(DESTDIR)$(PREFIX)/share/devbox/
	$(BUILD)/devbox completion bash >$(DESTDIR)$(PREFIX)/share/bash-completion/completions/devbox
	$(BUILD)/devbox completion zsh >$(DESTDIR)$(PREFIX)/share/zsh/site-functions/_devbox

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/devbox $(DESTDIR)$(PREFIX)/bin/devbox-shell-prefix \
	  $(DESTDIR)$(PREFIX)/lib/devbox/devbox-init $(DESTDIR)$(PREFIX)/lib/devbox/devbox-full \
	  $(DESTDIR)$(PREFIX)/lib/devbox/devbox-guard \
	  $(DESTDIR)$(PREFIX)/share/man/man1/devbox.1 \
	  $(DESTDIR)$(PREFIX)/share/bash-completion/completions/devbox \
	  $(DESTDIR)$(PREFIX)/share/zsh/site-functions/_devbox
	rm -rf $(DESTDIR)$(PREFIX)/share/devbox/profiles $(DESTDIR)$(PREFIX)/share/doc/devbox
	rm -f $(DESTDIR)$(PREFIX)/share/devbox/devbox-kernel.config
	-rmdir $(DESTDIR)$(PREFIX)/lib/devbox $(DESTDIR)$(PREFIX)/share/devbox

# libFuzzer (clang): each harness for FUZZ_TIME seconds, starting from the committed corpus.
fuzz: $(BUILD)/libdevbox.a
	@mkdir -p $(BUILD)/fuzz
	@set -e; for s in $(FUZZ_SRCS); do n=$$(basename $$s .c); c=$${n#fuzz-}; \
	  $(FUZZ_CC) $(CSTD) -g -O1 -D_GNU_SOURCE= -DDBX_LIBFUZZER -I. \
	    -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	    -o $(BUILD)/fuzz/$$n $$s $(LIB_SRCS) $(HOST_LIBS); \
	  mkdir -p $(BUILD)/fuzz/corpus-$$c; echo "== $$n for $(FUZZ_TIME)s"; \
	  $(BUILD)/fuzz/$$n -max_total_time=$(FUZZ_TIME) -max_len=300000 -rss_limit_mb=4096 \
	    $(BUILD)/fuzz/corpus-$$c tests/fuzz/corpus/$$c; done

# Two tests at a time: each boots a VM of one vCPU, so on two cores (CI's) the suite takes about
# half the time it takes one by one (E2E_JOBS=1 for that).  The whole suite on the devbox kernel
# (run.sh builds it once, `devbox kernel build`), then the policy, network and protected-path
# tests again on Debian's cloud kernel, so both stay supported, with t-guest-panic (its panic
# device exists only with ACPI, so only on that kernel).
E2E_JOBS ?= 2
E2E_DEBIAN_TESTS := $(notdir $(wildcard tests/e2e/t-policy-*.sh tests/e2e/t-net-*.sh \
                      tests/e2e/t-protect-*.sh)) t-guest-panic.sh
e2e: all $(BUILD)/tests/oci-tool $(BUILD)/tests/devbox-init-v1
	E2E_JOBS=$(E2E_JOBS) tests/e2e/run.sh
	$(if $(strip $(E2E_DEBIAN_TESTS)),E2E_JOBS=$(E2E_JOBS) E2E_KERNEL=debian tests/e2e/run.sh $(E2E_DEBIAN_TESTS))

# The devbox guest kernel, once per machine (README says how long it takes): from Debian's
# linux-source-6.1 with vm/devbox-kernel.config, into the shared cache (as root
# /var/cache/devbox/kernel, which every user's devbox reads).  Nothing to do when it is built.
kernel: $(BUILD)/devbox
	$(BUILD)/devbox kernel build

# What .ci/run calls (README's test command): the formatting check first (seconds), every unit
# and end-to-end test, then all of them again under ASan+UBSan.  The two suites follow each other
# even under -j (each already runs E2E_JOBS tests at a time).
test:
	$(MAKE) format-check
	$(MAKE) all
	$(MAKE) unit
	$(MAKE) e2e
	$(MAKE) asan

# ASan+UBSan build in build-asan: its unit tests and fuzz corpus replay, then the e2e suite with
# the sanitized devbox (the guest init stays the plain static one).  Any report fails the run:
# UBSan does not recover, both sanitizers abort on the first error, and run.sh sends the reports
# of every devbox process of a test (the supervisor's stderr is a log file nobody reads) to files
# under the test's directory and fails the test when one appears.  Only the devbox kernel's
# round: the host code the sanitizers watch is the same whichever kernel the guest boots.
ASAN_SAN := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
ASAN_ENV := ASAN_OPTIONS=halt_on_error=1:abort_on_error=1:detect_leaks=1:disable_coredump=1 \
            UBSAN_OPTIONS=halt_on_error=1:abort_on_error=1:print_stacktrace=1:disable_coredump=1
asan:
	$(MAKE) BUILD=build-asan CFLAGS="-O1 -g" SAN="$(ASAN_SAN)" all build-asan/tests/oci-tool
	$(ASAN_ENV) $(MAKE) BUILD=build-asan CFLAGS="-O1 -g" SAN="$(ASAN_SAN)" unit
	$(ASAN_ENV) DEVBOX_BIN=$(CURDIR)/build-asan/devbox DEVBOX_INIT=$(CURDIR)/build/devbox-init \
	  $(MAKE) BUILD=build E2E_DEBIAN_TESTS= e2e

bench: all $(BUILD)/tests/test-proxy-mitm
	bench/run.sh

# README's first command: build, fetch the kernel, build the default Debian image (once), boot a
# VM for a sample repo and run commands in it.
demo: all
	tools/demo.sh

deps:
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(DEPS)
	command -v node >/dev/null && command -v npm >/dev/null || \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(DEPS_KUBE)
	npm ci --prefix tests/kube --no-audit --no-fund
	node tests/kube/generate.mjs

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

# Fails on any difference from .clang-format (what CI enforces); `make format` fixes it.
format-check:
	@clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h') && echo "format: clean"

clean:
	rm -rf build build-asan

FORCE:

.PHONY: all unit e2e test asan bench demo deps format format-check clean fuzz check-docs install \
	uninstall kernel check-kube FORCE
-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
