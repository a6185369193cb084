# gort front door. `make run` (the main job) and `make test` (all tests) work on a
# fresh Debian 12: they install whatever Debian packages are missing (apt-get,
# only when something is missing), configure, build and run.

BUILD      ?= build
BUILD_ASAN ?= build-asan
BUILD_TSAN ?= build-tsan
JOBS       ?= $(shell nproc)
CMAKE_ARGS ?=

# Everything comes from Debian; nothing is downloaded from anywhere else.
DEPS := cmake make g++ pkg-config \
        liburing-dev libjemalloc-dev libspdlog-dev libfmt-dev doctest-dev \
        libtomlplusplus-dev libcli11-dev libiberty-dev libboost-context-dev golang-go
# The peers and tools of `gort-bench net`, installed by `make run` only: nginx's
# package starts a service where an init system runs, which tests do not need.
BENCH_DEPS := wrk nginx strace

# The clang of `make test-annotations` (-Wthread-safety), installed by it only.
ANNOTATION_DEPS := clang

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

BUILD_CLANG ?= build-clang

.PHONY: all deps bench-deps configure build test run bench test-asan test-tsan test-annotations clean

all: build

# deps installs the missing packages; `apt-get update` runs only when some are.
deps:
	@$(call install_missing,$(DEPS))

bench-deps: deps
	@$(call install_missing,$(BENCH_DEPS))

define install_missing
	missing=""; \
	for p in $(1); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "make deps: installing missing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi
endef

configure: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGORT_WERROR=ON $(CMAKE_ARGS) >/dev/null

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

test: build
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)

# The main job: the benchmark tables, ours beside the peers' (Boost.Context for
# stacks, the Go runtime for scheduling, Go and nginx for the servers), measured
# in the same run.
run: build bench-deps
	./$(BUILD)/bench/gort-bench stack
	./$(BUILD)/bench/gort-bench sched
	./$(BUILD)/bench/gort-bench net

bench: run

# ASan + UBSan build of the tests in its own build tree.
test-asan: deps
	@cmake -S . -B $(BUILD_ASAN) -DCMAKE_BUILD_TYPE=Debug -DGORT_SANITIZE=address -DGORT_WERROR=ON -DGORT_BUILD_BENCH=OFF >/dev/null
	@cmake --build $(BUILD_ASAN) -j $(JOBS)
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --test-dir $(BUILD_ASAN) --output-on-failure -j $(JOBS)

# TSan build of the tests. The runtime annotates its context switches
# (__tsan_switch_to_fiber), so goroutine migration is understood. TSan's lock-order
# checker is off: the crash tests fork, and jemalloc takes more locks around a
# fork than the checker can track (it aborts on its own table, not on a race).
test-tsan: deps
	@cmake -S . -B $(BUILD_TSAN) -DCMAKE_BUILD_TYPE=Debug -DGORT_SANITIZE=thread -DGORT_WERROR=ON -DGORT_BUILD_BENCH=OFF >/dev/null
	@cmake --build $(BUILD_TSAN) -j $(JOBS)
	TSAN_OPTIONS=halt_on_error=1:detect_deadlocks=0 \
	  ctest --test-dir $(BUILD_TSAN) --output-on-failure -j $(JOBS)

# clang's thread-safety analysis of the lock annotations (src/base/tsa.h): a
# lock taken or released against a function's contract (REQUIRES, ACQUIRE,
# RELEASE) or a GUARDED_BY field touched without its lock fails the build.
# The library only: Debian 12's clang 14 cannot build the tests against
# libstdc++ 12 (no std::source_location). Other clang warnings are not errors
# here: the gcc builds are the ones held to -Werror.
test-annotations: deps
	@$(call install_missing,$(ANNOTATION_DEPS))
	@CC=clang CXX=clang++ cmake -S . -B $(BUILD_CLANG) -DCMAKE_BUILD_TYPE=Debug -DGORT_BUILD_BENCH=OFF \
	  -DGORT_BUILD_TESTS=OFF -DCMAKE_CXX_FLAGS="-Wthread-safety -Werror=thread-safety" >/dev/null
	@cmake --build $(BUILD_CLANG) -j $(JOBS) --target gort

clean:
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_TSAN) $(BUILD_CLANG)
