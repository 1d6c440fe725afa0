# What the benchmark scripts that start their own cluster share (sourced, not run): the pids of
# the daemons they started, stopping them by pid, and free ports on 127.0.0.1.
#   PIDS+=($!)      after starting a daemon in the background
#   stop_cluster    SIGTERM to each, SIGKILL to those still there after 10 s; PIDS is emptied
#   free_port       prints a port free on 127.0.0.1 now

PIDS=()
stop_cluster() {
  local pid
  for pid in ${PIDS[@]+"${PIDS[@]}"}; do kill -TERM "$pid" 2>/dev/null || true; done
  for _ in $(seq 100); do
    local alive=0
    for pid in ${PIDS[@]+"${PIDS[@]}"}; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for pid in ${PIDS[@]+"${PIDS[@]}"}; do kill -KILL "$pid" 2>/dev/null || true; done
  for pid in ${PIDS[@]+"${PIDS[@]}"}; do wait "$pid" 2>/dev/null || true; done
  PIDS=()
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
