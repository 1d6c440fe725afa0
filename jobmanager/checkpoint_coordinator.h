// CheckpointCoordinator: one job's checkpoints, as Flink's. It decides when checkpoint n is due
// (execution.checkpointing.interval and min-pause, a final checkpoint once every source has
// emitted all its records), collects the tasks' acknowledgements, hands a fully acknowledged
// checkpoint out to have its _metadata written, keeps the completed ones in its
// CompletedCheckpointStore with retention (state.checkpoints.num-retained) and reference counts
// of the incremental state's shared files, aborts expired or declined checkpoints and counts
// failures against execution.checkpointing.tolerable-failed-checkpoints. Its
// CheckpointStatsTracker keeps the statistics the REST API and the job's metrics show.
//
// It does no I/O under the lock and sends nothing: methods return what must be written, removed
// or sent, and the Dispatcher does it outside its lock (the static helpers below do the file
// work). Threads: not thread-safe; the Dispatcher calls it under its lock.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/config.h"
#include "jobmanager/checkpoint_stats.h"
#include "jobmanager/completed_checkpoint_store.h"
#include "proto/checkpoint.pb.h"
#include "proto/jobmanager.pb.h"
#include "proto/model.pb.h"
#include "proto/taskmanager.pb.h"

namespace sluice {

// (vertex id, subtask index).
using TaskKey = std::pair<int, int>;

struct CheckpointSettings {
  using Millis = std::chrono::milliseconds;
  Millis interval{0};              // Default: 0 (checkpointing off)
  Millis timeout{600000};          // Default: 10 min
  Millis min_pause{0};             // Default: 0
  bool exactly_once = true;        // Default: EXACTLY_ONCE
  int64_t tolerable_failures = 0;  // Default: 0
  size_t num_retained = 1;         // Default: 1
  int stats_history = 10;          // web.checkpoints.history. Default: 10
  std::string root;                // state.checkpoints.dir, or <tmp>/sluice-checkpoints
  std::string job_dir;             // <root>/<job id>

  // From execution.checkpointing.*, state.checkpoints.* and web.checkpoints.history.
  static CheckpointSettings FromConfig(const Configuration& conf, const std::string& job_id);
  bool enabled() const { return interval.count() > 0; }
};

class CheckpointCoordinator {
 public:
  using Clock = std::chrono::steady_clock;

  // What the coordinator needs to know of each task of the current attempt.
  struct TaskView {
    TaskKey key;
    bool source = false;
    proto::TaskState state = proto::TASK_DEPLOYING;
    std::string tm_id;
  };
  struct Trigger {
    int64_t id = 0;  // 0 for a drain
    int64_t timestamp_ms = 0;
    proto::CheckpointType type = proto::CHECKPOINT_TYPE_CHECKPOINT;
    std::set<std::string> task_managers;  // those running source tasks
  };
  // A savepoint asked for (`sluice savepoint`, `sluice stop`, REST).
  struct SavepointRequest {
    std::string request_id;
    std::string folder;  // the savepoint's own folder, created when it completes
    bool stop = false;   // sources stop at its barrier; the tasks end once it completed
    bool drain = false;  // with stop: the sources end their input first
    bool cancel_job = false;
  };
  // What became of a savepoint request.
  struct SavepointResult {
    bool done = false;
    std::string location;  // completed: its folder
    std::string failure;   // failed: why
    bool cancel_job = false;
  };
  // A checkpoint every task acknowledged, to be written to `dir`. A savepoint's state files,
  // written under the job's folder, move into `dir` (savepoints.h).
  struct ToWrite {
    proto::CheckpointMetadata metadata;
    std::string dir;
    std::string job_dir;
  };
  // A checkpoint that ended without completing: its folder and the shared files stored for it
  // alone are to be removed, the tasks told; `job_failure` is set when the failures now exceed
  // the tolerable number and the job must fail over with that cause.
  struct Aborted {
    int64_t id = 0;
    std::string dir;
    std::vector<std::string> shared_files;  // relative to the job's checkpoint folder
    std::optional<std::string> job_failure;
  };
  // What follows a _metadata write: nothing (`stale`: the checkpoint was aborted meanwhile), an
  // abort (the write failed), or a completion whose subsumed files are to be removed.
  struct WriteOutcome {
    bool stale = false;
    std::optional<Aborted> aborted;
    bool completed = false;
    // Tasks are told of the completion: always but for a savepoint that does not stop the job
    // (as in Flink, it commits no side effects: its two-phase transactions commit with the next
    // checkpoint).
    bool notify = false;
    // A savepoint completed that asked for the job to be cancelled.
    bool cancel_job = false;
    std::vector<std::string> shared_to_remove;
    std::set<std::string> keep;  // folders under the job's folder still named by a checkpoint
  };

