// Host names of listeners: a name that does not resolve is reported as such (naming it and its
// configuration key), and a daemon bound to a name listens on every address the name resolves
// to. On a standard Debian /etc/hosts "localhost" is ::1 first and 127.0.0.1; clients that try
// 127.0.0.1 must reach the JobManager and its REST server all the same. Loopback only.
#include "common/net.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <iostream>

#include "common/config.h"
#include "common/grpc_listener.h"
#include "jobmanager/job_manager.h"
#include "loopback_config.h"
#include "taskmanager/task_manager.h"

namespace sluice {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

// A name under .invalid, which never resolves (RFC 2606).
constexpr char kNoSuchHost[] = "no-such-host.sluice.invalid";

// A connected TCP socket to the numeric address:port, or -1. Sends and receives time out after
// 5 s, so a test cannot hang on a listener that does not answer.
int ConnectTo(const std::string& address, int port) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  if (::getaddrinfo(address.c_str(), std::to_string(port).c_str(), &hints, &res) != 0) return -1;
  int fd = ::socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, res->ai_protocol);
  if (fd >= 0) {
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (::connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
      ::close(fd);
      fd = -1;
    }
  }
  ::freeaddrinfo(res);
  return fd;
}

bool Accepts(const std::string& address, int port) {
  int fd = ConnectTo(address, port);
  if (fd < 0) return false;
  ::close(fd);
  return true;
}

// The status line of GET `path` from address:port ("" when nothing answers).
std::string HttpStatusLine(const std::string& address, int port, const std::string& path) {
  int fd = ConnectTo(address, port);
  if (fd < 0) return "";
  std::string host = address.find(':') != std::string::npos ? "[" + address + "]" : address;
  std::string req = "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n";
  std::string reply;
  if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size())) {
    char buf[4096];
    while (reply.find("\r\n") == std::string::npos) {
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) break;
      reply.append(buf, static_cast<size_t>(n));
    }
  }
  ::close(fd);
  return reply.substr(0, reply.find("\r\n"));
}

// True when this machine has ::1 (IPv6 on the loopback interface).
bool HasIpv6Loopback() { return CanBindAddress("::1"); }

TEST(ResolveHostTest, NumericAddressesResolveToThemselves) {
  auto v4 = ResolveHost("127.0.0.1");
  ASSERT_TRUE(v4.ok()) << v4.status();
  EXPECT_THAT(*v4, ElementsAre("127.0.0.1"));
  auto v6 = ResolveHost("[::1]");
  ASSERT_TRUE(v6.ok()) << v6.status();
  EXPECT_THAT(*v6, ElementsAre("::1"));
}

TEST(ResolveHostTest, LocalhostResolvesToLoopbackAddressesOnly) {
  auto addresses = ResolveHost("localhost");
  ASSERT_TRUE(addresses.ok()) << addresses.status();
  ASSERT_FALSE(addresses->empty());
  for (const std::string& a : *addresses) {
    EXPECT_TRUE(a == "::1" || a.rfind("127.", 0) == 0) << a;
  }
  std::vector<std::string> sorted = *addresses;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(std::unique(sorted.begin(), sorted.end()), sorted.end()) << "duplicates";
}

TEST(ResolveHostTest, ANameThatDoesNotResolveIsNamedWithItsKey) {
  auto r = ResolveHost(kNoSuchHost, "jobmanager.bind-host");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr(kNoSuchHost));
  EXPECT_THAT(r.status().message(), HasSubstr("jobmanager.bind-host"));
  EXPECT_THAT(r.status().message(), HasSubstr("does not resolve"));
  EXPECT_FALSE(ResolveHost("").ok());
}

TEST(CanBindAddressTest, LoopbackYesForeignNo) {
  EXPECT_TRUE(CanBindAddress("127.0.0.1"));
  EXPECT_FALSE(CanBindAddress("192.0.2.1"));  // TEST-NET-1: never an address of this machine
  EXPECT_FALSE(CanBindAddress("not an address"));
}

// Each daemon's bind name: an unresolvable one fails with its name and key, not "port in use".
TEST(BindHostTest, JobManagerNamesABindHostThatDoesNotResolve) {
  Configuration conf = LoopbackConfig();
  ASSERT_TRUE(conf.Set("jobmanager.bind-host", kNoSuchHost).ok());
  auto jm = JobManager::Start(conf);
  ASSERT_FALSE(jm.ok());
  EXPECT_THAT(jm.status().message(), HasSubstr(kNoSuchHost));
  EXPECT_THAT(jm.status().message(), HasSubstr("jobmanager.bind-host"));
  EXPECT_THAT(jm.status().message(), Not(HasSubstr("port in use")));
}

