#include "common/grpc_listener.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>
#include <grpcpp/support/server_interceptor.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/internal_tls.h"
#include "common/net.h"
#include "spdlog/spdlog.h"

namespace sluice {
namespace {

// Connections watched at once; beyond, a connection is served but not watched (a flood of
// connections that never call must not double the descriptors it takes).
constexpr size_t kMaxWatched = 1024;

// How long after a watched connection ends its verdict waits: gRPC logs a refused handshake and
// then shuts the connection down, but the peer may hang up first.
constexpr auto kVerdictDelay = std::chrono::milliseconds(200);
// A refusal gRPC logged is matched to a connection that ended at most this long after it.
constexpr auto kRefusalBeforeEnd = std::chrono::seconds(1);
// Refusals kept for matching: a flood of them must not grow memory.
constexpr size_t kMaxRefusals = 1024;

using Clock = std::chrono::steady_clock;

struct Refusal {
  Clock::time_point at;
  std::string reason;
};

// The refused handshakes gRPC logged that no connection has been matched to yet, oldest first.
struct RefusalLog {
  absl::Mutex mu;
  std::deque<Refusal> unmatched ABSL_GUARDED_BY(mu);
};

RefusalLog& Refusals() {
  static auto* log = new RefusalLog();
  return *log;
}

// "[address]:port" for an IPv6 address as text (a numeric %scope allowed), in one canonical
// form whoever wrote it; an IPv4-mapped address as the IPv4 peer of a dual-stack socket it is.
std::string CanonicalIpv6(std::string address, const std::string& port) {
  std::string scope;
  if (size_t percent = address.find('%'); percent != std::string::npos) {
    scope = address.substr(percent);
    address.resize(percent);
  }
  in6_addr a6{};
  if (::inet_pton(AF_INET6, address.c_str(), &a6) == 1) {
    if (IN6_IS_ADDR_V4MAPPED(&a6) && scope.empty()) {
      char v4[INET_ADDRSTRLEN] = {};
      ::inet_ntop(AF_INET, &a6.s6_addr[12], v4, sizeof v4);
      return absl::StrCat(v4, ":", port);
    }
    char canonical[INET6_ADDRSTRLEN] = {};
    ::inet_ntop(AF_INET6, &a6, canonical, sizeof canonical);
    address = canonical;
  }
  return absl::StrCat("[", address, scope, "]:", port);
}

}  // namespace

std::string GrpcListener::SocketAddress(const sockaddr_storage& addr, socklen_t len) {
  if (addr.ss_family == AF_INET6 && len >= sizeof(sockaddr_in6)) {
    // A scope as its number, as gRPC writes it (getnameinfo would name the interface).
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&addr);
    char host[INET6_ADDRSTRLEN] = {};
    ::inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
    std::string address = host;
    if (a->sin6_scope_id != 0) absl::StrAppend(&address, "%", a->sin6_scope_id);
    return CanonicalIpv6(address, std::to_string(ntohs(a->sin6_port)));
  }
  if (addr.ss_family == AF_INET && len >= sizeof(sockaddr_in)) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&addr);
    char host[INET_ADDRSTRLEN] = {};
    ::inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
    return absl::StrCat(host, ":", ntohs(a->sin_port));
  }
  return "an address of family " + std::to_string(addr.ss_family);
}

namespace {

// `s` with every %XX decoded (gRPC's peer names are URIs: "ipv6:%5B::1%5D:5000").
std::string PercentDecoded(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out.push_back(static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16)));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// Tells the listener of each call's peer, once the call is under way, while some connection
// awaits its first call; otherwise stays out of the call.
class CallObserver : public grpc::experimental::Interceptor {
 public:
  CallObserver(GrpcListener* listener, grpc::experimental::ServerRpcInfo* info)
      : listener_(listener), info_(info) {}
  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::POST_RECV_INITIAL_METADATA)) {
      listener_->SawCallFrom(info_->server_context()->peer());
    }
    methods->Proceed();
  }

 private:
  GrpcListener* listener_;
  grpc::experimental::ServerRpcInfo* info_;
};

class CallObserverFactory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit CallObserverFactory(GrpcListener* listener) : listener_(listener) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return listener_->AwaitsCalls() ? new CallObserver(listener_, info) : nullptr;
  }

 private:
  GrpcListener* listener_;
};

}  // namespace

void NoteRefusedHandshake(const std::string& reason) {
  RefusalLog& log = Refusals();
  absl::MutexLock lock(&log.mu);
  if (log.unmatched.size() >= kMaxRefusals) log.unmatched.pop_front();
  log.unmatched.push_back({Clock::now(), reason});
}

