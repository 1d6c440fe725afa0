#!/usr/bin/env bash
# Integration test of the installed SDK: `cmake --install BUILD_DIR` into a fresh prefix, then the
# word-count job of README.md ("A job") built outside the tree by the build's compiler, twice:
#   - by a CMake project with find_package(Sluice REQUIRED) and sluice_add_job() (both forms; the
#     precompiled header must be used: GCC's invalid-pch warning is an error here);
#   - by README.md's plain compiler line, against the prefix.
# Each library must export sluice_job_entry and sluice_abi_stamp, carry the ABI stamp of the
# build's own examples, and, in a sanitized build, be instrumented like the runtime that loads it.
# Every step is bounded in time; the temporary folder is removed at the end.
#
# Usage: tests/integration/find_package_test.sh BUILD_DIR CXX [CMAKE [SANITIZE]]
#   SANITIZE: the build's SLUICE_SANITIZE (e.g. address,undefined), empty for none.
# Set KEEP_TMP=1 to keep the temporary folder for inspection.
set -uo pipefail

if [ $# -lt 2 ] || [ $# -gt 4 ]; then
  echo "Usage: $0 BUILD_DIR CXX [CMAKE [SANITIZE]]" >&2
  exit 2
fi
BUILD_DIR=$(cd -- "$1" 2>/dev/null && pwd -P) || { echo "No such build directory: $1" >&2; exit 2; }
CXX=$2
CMAKE=${3:-cmake}
SANITIZE=${4:-}
REPO=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd -P)
STEP_TIMEOUT=${SLUICE_STEP_TIMEOUT:-150}  # seconds for one install, configure or build

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "PASS: $*"; }
fail() { failed=$((failed + 1)); echo "FAIL: $*"; }
finish() {
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
  exit
}

TMP=$(mktemp -d "${TMPDIR:-/tmp}/sluice-find-package-test.XXXXXX")
cleanup() {
  if [ "${KEEP_TMP:-}" = 1 ]; then echo "Kept $TMP"; else rm -rf -- "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
PREFIX=$TMP/prefix
PROJECT=$TMP/project

# run LOG DESCRIPTION COMMAND...: COMMAND bounded in time, its output in LOG and shown if it fails.
run() {
  local log=$1 what=$2 rc
  shift 2
  timeout --kill-after=10 "$STEP_TIMEOUT" "$@" >"$log" 2>&1
  rc=$?
  if [ "$rc" -eq 0 ]; then
    pass "$what"
    return 0
  fi
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    fail "$what: timed out after ${STEP_TIMEOUT}s: $*"
  else
    fail "$what: exit $rc: $*"
  fi
  echo "---- last lines of its output ($log):"
  tail -n 40 "$log"
  echo "----"
  return 1
}

# exports LIBRARY DESCRIPTION: the library defines both symbols the runtime looks up.
exports() {
  local lib=$1 what=$2 symbols
  if [ ! -f "$lib" ]; then
    fail "$what: $lib was not built"
    return
  fi
  symbols=$(nm -D --defined-only "$lib" 2>&1)
  local missing=()
  for symbol in sluice_job_entry sluice_abi_stamp; do
    grep -Eq "^[0-9a-f]+ T ${symbol}\$" <<<"$symbols" || missing+=("$symbol")
  done
  if [ ${#missing[@]} -eq 0 ]; then
    pass "$what exports sluice_job_entry and sluice_abi_stamp"
  else
    fail "$what does not export ${missing[*]} (nm -D --defined-only $lib)"
  fi
  # Self-contained: the SDK and the connectors it uses are linked in, nothing of Sluice is left
  # for the loader to find (it would fail only when the job is submitted).
  local undefined
  undefined=$(nm -D -C --undefined-only "$lib" 2>&1 | grep -E 'sluice::|sluice_' || true)
  if [ -z "$undefined" ]; then
    pass "$what leaves no Sluice symbol undefined"
  else
    fail "$what leaves Sluice symbols undefined (a library not linked):"
    echo "$undefined" | head -n 10
  fi
}

# stamp LIBRARY: the ABI stamp the library carries.
stamp() { grep -a -o -m 1 'sluice-sdk-[[:print:]]*' "$1" | head -n 1; }
REFERENCE=$BUILD_DIR/examples/libwordcount.so
REFERENCE_STAMP=
[ -f "$REFERENCE" ] && REFERENCE_STAMP=$(stamp "$REFERENCE")

# same_stamp LIBRARY DESCRIPTION: the runtime built here would load it.
same_stamp() {
  if [ -z "$REFERENCE_STAMP" ]; then
    echo "SKIP: $2: no ABI stamp to compare with ($REFERENCE not built)"
    return
  fi
  local theirs
  theirs=$(stamp "$1")
  if [ "$theirs" = "$REFERENCE_STAMP" ]; then
    pass "$2 has the ABI stamp of the build's examples ($theirs)"
  else
    fail "$2 has ABI stamp '$theirs', the build's examples '$REFERENCE_STAMP'"
  fi
}

# instrumented LIBRARY DESCRIPTION: in a sanitized build, the library calls into each sanitizer.
instrumented() {
  [ -n "$SANITIZE" ] || return 0
  local undefined kind symbol
  undefined=$(nm -D --undefined-only "$1" 2>&1)
  for kind in address undefined thread; do
    [[ ",$SANITIZE," == *",$kind,"* ]] || continue
    case $kind in address) symbol=__asan_ ;; undefined) symbol=__ubsan_ ;; thread) symbol=__tsan_ ;; esac
    if grep -q "$symbol" <<<"$undefined"; then
      pass "$2 is instrumented for $kind like the runtime"
    else
      fail "$2 has no $symbol references: it is not built with -fsanitize=$kind like the runtime"
    fi
  done
}

