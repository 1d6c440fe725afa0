// HttpServer: an event-driven HTTP/1.1 server (Boost.Beast over Asio) for one set of routes,
// listening on every address a host name resolves to ("localhost": ::1 and 127.0.0.1), all on
// one port. The REST API, the standby JobManager's REST port and the Prometheus reporter serve
// this way.
//
// One I/O thread reads and writes every connection, so an idle, slow or keep-alive connection
// costs memory and a file descriptor, not a thread: a thousand of them do not delay a new
// request. Handlers run on a pool of `handler_threads`, so a slow one (a job's graph being built)
// holds no connection but its own. Each request is bounded: its headers by `max_header_bytes`
// (431), its body by `max_body_bytes` (413), the time from its first byte to its last by
// `read_timeout` (408), and a connection waits `idle_timeout` for its next request.
//
// The routes (HttpRequest, HttpResponse, HttpRoutes) are in common/http_routes.h.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/config.h"
#include "common/http_routes.h"

namespace sluice {

struct HttpServerOptions {
  std::string what;      // for messages: "REST server", "Prometheus reporter 'prom'"
  std::string host;      // a name or a numeric address
  std::string host_key;  // the configuration keys the host and port came from, for messages
  std::string port_key;
  int first_port = 0;  // 0 (with last_port 0): any free port
  int last_port = 0;

  size_t max_header_bytes = 16 * 1024;  // the request line and headers
  size_t max_body_bytes = 1024 * 1024;
  absl::Duration read_timeout = absl::Seconds(60);  // a request's first byte to its last
  absl::Duration idle_timeout = absl::Seconds(60);  // a connection's wait for its next request
  int handler_threads = 4;
  int max_connections = 10000;  // more are accepted and closed at once
};

// Parses a port or a range "9249-9259" (a configuration value of `key`); InvalidArgument
// naming the key when malformed.
absl::StatusOr<std::pair<int, int>> ParsePortRange(const std::string& key,
                                                   const std::string& value);

// The rest.server.* keys of `conf` (threads, connections, header size, timeouts) into `o`,
// clamped to sane bounds. The REST API and the standby JobManager's REST port take them.
void ApplyRestServerLimits(const Configuration& conf, HttpServerOptions* o);

class HttpServer {
 public:
  // Binds the port (the first of the range free on every address) and starts serving `routes`.
  // Unavailable when no port of the range is free, naming the host, the ports and the keys.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(const HttpServerOptions& options,
                                                           HttpRoutes routes);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int port() const;
  // Connections open now (for tests and the benchmark).
  int connections() const;
  // Stops accepting, closes every connection and joins the threads; a handler still running is
  // waited for. Idempotent.
  void Stop();

 private:
  class Impl;
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice
