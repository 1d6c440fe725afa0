// RestServer: the JobManager's REST API and web dashboard on rest.port, with Flink's paths and
// field names (Flink's REST API documentation is the spec). Handlers are thin adapters over
// what RestContext names, in process. The routes are grouped by what they show:
//   rest_cluster.cc      /overview, /config, /jobmanager/*, /taskmanagers/*
//   rest_jobs.cc         /jobs, /jobs/:id (and PATCH to cancel), plan, exceptions, vertices
//   rest_metrics.cc      the metric views of the JobManager, jobs, vertices and TaskManagers
//   rest_checkpoints.cc  /jobs/:id/checkpoints/*
//   rest_logs.cc         /jobmanager/logs, /log, /stdout and the same of each TaskManager
//   rest_rescale.cc      /jobs/:id/rescaling, /jobs/:id/resource-requirements
//   rest_jars.cc         /jars/* (submission), /jobs/:id/status, /jobs/:id/execution-result
// Every path is served under /v1/ too, as Flink's are.
// A request the API does not know, or with an unknown id or metric, gets a 4xx with Flink's
// {"errors": [...]} body and nothing else. Threads: the HTTP server's I/O thread and handler pool
// (common/http_server.h).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/config.h"
#include "common/http_server.h"
#include "jobmanager/job_manager_gateway.h"
#include "jobmanager/task_manager_gateway.h"

namespace sluice {

class JarStore;
class JobManagerMetrics;

// What the handlers answer from; everything must outlive the server.
struct RestContext {
  JobManagerGateway* gateway = nullptr;
  JobManagerMetrics* metrics = nullptr;  // null: no metric views
  Configuration conf;                    // the cluster's (for /config, /jobmanager/config)
  // The gateway of a registered TaskManager, null when it is not registered (for its log files).
  std::function<std::shared_ptr<TaskManagerGateway>(const std::string& tm_id)> task_manager;
  // The libraries uploaded over REST (web.upload.dir); null when web.submit.enable is false.
  // RestServer::Start opens it when it is not given.
  std::shared_ptr<JarStore> jars;
  // The bearer token requests must carry (security.rest.auth.token-file), empty: none; and
  // whether only requests that change something need it. RestServer::Start reads the file.
  std::string auth_token;
  bool auth_changes_only = false;
};

// The REST API's and the dashboard's routes over `context`, which must outlive them (with
// context.jars and context.auth_token as given): RestServer serves them, and the fuzz target of
// the handlers (tests/fuzz/rest_handlers_fuzz.cc) calls them without a socket.
void AddRestRoutes(HttpRoutes& routes, const RestContext& context);

class RestServer {
 public:
  // Listens on host:port (port 0: any free port).
  static absl::StatusOr<std::unique_ptr<RestServer>> Start(const RestContext& context,
                                                           const std::string& host, int port);
  ~RestServer();
  int port() const { return server_->port(); }
  int connections() const { return server_->connections(); }
  void Stop();

 private:
  explicit RestServer(std::unique_ptr<HttpServer> server, std::unique_ptr<RestContext> context)
      : context_(std::move(context)), server_(std::move(server)) {}
  std::unique_ptr<RestContext> context_;
  std::unique_ptr<HttpServer> server_;
};

}  // namespace sluice
