#include "jobmanager/job_manager_service.h"

#include <chrono>
#include <fstream>
#include <map>
#include <thread>
#include <vector>

#include "common/grpc_status.h"
#include "jobmanager/blob_store.h"

namespace sluice {

grpc::Status JobManagerService::RegisterTaskManager(grpc::ServerContext*,
                                                    const proto::RegisterTaskManagerRequest* req,
                                                    proto::RegisterTaskManagerResponse* resp) {
  auto jm_id = gateway_.RegisterTaskManager(*req);
  if (!jm_id.ok()) return ToGrpcStatus(jm_id.status());
  resp->set_jm_id(*jm_id);
  return grpc::Status::OK;
}

grpc::Status JobManagerService::Heartbeat(grpc::ServerContext*,
                                          const proto::TaskManagerHeartbeat* req,
                                          proto::HeartbeatResponse* resp) {
  resp->set_known(gateway_.HeartbeatFromTaskManager(req->tm_id()));
  return grpc::Status::OK;
}

grpc::Status JobManagerService::UpdateTaskState(grpc::ServerContext*,
                                                const proto::TaskStateUpdate* req, proto::Empty*) {
  return ToGrpcStatus(gateway_.UpdateTaskState(*req));
}

grpc::Status JobManagerService::UploadLibrary(grpc::ServerContext*,
                                              grpc::ServerReader<proto::LibraryChunk>* reader,
                                              proto::UploadLibraryResponse* resp) {
  std::string bytes;
  proto::LibraryChunk chunk;
  while (reader->Read(&chunk)) {
    bytes += chunk.data();
    if (bytes.size() > BlobStore::kMaxLibraryBytes) {
      return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "job library larger than 1 GiB");
    }
  }
  auto sha = gateway_.UploadLibrary(bytes);
  if (!sha.ok()) return ToGrpcStatus(sha.status());
  resp->set_sha256(*sha);
  return grpc::Status::OK;
}

grpc::Status JobManagerService::DownloadLibrary(grpc::ServerContext*,
                                                const proto::UploadLibraryResponse* req,
                                                grpc::ServerWriter<proto::LibraryChunk>* writer) {
  auto path = gateway_.LibraryPath(req->sha256());
  if (!path.ok()) return ToGrpcStatus(path.status());
  std::ifstream f(*path, std::ios::binary);
  if (!f) return grpc::Status(grpc::StatusCode::NOT_FOUND, "no job library " + req->sha256());
  std::vector<char> buf(1 << 20);
  proto::LibraryChunk chunk;
  while (f) {
    f.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    if (f.gcount() <= 0) break;
    chunk.set_data(buf.data(), static_cast<size_t>(f.gcount()));
    if (!writer->Write(chunk)) break;
  }
  return grpc::Status::OK;
}

grpc::Status JobManagerService::SubmitJob(grpc::ServerContext*, const proto::SubmitJobRequest* req,
                                          proto::SubmitJobResponse* resp) {
  auto job_id = gateway_.SubmitJob(*req);
  if (!job_id.ok()) return ToGrpcStatus(job_id.status());
  resp->set_job_id(*job_id);
  return grpc::Status::OK;
}

grpc::Status JobManagerService::ListJobs(grpc::ServerContext*, const proto::ListJobsRequest* req,
                                         proto::ListJobsResponse* resp) {
  for (auto& j : gateway_.ListJobs(req->include_terminated())) *resp->add_jobs() = std::move(j);
  return grpc::Status::OK;
}

grpc::Status JobManagerService::GetJob(grpc::ServerContext*, const proto::JobIdRequest* req,
                                       proto::JobStatus* resp) {
  auto job = gateway_.GetJob(req->job_id());
  if (!job.ok()) return ToGrpcStatus(job.status());
  *resp = std::move(*job);
  return grpc::Status::OK;
}

grpc::Status JobManagerService::CancelJob(grpc::ServerContext*, const proto::JobIdRequest* req,
                                          proto::Empty*) {
  return ToGrpcStatus(gateway_.CancelJob(req->job_id()));
}

grpc::Status JobManagerService::TriggerSavepoint(grpc::ServerContext*,
                                                 const proto::TriggerSavepointRequest* req,
                                                 proto::TriggerSavepointResponse* resp) {
  auto id = gateway_.TriggerSavepoint(*req);
  if (!id.ok()) return ToGrpcStatus(id.status());
  resp->set_request_id(*id);
  return grpc::Status::OK;
}

grpc::Status JobManagerService::GetSavepoint(grpc::ServerContext*,
                                             const proto::SavepointStatusRequest* req,
                                             proto::SavepointStatus* resp) {
  auto st = gateway_.GetSavepoint(req->job_id(), req->request_id());
  if (!st.ok()) return ToGrpcStatus(st.status());
  *resp = std::move(*st);
  return grpc::Status::OK;
}

grpc::Status JobManagerService::DisposeSavepoint(grpc::ServerContext*,
                                                 const proto::DisposeSavepointRequest* req,
                                                 proto::Empty*) {
  return ToGrpcStatus(gateway_.DisposeSavepoint(req->path()));
}

grpc::Status JobManagerService::GetOverview(grpc::ServerContext*, const proto::Empty*,
                                            proto::ClusterOverview* resp) {
  *resp = gateway_.GetOverview();
  return grpc::Status::OK;
}

grpc::Status JobManagerService::AcknowledgeCheckpoint(
    grpc::ServerContext*, const proto::AcknowledgeCheckpointRequest* req, proto::Empty*) {
  return ToGrpcStatus(gateway_.AcknowledgeCheckpoint(*req));
}

grpc::Status JobManagerService::DeclineCheckpoint(grpc::ServerContext*,
                                                  const proto::DeclineCheckpointRequest* req,
                                                  proto::Empty*) {
  return ToGrpcStatus(gateway_.DeclineCheckpoint(*req));
}

grpc::Status JobManagerService::WatchJobManager(grpc::ServerContext* ctx,
                                                const proto::TaskManagerHeartbeat* req,
                                                grpc::ServerWriter<proto::Empty>*) {
  if (!gateway_.IsTaskManagerRegistered(req->tm_id())) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND, "unknown TaskManager");
  }
  while (!ctx->IsCancelled()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (!gateway_.IsTaskManagerRegistered(req->tm_id())) return grpc::Status::OK;
  }
  gateway_.DisconnectTaskManager(req->tm_id());
  return grpc::Status::OK;
}

grpc::Status JobManagerService::RescaleJob(grpc::ServerContext*,
                                           const proto::RescaleJobRequest* req,
                                           proto::RescaleJobResponse* resp) {
  absl::StatusOr<std::string> trigger;
  if (req->vertex_parallelism().empty()) {
    trigger = gateway_.RescaleWholeJob(req->job_id(), req->parallelism(), req->reason());
  } else {
    std::map<int, int> parallelism(req->vertex_parallelism().begin(),
                                   req->vertex_parallelism().end());
    trigger = gateway_.RescaleJob(req->job_id(), parallelism, req->reason());
  }
  if (!trigger.ok()) return ToGrpcStatus(trigger.status());
  resp->set_trigger_id(*trigger);
  return grpc::Status::OK;
}

grpc::Status JobManagerService::GetRescaleStatus(grpc::ServerContext*,
                                                 const proto::RescaleStatusRequest* req,
                                                 proto::RescaleStatus* resp) {
  auto status = gateway_.GetRescaleStatus(req->job_id(), req->trigger_id());
  if (!status.ok()) return ToGrpcStatus(status.status());
  *resp = std::move(*status);
  return grpc::Status::OK;
}

}  // namespace sluice
