// The progress file of the keyed-state benchmark job (jobs/keyed_state.cc), shared by the job's
// sink, which writes it through a shared mapping at every record, and sluice-bench, which reads
// it while the job runs. One file per sink subtask; each field is written and read whole
// (aligned 8-byte stores and loads), so a reader sees every field old or new, never torn.
#pragma once

#include <cstdint>
#include <string>

namespace sluice::bench {

// The most source subtasks whose progress a sink keeps apart.
inline constexpr int kMaxProgressSources = 8;

struct ProgressRecord {
  int64_t attempt = 0;    // the sink subtask's attempt (0 until the job's first restart)
  int64_t records = 0;    // records this attempt has received
  int64_t opened_us = 0;  // wall-clock us at which this attempt opened the sink
  // Per source subtask: the newest due time (wall-clock us) among the records this attempt has
  // received from it; 0: none yet, or the source is not paced.
  int64_t max_due_us[kMaxProgressSources] = {};
};

inline std::string ProgressFilePath(const std::string& dir, int subtask) {
  return dir + "/sink-" + std::to_string(subtask);
}

}  // namespace sluice::bench
