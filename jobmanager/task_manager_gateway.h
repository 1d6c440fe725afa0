// TaskManagerGateway: what the JobManager asks of one TaskManager (deploy, cancel, release,
// probe, checkpoint trigger and notification, metrics, log files). The scheduler, the failover
// logic and the checkpoint coordinator talk to TaskManagers only through it, so they are tested in
// process against a fake (tests/unit/testing_task_manager_gateway.h); the gRPC implementation here
// is the only JobManager code that calls TaskExecutorService.
//
// Threads: every method blocks until the TaskManager answers or its deadline passes, and may be
// called from any thread. Callers never call it while holding the Dispatcher's lock.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "proto/taskmanager.pb.h"

namespace sluice {

class TaskManagerGateway {
 public:
  virtual ~TaskManagerGateway() = default;

  // Starts one task. An error when the TaskManager refuses it or does not answer within 10 s.
  virtual absl::Status DeployTask(const proto::TaskDeploymentDescriptor& tdd) = 0;
  // Cancels every task of the job there (5 s deadline).
  virtual absl::Status CancelJobTasks(const std::string& job_id) = 0;
  // Drops the job's tasks, partitions and loaded environment there (5 s deadline).
  virtual absl::Status ReleaseJob(const std::string& job_id) = 0;
  // A liveness probe: OK when the TaskManager answers within 1 s.
  virtual absl::Status Heartbeat(const std::string& jm_id) = 0;
  // Starts a checkpoint at the TaskManager's source tasks of the job's attempt (5 s deadline).
  virtual absl::Status TriggerCheckpoint(const proto::TriggerCheckpointRequest& req) = 0;
  // Tells the job's tasks there that a checkpoint completed or was aborted (5 s deadline).
  virtual absl::Status NotifyCheckpoint(const proto::NotifyCheckpointRequest& req) = 0;
  // Every metric of the TaskManager and its tasks now (1 s deadline).
  virtual absl::StatusOr<proto::MetricDump> QueryMetrics() {
    return absl::UnimplementedError("this TaskManager gateway reports no metrics");
  }
  // The TaskManager's log and standard output files (2 s deadline).
  virtual absl::StatusOr<proto::LogList> ListLogs() {
    return absl::UnimplementedError("this TaskManager gateway serves no log files");
  }
  // The end of one of them (at most 8 MiB; 10 s deadline). NotFound for a name not listed.
  virtual absl::StatusOr<proto::LogFileTail> ReadLog(const proto::ReadLogRequest& req) {
    (void)req;
    return absl::UnimplementedError("this TaskManager gateway serves no log files");
  }
};

// Makes the gateway to the TaskManager serving at `address` (host:port). Called once per
// registration.
using TaskManagerGatewayFactory =
    std::function<std::shared_ptr<TaskManagerGateway>(const std::string& address)>;

// The gateway over gRPC (TaskExecutorService), with the deadlines above; every call carries
// `jm_id` (kJobManagerIdMetadata) unless it is empty.
std::shared_ptr<TaskManagerGateway> NewGrpcTaskManagerGateway(const std::string& address,
                                                              std::string jm_id = "");

}  // namespace sluice
