// HttpServer: an event-driven HTTP/1.1 server (Boost.Beast over Asio) for one set of routes,
// listening on every address a host name resolves to ("localhost": ::1 and 127.0.0.1), all on
// one port. The REST API, the standby JobManager's REST port and the Prometheus reporter serve
// this way.
//
// One I/O thread reads and writes every connection, so an idle, slow or keep-alive connection
// costs memory and a file descriptor, not a thread: a thousand of them do not delay a new
// request. Handlers run on a pool of `handler_threads`: a slow one (a job's graph being built)
// holds its own connection and one of those threads. Each request is bounded: its target by 4
// KiB (414), its headers by `max_header_bytes` (431), its body by `max_body_bytes` or its
// route's `body_limit` (413) and the bodies in memory together by `max_body_bytes_in_flight`
// (503), the time from its first byte to its last by `read_timeout` (408; writing its answer
// too). A connection waits `idle_timeout` for its next request. After refusing a request the
// server drops what the client still sends for up to 5 s, so that it reads the answer, then
// closes.
//
// The routes (HttpRequest, HttpResponse, HttpRoutes) are in common/http_routes.h.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/config.h"
#include "common/http_routes.h"

namespace sluice {

// HTTPS: the server's key and certificate chain (PEM files), and optionally the CA whose
// certificates clients must present. The *_key fields name the configuration keys the files came
// from, for messages.
struct HttpTlsOptions {
  std::string key_file, key_key;
  std::string cert_file, cert_key;
  std::string client_ca_file, client_ca_key;  // empty: clients present no certificate
};

struct HttpServerOptions {
  std::string what;      // for messages: "REST server", "Prometheus reporter 'prom'"
  std::string host;      // a name or a numeric address
  std::string host_key;  // the configuration keys the host and port came from, for messages
  std::string port_key;
  int first_port = 0;  // 0 (with last_port 0): any free port
  int last_port = 0;

  size_t max_header_bytes = 16 * 1024;  // the request line and headers (at most 60 KiB)
  size_t max_body_bytes = 1024 * 1024;
  // A request's own body limit (at most max_body_bytes), from its method and target; null: all
  // may have max_body_bytes.
  std::function<size_t(const std::string& method, const std::string& target)> body_limit;
  // Bodies held in memory at once, over every connection (each counts from its headers, by its
  // Content-Length or its limit, until its handler returns); a request beyond gets 503.
  size_t max_body_bytes_in_flight = 256 * 1024 * 1024;
  // Whether multipart/form-data bodies become the request's files and form-urlencoded ones its
  // params (false: bodies are passed on as they are).
  bool parse_forms = true;
  // Set: HTTPS only (TLS 1.2 and later); a refused handshake is logged with the peer's address.
  std::optional<HttpTlsOptions> tls;
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

// The security.ssl.rest.* keys of `conf` into `o->tls` (HTTPS when security.ssl.rest.enabled).
absl::Status ApplyRestTls(const Configuration& conf, HttpServerOptions* o);

// The REST bearer token of security.rest.auth.token-file (its first line, trimmed); "" when no
// file is named. InvalidArgument naming the key and the file when it cannot be read or the
// token is shorter than 16 characters. The JobManager and the CLI read it alike.
absl::StatusOr<std::string> ReadRestAuthToken(const Configuration& conf);

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
