#!/usr/bin/env bash
# The README's set-up promise, checked on a truly fresh machine, repeatably: makes a minimal
# Debian 12 root (debootstrap --variant=minbase bookworm), clones this repository into it, and
# runs the README's two commands there with chroot, as root:
#
#   ./deploy/quickstart.sh
#   ./deploy/test.sh
#
# printing each step's wall time and a summary; exits non-zero when a step fails. The
# quickstart's cluster is stopped (by the pids it recorded) before the tests, and every process
# left in the root is stopped by pid before the root's mounts are undone.
#
# It takes long (debootstrap a few minutes, then a full build): it is not a ctest. Needs root,
# debootstrap (installed with apt when missing) and Debian's mirror. The chroot shares this
# machine's network: the quickstart's cluster listens on 6123 and 8081 (see --free-ports), the
# tests on loopback ports chosen at run time. The clone is of the current commit (HEAD):
# uncommitted changes are not in it.
#
# Usage: tests/fresh_machine.sh [options]
#   --work-dir DIR    where the root (DIR/root) and the logs (DIR/logs) go
#                     (default /var/tmp/sluice-fresh-machine); DIR/root must not exist yet
#   --keep            keep the root afterwards (default: remove it)
#   --ccache-dir DIR  bind-mount DIR as the root's ccache directory, so reruns build faster
#                     (default: none, a cold build as on a fresh machine)
#   --mirror URL      Debian mirror (default http://deb.debian.org/debian)
#   --free-ports      give the quickstart's cluster free ports instead of 6123 and 8081 (edits the
#                     clone's conf/config.yaml), for a machine where those are taken
# Environment: SLUICE_FRESH_QUICKSTART_TIMEOUT, SLUICE_FRESH_TEST_TIMEOUT (seconds; default 7200
# and 14400).
set -uo pipefail

usage() {
  sed -n '19,29p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

WORK=/var/tmp/sluice-fresh-machine
KEEP=0
CCACHE_DIR_HOST=""
MIRROR=http://deb.debian.org/debian
FREE_PORTS=0
while [ $# -gt 0 ]; do
  case "$1" in
    --work-dir) [ $# -ge 2 ] || { usage >&2; exit 2; }; WORK=$2; shift 2 ;;
    --keep) KEEP=1; shift ;;
    --ccache-dir) [ $# -ge 2 ] || { usage >&2; exit 2; }; CCACHE_DIR_HOST=$2; shift 2 ;;
    --mirror) [ $# -ge 2 ] || { usage >&2; exit 2; }; MIRROR=$2; shift 2 ;;
    --free-ports) FREE_PORTS=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) echo "Unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done
QUICKSTART_TIMEOUT=${SLUICE_FRESH_QUICKSTART_TIMEOUT:-7200}
TEST_TIMEOUT=${SLUICE_FRESH_TEST_TIMEOUT:-14400}

REPO=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)
if [ "$(id -u)" -ne 0 ]; then
  echo "fresh_machine: needs root (debootstrap, mount, chroot)." >&2
  exit 2
fi
mkdir -p -- "$WORK" || exit 2
WORK=$(cd -- "$WORK" && pwd -P)
ROOT="$WORK/root"
LOGS="$WORK/logs"
CLONE_IN_ROOT=/root/sluice
if [ -e "$ROOT" ]; then
  echo "fresh_machine: $ROOT exists (a kept root?); remove it or choose another --work-dir." >&2
  exit 2
fi
if [ -n "$CCACHE_DIR_HOST" ]; then
  mkdir -p -- "$CCACHE_DIR_HOST" && CCACHE_DIR_HOST=$(cd -- "$CCACHE_DIR_HOST" && pwd -P) || exit 2
