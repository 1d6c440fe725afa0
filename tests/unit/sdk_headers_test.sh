#!/usr/bin/env bash
# Compiles a translation unit of one `#include <sluice/...>` for every SDK header (public, internal
# and connectors', sluice.h among them) with the strict warnings a job author may build with: each
# header must stand alone and give no warning.
#   sdk_headers_test.sh <include dir>... -- <compiler>...
set -uo pipefail
dirs=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
  dirs+=("$1")
  shift
done
shift
flags=(-std=c++20 -Wall -Wextra -Wshadow -Wpedantic -Werror -fsyntax-only)
includes=()
for d in "${dirs[@]}"; do includes+=(-I"$d"); done
ok=0
bad=0
for cxx in "$@"; do
  for d in "${dirs[@]}"; do
    for header in "$d"/sluice/*.h "$d"/sluice/internal/*.h "$d"/sluice/connectors/*.h; do
      [ -e "$header" ] || continue
      name=${header#"$d"/}
      if out=$(printf '#include <%s>\n' "$name" | "$cxx" "${flags[@]}" "${includes[@]}" -x c++ - 2>&1)
      then
        ok=$((ok + 1))
      else
        bad=$((bad + 1))
        echo "FAILED: $cxx ${flags[*]} on #include <$name>"
        echo "$out" | head -40
      fi
    done
  done
done
echo "sdk headers: $ok compiled cleanly, $bad did not (compilers: $*)"
[ "$bad" -eq 0 ] && [ "$ok" -gt 0 ]
