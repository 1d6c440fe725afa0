#include "common/net.h"

#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "spdlog/spdlog.h"

namespace sluice {

absl::StatusOr<std::vector<std::string>> ResolveHost(const std::string& host,
                                                     const std::string& config_key) {
  std::string name(host);
  if (name.size() >= 2 && name.front() == '[' && name.back() == ']') {
    name = name.substr(1, name.size() - 2);
  }
  std::string key = config_key.empty() ? "" : absl::StrCat(" (", config_key, ")");
  if (name.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("empty host name", key));
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  int rc = ::getaddrinfo(name.c_str(), nullptr, &hints, &res);
  if (rc != 0) {
    std::string why = rc == EAI_SYSTEM ? std::strerror(errno) : ::gai_strerror(rc);
    std::string fix =
        config_key.empty()
            ? ""
            : absl::StrCat("; add the name to /etc/hosts or set ", config_key,
                           " to a name that resolves or to an address (e.g. 127.0.0.1)");
    return absl::UnavailableError(
        absl::StrCat("the host name '", name, "'", key, " does not resolve: ", why, fix));
  }
  std::vector<std::string> addresses;
  for (const addrinfo* a = res; a != nullptr; a = a->ai_next) {
    char buf[NI_MAXHOST];
    if (::getnameinfo(a->ai_addr, a->ai_addrlen, buf, sizeof buf, nullptr, 0, NI_NUMERICHOST) !=
        0) {
      continue;
    }
    if (std::find(addresses.begin(), addresses.end(), buf) == addresses.end()) {
      addresses.emplace_back(buf);
    }
  }
  ::freeaddrinfo(res);
  if (addresses.empty()) {
    return absl::UnavailableError(
        absl::StrCat("the host name '", name, "'", key, " resolves to no TCP address"));
  }
  return addresses;
}

bool CanBindAddress(const std::string& address) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_PASSIVE;
  addrinfo* res = nullptr;
  if (::getaddrinfo(address.c_str(), "0", &hints, &res) != 0) return false;
  bool ok = false;
  for (const addrinfo* a = res; a != nullptr && !ok; a = a->ai_next) {
    int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    ok = ::bind(fd, a->ai_addr, a->ai_addrlen) == 0;
    ::close(fd);
  }
  ::freeaddrinfo(res);
  return ok;
}

namespace {

// A socket listening on numeric `address`, port `port` (0: any); -1 with `error` set.
int ListenOn(const std::string& address, int port, std::string* error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_PASSIVE;
  addrinfo* res = nullptr;
  if (::getaddrinfo(address.c_str(), std::to_string(port).c_str(), &hints, &res) != 0 ||
      res == nullptr) {
    *error = "not an address";
    return -1;
  }
  int fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  int one = 1;
  bool ok = fd >= 0 && ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) == 0;
  if (ok && res->ai_family == AF_INET6) {
    // "::" is every address of both families (as gRPC binds a wildcard); others IPv6 only.
    int v6_only = address == "::" ? 0 : 1;
    ok = ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6_only, sizeof v6_only) == 0;
  }
  ok = ok && ::bind(fd, res->ai_addr, res->ai_addrlen) == 0 && ::listen(fd, SOMAXCONN) == 0;
  ::freeaddrinfo(res);
  if (!ok) {
    *error = std::strerror(errno);
    if (fd >= 0) ::close(fd);
    return -1;
  }
  return fd;
}

int LocalPort(int fd) {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return 0;
  if (addr.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
  return ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port);
}

}  // namespace

absl::StatusOr<ListeningSockets> ListenOnHost(const ListenOptions& o) {
  auto addresses = ResolveHost(o.host, o.host_key);
  if (!addresses.ok()) return addresses.status();
  // A wildcard listens on both families where the machine has IPv6: one dual-stack socket.
  for (std::string& a : *addresses) {
    if (a == "0.0.0.0" && CanBindAddress("::")) a = "::";
  }
  std::vector<std::string> unique;
  for (const std::string& a : *addresses) {
    if (std::find(unique.begin(), unique.end(), a) == unique.end()) unique.push_back(a);
  }
  *addresses = std::move(unique);
  ListeningSockets sockets;
  auto close_all = [&sockets] {
    for (int fd : sockets.fds) ::close(fd);
    sockets.fds.clear();
  };
  std::string failure;
  // With port 0 the first address picks it, and when a later address has it taken all pick
  // again; with a range, each port in turn until one is free on every address.
  const bool any = o.first_port == 0;
  const int tries = any ? 5 : o.last_port - o.first_port + 1;
  for (int attempt = 0; attempt < tries; ++attempt) {
    close_all();
    int chosen = any ? 0 : o.first_port + attempt;
    failure.clear();
    for (const std::string& address : *addresses) {
      std::string error;
      int fd = ListenOn(address, chosen, &error);
      if (fd < 0) {
        if (!CanBindAddress(address)) {  // not an address of this machine (::1 without IPv6)
          spdlog::warn("{}: {} resolves to {}, not an address of this machine: not listening there",
                       o.what, o.host, address);
          continue;
        }
        failure = absl::StrCat(o.what, " cannot listen on ", o.host, ":", chosen, " (address ",
                               address, "): ", error);
        break;
      }
      if (chosen == 0) chosen = LocalPort(fd);
      sockets.fds.push_back(fd);
    }
    if (failure.empty() && sockets.fds.empty()) {
      return absl::UnavailableError(absl::StrCat(
          o.what, " cannot listen on ", o.host, ": none of its addresses (",
          absl::StrJoin(*addresses, ", "), ") is an address of this machine; set ", o.host_key));
    }
    if (failure.empty()) {
      sockets.port = chosen;
      return sockets;
    }
  }
  close_all();
  if (any || o.first_port == o.last_port) {
    return absl::UnavailableError(absl::StrCat(failure, ": is the port in use? set ", o.port_key));
  }
  return absl::UnavailableError(absl::StrCat(o.what, " cannot listen on ", o.host,
                                             ": every port of ", o.first_port, "-", o.last_port,
                                             " is in use; set ", o.port_key));
}

}  // namespace sluice