  CheckpointCoordinator(std::string job_id, CheckpointSettings settings,
                        std::unique_ptr<CompletedCheckpointStore> store,
                        std::unique_ptr<CheckpointIdCounter> ids, Clock::time_point now);

  const CheckpointSettings& settings() const { return settings_; }
  bool enabled() const { return settings_.enabled(); }

  // The job starts from a retained checkpoint (`sluice run -s`) in `dir` until one of its own
  // completes; numbering continues after its id (or from where it is, when that is further).
  absl::Status SetRestoreFrom(proto::CheckpointMetadata checkpoint, std::string dir);
  // What a (re)deployment restores from: the newest completed checkpoint, else the one the job
  // was submitted with; null for a fresh start. `dir` gets the folder its file names are
  // relative to.
  const proto::CheckpointMetadata* RestoreSource(std::string* dir) const;

  // A source task emitted all its records (the final checkpoint becomes due once all have).
  void OnEndOfData(const TaskKey& key) { end_of_data_.insert(key); }
  // A task finished: a pending checkpoint takes its state from the newest completed one.
  // Returns true when the pending checkpoint was waiting for it.
  bool OnTaskFinished(const TaskKey& key);
  // A new attempt of every task is deployed: pending work and end-of-data marks are dropped.
  void OnRestart(Clock::time_point now);

  // Starts checkpoint n when one is due and every task runs (or has finished); returns the
  // TaskManagers to trigger. Call only while the job is RUNNING.
  std::optional<Trigger> MaybeTrigger(const std::vector<TaskView>& tasks, Clock::time_point now);
  // A task stored its state for checkpoint `id`; the JobManager received it `now`. False
  // (ignored) when that checkpoint is not pending or the task was not awaited.
  bool Acknowledge(const proto::AcknowledgeCheckpointRequest& ack,
                   Clock::time_point now = Clock::now());
  bool IsPending(int64_t id) const { return pending_ && pending_->id == id; }
  // A checkpoint is pending and every task has acknowledged it.
  bool AllAcknowledged() const { return pending_ && pending_->waiting.empty(); }
  bool writing() const { return pending_ && pending_->writing; }

  // Ends the pending checkpoint (unless its _metadata is being written). `count_failure`: it
  // failed (declined, expired, not triggered) rather than being ended with the job.
  std::optional<Aborted> AbortPending(const std::string& reason, bool count_failure,
                                      Clock::time_point now);
  // Aborts the pending checkpoint when it is older than execution.checkpointing.timeout; fails a
  // savepoint request that has not started within it.
  std::optional<Aborted> ExpireOverdue(Clock::time_point now);
  // When every task has acknowledged: marks the checkpoint as being written and returns it.
  std::optional<ToWrite> TakeAcknowledged(const proto::JobGraph& graph);
  // The _metadata of `metadata` was written (or not: `written`).
  WriteOutcome OnMetadataWritten(const proto::CheckpointMetadata& metadata,
                                 const absl::Status& written, Clock::time_point now);

  // ---- Savepoints ----
  // Queues a savepoint: it starts once no checkpoint is pending (a drain first ends the
  // sources' input, and the final checkpoint is the savepoint). FailedPrecondition when another
  // is under way or checkpointing is off.
  absl::Status RequestSavepoint(SavepointRequest request);
  // The request's outcome so far; NotFound for an unknown id.
  absl::StatusOr<SavepointResult> GetSavepoint(const std::string& request_id) const;
  // The job ended or restarts, or a drain could not be sent: a savepoint asked for and not
  // pending fails with `reason`.
  void FailSavepointRequest(const std::string& reason);
  // A stop-with-savepoint completed (its tasks are ending at it), and its checkpoint id.
  bool stopped() const { return stopped_; }
  int64_t stopped_id() const { return stopped_id_; }
  // A savepoint was asked for and has not ended yet (queued, draining or pending).
  bool savepoint_under_way() const {
    return savepoint_request_.has_value() || (pending_ && pending_->savepoint.has_value());
  }

