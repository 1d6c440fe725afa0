// The listening side of a daemon's gRPC server. The listener binds and accepts the connections
// itself and hands each one to the server, so it knows every peer's address, which gRPC does not
// report for a connection it refuses: with internal TLS on, a connection that the server ends
// before its first call (a refused handshake: a peer without a certificate of the trusted CA, or
// one speaking plain text) is logged with the peer's address and gRPC's reason.
//
//   auto listener = GrpcListener::Bind("127.0.0.1", 0, "taskmanager.bind-host", "TaskManager");
//   grpc::ServerBuilder builder;
//   (*listener)->AddTo(builder);
//   ... register services ...
//   server = builder.BuildAndStart();
//   (*listener)->Start();                      // accepts from here on
//   ...
//   (*listener)->Stop();                       // before the server shuts down
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace grpc {
class ServerBuilder;
namespace experimental {
class ExternalConnectionAcceptor;
}
}  // namespace grpc

namespace sluice {

class GrpcListener {
 public:
  // Listens on every address `host` resolves to, all on one port: `port`, or one the system
  // picks when it is 0 (ListenOnHost). Errors name `host_key` and `port_key`, the configuration
  // keys of the host and the port. `server_name` names the server in logs.
  static absl::StatusOr<std::unique_ptr<GrpcListener>> Bind(const std::string& host, int port,
                                                            const std::string& host_key,
                                                            const std::string& port_key,
                                                            const std::string& server_name);
  ~GrpcListener();

  int port() const { return port_; }

  // Makes `builder`'s server take the connections this listener accepts, with the process's
  // internal credentials, and tell the listener of each call. Once, before BuildAndStart.
  void AddTo(grpc::ServerBuilder& builder);

  // Accepts connections from now on; after the server has started.
  void Start();
  // Stops accepting and closes the listening sockets; idempotent. Before the server shuts down.
  void Stop();

  // Called by the server for each call with gRPC's name of its peer ("ipv4:127.0.0.1:5000").
  void SawCallFrom(const std::string& grpc_peer);
  // False when no connection awaits its first call: a call need not name its peer.
  bool AwaitsCalls() const { return pending_count_.load(std::memory_order_acquire) > 0; }

  // "127.0.0.1:5000" or "[::1]:5000" for gRPC's peer name ("ipv6:%5B::1%5D:5000") and for a
  // socket address: the same text for the same peer, for comparing and logging. Exposed for
  // tests.
  static std::string PeerAddress(const std::string& grpc_peer);
  static std::string SocketAddress(const sockaddr_storage& addr, socklen_t len);

 private:
  // A connection handed to the server that has not carried a call yet: the listener keeps a
  // duplicate of its socket to see when it ends, and after that, for a while, when it ended.
  struct Pending {
    int dup_fd = -1;  // -1 once it ended
    std::chrono::steady_clock::time_point accepted;
    bool called = false;
    std::chrono::steady_clock::time_point ended;
  };

  GrpcListener(std::vector<int> fds, int port, std::string server_name, int wake_fd);
  void Run();
  void Accept(int listen_fd);
  // Notes the connections of `hung_up` as ended (closing their duplicates), and forgets those
  // that carried a call or ended a while ago, logging each of the latter: as refused when gRPC
  // logged a refused handshake as it ended, else as ended before any call.
  void Sweep(const std::vector<std::string>& hung_up);

  const std::vector<int> listen_fds_;
  const int port_;
  const std::string server_name_;
  const bool watch_;   // internal TLS is on: watch for refused handshakes
  const int wake_fd_;  // an eventfd that wakes the accept loop
  std::unique_ptr<grpc::experimental::ExternalConnectionAcceptor> acceptor_;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  // Pending connections, for the calls' fast path: when 0, a call needs no lookup.
  std::atomic<int> pending_count_{0};
  absl::Mutex mu_;
  std::map<std::string, Pending> pending_ ABSL_GUARDED_BY(mu_);  // by peer address
};

// A refused TLS handshake, as gRPC's log line gives it (common/internal_tls.cc forwards those
// lines): its reason, kept for a while to be matched to the connection it ended.
void NoteRefusedHandshake(const std::string& reason);
// The reason of the oldest refusal not matched yet that gRPC logged after `accepted` and shortly
// before `ended` (or just after), taken out; nullopt when there is none.
std::optional<std::string> MatchRefusedHandshake(std::chrono::steady_clock::time_point accepted,
                                                 std::chrono::steady_clock::time_point ended);

}  // namespace sluice
