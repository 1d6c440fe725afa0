#include "jobmanager/job_manager.h"

#include <grpcpp/grpcpp.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "common/grpc_listener.h"
#include "common/ids.h"
#include "common/internal_tls.h"
#include "common/net.h"
#include "jobmanager/dispatcher.h"
#include "jobmanager/job_manager_metrics.h"
#include "jobmanager/job_manager_service.h"
#include "jobmanager/rest_server.h"
#include "spdlog/spdlog.h"

namespace sluice {

absl::StatusOr<std::unique_ptr<JobManager>> JobManager::Start(const Configuration& conf,
                                                              HighAvailabilityServices* ha,
                                                              bool recover) {
  std::unique_ptr<JobManager> jm(new JobManager());
  Dispatcher::Options options;
  options.jm_id = NewInstanceId("jm");
  options.heartbeat_interval = std::chrono::milliseconds(conf.GetDurationMs("heartbeat.interval"));
  options.heartbeat_timeout = std::chrono::milliseconds(conf.GetDurationMs("heartbeat.timeout"));
  auto scheduler = AdaptiveSchedulerSettings::FromConfig(conf);
  if (!scheduler.ok()) return scheduler.status();
  options.scheduler = *scheduler;
  options.ha = ha;
  std::string dir = conf.GetString("blob.storage.directory");
  if (dir.empty()) dir = std::filesystem::temp_directory_path().string();
  auto blobs = BlobStore::Create(absl::StrCat(dir, "/sluice-", options.jm_id, "-blobs"));
  if (!blobs.ok()) return blobs.status();
  std::string jm_id = options.jm_id;
  jm->metrics_ = std::make_unique<JobManagerMetrics>(conf);
  options.metrics = jm->metrics_.get();
  jm->dispatcher_ = std::make_unique<Dispatcher>(
      conf, std::move(options), std::move(*blobs),
      [jm_id](const std::string& address) { return NewGrpcTaskManagerGateway(address, jm_id); });
  Dispatcher* dispatcher = jm->dispatcher_.get();
  jm->metrics_->StartFetcher([dispatcher] { return dispatcher->TaskManagerGateways(); },
                             [dispatcher] { return dispatcher->RetainedJobIds(); });
  jm->service_ = std::make_unique<JobManagerService>(*jm->dispatcher_);

  auto listener = GrpcListener::Bind(conf.GetString("jobmanager.bind-host"),
                                     static_cast<int>(conf.GetInt("jobmanager.rpc.port")),
                                     "jobmanager.bind-host", "jobmanager.rpc.port", "JobManager");
  if (!listener.ok()) {
    jm->Shutdown();
    return listener.status();
  }
  jm->listener_ = std::move(*listener);
  jm->port_ = jm->listener_->port();
  std::string bind = absl::StrCat(conf.GetString("jobmanager.bind-host"), ":", jm->port_);
  grpc::ServerBuilder builder;
  jm->listener_->AddTo(builder);
  builder.SetMaxReceiveMessageSize(64 << 20);
  builder.RegisterService(jm->service_.get());
  jm->server_ = builder.BuildAndStart();
  if (!jm->server_) {
    jm->Shutdown();
    return absl::InternalError(
        absl::StrCat("the JobManager's gRPC server did not start on ", bind));
  }
  jm->listener_->Start();
  jm->address_ = absl::StrCat(conf.GetString("jobmanager.rpc.address"), ":", jm->port_);
  absl::Status reporters =
      jm->metrics_->StartReporters(conf, conf.GetString("jobmanager.bind-host"));
  if (!reporters.ok()) {
    jm->Shutdown();
    return reporters;
  }
  int rest_port = static_cast<int>(conf.GetInt("rest.port"));
  if (rest_port >= 0) {
    RestContext context;
    context.gateway = jm->dispatcher_.get();
    context.metrics = jm->metrics_.get();
    context.conf = conf;
    // The port the JobManager listens on (0 in the file means any), for clients that reach the
    // REST API first (`sluice -m <rest address>`) through /jobmanager/config.
    (void)context.conf.Set("jobmanager.rpc.port", std::to_string(jm->port_));
    context.task_manager = [dispatcher](const std::string& tm_id) {
      for (auto& [id, gateway] : dispatcher->TaskManagerGateways()) {
        if (id == tm_id) return gateway;
      }
      return std::shared_ptr<TaskManagerGateway>();
    };
    auto rest = RestServer::Start(context, conf.GetString("rest.bind-address"), rest_port);
    if (!rest.ok()) {
      jm->Shutdown();
      return rest.status();
    }
    jm->rest_ = std::move(*rest);
    jm->rest_port_ = jm->rest_->port();
    spdlog::info("REST API and dashboard at {}://{}:{}/",
                 conf.GetBool("security.ssl.rest.enabled") ? "https" : "http",
                 conf.GetString("rest.bind-address"), jm->rest_->port());
  }
  spdlog::info("JobManager {} listening on {} ({} scheduler)", jm_id, bind, scheduler->name());
  if (absl::Status recovered = recover ? jm->RecoverJobs() : absl::OkStatus(); !recovered.ok()) {
    jm->Shutdown();
    return recovered;
  }
  return jm;
}

JobManager::~JobManager() { Shutdown(); }

absl::Status JobManager::RecoverJobs() {
  absl::Status s = dispatcher_ ? dispatcher_->RecoverJobs() : absl::OkStatus();
  if (s.ok()) return s;
  return absl::UnavailableError(absl::StrCat("cannot recover the cluster's jobs: ", s.message()));
}

int JobManager::rest_port() const { return rest_port_; }

void JobManager::Shutdown() {
  if (stopped_) return;
  stopped_ = true;
  if (metrics_) metrics_->StopReporters();  // they read the Dispatcher
  if (dispatcher_) dispatcher_->Stop();
  if (rest_) rest_->Stop();
  if (listener_) listener_->Stop();
  if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
  std::string jm_id = dispatcher_ ? dispatcher_->jm_id() : "";
  // The adapters go before what they call; the Dispatcher takes the blob store's folder with it.
  rest_.reset();
  server_.reset();
  listener_.reset();  // after the server, which tells it of calls
  service_.reset();
  dispatcher_.reset();
  metrics_.reset();
  spdlog::info("JobManager {} stopped", jm_id);
}

}  // namespace sluice
