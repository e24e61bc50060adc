# primed — one Makefile for the service, its tests, sanitizer builds and benchmarks.
#
# Build variants (each in its own object directory, so they never mix):
#   make            product build in build/ (tcmalloc + CPU profiler linked in: TCMALLOC=1)
#   make asan       build/asan/, ASan+UBSan+LSan, TCMALLOC=0, runs the whole test suite
#   make tsan       build/tsan/, ThreadSanitizer, TCMALLOC=0, runs the concurrency tests
# Sanitizers and tcmalloc both replace malloc, so the sanitizer builds link neither tcmalloc nor
# the profiler; there the profiling endpoints answer 501.

SHELL      := /bin/bash
CC         ?= gcc
CXX        ?= g++
VARIANT    ?= release
TCMALLOC   ?= 1
B          ?= build

ARCH := $(shell uname -m)
ifeq ($(ARCH),x86_64)
# x86-64-v2 (2009+) gives POPCNT, which the sieve's counting kernel relies on.
ARCH_FLAGS ?= -march=x86-64-v2
endif

PKGS      := libmicrohttpd jansson zlib libunwind
WARN      := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
             -Wformat=2 -Wvla -Wno-unused-parameter
CPPFLAGS  += -Iinclude -D_GNU_SOURCE -DPRIMED_VERSION=\"$(VERSION)\" \
             -DPRIMED_REVISION=\"$(REVISION)\" -MMD -MP
# Sanitizer builds also check lifecycle invariants (PRIMED_ASSERT, include/primed/assert.h).
ifeq ($(VARIANT),asan)
  B        := build/asan
  CPPFLAGS += -DPRIMED_DEBUG_ASSERTS=1
  TCMALLOC := 0
  SAN      := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
  OPT      := -O1 -g $(SAN)
  LDFLAGS  += $(SAN)
endif
ifeq ($(VARIANT),tsan)
  B        := build/tsan
  CPPFLAGS += -DPRIMED_DEBUG_ASSERTS=1
  TCMALLOC := 0
  SAN      := -fsanitize=thread -fno-omit-frame-pointer
  OPT      := -O1 -g $(SAN)
  LDFLAGS  += $(SAN)
endif

# `make LEAK_PLANT=1`: a release build in build/leak/ that leaks 1 KiB per API request
# (leakcheck_planted_leak in api.c), for `make leakcheck` to prove that it fails.
ifeq ($(LEAK_PLANT),1)
  B        := build/leak
  CPPFLAGS += -DPRIMED_LEAK_PLANT=1
endif

OPT       ?= -O2 -g
CFLAGS    := $(OPT) -std=c11 -pthread $(WARN) $(ARCH_FLAGS) $(shell pkg-config --cflags $(PKGS))
CXXFLAGS  := $(OPT) -std=c++17 -pthread -Wall -Wextra -Werror $(ARCH_FLAGS)
LDLIBS    += $(shell pkg-config --libs $(PKGS)) -lm -pthread
TEST_LIBS := $(shell pkg-config --libs check libcurl)
CHECK_LIBS := $(shell pkg-config --libs check)

VERSION   := $(shell cat VERSION 2>/dev/null || echo 0.0.0)
REVISION  := $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)