# ---- install ----
if ! run "$TMP/install.log" "cmake --install into a fresh prefix" \
  "$CMAKE" --install "$BUILD_DIR" --prefix "$PREFIX"; then
  echo "The install needs the whole build (cmake --build): the binaries, the SDK and the connector libraries."
  finish
fi
for file in include/sluice/sluice.h bin/sluice bin/sluice-jobmanager bin/sluice-taskmanager; do
  if [ -e "$PREFIX/$file" ]; then pass "installed $file"; else fail "the install has no $file"; fi
done
config=$(find "$PREFIX" -path '*/cmake/Sluice/SluiceConfig.cmake' | head -n 1)
if [ -n "$config" ]; then pass "installed ${config#"$PREFIX"/}"; else fail "the install has no cmake/Sluice/SluiceConfig.cmake"; fi

# ---- the README's job ----
mkdir -p "$PROJECT"
# The ```cpp block of "## A job" that starts with `// wordcount.cc`.
awk '/^## A job/ { section = 1; next }
     section && /^## / { exit }
     section && /^```cpp/ { block = 1; next }
     block && /^```/ { exit }
     block { print }' "$REPO/README.md" >"$PROJECT/wordcount.cc"
if head -n 1 "$PROJECT/wordcount.cc" | grep -q '^// wordcount.cc'; then
  pass "README.md has the word-count job"
else
  fail "README.md's section \"A job\" has no \`\`\`cpp block starting with '// wordcount.cc'"
  finish
fi

# ---- CMake: find_package(Sluice) ----
cat >"$PROJECT/CMakeLists.txt" <<'EOF'
cmake_minimum_required(VERSION 3.22)
project(wordcount_job LANGUAGES CXX)
find_package(Sluice 0.1 REQUIRED)
sluice_add_job(wordcount wordcount.cc)
target_link_libraries(wordcount PRIVATE Sluice::connector_files)
sluice_add_job(wordcount_keywords SOURCES wordcount.cc CONNECTORS files)
EOF
cmake_args=(-S "$PROJECT" -B "$PROJECT/build" -DCMAKE_BUILD_TYPE=Release
  "-DCMAKE_CXX_COMPILER=$CXX" "-DCMAKE_PREFIX_PATH=$PREFIX")
command -v ninja >/dev/null && cmake_args+=(-G Ninja)
if ! "$CXX" -dM -E -x c++ /dev/null 2>/dev/null | grep -q __clang__; then  # GCC
  # A job whose options differ from the precompiled header's compiles it from source, quietly
  # but for this warning.
  cmake_args+=("-DCMAKE_CXX_FLAGS=-Werror=invalid-pch")
