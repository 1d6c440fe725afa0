// Host names of listeners. A name may stand for several addresses: on a standard Debian
// /etc/hosts "localhost" is ::1 and 127.0.0.1, with ::1 first. A listener bound to a name listens
// on every address the name resolves to, all on one port (as gRPC's servers do), so that clients
// reach it whichever address they try; and a name that does not resolve is reported as such, not
// as a port in use.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace sluice {

// The numeric addresses `host` resolves to for TCP, in getaddrinfo's order (the order clients
// try them), without duplicates. `host` is a name, an IPv4 address or an IPv6 address (brackets
// allowed). When it does not resolve, the error names it and `config_key`, when given: the
// configuration key the name came from.
absl::StatusOr<std::vector<std::string>> ResolveHost(const std::string& host,
                                                     const std::string& config_key = "");

// True when a TCP socket can be bound to the numeric `address` on this machine (on a port the
// system picks): false for ::1 where IPv6 is off, or for another machine's address.
bool CanBindAddress(const std::string& address);

// Where a server listens, and the names its errors use.
struct ListenOptions {
  std::string what;      // the server, for messages: "REST server", "JobManager"
  std::string host;      // a name or a numeric address
  std::string host_key;  // the configuration keys the host and port came from
  std::string port_key;
  int first_port = 0;  // 0 (with last_port 0): any free port
  int last_port = 0;
};

// Listening sockets on every address `o.host` resolves to, all on one port: the first of the
// range free on every address (with port 0, one the system picks). SO_REUSEADDR, never
// SO_REUSEPORT (a second server would share the port), IPv6 sockets IPv6 only except the
// wildcard: 0.0.0.0 and :: listen on every address of both families (one dual-stack socket,
// or IPv4 only without IPv6), as gRPC's listeners did. Non-blocking and close-on-exec. An address
// that is not this machine's (::1 without IPv6) is skipped with a warning. Unavailable, naming the
// host, the ports and the keys, when no port is free.
struct ListeningSockets {
  std::vector<int> fds;  // the caller's to close
  int port = 0;
};
absl::StatusOr<ListeningSockets> ListenOnHost(const ListenOptions& o);

}  // namespace sluice
