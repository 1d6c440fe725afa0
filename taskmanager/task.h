// Task: one parallel subtask of a job vertex, run on a thread of its own.
//
// Lifecycle: the TaskManager creates the task with its deployment descriptor and result
// partitions (already registered, so consumers can find them), then Start()s it. The thread
// loads the job (library and environment, shared by the job's tasks in this TaskManager),
// builds the operator chain, restores its state when the descriptor names a checkpoint,
// connects the input gate, and runs: a source chain until its input ends, any other chain until
// every input channel has delivered end-of-data. It then ends the input of the chain and sends
// end-of-data downstream; with checkpointing on it stays until a checkpoint taken after that
// has completed (so two-phase sinks commit their last output), then sends end-of-partition and
// reports FINISHED. A user exception reports FAILED with the operator's name and message;
// Cancel() (any thread) makes blocked waits give up promptly and reports CANCELED.
//
// Checkpoints (asynchronous barrier snapshotting): a source task starts checkpoint n when the
// TaskManager triggers it; any other task when barrier n has arrived on every input channel
// (EXACTLY_ONCE blocks a channel from its barrier until then; AT_LEAST_ONCE does not). The task
// snapshots its chain on its own thread, sends barrier n downstream, and hands the bytes to its
// snapshot thread, which writes the state file and acknowledges to the JobManager.
#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "proto/jobmanager.pb.h"
#include "proto/taskmanager.pb.h"
#include "sluice/sluice.h"
#include "taskmanager/network.h"
#include "taskmanager/state/state_backend.h"
#include "taskmanager/task_metrics.h"

namespace sluice {

// The job as loaded in one TaskManager: its library's environment.
struct LoadedJob {
  std::shared_ptr<const StreamExecutionEnvironment> env;
};

// What a task needs from its TaskManager.
struct TaskServices {
  PartitionRegistry* registry = nullptr;
  ChannelCache* channels = nullptr;
  size_t credits = 4;
  // Loads (or finds loaded) the job of a descriptor. May block while the library downloads.
  std::function<absl::StatusOr<LoadedJob>(const proto::TaskDeploymentDescriptor&)> load_job;
  // Reports a task state change (or a source's end of data) to the JobManager.
  std::function<void(proto::TaskStateUpdate)> report;
  // Sends a checkpoint acknowledgement or refusal to the JobManager.
  std::function<void(const proto::AcknowledgeCheckpointRequest&)> acknowledge;
  std::function<void(const proto::DeclineCheckpointRequest&)> decline;
  std::chrono::milliseconds buffer_timeout{5};
  // The keyed state backend of the task's keyed operators (state.backend.*).
  StateBackendOptions state_backend;
  // The TaskManager's metric group, which the task's groups go under (null: no metrics).
  metrics::MetricGroup* metrics = nullptr;
};

// task_label() of the task a descriptor deploys (its vertex's name and parallelism); a vertex the
// descriptor's graph lacks is named by its id.
std::string TaskLabel(const proto::TaskDeploymentDescriptor& tdd);

class Task final : public internal::TaskRuntime {
 public:
  Task(proto::TaskDeploymentDescriptor tdd, std::vector<std::shared_ptr<ResultPartition>> outputs,
       TaskServices services);
  ~Task() override;

  // Start() and Join() must be ordered by the owner (the TaskManager starts a task under the
  // lock it later takes to pick the tasks to join).
  void Start();
  // Asks the task to stop; returns at once.
  void Cancel() ABSL_LOCKS_EXCLUDED(chain_mu_);
  bool done() const { return done_.load(); }

  void Join();
  const proto::TaskDeploymentDescriptor& descriptor() const { return tdd_; }
  // "<task name> (<subtask>/<parallelism>) of job <id>": how log lines name this task.
  const std::string& label() const { return label_; }

