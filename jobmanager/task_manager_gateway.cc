#include "jobmanager/task_manager_gateway.h"

#include <grpcpp/grpcpp.h>

#include <chrono>

#include "common/grpc_status.h"
#include "common/ids.h"
#include "common/internal_tls.h"
#include "proto/taskmanager.grpc.pb.h"

namespace sluice {
namespace {

using namespace std::chrono_literals;

class GrpcTaskManagerGateway final : public TaskManagerGateway {
 public:
  GrpcTaskManagerGateway(const std::string& address, std::string jm_id)
      : jm_id_(std::move(jm_id)),
        stub_(proto::TaskExecutorService::NewStub(
            grpc::CreateCustomChannel(address, InternalChannelCredentials(), Args()))) {}

  absl::Status DeployTask(const proto::TaskDeploymentDescriptor& tdd) override {
    proto::Empty e;
    return Call(10s, &Stub::DeployTask, tdd, &e);
  }
  absl::Status CancelJobTasks(const std::string& job_id) override {
    proto::CancelJobTasksRequest req;
    req.set_job_id(job_id);
    proto::Empty e;
    return Call(5s, &Stub::CancelJobTasks, req, &e);
  }
  absl::Status ReleaseJob(const std::string& job_id) override {
    proto::CancelJobTasksRequest req;
    req.set_job_id(job_id);
    proto::Empty e;
    return Call(5s, &Stub::ReleaseJob, req, &e);
  }
  absl::Status Heartbeat(const std::string& jm_id) override {
    proto::JobManagerHeartbeat hb;
    hb.set_jm_id(jm_id);
    proto::TaskManagerReport report;
    return Call(1s, &Stub::Heartbeat, hb, &report);
  }
  absl::Status TriggerCheckpoint(const proto::TriggerCheckpointRequest& req) override {
    proto::Empty e;
    return Call(5s, &Stub::TriggerCheckpoint, req, &e);
  }
  absl::Status NotifyCheckpoint(const proto::NotifyCheckpointRequest& req) override {
    proto::Empty e;
    return Call(5s, &Stub::NotifyCheckpoint, req, &e);
  }
  absl::StatusOr<proto::MetricDump> QueryMetrics() override {
    proto::Empty e;
    proto::MetricDump dump;
    absl::Status s = Call(1s, &Stub::QueryMetrics, e, &dump);
    if (!s.ok()) return s;
    return dump;
  }
  absl::StatusOr<proto::LogList> ListLogs() override {
    proto::Empty e;
    proto::LogList list;
    absl::Status s = Call(2s, &Stub::ListLogs, e, &list);
    if (!s.ok()) return s;
    return list;
  }
  absl::StatusOr<proto::LogFileTail> ReadLog(const proto::ReadLogRequest& req) override {
    proto::LogFileTail tail;
    absl::Status s = Call(10s, &Stub::ReadLog, req, &tail);
    if (!s.ok()) return s;
    return tail;
  }

 private:
  using Stub = proto::TaskExecutorService::Stub;

  // A log file's end (8 MiB) is larger than gRPC's default 4 MiB answer.
  static grpc::ChannelArguments Args() {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(16 << 20);
    return args;
  }

  template <class Req, class Resp>
  absl::Status Call(std::chrono::milliseconds deadline,
                    grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, Resp*),
                    const Req& req, Resp* resp) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + deadline);
    if (!jm_id_.empty()) ctx.AddMetadata(kJobManagerIdMetadata, jm_id_);
    return FromGrpcStatus(((*stub_).*method)(&ctx, req, resp));
  }

  const std::string jm_id_;
  std::unique_ptr<Stub> stub_;
};

}  // namespace

std::shared_ptr<TaskManagerGateway> NewGrpcTaskManagerGateway(const std::string& address,
                                                              std::string jm_id) {
  return std::make_shared<GrpcTaskManagerGateway>(address, std::move(jm_id));
}

}  // namespace sluice