fi
if run "$TMP/configure.log" "configure a project with find_package(Sluice)" "$CMAKE" "${cmake_args[@]}"; then
  if grep -q 'CMake Warning' "$TMP/configure.log"; then
    fail "configuring with find_package(Sluice) warns:"
    grep -A8 'CMake Warning' "$TMP/configure.log"
  else
    pass "configuring with find_package(Sluice) gives no warning"
  fi
  if run "$TMP/build.log" "build two jobs with sluice_add_job()" \
    "$CMAKE" --build "$PROJECT/build" -j2; then
    exports "$PROJECT/build/libwordcount.so" "sluice_add_job(wordcount wordcount.cc)"
    exports "$PROJECT/build/libwordcount_keywords.so" "sluice_add_job(wordcount_keywords SOURCES wordcount.cc CONNECTORS files)"
    same_stamp "$PROJECT/build/libwordcount.so" "libwordcount.so (CMake)"
    instrumented "$PROJECT/build/libwordcount.so" "libwordcount.so (CMake)"
    # Made and, the build having passed, used: GCC's warning is an error, clang's refusal too.
    pch=$(find "$PROJECT/build" -name 'cmake_pch.hxx.gch' -o -name 'cmake_pch.hxx.pch' | head -n 1)
    if [ -n "$pch" ]; then
      pass "the jobs share one precompiled <sluice/sluice.h> (${pch#"$PROJECT"/})"
    else
      fail "no precompiled header was made under $PROJECT/build"
    fi
  fi
fi

# An unknown connector is named in the error.
mkdir -p "$TMP/bad"
cp "$PROJECT/wordcount.cc" "$TMP/bad/"
sed 's/^sluice_add_job(wordcount_keywords SOURCES wordcount.cc CONNECTORS files)$/sluice_add_job(wordcount_keywords SOURCES wordcount.cc CONNECTORS nosuch)/' \
  "$PROJECT/CMakeLists.txt" >"$TMP/bad/CMakeLists.txt"
bad_args=(-S "$TMP/bad" -B "$TMP/bad/build" "-DCMAKE_CXX_COMPILER=$CXX" "-DCMAKE_PREFIX_PATH=$PREFIX")
command -v ninja >/dev/null && bad_args+=(-G Ninja)  # a machine may have ninja and no make
timeout --kill-after=10 "$STEP_TIMEOUT" "$CMAKE" "${bad_args[@]}" >"$TMP/bad.log" 2>&1
rc=$?
if [ "$rc" -ne 0 ] && grep -q "no connector 'nosuch'" "$TMP/bad.log"; then
  pass "sluice_add_job(... CONNECTORS nosuch) fails and names the connector"
else
  fail "sluice_add_job(... CONNECTORS nosuch): exit $rc, expected an error naming 'nosuch':"
  tail -n 20 "$TMP/bad.log"
fi

# ---- the README's plain compiler line ----
# The line and its continuations (a trailing backslash), joined.
line=$(awk '/^## A job/ { section = 1; next } section && /^## / { exit }
            section && /^g\+\+ .*-shared/ { taking = 1 }
            taking { if (sub(/\\$/, "")) { joined = joined $0; next } print joined $0; exit }' \
  "$REPO/README.md")
if [ -z "$line" ]; then
  fail "README.md's section \"A job\" has no line 'g++ ... -shared ...'"
  finish
fi
if [[ "$line" != *"<prefix>"* ]]; then
  fail "README.md's compiler line does not build against the install prefix (<prefix>): $line"
  finish
fi
read -r -a words <<<"${line//<prefix>/$PREFIX}"
words[0]=$CXX  # the build's compiler: the ABI stamp names it
if [ -n "$SANITIZE" ]; then
  # A sanitized runtime loads jobs built with its sanitizers (as sluice_add_job does on its own).
  echo "Sanitized build ($SANITIZE): the README's line gets -fsanitize=$SANITIZE"
  words+=("-fsanitize=$SANITIZE")
fi
mkdir -p "$TMP/plain"
cp "$PROJECT/wordcount.cc" "$TMP/plain/"
cd "$TMP/plain" || finish
if run "$TMP/plain.log" "README's line: ${words[*]}" "${words[@]}"; then
  exports "$TMP/plain/libwordcount.so" "libwordcount.so (README's line)"
  same_stamp "$TMP/plain/libwordcount.so" "libwordcount.so (README's line)"
  instrumented "$TMP/plain/libwordcount.so" "libwordcount.so (README's line)"
fi
# With GCC and no sanitizer the install carries a precompiled <sluice/sluice.h>, which the
# README's line uses (-H marks a used one with '!').
if [ -z "$SANITIZE" ] && ! "$CXX" -dM -E -x c++ /dev/null 2>/dev/null | grep -q __clang__; then
  if [ ! -f "$PREFIX/include/sluice/sluice.h.gch" ]; then
    fail "the install has no include/sluice/sluice.h.gch"
  elif headers=$("${words[@]}" -H -Winvalid-pch 2>&1) && grep -q "^! .*sluice/sluice.h.gch" <<<"$headers"; then
    pass "README's line uses the installed precompiled header"
  else
    fail "README's line does not use include/sluice/sluice.h.gch (check with -H -Winvalid-pch)"
  fi
fi

finish
