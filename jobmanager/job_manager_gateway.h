// JobManagerGateway: everything the JobManager offers, as one C++ interface (Flink's
// RestfulGateway and JobMasterGateway in one). The gRPC service (job_manager_service.h) and the
// REST handlers (rest_server.h) are thin adapters over it; the Dispatcher implements it.
//
// Errors: InvalidArgument for a malformed request (named), NotFound for an unknown job,
// FailedPrecondition for a request the job's state does not allow, ResourceExhausted when the
// cluster lacks slots, Unavailable for a submission while the JobManager stops.
// Threads: every method may be called from any thread.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "jobmanager/adaptive_scheduler.h"
#include "jobmanager/checkpoint_coordinator.h"
#include "jobmanager/checkpoint_stats.h"
#include "proto/jobmanager.pb.h"

namespace sluice {

// A job's checkpointing as the REST API shows it: its settings and statistics.
struct JobCheckpointStats {
  CheckpointSettings settings;
  std::string state_backend;  // the job's state.backend.type: hashmap or rocksdb
  CheckpointStatsSnapshot stats;
};

class JobManagerGateway {
 public:
  virtual ~JobManagerGateway() = default;

  // ---- TaskManagers ----
  // Registers a TaskManager (again, after either side restarted); returns this JobManager's
  // instance id.
  virtual absl::StatusOr<std::string> RegisterTaskManager(
      const proto::RegisterTaskManagerRequest& req) = 0;
  // A TaskManager's heartbeat; false when it is not registered (it must register again).
  virtual bool HeartbeatFromTaskManager(const std::string& tm_id) = 0;
  // False once the TaskManager is forgotten or the JobManager stops.
  virtual bool IsTaskManagerRegistered(const std::string& tm_id) = 0;
  // The TaskManager is gone (its connection to the JobManager closed): it is forgotten and the
  // tasks it ran fail.
  virtual void DisconnectTaskManager(const std::string& tm_id) = 0;
  // A task's state changed. Updates of an old attempt or an unknown job are ignored.
  virtual absl::Status UpdateTaskState(const proto::TaskStateUpdate& update) = 0;
  virtual absl::Status AcknowledgeCheckpoint(const proto::AcknowledgeCheckpointRequest& ack) = 0;
  virtual absl::Status DeclineCheckpoint(const proto::DeclineCheckpointRequest& decline) = 0;

  // ---- Job libraries ----
  // Stores a job library; returns its SHA-256.
  virtual absl::StatusOr<std::string> UploadLibrary(std::string_view bytes) = 0;
  // The local path of a stored library, for streaming it to a TaskManager.
  virtual absl::StatusOr<std::string> LibraryPath(const std::string& sha256) = 0;

  // ---- Jobs ----
  // Deploys a job whose library was uploaded; returns its id.
  virtual absl::StatusOr<std::string> SubmitJob(const proto::SubmitJobRequest& req) = 0;
  // The jobs (the running ones, or all that are retained), oldest first, without their tasks.
  virtual std::vector<proto::JobStatus> ListJobs(bool include_terminated) = 0;
  // One job with its tasks.
  virtual absl::StatusOr<proto::JobStatus> GetJob(const std::string& job_id) = 0;
  // A job's checkpoint settings and statistics (a copy). NotFound for an unknown job.
  virtual absl::StatusOr<JobCheckpointStats> GetCheckpointStats(const std::string& job_id) = 0;
  // Cancels a job. FailedPrecondition when it has already ended.
  virtual absl::Status CancelJob(const std::string& job_id) = 0;

  // ---- Savepoints ----
  // Starts a savepoint (or stop-with-savepoint) of a running job; returns the request's id.
  virtual absl::StatusOr<std::string> TriggerSavepoint(
      const proto::TriggerSavepointRequest& req) = 0;
  // The request's state: in progress, completed (its folder) or failed (why).
  virtual absl::StatusOr<proto::SavepointStatus> GetSavepoint(const std::string& job_id,
                                                              const std::string& request_id) = 0;
  // Removes a savepoint's folder (nothing that is not a savepoint).
  virtual absl::Status DisposeSavepoint(const std::string& path) = 0;
  virtual proto::ClusterOverview GetOverview() = 0;

  // ---- Rescaling ----
  // Rescales a RUNNING job (vertex id -> new parallelism) from its newest completed checkpoint;
  // returns the rescale's trigger id. InvalidArgument for a vertex or parallelism it cannot
  // have, FailedPrecondition when the job is not RUNNING or has no checkpointing,
  // ResourceExhausted for too few slots. `reason` goes into the JobManager's log.
  virtual absl::StatusOr<std::string> RescaleJob(const std::string& job_id,
                                                 const std::map<int, int>& parallelism,
                                                 const std::string& reason) = 0;
  // Every vertex of the job at `parallelism` (those that cannot run in parallel stay at 1).
  virtual absl::StatusOr<std::string> RescaleWholeJob(const std::string& job_id, int parallelism,
                                                      const std::string& reason) = 0;
  // A rescale's progress. NotFound for an unknown job or trigger id.
  virtual absl::StatusOr<proto::RescaleStatus> GetRescaleStatus(const std::string& job_id,
                                                                const std::string& trigger_id) = 0;
  // The job's per-vertex parallelism bounds (Flink's resource requirements), by vertex id.
  virtual absl::StatusOr<ResourceRequirements> GetResourceRequirements(
      const std::string& job_id) = 0;
  // Replaces them (one per vertex): the job rescales when its parallelism no longer fits them
  // (the default scheduler: to the upper bounds; the adaptive one: within the bounds, as the
  // slots allow). Errors as RescaleJob's.
  virtual absl::Status SetResourceRequirements(const std::string& job_id,
                                               const ResourceRequirements& requirements) = 0;
};

}  // namespace sluice