TEST(BindHostTest, RestServerNamesABindAddressThatDoesNotResolve) {
  Configuration conf = LoopbackConfig();
  ASSERT_TRUE(conf.Set("rest.bind-address", kNoSuchHost).ok());
  auto jm = JobManager::Start(conf);
  ASSERT_FALSE(jm.ok());
  EXPECT_THAT(jm.status().message(), HasSubstr(kNoSuchHost));
  EXPECT_THAT(jm.status().message(), HasSubstr("rest.bind-address"));
  EXPECT_THAT(jm.status().message(), Not(HasSubstr("port in use")));
}

TEST(BindHostTest, TaskManagerNamesABindHostThatDoesNotResolve) {
  Configuration conf = LoopbackConfig();
  ASSERT_TRUE(conf.Set("jobmanager.rpc.port", "1").ok());  // never reached
  ASSERT_TRUE(conf.Set("taskmanager.bind-host", kNoSuchHost).ok());
  auto tm = TaskManager::Start(conf);
  ASSERT_FALSE(tm.ok());
  EXPECT_THAT(tm.status().message(), HasSubstr(kNoSuchHost));
  EXPECT_THAT(tm.status().message(), HasSubstr("taskmanager.bind-host"));
}

// The JobManager and its REST server on "localhost" answer on every address localhost resolves
// to, 127.0.0.1 among them, on one port each.
TEST(BindHostTest, LocalhostListensOnEveryAddressOfLocalhost) {
  auto addresses = ResolveHost("localhost");
  ASSERT_TRUE(addresses.ok()) << addresses.status();
  ASSERT_THAT(*addresses, Contains("127.0.0.1"));
  Configuration conf = LoopbackConfig();
  ASSERT_TRUE(conf.Set("jobmanager.bind-host", "localhost").ok());
  ASSERT_TRUE(conf.Set("rest.bind-address", "localhost").ok());
  auto jm = JobManager::Start(conf);
  ASSERT_TRUE(jm.ok()) << jm.status();
  int rest_port = (*jm)->rest_port();
  ASSERT_GT(rest_port, 0);
  bool ipv6 = false;
  for (const std::string& a : *addresses) {
    if (!CanBindAddress(a)) continue;  // ::1 on a machine without IPv6
    SCOPED_TRACE(a);
    ipv6 |= a == "::1";
    EXPECT_TRUE(Accepts(a, (*jm)->port())) << "JobManager gRPC port " << (*jm)->port();
    EXPECT_EQ(HttpStatusLine(a, rest_port, "/"), "HTTP/1.1 200 OK") << "REST port " << rest_port;
  }
  if (!ipv6) {
    std::cout << "[ NOTE     ] localhost does not resolve to ::1 here (or ::1 is off): only "
                 "127.0.0.1 was checked\n";
  }
  (*jm)->Shutdown();
}

TEST(BindHostTest, RestServerAnswersOnIpv6Loopback) {
  if (!HasIpv6Loopback()) GTEST_SKIP() << "this machine has no ::1";
  Configuration conf = LoopbackConfig();
  ASSERT_TRUE(conf.Set("rest.bind-address", "::1").ok());
  auto jm = JobManager::Start(conf);
  ASSERT_TRUE(jm.ok()) << jm.status();
  EXPECT_EQ(HttpStatusLine("::1", (*jm)->rest_port(), "/overview"), "HTTP/1.1 200 OK");
  (*jm)->Shutdown();
}