  // TaskRuntime
  const TaskInfo& info() const override { return info_; }
  bool cancelled() const override { return cancelled_.load(std::memory_order_relaxed); }
  void print_line(std::string_view line) override;
  void flush_outputs() override { FlushIdleOutputs(); }
  const std::atomic<bool>& mail_flag() const override { return mail_; }
  void process_mail() override ABSL_LOCKS_EXCLUDED(mail_mu_);
  void post_mail(int node_id, std::function<void()> mail) override ABSL_LOCKS_EXCLUDED(mail_mu_);
  void yield_to_mail(int node_id, int64_t deadline_ms) override ABSL_LOCKS_EXCLUDED(mail_mu_);
  void request_processing_time_callback(int64_t time_ms) override;
  std::unique_ptr<internal::KeyedStateBackend> create_keyed_state_backend(
      int node_id, const KeyGroupRange& range) override;
  internal::OperatorCounters* operator_counters(int node_id) override;
  internal::SingleWriterCounter* edge_records_out(size_t output) override;

  // From other threads: start checkpoint `id` of `type` (sources only), or learn that it
  // completed or was aborted. A DRAIN trigger (no id) ends a source's input now.
  void TriggerCheckpoint(int64_t id, int64_t timestamp_ms,
                         proto::CheckpointType type = proto::CHECKPOINT_TYPE_CHECKPOINT)
      ABSL_LOCKS_EXCLUDED(mail_mu_, chain_mu_);
  void NotifyCheckpoint(int64_t id, bool aborted) ABSL_LOCKS_EXCLUDED(mail_mu_);

 private:
  class SnapshotWriter;
  class ProcessingTimer;
  void Run();
  // Runs the chain; returns normally when finished. Throws on failure or cancellation.
  void Invoke() ABSL_LOCKS_EXCLUDED(chain_mu_);
  void FlushIdleOutputs();
  void RestoreState(internal::ChainTask& chain);
  void ProcessInputs(InputGate& gate, internal::ChainTask& chain);
  void OnBarrier(InputGate& gate, int channel, int64_t id, int64_t timestamp_ms,
                 proto::CheckpointType type);
  void MaybeCompleteAlignment(InputGate& gate);
  // What a task measures of its part of a checkpoint, sent with its acknowledgement.
  struct CheckpointTiming {
    int64_t start_delay_ms = 0;  // trigger timestamp to the first barrier (or the trigger)
    int64_t alignment_us = 0;    // first barrier to the last (EXACTLY_ONCE only)
    int64_t sync_us = 0;         // the synchronous snapshot
  };
  // Snapshots the chain, sends barrier `id` downstream and queues the state for writing.
  void PerformCheckpoint(int64_t id, int64_t timestamp_ms, CheckpointTiming timing,
                         proto::CheckpointType type);
  // One round of mail; throws TaskCancelled once a stop-with-savepoint has completed.
  void ProcessMailOnce(internal::ChainTask& chain) ABSL_LOCKS_EXCLUDED(mail_mu_);
  // Waits up to 50 ms for mail (or cancellation).
  void WaitForMail() ABSL_LOCKS_EXCLUDED(mail_mu_);
  // Event time: a channel's watermark or idleness changed; recomputes the task's input
  // watermark (the minimum over channels that are not idle) and hands any advance to the chain.
  void OnWatermark(internal::ChainTask& chain, int channel, int64_t watermark);
  void OnWatermarkStatus(internal::ChainTask& chain, int channel, bool idle);
  void UpdateInputWatermark(internal::ChainTask& chain);
  // Raises the mail flag (from the processing-time timer's thread).
  void WakeUp() ABSL_LOCKS_EXCLUDED(mail_mu_);
  void EndInput(internal::ChainTask& chain);
  // With checkpointing on: processes mail until a checkpoint taken after the end of input has
  // completed; after a stop-with-savepoint barrier, until that savepoint has completed.
  void AwaitFinalCheckpoint() ABSL_LOCKS_EXCLUDED(mail_mu_);
  bool checkpointing() const { return !tdd_.checkpoint_dir().empty(); }

