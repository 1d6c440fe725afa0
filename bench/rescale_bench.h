// Figure 11 of sluice-bench (`sluice-bench rescale`): how long a rescale takes, on real daemons
// (a JobManager and TaskManagers of one slot each on 127.0.0.1, the JobManager's port picked at
// run time, every process started and stopped by its pid).
//
// The job is examples/sequence_count (a replayable source over K keys, a keyed count in three
// ValueStates per key, an exactly-once file sink), paced, with 1 s checkpoints. It is rescaled
// 1 -> 2 -> 4 -> 2 -> 1 (the whole job, as `sluice rescale -p N` does), each rescale requested
// once a checkpoint of the current parallelism has completed. Per rescale:
//   - to RUNNING: from the request until every task of the new parallelism reports RUNNING
//     (GetJob polled every 2 ms), the figure `sluice rescale` waits for;
//   - as the JobManager saw it: the request to the last task's RUNNING (its rescale status);
//   - restored: from the request until every new task has logged "restored from checkpoint"
//     (TaskManager logs, millisecond stamps): a task reports RUNNING before it restores.
// The heap and the RocksDB backend side by side, the same rescales each.
//
// Threads: everything runs on the caller's thread.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace sluice::bench {

struct RescaleBenchOptions {
  // One round and fewer keys. Default: false.
  bool quick = false;
  // Folder of sluice-jobmanager and sluice-taskmanager. Default: none (the caller sets it).
  std::string bin_dir;
  // Folder of libsequence_count.so. Default: none (the caller sets it).
  std::string examples_dir;
  // Distinct keys of the job (its state). Default: 100,000 (10,000 with quick).
  int64_t keys = 0;
  // Records per second over the whole job. Default: 20,000.
  double rate = 20'000;
  // Rounds of 1 -> 2 -> 4 -> 2 -> 1. Default: 3 (1 with quick).
  int rounds = 0;
  // key=value settings given to every daemon with -D. Default: none.
  std::vector<std::string> overrides;
};

// Runs figure 11 and prints it on standard output. Error (with the daemons' log tails) when a
// daemon does not start or a rescale does not complete within 60 s.
absl::Status RunRescaleFigure(const RescaleBenchOptions& options);

}  // namespace sluice::bench
