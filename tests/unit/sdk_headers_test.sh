#!/usr/bin/env bash
# Compiles a translation unit of one `#include <sluice/X.h>` for every public header (sluice.h
# among them) with the strict warnings a job author may build with: each header must stand alone
# and give no warning.
#   sdk_headers_test.sh <folder holding sluice/> <compiler>...
set -uo pipefail
include_dir=$1
shift
flags=(-std=c++20 -Wall -Wextra -Wshadow -Wpedantic -Werror -fsyntax-only)
ok=0
bad=0
for cxx in "$@"; do
  for header in "$include_dir"/sluice/*.h; do
    name=sluice/$(basename "$header")
    if out=$(printf '#include <%s>\n' "$name" | "$cxx" "${flags[@]}" -I"$include_dir" -x c++ - 2>&1)
    then
      ok=$((ok + 1))
    else
      bad=$((bad + 1))
      echo "FAILED: $cxx ${flags[*]} on #include <$name>"
      echo "$out" | head -40
    fi
  done
done
echo "sdk headers: $ok compiled cleanly, $bad did not (compilers: $*)"
[ "$bad" -eq 0 ] && [ "$ok" -gt 0 ]
