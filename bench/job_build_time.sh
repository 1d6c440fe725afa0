#!/usr/bin/env bash
# How long the README's word count takes to build with the README's own g++ line, now beside a
# revision before (default: the last before the SDK was split into layers), in one run: the runs
# alternate, and the medians and their ratios are printed. Also the same line with the installed
# precompiled header removed, which is what a compiler other than the one Sluice was built with,
# or other options, get.
#   bench/job_build_time.sh [--build DIR] [--before REV] [--runs N]
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$REPO/build
BEFORE=f0dfd22
RUNS=5
while [ $# -gt 0 ]; do
  case $1 in
    --build) BUILD=$2; shift 2 ;;
    --before) BEFORE=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) echo "job_build_time: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
CXX=${CXX:-g++}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/sluice-job-build-time.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

# The first ```cpp block of README.md's "A job", and its g++ line (continuations joined).
job_of() { awk '/^## A job/ { s = 1 } s && /^```cpp/ { f = 1; next } f && /^```/ { exit } f' "$1"; }
line_of() {
  awk '/^## A job/ { s = 1; next } s && /^## / { exit }
       s && /^g\+\+ .*-shared/ { t = 1 }
       t { if (sub(/\\$/, "")) { j = j $0; next } print j $0; exit }' "$1"
}

mkdir -p "$TMP/before" "$TMP/now" "$TMP/now-nopch"
git -C "$REPO" archive "$BEFORE" common/include README.md | tar -x -C "$TMP/before"
job_of "$TMP/before/README.md" >"$TMP/before/wordcount.cc"
before_line=$(line_of "$TMP/before/README.md")
before_line=${before_line//<sluice>/$TMP/before}

cmake --install "$BUILD" --prefix "$TMP/prefix" >"$TMP/install.log" 2>&1 || {
  echo "job_build_time: cmake --install $BUILD failed:" >&2; tail -n 20 "$TMP/install.log" >&2; exit 1
}
job_of "$REPO/README.md" >"$TMP/now/wordcount.cc"
cp "$TMP/now/wordcount.cc" "$TMP/now-nopch/"
now_line=$(line_of "$REPO/README.md")
now_line=${now_line//<prefix>/$TMP/prefix}
cp -r "$TMP/prefix" "$TMP/prefix-nopch"
rm -f "$TMP/prefix-nopch/include/sluice/sluice.h.gch"
nopch_line=$(line_of "$REPO/README.md")
nopch_line=${nopch_line//<prefix>/$TMP/prefix-nopch}
[ -f "$TMP/prefix/include/sluice/sluice.h.gch" ] || echo "note: the install has no precompiled header (not GCC, or a sanitized build)"

# time_one DIR LINE: seconds of wall time the line takes in DIR.
time_one() {
  local dir=$1 line=$2 words start end
  read -r -a words <<<"$line"
  words[0]=$CXX
  start=$(date +%s.%N)
  (cd "$dir" && "${words[@]}" -Winvalid-pch >"$TMP/out.log" 2>&1) || {
    echo "job_build_time: failed in $dir: ${words[*]}" >&2; cat "$TMP/out.log" >&2; exit 1
  }
  end=$(date +%s.%N)
  if grep -q "not used because" "$TMP/out.log"; then
    echo "job_build_time: warning: the precompiled header was not used in $dir:" >&2
    grep "not used because" "$TMP/out.log" | head -n 2 >&2
  fi
  awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f\n", b - a }'
}
median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

echo "README word count, built with the README's g++ line ($($CXX --version | head -n 1)), $RUNS runs each, alternating"
echo "  before ($BEFORE): $before_line"
echo "  now:              $now_line"
: >"$TMP/b"; : >"$TMP/n"; : >"$TMP/p"
for _ in $(seq "$RUNS"); do
  time_one "$TMP/before" "$before_line" >>"$TMP/b"
  time_one "$TMP/now" "$now_line" >>"$TMP/n"
  time_one "$TMP/now-nopch" "$nopch_line" >>"$TMP/p"
done
b=$(median <"$TMP/b"); n=$(median <"$TMP/n"); p=$(median <"$TMP/p")
printf '  %-44s %6.2f s\n' "before" "$b"
printf '  %-44s %6.2f s   %.2fx of before\n' "now (installed precompiled header)" "$n" "$(awk -v x="$n" -v y="$b" 'BEGIN { print x / y }')"
printf '  %-44s %6.2f s   %.2fx of before\n' "now, the precompiled header removed" "$p" "$(awk -v x="$p" -v y="$b" 'BEGIN { print x / y }')"
