#include "common/http_listener.h"

#include <httplib.h>

#include <chrono>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/config.h"
#include "common/net.h"
#include "spdlog/spdlog.h"

namespace sluice {
namespace {

// SO_REUSEADDR only: httplib's default, SO_REUSEPORT, would let a second server share the port.
void ReuseAddress(socket_t sock) {
  int yes = 1;
  ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
}

}  // namespace

absl::StatusOr<std::pair<int, int>> ParsePortRange(const std::string& key,
                                                   const std::string& value) {
  std::vector<std::string> parts = absl::StrSplit(value, '-');
  auto bad = [&] {
    return absl::InvalidArgumentError(absl::StrCat("configuration key '", key, "': '", value,
                                                   "' is not a port or a range of ports "
                                                   "(e.g. 9249 or 9249-9259)"));
  };
  if (parts.empty() || parts.size() > 2) return bad();
  int ends[2];
  for (size_t i = 0; i < parts.size(); ++i) {
    auto n = ParseInt(key, parts[i]);
    if (!n.ok() || *n < 0 || *n > 65535) return bad();
    ends[i] = static_cast<int>(*n);
  }
  if (parts.size() == 1) ends[1] = ends[0];
  if (ends[1] < ends[0] || (ends[0] == 0 && ends[1] != 0)) return bad();
  return std::make_pair(ends[0], ends[1]);
}

absl::StatusOr<std::unique_ptr<HttpListener>> HttpListener::Start(
    const HttpListenerOptions& o, const std::function<void(httplib::Server&)>& add_routes) {
  auto addresses = ResolveHost(o.host, o.host_key);
  if (!addresses.ok()) return addresses.status();
  std::string failure;
  // With port 0 the first address picks it, and when a later address has it taken all pick
  // again; with a range, each port in turn until one is free on every address.
  const bool any = o.first_port == 0;
  const int tries = any ? 5 : o.last_port - o.first_port + 1;
  for (int attempt = 0; attempt < tries; ++attempt) {
    std::unique_ptr<HttpListener> l(new HttpListener());
    int chosen = any ? 0 : o.first_port + attempt;
    failure.clear();
    for (const std::string& address : *addresses) {
      auto server = std::make_unique<httplib::Server>();
      server->set_socket_options(ReuseAddress);
      add_routes(*server);
      bool bound = chosen == 0 ? (chosen = std::max(server->bind_to_any_port(address), 0)) > 0
                               : server->bind_to_port(address, chosen);
      if (!bound) {
        if (!CanBindAddress(address)) {  // not an address of this machine (::1 without IPv6)
          spdlog::warn("{}: {} resolves to {}, not an address of this machine: not listening there",
                       o.what, o.host, address);
          continue;
        }
        failure = absl::StrCat(o.what, " cannot listen on ", o.host, ":", chosen, " (address ",
                               address, ")");
        break;
      }
      httplib::Server* srv = server.get();
      l->servers_.push_back(std::move(server));
      l->threads_.emplace_back([srv] { srv->listen_after_bind(); });
      // httplib's stop() does nothing before the server runs: wait for it, so Stop() always works.
      auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (!srv->is_running()) {
        if (std::chrono::steady_clock::now() > deadline) {
          l->threads_.back().detach();  // stop() cannot reach a server that never ran
          l->servers_.back().release();
          return absl::InternalError(absl::StrCat(o.what, " did not start within 10 s"));
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    }
    if (failure.empty() && l->servers_.empty()) {
      return absl::UnavailableError(absl::StrCat(
          o.what, " cannot listen on ", o.host, ": none of its addresses (",
          absl::StrJoin(*addresses, ", "), ") is an address of this machine; set ", o.host_key));
    }
    if (failure.empty()) {
      l->port_ = chosen;
      return l;
    }
    // l stops the servers it started.
  }
  if (any || o.first_port == o.last_port) {
    return absl::UnavailableError(absl::StrCat(failure, ": is the port in use? set ", o.port_key));
  }
  return absl::UnavailableError(absl::StrCat(o.what, " cannot listen on ", o.host,
                                             ": every port of ", o.first_port, "-", o.last_port,
                                             " is in use; set ", o.port_key));
}

HttpListener::~HttpListener() { Stop(); }

void HttpListener::Stop() {
  for (auto& server : servers_) {
    if (server) server->stop();
  }
  for (auto& thread : threads_) {
    if (thread.joinable()) thread.join();
  }
}

}  // namespace sluice