// A REST port taken on 127.0.0.1 fails the start with "port in use", naming the address, and
// leaves nothing listening on the other addresses of localhost.
TEST(BindHostTest, RestPortTakenOnOneAddressFailsAndLeavesNoListener) {
  int taken = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(taken, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(taken, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(taken, 1), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::getsockname(taken, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  int port = ntohs(addr.sin_port);

  Configuration conf = LoopbackConfig();
  ASSERT_TRUE(conf.Set("rest.bind-address", "localhost").ok());
  ASSERT_TRUE(conf.Set("rest.port", std::to_string(port)).ok());
  auto jm = JobManager::Start(conf);
  ASSERT_FALSE(jm.ok());
  EXPECT_THAT(jm.status().message(), HasSubstr("port in use"));
  EXPECT_THAT(jm.status().message(), HasSubstr("127.0.0.1"));
  if (HasIpv6Loopback()) {
    EXPECT_FALSE(Accepts("::1", port));
  }
  ::close(taken);
}

// The JobManager's gRPC port taken on 127.0.0.1: the start fails naming the address and the
// port's key, as the REST server's does (both listen through ListenOnHost).
TEST(BindHostTest, RpcPortTakenFailsNamingTheAddressAndKey) {
  auto taken = ListenOnHost(
      ListenOptions{.what = "test", .host = "127.0.0.1", .host_key = "", .port_key = ""});
  ASSERT_TRUE(taken.ok()) << taken.status();
  Configuration conf = LoopbackConfig();
  ASSERT_TRUE(conf.Set("jobmanager.rpc.port", std::to_string(taken->port)).ok());
  auto jm = JobManager::Start(conf);
  ASSERT_FALSE(jm.ok());
  EXPECT_THAT(jm.status().message(),
              HasSubstr("JobManager cannot listen on 127.0.0.1:" + std::to_string(taken->port)));
  EXPECT_THAT(jm.status().message(), HasSubstr("port in use? set jobmanager.rpc.port"));
  for (int fd : taken->fds) ::close(fd);
}

// Port 0 on "localhost": one port, listening on each of its addresses this machine has.
TEST(ListenOnHostTest, OnePortForEveryAddress) {
  auto sockets = ListenOnHost(
      ListenOptions{.what = "test", .host = "localhost", .host_key = "", .port_key = ""});
  ASSERT_TRUE(sockets.ok()) << sockets.status();
  ASSERT_GT(sockets->port, 0);
  EXPECT_FALSE(sockets->fds.empty());
  auto addresses = ResolveHost("localhost");
  ASSERT_TRUE(addresses.ok()) << addresses.status();
  for (const std::string& a : *addresses) {
    if (CanBindAddress(a)) {
      EXPECT_TRUE(Accepts(a, sockets->port)) << a;
    }
  }
  for (int fd : sockets->fds) ::close(fd);
}

// gRPC's names of peers, as the listener compares and logs them.
TEST(GrpcListenerTest, PeerAddressOfGrpcPeerNames) {
  EXPECT_EQ(GrpcListener::PeerAddress("ipv4:127.0.0.1:5000"), "127.0.0.1:5000");
  EXPECT_EQ(GrpcListener::PeerAddress("ipv6:%5B::1%5D:5000"), "[::1]:5000");  // as gRPC writes
  EXPECT_EQ(GrpcListener::PeerAddress("ipv6:[::1]:5000"), "[::1]:5000");
  EXPECT_EQ(GrpcListener::PeerAddress("ipv6:%5B0:0:0:0:0:0:0:1%5D:5000"), "[::1]:5000");
  EXPECT_EQ(GrpcListener::PeerAddress("ipv6:%5B::ffff:10.0.0.7%5D:5000"), "10.0.0.7:5000");
  EXPECT_EQ(GrpcListener::PeerAddress("ipv6:%5Bfe80::1%252%5D:5000"), "[fe80::1%2]:5000");
  EXPECT_EQ(GrpcListener::PeerAddress("ipv6:%5Bfe80::1%2512%5D:5000"), "[fe80::1%12]:5000");
  EXPECT_EQ(GrpcListener::PeerAddress("unix:/tmp/s"), "unix:/tmp/s");
}

// The listener's own name of an accepted socket's peer is gRPC's, decoded.
TEST(GrpcListenerTest, SocketAddressesNameThePeerAsGrpcDoes) {
  sockaddr_storage ss{};
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
  v4->sin_family = AF_INET;
  v4->sin_port = htons(5000);
  ASSERT_EQ(::inet_pton(AF_INET, "10.0.0.7", &v4->sin_addr), 1);
  EXPECT_EQ(GrpcListener::SocketAddress(ss, sizeof(sockaddr_in)),
            GrpcListener::PeerAddress("ipv4:10.0.0.7:5000"));
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  *v6 = sockaddr_in6{};
  v6->sin6_family = AF_INET6;
  v6->sin6_port = htons(5000);
  ASSERT_EQ(::inet_pton(AF_INET6, "::1", &v6->sin6_addr), 1);
  EXPECT_EQ(GrpcListener::SocketAddress(ss, sizeof(sockaddr_in6)),
            GrpcListener::PeerAddress("ipv6:%5B::1%5D:5000"));
  ASSERT_EQ(::inet_pton(AF_INET6, "::ffff:10.0.0.7", &v6->sin6_addr), 1);
  EXPECT_EQ(GrpcListener::SocketAddress(ss, sizeof(sockaddr_in6)), "10.0.0.7:5000");
  ASSERT_EQ(::inet_pton(AF_INET6, "fe80::1", &v6->sin6_addr), 1);
  v6->sin6_scope_id = 12;
  EXPECT_EQ(GrpcListener::SocketAddress(ss, sizeof(sockaddr_in6)),
            GrpcListener::PeerAddress("ipv6:%5Bfe80::1%2512%5D:5000"));
}

}  // namespace
}  // namespace sluice
