// sluice-rest-bench: how the REST server holds up under many connections (the figures).
// A real sluice-jobmanager on 127.0.0.1 (defaults but the ports), and a client here that drives
// it from one epoll loop:
//   1. throughput: 1, 64 and 1,000 concurrent keep-alive clients, each sending GET
//      /jobs/overview again as soon as its answer is read: requests per second, p50 and p99;
//   2. one request beside many connections: sequential GET /jobs/overview, each on a new
//      connection and on one kept-alive connection, alone, beside 1,000 idle connections, and
//      beside 1,000 slow ones (each sends a byte of a request every second). The ratios to
//      "alone" are the figure; absolute times vary with the machine.
// Figures only: no pass or fail.
//
//   sluice-rest-bench [--seconds 3] [--requests 400] [--connections 1000] [--bin-dir DIR]
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "bench_util.h"
#include "common/status_macros.h"

namespace sluice::bench {
namespace {

using namespace std::chrono_literals;

struct Options {
  double seconds = 3;
  int requests = 400;
  int connections = 1000;
  std::string bin_dir;
};

const std::string kRequest = "GET /jobs/overview HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

// A blocking connection to 127.0.0.1:port with TCP_NODELAY; -1 when it fails.
int Connect(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// The length of the first whole response in `buf` (headers and Content-Length bytes), 0 when
// it is not all there yet.
size_t ResponseLength(const std::string& buf) {
  size_t end = buf.find("\r\n\r\n");
  if (end == std::string::npos) return 0;
  size_t at = buf.find("Content-Length: ");
  size_t length = 0;
  if (at != std::string::npos && at < end) {
    (void)absl::SimpleAtoi(buf.substr(at + 16, buf.find("\r\n", at) - at - 16), &length);
  }
  return buf.size() >= end + 4 + length ? end + 4 + length : 0;
}

struct Figures {
  int64_t requests = 0;
  int64_t failures = 0;
  double seconds = 0;
  std::vector<double> latencies_ms;
};

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

// `clients` keep-alive connections, each with one request outstanding, for `seconds`.
Figures Load(int port, int clients, double seconds) {
  Figures f;
  struct Client {
    int fd = -1;
    std::string in;
    Clock::time_point sent;
  };
  std::vector<Client> cs(static_cast<size_t>(clients));
  int ep = ::epoll_create1(EPOLL_CLOEXEC);
  for (size_t i = 0; i < cs.size(); ++i) {
    cs[i].fd = Connect(port);
    if (cs[i].fd < 0) {
      ++f.failures;
      continue;
    }
    epoll_event e{};
    e.events = EPOLLIN;
    e.data.u64 = i;
    ::epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &e);
  }
  const auto t0 = Clock::now();
  for (auto& c : cs) {
    if (c.fd < 0) continue;
    c.sent = Clock::now();
    if (::send(c.fd, kRequest.data(), kRequest.size(), MSG_NOSIGNAL) < 0) ++f.failures;
  }
  std::vector<epoll_event> events(1024);
  char buf[65536];
  int open = clients - static_cast<int>(f.failures);
  while (open > 0) {
    int n = ::epoll_wait(ep, events.data(), static_cast<int>(events.size()), 1000);
    if (n <= 0 && SecondsSince(t0) > seconds + 10) break;  // answers stopped coming
    const bool more = SecondsSince(t0) < seconds;
    for (int k = 0; k < n; ++k) {
      Client& c = cs[events[k].data.u64];
      ssize_t got = ::recv(c.fd, buf, sizeof buf, 0);
      if (got <= 0) {
        ++f.failures;
        ::close(c.fd);
        c.fd = -1;
        --open;
        continue;
      }
      c.in.append(buf, static_cast<size_t>(got));
      size_t len = ResponseLength(c.in);
      if (len == 0) continue;
      auto now = Clock::now();
      if (c.in.compare(0, 12, "HTTP/1.1 200") == 0) {
        ++f.requests;
        f.latencies_ms.push_back(std::chrono::duration<double, std::milli>(now - c.sent).count());
      } else {
        ++f.failures;
      }
      c.in.erase(0, len);
      if (more) {
        c.sent = now;
        ::send(c.fd, kRequest.data(), kRequest.size(), MSG_NOSIGNAL);
      } else {
        ::close(c.fd);
        c.fd = -1;
        --open;
      }
    }
  }
  f.seconds = SecondsSince(t0);
  for (auto& c : cs) {
    if (c.fd >= 0) ::close(c.fd);
  }
  ::close(ep);
  return f;
}

// `count` requests one after another: each on a new connection (`fresh`), or all on one.
Figures Sequential(int port, int count, bool fresh) {
  Figures f;
  int fd = fresh ? -1 : Connect(port);
  char buf[65536];
  const auto t0 = Clock::now();
  for (int i = 0; i < count; ++i) {
    auto start = Clock::now();
    if (fd < 0) fd = Connect(port);
    bool ok = fd >= 0 && ::send(fd, kRequest.data(), kRequest.size(), MSG_NOSIGNAL) > 0;
    std::string in;
    while (ok && ResponseLength(in) == 0) {
      ssize_t got = ::recv(fd, buf, sizeof buf, 0);
      if (got <= 0) ok = false;
      if (got > 0) in.append(buf, static_cast<size_t>(got));
    }
    if (ok && in.compare(0, 12, "HTTP/1.1 200") == 0) {
      ++f.requests;
      f.latencies_ms.push_back(
          std::chrono::duration<double, std::milli>(Clock::now() - start).count());
    } else {
      ++f.failures;
    }
    if (fresh || !ok) {
      if (fd >= 0) ::close(fd);
      fd = -1;
    }
  }
  if (fd >= 0) ::close(fd);
  f.seconds = SecondsSince(t0);
  return f;
}

// Connections held open beside the measured ones: idle (nothing sent), or slow (a byte of a
// request every second, from a thread of their own).
class Crowd {
 public:
  Crowd(int port, int count, bool slow) {
    for (int i = 0; i < count; ++i) {
      int fd = Connect(port);
      if (fd >= 0) fds_.push_back(fd);
    }
    if (slow) {
      dripper_ = std::thread([this] {
        size_t at = 0;
        while (!stop_) {
          for (int fd : fds_) ::send(fd, kRequest.data() + at, 1, MSG_NOSIGNAL | MSG_DONTWAIT);
          at = (at + 1) % (kRequest.size() - 1);  // never the last byte: never a whole request
          for (int i = 0; i < 10 && !stop_; ++i) std::this_thread::sleep_for(100ms);
        }
      });
    }
  }
  ~Crowd() {
    stop_ = true;
    if (dripper_.joinable()) dripper_.join();
    for (int fd : fds_) ::close(fd);
  }
  size_t size() const { return fds_.size(); }

