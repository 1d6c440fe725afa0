// JobClient: the CLI's (and tests') connection to a JobManager.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/job_states.h"
#include "proto/jobmanager.grpc.pb.h"

namespace sluice {

class JobClient {
 public:
  // `address` is host:port. No connection is made until the first call.
  JobClient(const std::string& address, std::chrono::milliseconds timeout);

  // Unavailable with a hint to start the cluster when nothing answers at the address.
  absl::StatusOr<proto::ClusterOverview> Overview();
  // Uploads library bytes; returns their SHA-256.
  absl::StatusOr<std::string> UploadLibrary(const std::string& bytes);
  absl::StatusOr<std::string> Submit(const proto::SubmitJobRequest& req);
  absl::StatusOr<proto::JobStatus> GetJob(const std::string& job_id);
  absl::StatusOr<std::vector<proto::JobStatus>> ListJobs(bool include_terminated);
  absl::Status Cancel(const std::string& job_id);
  // Savepoints: starts one (returns the request id), its status, disposal.
  absl::StatusOr<std::string> TriggerSavepoint(const proto::TriggerSavepointRequest& req);
  absl::StatusOr<proto::SavepointStatus> GetSavepoint(const std::string& job_id,
                                                      const std::string& request_id);
  absl::Status DisposeSavepoint(const std::string& path);
  // Polls until the savepoint request is done; its folder, or why it failed.
  absl::StatusOr<std::string> WaitForSavepoint(const std::string& job_id,
                                               const std::string& request_id);
  // Rescales a running job: `vertex_parallelism` (vertex id -> parallelism), or the whole job at
  // `parallelism` when it is empty. Returns the rescale's trigger id.
  absl::StatusOr<std::string> Rescale(const std::string& job_id,
                                      const std::map<int, int>& vertex_parallelism, int parallelism,
                                      const std::string& reason);
  absl::StatusOr<proto::RescaleStatus> RescaleStatus(const std::string& job_id,
                                                     const std::string& trigger_id);
  // Polls until the job reaches FINISHED, FAILED or CANCELED; returns its last status.
  absl::StatusOr<proto::JobStatus> WaitForTermination(const std::string& job_id);

  const std::string& address() const { return address_; }

 private:
  absl::Status Convert(const grpc::Status& s) const;
  std::unique_ptr<grpc::ClientContext> Context() const;

  std::string address_;
  std::chrono::milliseconds timeout_;
  std::unique_ptr<proto::JobManagerService::Stub> stub_;
};

}  // namespace sluice