std::optional<std::string> MatchRefusedHandshake(Clock::time_point accepted,
                                                 Clock::time_point ended) {
  RefusalLog& log = Refusals();
  absl::MutexLock lock(&log.mu);
  // Refusals older than any connection still to end are of connections matched otherwise.
  while (!log.unmatched.empty() &&
         log.unmatched.front().at < Clock::now() - 2 * kRefusalBeforeEnd - kVerdictDelay) {
    log.unmatched.pop_front();
  }
  // The refusal closest in time to the end: gRPC shuts the connection down right after its line.
  auto best = log.unmatched.end();
  for (auto it = log.unmatched.begin(); it != log.unmatched.end(); ++it) {
    if (it->at < accepted || it->at < ended - kRefusalBeforeEnd || it->at > ended + kVerdictDelay) {
      continue;
    }
    auto distance = [&](const Refusal& r) { return r.at > ended ? r.at - ended : ended - r.at; };
    if (best == log.unmatched.end() || distance(*it) < distance(*best)) best = it;
  }
  if (best != log.unmatched.end()) {
    std::string reason = std::move(best->reason);
    log.unmatched.erase(best);
    return reason;
  }
  return std::nullopt;
}

std::string GrpcListener::PeerAddress(const std::string& grpc_peer) {
  const std::string peer = PercentDecoded(grpc_peer);
  if (absl::StartsWith(peer, "ipv4:")) return peer.substr(5);
  if (!absl::StartsWith(peer, "ipv6:")) return peer;
  const size_t open = peer.find('['), close = peer.rfind(']');
  if (open == std::string::npos || close == std::string::npos || close < open ||
      peer.compare(close, 2, "]:") != 0) {
    return peer.substr(5);
  }
  return CanonicalIpv6(peer.substr(open + 1, close - open - 1), peer.substr(close + 2));
}

absl::StatusOr<std::unique_ptr<GrpcListener>> GrpcListener::Bind(const std::string& host, int port,
                                                                 const std::string& host_key,
                                                                 const std::string& port_key,
                                                                 const std::string& server_name) {
  const int wake_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_fd < 0) {
    return absl::ResourceExhaustedError(
        absl::StrCat(server_name, ": cannot make an eventfd: ", std::strerror(errno)));
  }
  auto sockets = ListenOnHost(ListenOptions{.what = server_name,
                                            .host = host,
                                            .host_key = host_key,
                                            .port_key = port_key,
                                            .first_port = port,
                                            .last_port = port});
  if (!sockets.ok()) {
    ::close(wake_fd);
    return sockets.status();
  }
  return std::unique_ptr<GrpcListener>(
      new GrpcListener(std::move(sockets->fds), sockets->port, server_name, wake_fd));
}

GrpcListener::GrpcListener(std::vector<int> fds, int port, std::string server_name, int wake_fd)
    : listen_fds_(std::move(fds)),
      port_(port),
      server_name_(std::move(server_name)),
      watch_(InternalTlsEnabled()),
      wake_fd_(wake_fd) {}

GrpcListener::~GrpcListener() {
  Stop();
  if (wake_fd_ >= 0) ::close(wake_fd_);
}

void GrpcListener::AddTo(grpc::ServerBuilder& builder) {
  acceptor_ = builder.experimental().AddExternalConnectionAcceptor(
      grpc::ServerBuilder::experimental_type::ExternalConnectionType::FROM_FD,
      InternalServerCredentials());
  if (watch_) {
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> observers;
    observers.push_back(std::make_unique<CallObserverFactory>(this));
    builder.experimental().SetInterceptorCreators(std::move(observers));
  }
}

void GrpcListener::Start() {
  thread_ = std::thread([this] { Run(); });
}

void GrpcListener::Stop() {
  if (stopping_.exchange(true)) return;
  if (thread_.joinable()) {
    const uint64_t one = 1;
    (void)!::write(wake_fd_, &one, sizeof one);
    thread_.join();
  }
  for (int fd : listen_fds_) ::close(fd);
  absl::MutexLock lock(&mu_);
  for (auto& [peer, p] : pending_) {
    if (p.dup_fd >= 0) ::close(p.dup_fd);
  }
  pending_.clear();
  pending_count_.store(0, std::memory_order_release);
}

void GrpcListener::SawCallFrom(const std::string& grpc_peer) {
  const std::string peer = PeerAddress(grpc_peer);
  absl::MutexLock lock(&mu_);
  auto it = pending_.find(peer);
  if (it == pending_.end() || it->second.called) return;
  it->second.called = true;
  const uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof one);  // the loop closes the duplicate
}

