// RestServer: the JobManager's REST API and web dashboard on rest.port (Flink's paths and field
// names where they exist: /overview, /jobs, /jobs/overview, /jobs/:id, /jobs/:id/exceptions,
// PATCH /jobs/:id to cancel, /taskmanagers). A thin adapter: requests are answered by the
// JobManagerGateway, in process. Threads: the HTTP server's pool.
#pragma once

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "jobmanager/job_manager_gateway.h"

namespace httplib {
class Server;
}

namespace sluice {

class RestServer {
 public:
  // Listens on host:port (port 0: any free port). `gateway` must outlive the server.
  static absl::StatusOr<std::unique_ptr<RestServer>> Start(JobManagerGateway& gateway,
                                                           const std::string& host, int port);
  ~RestServer();
  int port() const { return port_; }
  void Stop();

 private:
  RestServer() = default;
  // One server per address the host resolves to ("localhost": ::1 and 127.0.0.1), all with the
  // same routes on the same port, each listening on its own thread.
  std::vector<std::unique_ptr<httplib::Server>> servers_;
  std::vector<std::thread> threads_;
  int port_ = 0;
};

}  // namespace sluice
