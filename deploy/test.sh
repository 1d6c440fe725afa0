#!/usr/bin/env bash
# Installs what is missing, builds Sluice and runs its tests: the README's test command.
#   SLUICE_BUILD_DIR   build folder (default: build)
#   SLUICE_TEST_ARGS   extra ctest arguments (e.g. "-L unit")
set -euo pipefail
cd "$(dirname "$0")/.."
build=${SLUICE_BUILD_DIR:-build}

./deploy/install-deps.sh
export CCACHE_BASEDIR="$PWD"
# Everything, tests and benchmarks included, also in a build folder configured otherwise before.
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER_LAUNCHER=ccache \
  -DSLUICE_BUILD_TESTS=ON -DSLUICE_BUILD_BENCH=ON
cmake --build "$build" -j2
# Chaos tests run in their short form here; `ctest -L chaos` with SLUICE_CHAOS_LONG=1 runs them long.
ctest --test-dir "$build" --output-on-failure -j2 ${SLUICE_TEST_ARGS:-} </dev/null
