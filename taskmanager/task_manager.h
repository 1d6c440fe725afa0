// TaskManager: offers task slots to the JobManager and runs the tasks deployed into them.
//
// Owns one gRPC server (TaskExecutorService for control, DataExchangeService for data) on
// taskmanager.bind-host:taskmanager.rpc.port, a partition registry, and the running tasks.
// Threads: the gRPC server's, one per task, one per remote input channel, a connection thread
// that registers with the JobManager and sends heartbeats every heartbeat.interval, and a
// reporter thread that sends task state changes in order. When the JobManager stays silent for
// heartbeat.timeout, the TaskManager cancels its tasks and registers again.
// Job libraries are downloaded from the JobManager once per TaskManager and cached by SHA-256.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/config.h"

namespace sluice {

class TaskManagerImpl;

class TaskManager {
 public:
  // Binds the server and starts connecting to the JobManager at
  // jobmanager.rpc.address:jobmanager.rpc.port. Fails if the port cannot be bound.
  static absl::StatusOr<std::unique_ptr<TaskManager>> Start(const Configuration& conf);
  ~TaskManager();

  const std::string& id() const;
  // host:port where the JobManager and other TaskManagers reach this one.
  std::string address() const;
  // Cancels all tasks, stops the server and all threads.
  void Shutdown();
  // Follows another JobManager (host:port), the new leader in high-availability mode: the
  // TaskManager drops its tasks (the old leader's) and registers there. Any thread.
  void SetJobManagerAddress(const std::string& address);
  // Number of tasks whose threads are still running.
  int running_tasks() const;

 private:
  explicit TaskManager(std::unique_ptr<TaskManagerImpl> impl);
  std::unique_ptr<TaskManagerImpl> impl_;
};

}  // namespace sluice