 private:
  std::vector<int> fds_;
  std::atomic<bool> stop_{false};
  std::thread dripper_;
};

absl::Status Run(const Options& o) {
  // Ours and (inherited) the JobManager's: a thousand connections each.
  rlimit r{};
  ::getrlimit(RLIMIT_NOFILE, &r);
  r.rlim_cur = r.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &r);

  char tmpl[] = "/tmp/sluice-rest-bench-XXXXXX";
  if (!::mkdtemp(tmpl)) return absl::InternalError("mkdtemp failed");
  const std::string dir = tmpl;
  std::unique_ptr<Daemon> jm;
  int rest_port = 0;
  for (int attempt = 0; attempt < 3 && !jm; ++attempt) {
    ASSIGN_OR_RETURN(int rpc_port, FreePort());
    ASSIGN_OR_RETURN(rest_port, FreePort());
    ASSIGN_OR_RETURN(jm, Daemon::Spawn(o.bin_dir + "/sluice-jobmanager",
                                       {"-D", "jobmanager.bind-host=127.0.0.1", "-D",
                                        absl::StrCat("jobmanager.rpc.port=", rpc_port), "-D",
                                        "rest.bind-address=127.0.0.1", "-D",
                                        absl::StrCat("rest.port=", rest_port)},
                                       dir + "/jobmanager.log"));
    for (int i = 0; i < 100 && jm->Alive(); ++i) {
      int fd = Connect(rest_port);
      if (fd >= 0) {
        ::close(fd);
        break;
      }
      std::this_thread::sleep_for(50ms);
    }
    if (!jm->Alive()) jm.reset();
  }
  if (!jm) return absl::UnavailableError("sluice-jobmanager did not stay up");
  std::printf("sluice-jobmanager pid %d, REST on 127.0.0.1:%d (log %s)\n\n", jm->pid(), rest_port,
              jm->log().c_str());
  Sequential(rest_port, 50, true);  // warm up

  std::printf(
      "1. Throughput of GET /jobs/overview, keep-alive clients each with one request "
      "outstanding, %.0f s each\n",
      o.seconds);
  std::printf("   %-8s %12s %10s %10s %9s\n", "clients", "requests/s", "p50 ms", "p99 ms",
              "failures");
  for (int clients : {1, 64, o.connections}) {
    Figures f = Load(rest_port, clients, o.seconds);
    std::printf("   %-8d %12.0f %10.3f %10.3f %9lld\n", clients,
                static_cast<double>(f.requests) / f.seconds, Percentile(f.latencies_ms, 0.5),
                Percentile(f.latencies_ms, 0.99), static_cast<long long>(f.failures));
    std::fflush(stdout);
  }

  std::printf("\n2. One request at a time (%d each), beside other connections\n", o.requests);
  std::printf("   %-24s %-12s %10s %10s %10s %12s %9s\n", "beside", "connection", "p50 ms",
              "p99 ms", "max ms", "p99 / alone", "failures");
  double alone[2] = {0, 0};
  for (int crowd_kind = 0; crowd_kind < 3; ++crowd_kind) {
    std::unique_ptr<Crowd> crowd;
    std::string label = "nothing (alone)";
    if (crowd_kind > 0) {
      crowd = std::make_unique<Crowd>(rest_port, o.connections, crowd_kind == 2);
      label = absl::StrCat(crowd->size(), crowd_kind == 1 ? " idle" : " slow (1 B/s)");
      std::this_thread::sleep_for(crowd_kind == 2 ? 2s : 500ms);
    }
    for (int fresh = 1; fresh >= 0; --fresh) {
      Figures f = Sequential(rest_port, o.requests, fresh == 1);
      double p99 = Percentile(f.latencies_ms, 0.99);
      if (crowd_kind == 0) alone[fresh] = p99;
      std::printf("   %-24s %-12s %10.3f %10.3f %10.3f %11.2fx %9lld\n", label.c_str(),
                  fresh ? "new" : "kept alive", Percentile(f.latencies_ms, 0.5), p99,
                  Percentile(f.latencies_ms, 1.0), alone[fresh] > 0 ? p99 / alone[fresh] : 0.0,
                  static_cast<long long>(f.failures));
      std::fflush(stdout);
    }
  }
  if (!jm->Alive()) return absl::InternalError("sluice-jobmanager exited during the run");
  auto status = ProcStatus(jm->pid());
  std::printf("\nsluice-jobmanager afterwards: %lld threads, VmHWM %lld kB\n",
              static_cast<long long>(status["Threads"]), static_cast<long long>(status["VmHWM"]));
  jm->Stop();
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return absl::OkStatus();
}

}  // namespace
}  // namespace sluice::bench

int main(int argc, char** argv) {
  sluice::bench::Options o;
  o.bin_dir = std::filesystem::path(argv[0]).parent_path().string();
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "sluice-rest-bench: %s needs a value\n", a.c_str());
        std::exit(1);
      }
      return argv[++i];
    };
    bool ok = true;
    if (a == "--seconds") {
      ok = absl::SimpleAtod(value(), &o.seconds) && o.seconds > 0;
    } else if (a == "--requests") {
      ok = absl::SimpleAtoi(value(), &o.requests) && o.requests > 0;
    } else if (a == "--connections") {
      ok = absl::SimpleAtoi(value(), &o.connections) && o.connections > 0;
    } else if (a == "--bin-dir") {
      o.bin_dir = value();
    } else {
      ok = false;
    }
    if (!ok) {
      std::fprintf(stderr,
                   "usage: sluice-rest-bench [--seconds 3] [--requests 400] [--connections 1000] "
                   "[--bin-dir DIR]\n(bad or unknown argument '%s')\n",
                   a.c_str());
      return 1;
    }
  }
  absl::Status s = sluice::bench::Run(o);
  if (!s.ok()) {
    std::fprintf(stderr, "sluice-rest-bench: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  return 0;
}