  proto::TaskDeploymentDescriptor tdd_;
  std::vector<std::shared_ptr<ResultPartition>> outputs_;
  TaskServices services_;
  TaskInfo info_;
  std::string label_;  // task_label(info_)
  std::atomic<bool> cancelled_{false};
  std::atomic<bool> done_{false};
  absl::Mutex chain_mu_;
  internal::ChainTask* chain_ ABSL_GUARDED_BY(chain_mu_) = nullptr;  // for Cancel()
  std::thread thread_;

  // Mail from other threads; mail_ is set (under mail_mu_) while any is waiting, and read
  // without the lock between records.
  absl::Mutex mail_mu_;
  std::atomic<bool> mail_{false};
  int64_t trigger_id_ ABSL_GUARDED_BY(mail_mu_) = 0;
  int64_t trigger_ts_ ABSL_GUARDED_BY(mail_mu_) = 0;
  proto::CheckpointType trigger_type_ ABSL_GUARDED_BY(mail_mu_) = proto::CHECKPOINT_TYPE_CHECKPOINT;
  // stop --drain: the source's input ends now (also before its chain is built).
  std::atomic<bool> drain_{false};
  int64_t completed_id_ ABSL_GUARDED_BY(mail_mu_) = 0;
  // The newest checkpoint the JobManager aborted.
  int64_t aborted_id_ ABSL_GUARDED_BY(mail_mu_) = 0;
  // Operator mail (TaskRuntime::post_mail), oldest first.
  struct OperatorMail {
    int node_id;
    std::function<void()> run;
  };
  std::deque<OperatorMail> operator_mail_ ABSL_GUARDED_BY(mail_mu_);

  // Checkpoint state, task thread only.
  internal::ChainTask* running_chain_ = nullptr;
  int64_t last_checkpoint_id_ = 0;  // the newest checkpoint this task has snapshotted
  int64_t notified_id_ = 0;         // the newest completion passed to the chain
  int64_t given_up_id_ = 0;         // barriers up to this id are ignored (aborted checkpoints)
  InputGate* gate_ = nullptr;       // while ProcessInputs runs
  bool input_ended_ = false;
  int64_t final_checkpoint_id_ = 0;  // the first checkpoint after the end of input
  // Stop-with-savepoint: the savepoint this task took (0: none, or it was aborted). While set,
  // a source emits nothing, processing-time callbacks wait and ending inputs end nothing;
  // `stopped_` once it completed: the task ends FINISHED without ending its input.
  int64_t stop_id_ = 0;
  bool stopped_ = false;
  // The type of the snapshot being taken (the backends write savepoints in canonical form).
  proto::CheckpointType snapshot_type_ = proto::CHECKPOINT_TYPE_CHECKPOINT;
  struct Alignment {
    int64_t id = 0;
    int64_t timestamp_ms = 0;
    std::vector<char> seen;
    std::chrono::steady_clock::time_point first_barrier;  // of checkpoint `id`
    int64_t start_delay_ms = 0;                           // trigger timestamp to first_barrier
    proto::CheckpointType type = proto::CHECKPOINT_TYPE_CHECKPOINT;
  } align_;
  std::vector<char> data_ended_;  // by input channel: end-of-data received
  size_t data_ended_count_ = 0;
  std::unique_ptr<SnapshotWriter> writer_;

  // Event time, task thread only.
  std::vector<int64_t> channel_watermark_;  // by input channel
  std::vector<char> channel_idle_;
  int64_t input_watermark_ = kMinWatermark;
  bool input_idle_ = false;
  int64_t callback_at_ = kNoTimestamp;  // the processing-time callback asked for
  std::unique_ptr<ProcessingTimer> timer_;
  // The task's metrics (registered while it runs); counters() is null with metrics off.
  std::unique_ptr<TaskMetrics> metrics_;
  TaskCounters* counters_ = nullptr;
};

}  // namespace sluice