void GrpcListener::Run() {
  std::vector<pollfd> polled;
  std::vector<std::string> peers;  // of polled[1 + listen_fds_.size() + i]
  while (!stopping_.load()) {
    polled.clear();
    peers.clear();
    polled.push_back({wake_fd_, POLLIN, 0});
    for (int fd : listen_fds_) polled.push_back({fd, POLLIN, 0});
    int timeout_ms = -1;
    {
      absl::MutexLock lock(&mu_);
      for (const auto& [peer, p] : pending_) {
        if (p.called) continue;
        if (p.dup_fd < 0) {  // ended: its verdict is due soon
          timeout_ms = static_cast<int>(kVerdictDelay.count());
          continue;
        }
        polled.push_back({p.dup_fd, POLLRDHUP, 0});
        peers.push_back(peer);
      }
    }
    if (::poll(polled.data(), polled.size(), timeout_ms) < 0 && errno != EINTR) {
      spdlog::error("{}: the listener's poll failed: {}; trying again", server_name_,
                    std::strerror(errno));
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    if (polled[0].revents != 0) {
      uint64_t count;
      (void)!::read(wake_fd_, &count, sizeof count);
    }
    // Hang-ups first: a new connection from the same address and port is another entry.
    std::vector<std::string> hung_up;
    for (size_t i = 0; i < peers.size(); ++i) {
      if (polled[1 + listen_fds_.size() + i].revents != 0) hung_up.push_back(peers[i]);
    }
    Sweep(hung_up);
    for (size_t i = 0; i < listen_fds_.size() && !stopping_.load(); ++i) {
      if (polled[1 + i].revents != 0) Accept(listen_fds_[i]);
    }
  }
}

void GrpcListener::Accept(int listen_fd) {
  while (!stopping_.load()) {
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    int fd = ::accept4(listen_fd, reinterpret_cast<sockaddr*>(&addr), &len,
                       SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        // As gRPC's listener does: the connection waits in the backlog a second.
        spdlog::warn("{}: cannot accept a connection: {}", server_name_, std::strerror(errno));
        std::this_thread::sleep_for(std::chrono::seconds(1));
      }
      return;  // EAGAIN: none left
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (watch_) {
      absl::MutexLock lock(&mu_);
      if (pending_.size() < kMaxWatched) {
        int dup_fd = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
        if (dup_fd >= 0) {
          Pending& p = pending_[SocketAddress(addr, len)];
          if (p.dup_fd >= 0) ::close(p.dup_fd);  // an earlier connection from the same port
          p = Pending{.dup_fd = dup_fd, .accepted = Clock::now(), .called = false, .ended = {}};
          pending_count_.store(static_cast<int>(pending_.size()), std::memory_order_release);
        }
      }
    }
    grpc::experimental::ExternalConnectionAcceptor::NewConnectionParameters params;
    params.listener_fd = listen_fd;
    params.fd = fd;
    acceptor_->HandleNewConnection(&params);  // gRPC owns fd from here on
  }
}

void GrpcListener::Sweep(const std::vector<std::string>& hung_up) {
  const auto now = Clock::now();
  struct Verdict {
    std::string peer;
    Clock::time_point accepted, ended;
  };
  std::vector<Verdict> verdicts;
  {
    absl::MutexLock lock(&mu_);
    // The duplicate goes at once: while it lives, the socket outlives gRPC's close.
    for (const std::string& peer : hung_up) {
      auto it = pending_.find(peer);
      if (it == pending_.end() || it->second.dup_fd < 0) continue;
      ::close(it->second.dup_fd);
      it->second.dup_fd = -1;
      it->second.ended = now;
    }
    for (auto it = pending_.begin(); it != pending_.end();) {
      Pending& p = it->second;
      const bool ended = p.dup_fd < 0;
      if (!p.called && !(ended && now - p.ended >= kVerdictDelay)) {
        ++it;
        continue;
      }
      if (!p.called) verdicts.push_back({it->first, p.accepted, p.ended});
      if (p.dup_fd >= 0) ::close(p.dup_fd);
      it = pending_.erase(it);
    }
    pending_count_.store(static_cast<int>(pending_.size()), std::memory_order_release);
  }
  // In the order they ended, which is the order of gRPC's refusals.
  std::sort(verdicts.begin(), verdicts.end(),
            [](const Verdict& a, const Verdict& b) { return a.ended < b.ended; });
  for (const Verdict& v : verdicts) {
    if (auto reason = MatchRefusedHandshake(v.accepted, v.ended)) {
      spdlog::warn("{}: refused the connection from {}: its TLS handshake failed ({})",
                   server_name_, v.peer, *reason);
    } else {
      spdlog::info("{}: the connection from {} ended before any call", server_name_, v.peer);
    }
  }
}

}  // namespace sluice
