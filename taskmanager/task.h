// Task: one parallel subtask of a job vertex, run on a thread of its own.
//
// Lifecycle: the TaskManager creates the task with its deployment descriptor and result
// partitions (already registered, so consumers can find them), then Start()s it. The thread
// loads the job (library and environment, shared by the job's tasks in this TaskManager),
// builds the operator chain, connects the input gate, and runs: a source chain until its input
// ends, any other chain until every input channel has delivered end-of-partition. It then ends
// the input of the chain, flushes, sends end-of-partition downstream and reports FINISHED.
// A user exception reports FAILED with the operator's name and message; Cancel() (any thread)
// makes blocked waits give up promptly and reports CANCELED.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "proto/taskmanager.pb.h"
#include "sluice/sluice.h"
#include "taskmanager/network.h"

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
  // Reports a task state change to the JobManager.
  std::function<void(const proto::TaskDeploymentDescriptor&, const std::string& state,
                     const std::string& failure)>
      report;
  std::chrono::milliseconds buffer_timeout{5};
};

class Task final : public TaskRuntime {
 public:
  Task(proto::TaskDeploymentDescriptor tdd, std::vector<std::shared_ptr<ResultPartition>> outputs,
       TaskServices services);
  ~Task() override;

  void Start();
  // Asks the task to stop; returns at once.
  void Cancel();
  bool done() const { return done_.load(); }
  void Join();
  const proto::TaskDeploymentDescriptor& descriptor() const { return tdd_; }

  // TaskRuntime
  const TaskInfo& info() const override { return info_; }
  bool cancelled() const override { return cancelled_.load(std::memory_order_relaxed); }
  void print_line(std::string_view line) override;
  void flush_outputs() override { FlushIdleOutputs(); }

 private:
  void Run();
  // Runs the chain; returns normally when finished. Throws on failure or cancellation.
  void Invoke();
  void FlushIdleOutputs();

  proto::TaskDeploymentDescriptor tdd_;
  std::vector<std::shared_ptr<ResultPartition>> outputs_;
  TaskServices services_;
  TaskInfo info_;
  std::atomic<bool> cancelled_{false};
  std::atomic<bool> done_{false};
  std::mutex chain_mu_;
  ChainTask* chain_ = nullptr;  // guarded by chain_mu_ for Cancel()
  std::thread thread_;
};

}  // namespace sluice
