#!/usr/bin/env bash
# Installs what is missing, builds Sluice and runs its tests: the README's test command.
# First the Release build and all its tests; then the unit and integration tests again (less the
# static checks: formatting, header compilation) in a second build under AddressSanitizer and
# UndefinedBehaviorSanitizer; then a short run of each fuzz target.
#   SLUICE_BUILD_DIR   build folder (default: build)
#   SLUICE_TEST_ARGS   extra ctest arguments (e.g. "-L unit")
#   SLUICE_SANITIZE    the second build's sanitizers (default: address,undefined; "thread" for
#                      ThreadSanitizer, "none" to skip it); it goes to <build>-<name>
#   SLUICE_FUZZ        0 skips the third stage: the libFuzzer targets (tests/fuzz/), built with
#                      clang++ in <build>-fuzz and each run briefly (also skipped when
#                      SLUICE_SANITIZE=none)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${SLUICE_BUILD_DIR:-build}
sanitize=${SLUICE_SANITIZE:-address,undefined}

./deploy/install-deps.sh
export CCACHE_BASEDIR="$PWD"
# Everything, tests and benchmarks included, also in a build folder configured otherwise before.
# Options a sanitized or checked configuration of the same folder may have left are reset.
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER_LAUNCHER=ccache \
  -DSLUICE_BUILD_TESTS=ON -DSLUICE_BUILD_BENCH=ON -DSLUICE_BUILD_CHAOS_TESTS=ON -DSLUICE_SANITIZE= \
  -DSLUICE_THREAD_SAFETY=OFF
cmake --build "$build" -j2
# Chaos tests run in their short form here; `ctest -L chaos` with SLUICE_CHAOS_LONG=1 runs them long.
ctest --test-dir "$build" --output-on-failure --no-tests=error -j2 ${SLUICE_TEST_ARGS:-} </dev/null

[ "$sanitize" = none ] && exit 0
# The sanitized build: no benchmarks or chaos tests, which need the speed of the Release build.
compiler=()
case "$sanitize" in
  thread) san_build=$build-tsan compiler=(-DCMAKE_CXX_COMPILER=clang++) ;;
  address,undefined) san_build=$build-asan ;;
  *) san_build=$build-san ;;
esac
# -Og: with GCC's UndefinedBehaviorSanitizer checks, -O1 took 1.7 times the compile time of the
# whole Release build; -Og took a third less than -O1 and runs the tests in about the same time.
cmake -S . -B "$san_build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER_LAUNCHER=ccache \
  "${compiler[@]}" -DCMAKE_CXX_FLAGS_RELEASE="-Og -DNDEBUG" -DSLUICE_SANITIZE="$sanitize" -DSLUICE_BUILD_BENCH=OFF -DSLUICE_BUILD_CHAOS_TESTS=OFF
cmake --build "$san_build" -j2
# Checks that run no Sluice code (label static: formatting, header compilation) ran above.
ctest --test-dir "$san_build" --output-on-failure --no-tests=error -j2 -L 'unit|integration' \
  -LE static </dev/null

[ "${SLUICE_FUZZ:-1}" = 0 ] && exit 0
# The fuzz targets: each runs for a few seconds from the corpus in tests/fuzz/corpus/, two at a
# time (about 40 s in all); only the libraries they use are built.
fuzz_build=$build-fuzz
cmake -S . -B "$fuzz_build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER_LAUNCHER=ccache \
  -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_CXX_FLAGS_RELEASE="-O1 -DNDEBUG" \
  -DSLUICE_BUILD_FUZZERS=ON -DSLUICE_BUILD_TESTS=OFF -DSLUICE_BUILD_BENCH=OFF
cmake --build "$fuzz_build" -j2 --target fuzzers
ctest --test-dir "$fuzz_build" -L fuzz --output-on-failure --no-tests=error -j2 </dev/null