  // A (re)deployment restores from RestoreSource() at `timestamp_ms`: the statistics note it.
  void OnRestored(int64_t timestamp_ms);
  // The job's checkpoint statistics (Flink's CheckpointStatsTracker).
  const CheckpointStatsTracker& stats() const { return stats_; }
  bool in_progress() const { return pending_.has_value(); }
  int64_t completed_count() const { return completed_count_; }
  int64_t failed_count() const { return failed_count_; }
  const proto::CheckpointMetadata* latest() const { return store_->Latest(); }
  // The folder of the newest completed checkpoint ("" when none).
  std::string LatestPath() const;

  // ---- File work, done outside the lock ----
  // Reads and checks a retained checkpoint (a chk-<n> folder or its _metadata) for a new job:
  // its metadata, that it fits `graph`, every state file's size and checksum, and that `graph`
  // has an operator for the state of each operator that has some (CheckCheckpointFits and
  // CheckStateFits, jobmanager/state_assignment.h; with `allow_non_restored_state` the state of
  // the others is left out). `dir` gets the folder
  // its file names are relative to. InvalidArgument or DataLoss naming the file or operator.
  static absl::StatusOr<proto::CheckpointMetadata> LoadForRestore(const std::string& path,
                                                                  const proto::JobGraph& graph,
                                                                  bool allow_non_restored_state,
                                                                  std::string* dir);
  // Checks that every shared file the checkpoint names exists, then writes its _metadata.
  // An error names the missing file or the folder.
  static absl::Status WriteMetadataFile(const ToWrite& checkpoint);
  // Removes an aborted checkpoint's folder and its own shared files.
  static void Discard(const std::string& job_dir, const Aborted& aborted);
  // Removes the shared files no retained checkpoint names and the chk-<n> folders older than
  // `completed_id` that none keeps.
  static void DiscardSubsumed(const std::string& job_dir, int64_t completed_id,
                              const WriteOutcome& outcome);

 private:
  struct Pending {
    int64_t id = 0;
    std::optional<SavepointRequest> savepoint;
    int64_t timestamp_ms = 0;
    Clock::time_point started;
    std::set<TaskKey> waiting;  // tasks yet to acknowledge
    std::vector<proto::StateHandle> handles;
    bool writing = false;  // every task acknowledged; _metadata being written
    int64_t max_sync_us = 0, max_async_us = 0;
  };

  // Returns the bytes of the state carried forward.
  int64_t CarryForward(const TaskKey& key, Pending& p) const;
  // `now` as milliseconds since the epoch, on the pending checkpoint's trigger timestamp plus the
  // steady time since: the statistics' times then agree with its durations to the millisecond.
  static int64_t WallMillis(const Pending& p, Clock::time_point now);
  std::set<std::string> SharedFilesOfRetained() const;

  const std::string job_id_;
  const CheckpointSettings settings_;
  std::unique_ptr<CompletedCheckpointStore> store_;
  std::unique_ptr<CheckpointIdCounter> ids_;
  std::optional<Pending> pending_;
  Clock::time_point last_trigger_, last_end_;
  // Shared files that only checkpoints dropped at the last completion named: removed at the
  // next completion unless named again. The grace of one checkpoint covers a task that builds
  // on an older checkpoint's files before it hears of a newer one.
  std::set<std::string> shared_unreferenced_;
  int64_t consecutive_failures_ = 0;
  int64_t completed_count_ = 0, failed_count_ = 0;
  CheckpointStatsTracker stats_;
  // Source tasks that emitted all their records, and whether the final checkpoint started.
  std::set<TaskKey> end_of_data_;
  bool final_triggered_ = false;
  // The savepoint asked for (until it completes or fails), whether its drain was sent, and the
  // outcomes of every request (few: one at a time, kept while the job is).
  std::optional<SavepointRequest> savepoint_request_;
  Clock::time_point savepoint_requested_;
  bool drain_sent_ = false;
  // A stop-with-savepoint completed: the job takes no more checkpoints.
  bool stopped_ = false;
  int64_t stopped_id_ = 0;
  std::map<std::string, SavepointResult> savepoint_results_;
  void EndSavepoint(const std::string& request_id, std::string location, std::string failure);
  std::optional<proto::CheckpointMetadata> restore_from_;
  std::string restore_dir_;
};

}  // namespace sluice