fi
mkdir -p -- "$LOGS"
rm -f -- "$LOGS"/*.log

# ---- steps and their times ---------------------------------------------------------------------
STEP_NAMES=()
STEP_RESULTS=()
STEP_SECONDS=()
FAILED=0
START_ALL=$(date +%s)

fmt_time() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }

# run_step NAME LOG COMMAND...: runs COMMAND with its output shown and kept in LOG, and records
# its result and wall time.
run_step() {
  local name=$1 log=$2 start rc end size
  shift 2
  echo
  echo "==== $name  ($(date '+%H:%M:%S'))"
  start=$(date +%s)
  if declare -F "$1" >/dev/null; then
    # A shell function runs in this shell, so that what it records (mounts) stays; its output is
    # shown when it ends.
    size=$(stat -c %s -- "$log" 2>/dev/null || echo 0)
    "$@" </dev/null >>"$log" 2>&1
    rc=$?
    tail -c +$((size + 1)) -- "$log"
  else
    # A plain pipeline: the daemons a command leaves running (the quickstart's cluster) hold no
    # copy of the pipe, so tee ends with the command. (A process substitution's pipe leaks into
    # them, and tee would wait for them.)
    "$@" </dev/null 2>&1 | tee -a "$log"
    rc=${PIPESTATUS[0]}
  fi
  end=$(date +%s)
  STEP_NAMES+=("$name")
  STEP_SECONDS+=($((end - start)))
  if [ "$rc" -eq 0 ]; then
    STEP_RESULTS+=("ok")
  else
    STEP_RESULTS+=("FAILED (exit $rc)")
    FAILED=1
  fi
  echo "==== $name: $([ "$rc" -eq 0 ] && echo ok || echo "FAILED, exit $rc") in $(fmt_time $((end - start)))"
  return "$rc"
}

summary() {
  local i total=$(($(date +%s) - START_ALL))
  echo
  echo "==== summary (logs in $LOGS)"
  for i in "${!STEP_NAMES[@]}"; do
    printf '  %-44s %-18s %8s\n' "${STEP_NAMES[$i]}" "${STEP_RESULTS[$i]}" "$(fmt_time "${STEP_SECONDS[$i]}")"
  done
  printf '  %-44s %-18s %8s\n' "total" "" "$(fmt_time "$total")"
  if [ -f "$LOGS/test.log" ]; then
    grep -E 'tests passed|tests failed out of|^\s+[0-9]+ - .*\((Failed|Timeout|Not Run|SEGFAULT|Subprocess)' \
      "$LOGS/test.log" | sed 's/^/  test.sh: /'
  fi
  if [ "$FAILED" -eq 0 ]; then echo "fresh_machine: PASSED"; else echo "fresh_machine: FAILED"; fi
}

# ---- clean-up: processes in the root, mounts, the root -----------------------------------------
MOUNTS=()  # mount points under the root, in mount order

# The pids of processes whose root directory is our chroot: only what we started there.
pids_in_root() {
  local p r
  for p in /proc/[0-9]*; do
    r=$(readlink "$p/root" 2>/dev/null) || continue
    [ "$r" = "$ROOT" ] && echo "${p#/proc/}"
  done
}

stop_processes_in_root() {
  local pids pid i
  [ -d "$ROOT" ] || return 0
  mapfile -t pids < <(pids_in_root)
  [ ${#pids[@]} -gt 0 ] || return 0
  for pid in "${pids[@]}"; do
    echo "fresh_machine: stopping pid $pid left in the root: $(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)"
    kill -TERM "$pid" 2>/dev/null
  done
  for ((i = 0; i < 100; i++)); do
    mapfile -t pids < <(pids_in_root)
    [ ${#pids[@]} -gt 0 ] || return 0
    sleep 0.1
  done
  for pid in "${pids[@]}"; do
    echo "fresh_machine: pid $pid did not stop within 10 s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null
  done
  sleep 1
}

mounted_under_root() {
  awk -v root="$ROOT" '$2 == root || index($2, root "/") == 1 { print $2 }' /proc/self/mounts
}

unmount_all() {
  local i m
  for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
    m=${MOUNTS[$i]}
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null ||
      echo "fresh_machine: could not unmount $m" >&2
  done
  MOUNTS=()
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_processes_in_root
  unmount_all
  if [ -d "$ROOT" ]; then
    if [ -n "$(mounted_under_root)" ]; then
      echo "fresh_machine: still mounted under $ROOT, so it is left in place:" >&2
      mounted_under_root | sed 's/^/  /' >&2
    elif [ "$KEEP" -eq 1 ]; then
      echo "fresh_machine: the root is kept in $ROOT (chroot $ROOT /bin/bash; remove it with rm -rf)"
    else
      echo "fresh_machine: removing $ROOT"
      rm -rf --one-file-system -- "$ROOT"
    fi
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mount_in_root() {  # mount_in_root TARGET MOUNT-ARGS...
  local target="$ROOT$1"
  shift
  mkdir -p -- "$target"
  mount "$@" "$target" || return 1
  MOUNTS+=("$target")
}

# root_cmd COMMAND: sets ROOT_CMD to the command line that runs the shell command COMMAND in the
# clone inside the root, with the clean environment of a root login on a fresh machine.
root_cmd() {
  ROOT_CMD=(chroot "$ROOT" /usr/bin/env -i HOME=/root USER=root LOGNAME=root SHELL=/bin/bash
    TERM="${TERM:-dumb}" LANG=C.UTF-8 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin)
  [ -n "$CCACHE_DIR_HOST" ] && ROOT_CMD+=(CCACHE_DIR=/var/cache/sluice-ccache)
  ROOT_CMD+=(/bin/bash -c "cd $CLONE_IN_ROOT && $1")
}

# ---- 1. the root ---------------------------------------------------------------------------
echo "fresh_machine: work dir $WORK, repository $REPO at $(git -C "$REPO" rev-parse --short HEAD)"
if [ -n "$(git -C "$REPO" status --porcelain --untracked-files=no)" ]; then
  echo "fresh_machine: note: $REPO has uncommitted changes; the clone has only the commits."
fi
for port in 6123 8081; do
  if [ $FREE_PORTS -eq 0 ] && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "fresh_machine: port $port is in use on this machine, and the chroot shares its network;" >&2
    echo "  stop what uses it, or run with --free-ports." >&2
    exit 2
  fi
done

if ! command -v debootstrap >/dev/null 2>&1; then
  run_step "install debootstrap (apt)" "$LOGS/debootstrap.log" \
    env DEBIAN_FRONTEND=noninteractive bash -c \
    'apt-get update -qq && apt-get install -y -qq debootstrap debian-archive-keyring gpgv' ||
    { summary; exit 1; }
fi

run_step "debootstrap bookworm minbase" "$LOGS/debootstrap.log" \
  debootstrap --variant=minbase bookworm "$ROOT" "$MIRROR" || { summary; exit 1; }

prepare_root() {
  mount_in_root /proc -t proc proc || return 1
  mount_in_root /sys -t sysfs sysfs || mount_in_root /sys --bind /sys || return 1
  # debootstrap makes the device nodes, except where it may not (in a container it binds /dev).
  if [ ! -c "$ROOT/dev/null" ]; then
    echo "the root has no /dev/null: binding /dev"
    mount_in_root /dev --bind /dev || return 1
  fi
  mount_in_root /dev/pts --bind /dev/pts || return 1
  if [ -n "$CCACHE_DIR_HOST" ]; then
    mount_in_root /var/cache/sluice-ccache --bind "$CCACHE_DIR_HOST" || return 1
  fi
  # Debian's standard /etc/hosts: localhost is ::1 as well as 127.0.0.1.
  printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\nff02::1\t\tip6-allnodes\nff02::2\t\tip6-allrouters\n' \
    >"$ROOT/etc/hosts" || return 1
  cat "$ROOT/etc/hosts"
  cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf" || return 1
  echo "apt sources: $(cat "$ROOT"/etc/apt/sources.list 2>/dev/null)"
  git clone -q --no-hardlinks "$REPO" "$ROOT$CLONE_IN_ROOT" || return 1
  local want
  want=$(git -C "$REPO" rev-parse HEAD)
  if [ "$(git -C "$ROOT$CLONE_IN_ROOT" rev-parse HEAD)" != "$want" ]; then
    git -C "$ROOT$CLONE_IN_ROOT" checkout -q --detach "$want" || return 1
  fi
  echo "cloned $REPO into $CLONE_IN_ROOT at $(git -C "$ROOT$CLONE_IN_ROOT" log --oneline -1)"
  if [ $FREE_PORTS -eq 1 ]; then
    local jm rest
    jm=$(free_port) && rest=$(free_port "$jm") || return 1
    sed -i -e "s/^jobmanager\.rpc\.port:.*/jobmanager.rpc.port: $jm/" \
      -e "s/^rest\.port:.*/rest.port: $rest/" "$ROOT$CLONE_IN_ROOT/conf/config.yaml" || return 1
    echo "--free-ports: conf/config.yaml of the clone:"
    grep -E '^(jobmanager\.rpc\.port|rest\.port):' "$ROOT$CLONE_IN_ROOT/conf/config.yaml"
  fi
  # shellcheck disable=SC2016  # expanded in the root
  root_cmd 'echo "chroot works: $(. /etc/os-release && echo "$PRETTY_NAME"), $(pwd)"'
  "${ROOT_CMD[@]}"
}

