// CheckpointStatsTracker: the statistics of one job's checkpoints, as Flink's tracker keeps them
// for its REST API and metrics: counts, a summary over the completed checkpoints, the latest
// completed, failed and restored ones, and a bounded history (newest first) with each
// checkpoint's figures per vertex and per subtask.
//
// The CheckpointCoordinator feeds it (trigger, acknowledgements, finished tasks, completion,
// failure); the Dispatcher reports restores. Every time is given by the caller (milliseconds
// since the epoch), so the figures are exactly what was reported.
// Threads: not thread-safe; it lives in the coordinator, under the Dispatcher's lock. Readers
// take a copy (snapshot()).
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace sluice {

enum class CheckpointStatus { kInProgress, kCompleted, kFailed };
// Flink's names: IN_PROGRESS, COMPLETED, FAILED.
const char* CheckpointStatusName(CheckpointStatus status);

// One subtask's part of a checkpoint. Durations in milliseconds.
struct SubtaskCheckpointStats {
  bool acknowledged = false;
  // A task that had finished: it stored nothing, its state is that of an earlier checkpoint.
  bool finished = false;
  int64_t ack_timestamp = 0;      // when the JobManager received the acknowledgement
  int64_t checkpointed_size = 0;  // bytes stored for this checkpoint
  int64_t state_size = 0;         // bytes of all its state (earlier checkpoints' files included)
  int64_t sync_duration = 0;
  int64_t async_duration = 0;
  int64_t alignment_duration = 0;
  int64_t start_delay = 0;
};

// One vertex's part: its subtasks by index.
struct TaskCheckpointStats {
  std::vector<SubtaskCheckpointStats> subtasks;

  int num_acknowledged() const;
  int64_t latest_ack_timestamp() const;  // -1 before the first acknowledgement
  int64_t checkpointed_size() const;     // sums over acknowledged subtasks
  int64_t state_size() const;
};

// Summary statistics of a figure (Flink's StatsSummary: all 0 before the first value; the
// average is the integer mean).
struct StatsSummary {
  int64_t count = 0, sum = 0, min = 0, max = 0;

  void Add(int64_t value);
  int64_t avg() const { return count == 0 ? 0 : sum / count; }
};

struct CheckpointStats {
  int64_t id = 0;
  bool is_savepoint = false;
  CheckpointStatus status = CheckpointStatus::kInProgress;
  int64_t trigger_timestamp = 0;
  std::map<int, TaskCheckpointStats> tasks;  // by vertex id
  // Completed: when, and the duration from trigger to completion; external_path is its folder,
  // `discarded` once a newer one subsumed it and its folder was removed.
  int64_t completion_timestamp = 0;
  int64_t completed_duration = 0;
  std::string external_path;
  bool discarded = false;
  // Failed (declined, expired, or ended by the job's failure or end).
  int64_t failure_timestamp = 0;
  std::string failure_message;

  int num_subtasks() const;
  int num_acknowledged() const;
  int64_t latest_ack_timestamp() const;  // -1 before the first acknowledgement
  int64_t checkpointed_size() const;
  int64_t state_size() const;
  // Completed: trigger to completion; otherwise trigger to the latest acknowledgement (-1
  // before the first).
  int64_t end_to_end_duration() const;
  // The longest alignment of any subtask.
  int64_t alignment_duration() const;
};

struct RestoredCheckpointStats {
  int64_t id = 0;
  int64_t restore_timestamp = 0;
  bool is_savepoint = false;
  std::string external_path;
};

// What the tracker knows, as readers see it.
struct CheckpointStatsSnapshot {
  struct Counts {
    int64_t restored = 0, total = 0, in_progress = 0, completed = 0, failed = 0;
  } counts;
  // Over every completed checkpoint.
  struct Summary {
    StatsSummary checkpointed_size, state_size, end_to_end_duration, alignment_duration;
  } summary;
  // The newest completed checkpoint (savepoints aside), the newest completed savepoint, and the
  // newest checkpoint or savepoint that failed.
  std::optional<CheckpointStats> latest_completed, latest_savepoint, latest_failed;
  std::optional<RestoredCheckpointStats> latest_restored;
  std::deque<CheckpointStats> history;  // newest first, at most the tracker's history size

  // The checkpoint `id` in the history; null when it is not (or no longer) there.
  const CheckpointStats* Find(int64_t id) const;
};

class CheckpointStatsTracker {
 public:
  // `history_size`: checkpoints kept in the history (web.checkpoints.history; at least 1).
  explicit CheckpointStatsTracker(int history_size);

  // Checkpoint `id` was triggered; `subtasks_per_vertex` has, by vertex id, the number of its
  // subtasks. Reporting an id twice is ignored.
  void ReportPending(int64_t id, int64_t trigger_timestamp,
                     const std::map<int, int>& subtasks_per_vertex, bool is_savepoint = false);
  // A subtask acknowledged checkpoint `id`. Ignored unless the checkpoint is in progress and
  // the subtask is one of it.
  void ReportAcknowledged(int64_t id, int vertex, int subtask, const SubtaskCheckpointStats& stats);
  // A subtask had finished and counts as acknowledged with the state it had in an earlier
  // checkpoint (`state_size` bytes), storing nothing now.
  void ReportFinishedSubtask(int64_t id, int vertex, int subtask, int64_t timestamp,
                             int64_t state_size);
  // Checkpoint `id` completed at `completion_timestamp`, `duration` after its trigger, into
  // `external_path`.
  void ReportCompleted(int64_t id, int64_t completion_timestamp, int64_t duration,
                       const std::string& external_path);
  // Checkpoint `id` ended without completing.
  void ReportFailed(int64_t id, int64_t failure_timestamp, const std::string& message);
  // A completed checkpoint was subsumed and its files removed.
  void ReportDiscarded(int64_t id);
  // A (re)deployment restored checkpoint `id` from `external_path`.
  void ReportRestored(int64_t id, int64_t restore_timestamp, const std::string& external_path,
                      bool is_savepoint = false);

  const CheckpointStatsSnapshot& snapshot() const { return stats_; }
  // The newest completed checkpoint, if any (for the job's metrics).
  const CheckpointStats* latest_completed() const {
    return stats_.latest_completed ? &*stats_.latest_completed : nullptr;
  }
  int history_size() const { return history_size_; }

 private:
  CheckpointStats* FindInProgress(int64_t id);
  SubtaskCheckpointStats* FindSubtask(int64_t id, int vertex, int subtask);
  // Drops the oldest ended checkpoints beyond the history size (one in progress stays, so
  // every reported checkpoint ends in the counts).
  void TrimHistory();

  const int history_size_;
  CheckpointStatsSnapshot stats_;
};

}  // namespace sluice
