# Thin front for the CMake build. The two commands that matter:
#   make run   install what is missing, build, start the main job
#   make test  install what is missing, build, run the whole test suite
JOBS     ?= 2
BUILD    ?= build
CMAKE_GEN = $(shell command -v ninja >/dev/null 2>&1 && echo "-G Ninja")

.PHONY: all deps build run test test-release test-asan test-tsan test-fuzz fuzz crash-long bench clean

all: build

deps:
	@sh scripts/deps.sh

$(BUILD)/release/CMakeCache.txt:
	cmake -S . -B $(BUILD)/release $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=Release -DVT_WERROR=ON >/dev/null

build: deps $(BUILD)/release/CMakeCache.txt
	cmake --build $(BUILD)/release -j$(JOBS)

run: build
	$(BUILD)/release/services/vectron/vectron serve

test: deps test-release test-asan test-tsan test-fuzz
	@echo "make test: all suites passed"

test-release: build
	cd $(BUILD)/release && ctest --output-on-failure -j$(JOBS) --timeout 600

test-asan: deps
	cmake -S . -B $(BUILD)/asan $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=Debug -DVT_SANITIZE=ON -DVT_WERROR=ON -DVT_BENCH=OFF >/dev/null
	cmake --build $(BUILD)/asan -j$(JOBS)
	cd $(BUILD)/asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		ctest --output-on-failure -j$(JOBS) --timeout 900 -LE slow

# The threaded tests only, under ThreadSanitizer.
test-tsan: deps
	cmake -S . -B $(BUILD)/tsan $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVT_TSAN=ON -DVT_WERROR=ON -DVT_BENCH=OFF >/dev/null
	cmake --build $(BUILD)/tsan -j$(JOBS)
	cd $(BUILD)/tsan && TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:suppressions=$(CURDIR)/tests/tsan.supp \
		ctest --output-on-failure -j$(JOBS) --timeout 900 -L threads

# libFuzzer targets (clang). FUZZ_SECONDS per target; `make test` runs a
# short campaign, `make fuzz FUZZ_SECONDS=600` a real one.
FUZZ_SECONDS ?= 60
test-fuzz: deps
	$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=20

fuzz: deps
	CC=clang CXX=clang++ cmake -S . -B $(BUILD)/fuzz $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVT_FUZZ=ON >/dev/null
	cmake --build $(BUILD)/fuzz -j$(JOBS)
	sh scripts/fuzz.sh $(BUILD)/fuzz $(FUZZ_SECONDS)

# The kill -9 campaigns (store and shard), long form (make test runs 20
# rounds).
CRASH_ROUNDS ?= 200
crash-long: build
	cd $(BUILD)/release && VT_CRASH_ROUNDS=$(CRASH_ROUNDS) ctest --output-on-failure -L crash --timeout 3600

bench: build
	$(BUILD)/release/bench/vt_bench_hnsw

clean:
	rm -rf $(BUILD)
