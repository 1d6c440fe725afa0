// RestServer: the JobManager's REST API and web dashboard on rest.port (Flink's paths and field
// names where they exist: /overview, /jobs, /jobs/overview, /jobs/:id, /jobs/:id/exceptions,
// PATCH /jobs/:id to cancel, /taskmanagers). A thin adapter: requests are answered by the
// JobManagerGateway, in process. Threads: the HTTP server's pool.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/http_listener.h"
#include "jobmanager/job_manager_gateway.h"

namespace sluice {

class RestServer {
 public:
  // Listens on host:port (port 0: any free port). `gateway` must outlive the server.
  static absl::StatusOr<std::unique_ptr<RestServer>> Start(JobManagerGateway& gateway,
                                                           const std::string& host, int port);
  ~RestServer();
  int port() const { return listener_->port(); }
  void Stop();

 private:
  explicit RestServer(std::unique_ptr<HttpListener> listener) : listener_(std::move(listener)) {}
  std::unique_ptr<HttpListener> listener_;
};

}  // namespace sluice
