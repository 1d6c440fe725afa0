// JobManagerService: the gRPC adapter of the JobManagerGateway (proto::JobManagerService). It
// converts requests and statuses and streams libraries in chunks; every decision is the
// gateway's. The only JobManager code besides task_manager_gateway.cc that touches gRPC.
//
// Threads: gRPC's; WatchJobManager holds one of them per TaskManager while it lives.
#pragma once

#include "jobmanager/job_manager_gateway.h"
#include "proto/jobmanager.grpc.pb.h"

namespace sluice {

class JobManagerService final : public proto::JobManagerService::Service {
 public:
  // `gateway` must outlive the service.
  explicit JobManagerService(JobManagerGateway& gateway) : gateway_(gateway) {}

  grpc::Status RegisterTaskManager(grpc::ServerContext*,
                                   const proto::RegisterTaskManagerRequest* req,
                                   proto::RegisterTaskManagerResponse* resp) override;
  grpc::Status Heartbeat(grpc::ServerContext*, const proto::TaskManagerHeartbeat* req,
                         proto::HeartbeatResponse* resp) override;
  grpc::Status UpdateTaskState(grpc::ServerContext*, const proto::TaskStateUpdate* req,
                               proto::Empty*) override;
  grpc::Status UploadLibrary(grpc::ServerContext*, grpc::ServerReader<proto::LibraryChunk>* reader,
                             proto::UploadLibraryResponse* resp) override;
  grpc::Status DownloadLibrary(grpc::ServerContext*, const proto::UploadLibraryResponse* req,
                               grpc::ServerWriter<proto::LibraryChunk>* writer) override;
  grpc::Status SubmitJob(grpc::ServerContext*, const proto::SubmitJobRequest* req,
                         proto::SubmitJobResponse* resp) override;
  grpc::Status ListJobs(grpc::ServerContext*, const proto::ListJobsRequest* req,
                        proto::ListJobsResponse* resp) override;
  grpc::Status GetJob(grpc::ServerContext*, const proto::JobIdRequest* req,
                      proto::JobStatus* resp) override;
  grpc::Status CancelJob(grpc::ServerContext*, const proto::JobIdRequest* req,
                         proto::Empty*) override;
  grpc::Status TriggerSavepoint(grpc::ServerContext*, const proto::TriggerSavepointRequest* req,
                                proto::TriggerSavepointResponse* resp) override;
  grpc::Status GetSavepoint(grpc::ServerContext*, const proto::SavepointStatusRequest* req,
                            proto::SavepointStatus* resp) override;
  grpc::Status DisposeSavepoint(grpc::ServerContext*, const proto::DisposeSavepointRequest* req,
                                proto::Empty*) override;
  grpc::Status GetOverview(grpc::ServerContext*, const proto::Empty*,
                           proto::ClusterOverview* resp) override;
  grpc::Status AcknowledgeCheckpoint(grpc::ServerContext*,
                                     const proto::AcknowledgeCheckpointRequest* req,
                                     proto::Empty*) override;
  grpc::Status DeclineCheckpoint(grpc::ServerContext*, const proto::DeclineCheckpointRequest* req,
                                 proto::Empty*) override;
  // Held open by every TaskManager: when its process dies the connection closes and the
  // TaskManager is declared lost at once, without waiting for heartbeat.timeout.
  grpc::Status WatchJobManager(grpc::ServerContext* ctx, const proto::TaskManagerHeartbeat* req,
                               grpc::ServerWriter<proto::Empty>*) override;
  // `sluice rescale`: a vertex map, or the whole job at `parallelism` when the map is empty.
  grpc::Status RescaleJob(grpc::ServerContext*, const proto::RescaleJobRequest* req,
                          proto::RescaleJobResponse* resp) override;
  grpc::Status GetRescaleStatus(grpc::ServerContext*, const proto::RescaleStatusRequest* req,
                                proto::RescaleStatus* resp) override;

 private:
  JobManagerGateway& gateway_;
};

}  // namespace sluice
