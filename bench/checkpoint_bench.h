// Figures 4 and 5 of sluice-bench (`sluice-bench checkpoints`), on real daemons: a JobManager
// and TaskManagers on 127.0.0.1, the JobManager's port picked at run time, every process started
// and stopped by its pid. The job is bench/jobs/keyed_state.cc (a count and a sum per key in two
// ValueStates; with --stateless, a map chained between source and sink instead), whose sinks
// publish their progress in files the benchmark reads while it runs.
//
//   4. Checkpoint overhead: the job's throughput without and with checkpoints, runs alternating
//      A B A B ..., the median of the per-round ratios; checkpoint durations (from the
//      JobManager's log) and sizes (the chk-<n> folders' files).
//   5. Recovery: kill -9 of a TaskManager running the job, a spare TaskManager ready. The
//      TaskManager's loss in the JobManager's log, the job RUNNING again (GetJob), and its output
//      caught up with where it would have been without the failure, each timed from the kill.
//
// Threads: everything runs on the caller's thread.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace sluice::bench {

struct CheckpointBenchOptions {
  // Two rounds of figure 4 and one kill in figure 5. Default: false.
  bool quick = false;
  // Folder of sluice-jobmanager and sluice-taskmanager. Default: none (the caller sets it).
  std::string bin_dir;
  // Folder of libbench_keyed_state.so. Default: none (the caller sets it).
  std::string lib_dir;
  // Distinct keys of the job; each has two ValueStates. Default: 100,000.
  int64_t keys = 100'000;
  // The job without keyed state: source -> map -> sink chained, the stateless Nexmark queries'
  // shape (bench/jobs/keyed_state.cc --stateless). Default: false.
  bool stateless = false;
  // execution.checkpointing.interval of the checkpointed runs. Default: 1s.
  std::string interval = "1s";
  // Figure 4: rounds of (without, with checkpoints). Default: 10 (2 with quick).
  int rounds = 0;
  // Figure 4: seconds from all tasks RUNNING to the start of the measurement. Default: 0.5.
  double warmup_s = 0;
  // Figure 4: seconds measured per run; a whole number of checkpoint intervals, so that every
  // B run holds as many checkpoints. Default: 2.
  double window_s = 0;
  // Figure 5: TaskManagers killed, one after the other. Default: 3 (1 with quick).
  int kills = 0;
  // Figure 5: records per second of the paced source. Default: 0, meaning a third of figure 4's
  // median rate without checkpoints (or of a short calibration run when figure 4 is not run),
  // so that the job can catch up at about twice that rate even on a busy machine.
  double rate = 0;
  // Figure 5: restart-strategy.fixed-delay.delay. Default: 0ms.
  std::string restart_delay = "0ms";
  // Figure 5: output lag (ms) at or below which the job has caught up. Default: 100.
  int64_t catch_up_lag_ms = 100;
  // Figure 5: milliseconds after a checkpoint completed at which the TaskManager is killed.
  // Default: 500.
  int64_t kill_phase_ms = 500;
  // key=value settings given to every daemon with -D. Default: none.
  std::vector<std::string> overrides;
  // Keep the temporary folder (daemon logs, checkpoints) and print its path. Default: false.
  bool keep_dir = false;
  // Figure 5: print the output lag every 100 ms from each kill until caught up. Default: false.
  bool trace_recovery = false;
};

// Runs figure 4 and/or 5 and prints them on standard output. Error (with the daemons' log tails
// where they help) when a daemon does not start, a job does not reach RUNNING, or the job does
// not recover within 60 s of a kill.
absl::Status RunCheckpointFigures(const CheckpointBenchOptions& options, bool figure4,
                                  bool figure5);

}  // namespace sluice::bench
