// HttpListener: one set of HTTP routes (cpp-httplib) served on every address a host name
// resolves to ("localhost": ::1 and 127.0.0.1), all on one port, each address on a thread of
// its own. The port is the first of a range that is free on every address (a range of one port,
// or 0 for one the system picks). The REST server and the Prometheus reporter listen this way.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"

namespace httplib {
class Server;
}

namespace sluice {

struct HttpListenerOptions {
  std::string what;      // for messages: "REST server", "Prometheus reporter 'prom'"
  std::string host;      // a name or a numeric address
  std::string host_key;  // the configuration keys the host and port came from, for messages
  std::string port_key;
  int first_port = 0;  // 0 (with last_port 0): any free port
  int last_port = 0;
};

// Parses a port or a range "9249-9259" (a configuration value of `key`); InvalidArgument
// naming the key when malformed.
absl::StatusOr<std::pair<int, int>> ParsePortRange(const std::string& key,
                                                   const std::string& value);

class HttpListener {
 public:
  // `add_routes` is called once per address, on a fresh server, before it listens. Unavailable
  // when no port of the range is free, naming the host, the ports and the keys.
  static absl::StatusOr<std::unique_ptr<HttpListener>> Start(
      const HttpListenerOptions& options, const std::function<void(httplib::Server&)>& add_routes);
  ~HttpListener();
  int port() const { return port_; }
  // Stops serving and joins the threads. Idempotent.
  void Stop();

 private:
  HttpListener() = default;
  std::vector<std::unique_ptr<httplib::Server>> servers_;
  std::vector<std::thread> threads_;
  int port_ = 0;
};

}  // namespace sluice