# A port that nothing on this machine accepts connections on (and not $1).
free_port() {
  local p i
  for ((i = 0; i < 100; i++)); do
    p=$((20000 + RANDOM % 30000))
    [ "$p" = "${1:-}" ] && continue
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && continue
    echo "$p"
    return 0
  done
  return 1
}

run_step "mount, /etc/hosts, clone" "$LOGS/prepare.log" prepare_root || { summary; exit 1; }

# ---- 2. the README's commands ------------------------------------------------------------------
root_cmd ./deploy/quickstart.sh
run_step "./deploy/quickstart.sh" "$LOGS/quickstart.log" \
  timeout --kill-after=30 "$QUICKSTART_TIMEOUT" "${ROOT_CMD[@]}"

# The quickstart leaves its cluster running: stop it as the quickstart says, check by the pids it
# recorded, and stop whatever else still runs in the root.
stop_cluster() {
  local f pid left=0
  root_cmd 'SLUICE_CONF_DIR=log/quickstart/conf ./deploy/stop-cluster.sh'
  "${ROOT_CMD[@]}"
  for f in "$ROOT"/tmp/sluice-*.pid; do
    [ -f "$f" ] || continue
    while IFS= read -r pid; do
      if [ -n "$pid" ] && [ "$(readlink "/proc/$pid/root" 2>/dev/null)" = "$ROOT" ]; then
        echo "pid $pid of $f is still running"
        left=1
      fi
    done <"$f"
  done
  stop_processes_in_root
  return $left
}
run_step "stop the quickstart's cluster" "$LOGS/stop.log" stop_cluster

root_cmd ./deploy/test.sh
run_step "./deploy/test.sh" "$LOGS/test.log" \
  timeout --kill-after=30 "$TEST_TIMEOUT" "${ROOT_CMD[@]}"

summary
[ "$FAILED" -eq 0 ]
