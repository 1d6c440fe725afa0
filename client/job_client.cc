#include "client/job_client.h"

#include <grpcpp/grpcpp.h>

#include <thread>

#include "absl/strings/str_cat.h"
#include "common/grpc_status.h"
#include "common/internal_tls.h"

namespace sluice {

JobClient::JobClient(const std::string& address, std::chrono::milliseconds timeout)
    : address_(address), timeout_(timeout) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  stub_ = proto::JobManagerService::NewStub(
      grpc::CreateCustomChannel(address, InternalChannelCredentials(), args));
}

std::unique_ptr<grpc::ClientContext> JobClient::Context() const {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + timeout_);
  return ctx;
}

absl::Status JobClient::Convert(const grpc::Status& s) const {
  if (s.error_code() == grpc::StatusCode::UNAVAILABLE ||
      s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    return absl::UnavailableError(absl::StrCat(
        "cannot reach the JobManager at ", address_, " (", s.error_message(),
        "); is the cluster running? Start it with deploy/start-cluster.sh, or pass -m host:port"));
  }
  return FromGrpcStatus(s);
}

absl::StatusOr<proto::ClusterOverview> JobClient::Overview() {
  auto ctx = Context();
  proto::Empty req;
  proto::ClusterOverview resp;
  grpc::Status s = stub_->GetOverview(ctx.get(), req, &resp);
  if (!s.ok()) return Convert(s);
  return resp;
}

absl::StatusOr<std::string> JobClient::UploadLibrary(const std::string& bytes) {
  auto ctx = Context();
  proto::UploadLibraryResponse resp;
  auto writer = stub_->UploadLibrary(ctx.get(), &resp);
  constexpr size_t kChunk = 1 << 20;
  proto::LibraryChunk chunk;
  for (size_t off = 0; off < bytes.size(); off += kChunk) {
    chunk.set_data(bytes.substr(off, kChunk));
    if (!writer->Write(chunk)) break;
  }
  writer->WritesDone();
  grpc::Status s = writer->Finish();
  if (!s.ok()) return Convert(s);
  return resp.sha256();
}

absl::StatusOr<std::string> JobClient::Submit(const proto::SubmitJobRequest& req) {
  auto ctx = Context();
  proto::SubmitJobResponse resp;
  grpc::Status s = stub_->SubmitJob(ctx.get(), req, &resp);
  if (!s.ok()) return Convert(s);
  return resp.job_id();
}

absl::StatusOr<proto::JobStatus> JobClient::GetJob(const std::string& job_id) {
  auto ctx = Context();
  proto::JobIdRequest req;
  req.set_job_id(job_id);
  proto::JobStatus resp;
  grpc::Status s = stub_->GetJob(ctx.get(), req, &resp);
  if (!s.ok()) return Convert(s);
  return resp;
}

absl::StatusOr<std::vector<proto::JobStatus>> JobClient::ListJobs(bool include_terminated) {
  auto ctx = Context();
  proto::ListJobsRequest req;
  req.set_include_terminated(include_terminated);
  proto::ListJobsResponse resp;
  grpc::Status s = stub_->ListJobs(ctx.get(), req, &resp);
  if (!s.ok()) return Convert(s);
  return std::vector<proto::JobStatus>(resp.jobs().begin(), resp.jobs().end());
}

absl::Status JobClient::Cancel(const std::string& job_id) {
  auto ctx = Context();
  proto::JobIdRequest req;
  req.set_job_id(job_id);
  proto::Empty resp;
  grpc::Status s = stub_->CancelJob(ctx.get(), req, &resp);
  if (!s.ok()) return Convert(s);
  return absl::OkStatus();
}

absl::StatusOr<std::string> JobClient::TriggerSavepoint(const proto::TriggerSavepointRequest& req) {
  auto ctx = Context();
  proto::TriggerSavepointResponse resp;
  grpc::Status s = stub_->TriggerSavepoint(ctx.get(), req, &resp);
  if (!s.ok()) return Convert(s);
  return resp.request_id();
}

absl::StatusOr<proto::SavepointStatus> JobClient::GetSavepoint(const std::string& job_id,
                                                               const std::string& request_id) {
  auto ctx = Context();
  proto::SavepointStatusRequest req;
  req.set_job_id(job_id);
  req.set_request_id(request_id);
  proto::SavepointStatus resp;
  grpc::Status s = stub_->GetSavepoint(ctx.get(), req, &resp);
  if (!s.ok()) return Convert(s);
  return resp;
}

absl::StatusOr<std::string> JobClient::Rescale(const std::string& job_id,
                                               const std::map<int, int>& vertex_parallelism,
                                               int parallelism, const std::string& reason) {
  auto ctx = Context();
  proto::RescaleJobRequest req;
  req.set_job_id(job_id);
  for (const auto& [v, p] : vertex_parallelism) (*req.mutable_vertex_parallelism())[v] = p;
  req.set_parallelism(parallelism);
  req.set_reason(reason);
  proto::RescaleJobResponse resp;
  grpc::Status s = stub_->RescaleJob(ctx.get(), req, &resp);
  if (!s.ok()) return Convert(s);
  return resp.trigger_id();
}

absl::StatusOr<proto::RescaleStatus> JobClient::RescaleStatus(const std::string& job_id,
                                                              const std::string& trigger_id) {
  auto ctx = Context();
  proto::RescaleStatusRequest req;
  req.set_job_id(job_id);
  req.set_trigger_id(trigger_id);
  proto::RescaleStatus resp;
  grpc::Status s = stub_->GetRescaleStatus(ctx.get(), req, &resp);
  if (!s.ok()) return Convert(s);
  return resp;
}

absl::Status JobClient::DisposeSavepoint(const std::string& path) {
  auto ctx = Context();
  proto::DisposeSavepointRequest req;
  req.set_path(path);
  proto::Empty resp;
  grpc::Status s = stub_->DisposeSavepoint(ctx.get(), req, &resp);
  if (!s.ok()) return Convert(s);
  return absl::OkStatus();
}

absl::StatusOr<std::string> JobClient::WaitForSavepoint(const std::string& job_id,
                                                        const std::string& request_id) {
  int failures = 0;
  while (true) {
    auto st = GetSavepoint(job_id, request_id);
    if (st.ok()) {
      failures = 0;
      if (st->done()) {
        if (!st->failure().empty()) return absl::AbortedError(st->failure());
        return st->location();
      }
    } else if (++failures >= 20) {
      return st.status();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

absl::StatusOr<proto::JobStatus> JobClient::WaitForTermination(const std::string& job_id) {
  int failures = 0;
  while (true) {
    auto st = GetJob(job_id);
    if (st.ok()) {
      failures = 0;
      if (IsTerminalJobState(st->state())) return st;
    } else if (++failures >= 20) {
      return st.status();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

}  // namespace sluice