# The prime engine (src/engine/) is a library of its own: libprimedsieve.a, built from those
# sources alone and linking nothing but libc, libm and pthreads (`make sieve-lib`).
ENGINE_SRCS := $(wildcard src/engine/*.c)
ENGINE_OBJS := $(ENGINE_SRCS:src/%.c=$(B)/obj/%.o)
C_SRCS   := $(filter-out src/main.c,$(wildcard src/*.c))
CXX_SRCS := $(wildcard src/*.cc)
ifeq ($(TCMALLOC),1)
  CPPFLAGS += -DPRIMED_TCMALLOC=1
  # Explicit linkage: the profiler and tcmalloc must be in the product even though the code
  # reaches them only through weak/rarely-called symbols.
  LDLIBS   += -Wl,--no-as-needed $(shell pkg-config --libs libprofiler libtcmalloc) -Wl,--as-needed -lstdc++
  LIB_OBJS := $(C_SRCS:src/%.c=$(B)/obj/%.o) $(CXX_SRCS:src/%.cc=$(B)/obj/%.o)
else
  CPPFLAGS += -DPRIMED_TCMALLOC=0
  LIB_OBJS := $(C_SRCS:src/%.c=$(B)/obj/%.o)
endif

TEST_SRCS := $(wildcard tests/test_*.c)
TEST_BINS := $(TEST_SRCS:tests/%.c=$(B)/tests/%)
# The engine's tests link libprimedsieve.a and Check only (no libmicrohttpd, jansson or curl).
ENGINE_TESTS := test_sieve test_sieve_big test_primality test_pi test_factor test_sieve_kernels
ENGINE_TEST_BINS := $(ENGINE_TESTS:%=$(B)/tests/%)
SERVICE_TEST_BINS := $(filter-out $(ENGINE_TEST_BINS),$(TEST_BINS))
# Unit tests: every Check binary except the end-to-end ones (test_e2e_*), which start build/primed.
UNIT_TEST_BINS := $(filter-out $(B)/tests/test_e2e_%,$(TEST_BINS))
TOOL_SRCS := $(wildcard tests/tools/*.c)
TOOL_BINS := $(TOOL_SRCS:tests/tools/%.c=$(B)/tools/%)

.PHONY: all deps run test check unit asan tsan bench bench-pi bench-pi-huge fuzz clean install format check-format \
        sieve-lib sieve-test bench-service valgrind leakcheck slow-test image test-image
all: $(B)/primed $(TEST_BINS) $(TOOL_BINS)

deps:
	@bash scripts/install-deps.sh

$(B)/obj/%.o: src/%.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@
$(B)/obj/%.o: src/%.cc
	@mkdir -p $(@D)
	$(CXX) $(CPPFLAGS) $(CXXFLAGS) -c $< -o $@
$(B)/libprimed.a: $(LIB_OBJS)
	rm -f $@ && ar rcs $@ $^
$(B)/libprimedsieve.a: $(ENGINE_OBJS)
	rm -f $@ && ar rcs $@ $^
$(B)/primed: $(B)/obj/main.o $(B)/libprimed.a $(B)/libprimedsieve.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# Tests and tools compile to objects of their own, so each has a dependency file that records
# every header it includes; -Isrc/engine lets engine tests reach the engine's internal headers,
# -Isrc the API's op table (src/api_op.h) for the test that every API route has a complete row.
TEST_CPPFLAGS = $(CPPFLAGS) -Itests -Isrc/engine -Isrc
$(B)/tests/obj/%.o: tests/%.c
	@mkdir -p $(@D)
	$(CC) $(TEST_CPPFLAGS) $(CFLAGS) -c $< -o $@
$(B)/tools/obj/%.o: tests/tools/%.c
	@mkdir -p $(@D)
	$(CC) $(TEST_CPPFLAGS) $(CFLAGS) -c $< -o $@
$(ENGINE_TEST_BINS): $(B)/tests/%: $(B)/tests/obj/%.o $(B)/libprimedsieve.a
	$(CC) $(LDFLAGS) -o $@ $^ -lm -pthread $(CHECK_LIBS)
$(SERVICE_TEST_BINS): $(B)/tests/%: $(B)/tests/obj/%.o $(B)/tests/obj/harness.o $(B)/libprimed.a \
                      $(B)/libprimedsieve.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(TEST_LIBS)
$(B)/tools/%: $(B)/tools/obj/%.o $(B)/libprimed.a $(B)/libprimedsieve.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# The revision is compiled into the objects that print it; this stamp changes only when HEAD
# does, so an incremental build never reports a stale revision and a clean one is not slowed.
REV_USERS := $(patsubst src/%.c,$(B)/obj/%.o,$(shell grep -l PRIMED_REVISION src/*.c 2>/dev/null))
$(B)/revision.stamp: FORCE
	@mkdir -p $(@D)
	@[ "$$(cat $@ 2>/dev/null)" = "$(REVISION)" ] || echo "$(REVISION)" > $@
$(REV_USERS): $(B)/revision.stamp
.PHONY: FORCE
FORCE:

# `make run`: install what is missing, build, serve on :8080 (Ctrl-C drains and exits 0).
run: deps
	$(MAKE) all
	./$(B)/primed $(ARGS)

FORMAT_FILES = src/*.c src/*.h src/engine/*.c src/engine/*.h include/primed/*.h tests/*.c tests/*.h tests/*/*.c

# `make test`: install what is missing, build the product and the ASan build, run every test.
test: deps
	$(MAKE) check-format
	$(MAKE) all
	$(MAKE) VARIANT=asan all
	bash scripts/run-tests.sh build
	bash scripts/run-tests.sh build/asan
	$(MAKE) leakcheck

# `make leakcheck` (~50 s): heap profiles of the release build after warm-up and after each of
# two equal rounds of traffic; fails when an allocation site or RSS grows in both. Then the same
# check against build/leak/ (LEAK_PLANT=1), which must fail and name leakcheck_planted_leak.
leakcheck:
	$(MAKE) all
	$(MAKE) LEAK_PLANT=1 build/leak/primed
	bash scripts/leakcheck.sh build
	bash scripts/leakcheck.sh --expect-leak leakcheck_planted_leak build/leak

# The unit + end-to-end suite of one build variant, without the dependency step.
unit: all
	bash scripts/run-tests.sh $(B)

# `make check`: the fast inner loop, unit tests only (no server started, no scripts).
check: $(UNIT_TEST_BINS)
	bash scripts/run-tests.sh --unit $(B)

# `make sieve-lib` / `make sieve-test`: the engine alone, and its tests against that archive only;
# the test also proves (nm, ldd) that neither links libmicrohttpd, jansson or curl.
sieve-lib: $(B)/libprimedsieve.a
sieve-test: $(B)/libprimedsieve.a $(ENGINE_TEST_BINS)
	bash scripts/sieve-test.sh $(B) $(ENGINE_TESTS)

# `make slow-test`: π(10^16 … 10^19), π(2^64 − 1) and primecount near 2^63 and 2^64 (hours on
# one core; scripts/pi-slow-test.sh).
slow-test: $(B)/tests/test_pi
	bash scripts/pi-slow-test.sh $(B)

asan:
	$(MAKE) VARIANT=asan all
	bash scripts/run-tests.sh build/asan
tsan:
	$(MAKE) VARIANT=tsan all
	PRIMED_TSAN=1 bash scripts/run-tests.sh build/tsan

bench: deps all
	bash scripts/bench.sh
bench-report: deps all
	bash scripts/bench-report.sh
# The service's own benchmarks (not in `make test`: minutes of wrk, and targets a shared machine
# can miss): HTTP overhead vs a bare libmicrohttpd server, pool overload and parallelism, streaming
# memory. Each runs even if an earlier one missed its target; the status says whether any did.
bench-service: deps all
	@rc=0; for s in bench-http bench-pool bench-memory; do \
	  echo "== scripts/$$s.sh"; bash scripts/$$s.sh || { echo "== $$s: FAILED"; rc=1; }; \
	done; exit $$rc
# π(x) (issues 13, 22): the engine vs primecount -t1 at 1e14 and 1e16, 2 threads vs 1, the table
# 10^8 … 10^17 with DR beside Gourdon (scripts/bench-pi.sh, ~10 minutes); then the same through
# the service: one worker, 1 vs 2 workers, count/nth at the default deadline, cancellation
# measured from /proc (~5 minutes). bench-pi-huge: π(10^19) and π(2^64-1) with their peak memory
# (tens of minutes of both cores).
bench-pi: deps all
	@rc=0; bash scripts/bench-pi.sh || rc=1; bash scripts/bench-pi-service.sh || rc=1; exit $$rc
bench-pi-huge: deps all
	bash scripts/bench-pi-huge.sh
# `make image`: the container image from the Dockerfile with podman, on local debian:bookworm(-slim)
# bases that mmdebstrap makes from this machine's apt archive when missing (scripts/image.sh).
# `make test-image` (~2 min with the image built; not in `make test`): tests/test_image.sh runs it.
image:
	@bash scripts/install-deps.sh --image
	bash scripts/image.sh
test-image: image
	PRIMED_TEST_IMAGE=1 bash tests/test_image.sh
# valgrind memcheck over a short end-to-end run (its own build without tcmalloc: build/plain).
valgrind:
	bash scripts/valgrind-e2e.sh

# `make fuzz`: libFuzzer harnesses tests/fuzz/<h>.c → build/fuzz/<h>, clang with ASan+UBSan; the
# library objects get coverage instrumentation (fuzzer-no-link) in their own directory.
FUZZ_CC    ?= clang
FUZZ_SAN   := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_FLAGS := -O1 -g -std=c11 -pthread $(WARN) $(ARCH_FLAGS) -Iinclude -Isrc/engine -D_GNU_SOURCE \
              -DPRIMED_TCMALLOC=0 -DPRIMED_DEBUG_ASSERTS=1 -DPRIMED_VERSION=\"$(VERSION)\" $(shell pkg-config --cflags $(PKGS))
FUZZ_OBJS  := $(C_SRCS:src/%.c=build/fuzz/obj/%.o) $(ENGINE_SRCS:src/%.c=build/fuzz/obj/%.o)
FUZZ_BINS  := $(patsubst tests/fuzz/%.c,build/fuzz/%,$(wildcard tests/fuzz/*.c))
FUZZ_LIBS  := $(shell pkg-config --libs $(PKGS)) -lm -pthread
.SECONDARY: $(FUZZ_OBJS)
fuzz: $(FUZZ_BINS)
build/fuzz/obj/%.o: src/%.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_FLAGS) $(FUZZ_SAN) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@
build/fuzz/%: tests/fuzz/%.c $(FUZZ_OBJS)
	$(FUZZ_CC) $(FUZZ_FLAGS) $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $< $(FUZZ_OBJS) $(FUZZ_LIBS)

clean:
	rm -rf build

PREFIX ?= /usr/local
install: all
	install -D -m 0755 $(B)/primed $(DESTDIR)$(PREFIX)/bin/primed
	install -D -m 0644 configs/primed.json $(DESTDIR)/etc/primed/primed.json

format:
	clang-format -i $(FORMAT_FILES)
check-format:
	clang-format --dry-run --Werror $(FORMAT_FILES)

-include $(wildcard $(B)/obj/*.d $(B)/obj/engine/*.d $(B)/tests/obj/*.d $(B)/tools/obj/*.d \
                    build/fuzz/obj/*.d build/fuzz/obj/engine/*.d)
