// LeaderElection and LeaderRetriever against a real single-node ZooKeeper server
// (integration/zookeeper_dev.h), with several contenders in this process, each with its own
// client (its own session), as JobManagers on different hosts would have.
#include "jobmanager/ha/leader_election.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "integration/zookeeper_dev.h"

namespace sluice::ha {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

itest::ZooKeeperDev* server = nullptr;
std::atomic<int> path_counter{0};

// A TCP relay between one client and the server that can stop passing bytes without closing
// anything: to the client and to the server, the other side simply falls silent, as in a network
// partition. Connections made while it is blocked are accepted and left silent too.
class SilenceableRelay {
 public:
  explicit SilenceableRelay(int target_port) : target_port_(target_port) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(listen_fd_, 16);
    socklen_t len = sizeof a;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    threads_.emplace_back([this] { AcceptLoop(); });
  }
  ~SilenceableRelay() {
    stop_ = true;
    for (auto& t : threads_) t.join();
    ::close(listen_fd_);
    for (int fd : fds_) ::close(fd);
  }
  int port() const { return port_; }
  void set_silent(bool s) { silent_ = s; }

 private:
  void AcceptLoop() {
    while (!stop_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (client < 0) continue;
      int upstream = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      a.sin_port = htons(static_cast<uint16_t>(target_port_));
      if (::connect(upstream, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        ::close(client);
        ::close(upstream);
        continue;
      }
      fds_.push_back(client);
      fds_.push_back(upstream);
      threads_.emplace_back([this, client, upstream] { Pump(client, upstream); });
    }
  }
  // Passes bytes both ways until either side closes; while silent, reads nothing.
  void Pump(int a, int b) {
    char buf[16384];
    while (!stop_) {
      if (silent_) {
        std::this_thread::sleep_for(20ms);
        continue;
      }
      pollfd p[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
      if (::poll(p, 2, 50) <= 0) continue;
      for (int i = 0; i < 2; ++i) {
        if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        ssize_t n = ::recv(p[i].fd, buf, sizeof buf, 0);
        if (n <= 0) {
          ::shutdown(a, SHUT_RDWR);
          ::shutdown(b, SHUT_RDWR);
          return;
        }
        (void)::send(i == 0 ? b : a, buf, n, MSG_NOSIGNAL);
      }
    }
  }

  int target_port_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<bool> silent_{false};
  std::vector<int> fds_;  // touched by the accept thread only, then by the destructor
  std::vector<std::thread> threads_;
};

// One contender: its own session, its election, and what it was told.
struct Contender {
  std::string name;
  std::unique_ptr<ZooKeeperClient> client;
  std::unique_ptr<LeaderElection> election;
  absl::Mutex mu;
  bool leads ABSL_GUARDED_BY(mu) = false;
  int grants ABSL_GUARDED_BY(mu) = 0;
  Clock::time_point granted_at ABSL_GUARDED_BY(mu), revoked_at ABSL_GUARDED_BY(mu);

  bool Leads() {
    absl::MutexLock lock(&mu);
    return leads;
  }
  bool WaitLeads(bool want, std::chrono::milliseconds timeout) {
    absl::MutexLock lock(&mu);
    auto cond = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu) { return leads == want; };
    return mu.AwaitWithTimeout(absl::Condition(&cond), absl::FromChrono(timeout));
  }
};

class LeaderElectionTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server = new itest::ZooKeeperDev();
    absl::Status s = server->Start();
    ASSERT_TRUE(s.ok()) << s;
  }
  static void TearDownTestSuite() {
    delete server;
    server = nullptr;
  }
  void SetUp() override { path_ = "/sluice/test" + std::to_string(++path_counter) + "/leader/jm"; }

  std::unique_ptr<ZooKeeperClient> Client(int port = 0, int64_t session_ms = 3000) {
    ZooKeeperClientOptions o;
    o.quorum = "127.0.0.1:" + std::to_string(port ? port : server->port());
    o.session_timeout_ms = session_ms;
    o.connection_timeout_ms = 10000;
    auto c = ZooKeeperClient::Connect(o);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? std::move(*c) : nullptr;
  }

  std::unique_ptr<Contender> Join(const std::string& name, int port = 0) {
    auto c = std::make_unique<Contender>();
    c->name = name;
    c->client = Client(port);
    if (!c->client) return nullptr;
    Contender* raw = c.get();
    LeaderElectionCallbacks cb;
    cb.grant = [raw](const std::string&) -> std::optional<LeaderInfo> {
      absl::MutexLock lock(&raw->mu);
      raw->leads = true;
      ++raw->grants;
      raw->granted_at = Clock::now();
      return std::nullopt;  // publish the address given to Start
    };
    cb.revoke = [raw] {
      absl::MutexLock lock(&raw->mu);
      raw->leads = false;
      raw->revoked_at = Clock::now();
    };
    LeaderInfo info{name + ":6123", "http://" + name + ":8081", ""};
    auto e = LeaderElection::Start(c->client.get(), path_, info, cb);
    EXPECT_TRUE(e.ok()) << e.status();
    if (!e.ok()) return nullptr;
    c->election = std::move(*e);
    return c;
  }

  static int Leaders(const std::vector<std::unique_ptr<Contender>>& cs) {
    int n = 0;
    for (const auto& c : cs) n += c->Leads() ? 1 : 0;
    return n;
  }

  std::string path_;
};

TEST_F(LeaderElectionTest, OneOfThreeLeadsAndPublishesItsAddress) {
  auto reader_client = Client();
  ASSERT_NE(reader_client, nullptr);
  auto retriever = LeaderRetriever::Start(reader_client.get(), path_);
  ASSERT_TRUE(retriever.ok()) << retriever.status();
  std::vector<std::unique_ptr<Contender>> cs;
  for (const char* n : {"jm-a", "jm-b", "jm-c"}) {
    cs.push_back(Join(n));
    ASSERT_NE(cs.back(), nullptr);
  }
  ASSERT_TRUE(cs[0]->WaitLeads(true, 10s));  // the first to join has the lowest node
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(Leaders(cs), 1);
  EXPECT_FALSE(cs[1]->election->HasLeadership());
  EXPECT_TRUE(cs[0]->election->HasLeadership());
  auto leader = (*retriever)->WaitForLeader(10000);
  ASSERT_TRUE(leader.ok()) << leader.status();
  EXPECT_EQ(leader->rpc_address, "jm-a:6123");
  EXPECT_EQ(leader->rest_url, "http://jm-a:8081");
  EXPECT_EQ(leader->session_id, cs[0]->election->leadership_id());
}

TEST_F(LeaderElectionTest, WhenTheLeaderLeavesTheNextLeadsAndIsFollowed) {
  auto reader_client = Client();
  ASSERT_NE(reader_client, nullptr);
  absl::Mutex mu;
  std::vector<std::string> seen;  // rpc addresses the retriever reported, "" for none
  auto retriever =
      LeaderRetriever::Start(reader_client.get(), path_, [&](const std::optional<LeaderInfo>& l) {
        absl::MutexLock lock(&mu);
        seen.push_back(l ? l->rpc_address : "");
      });
  ASSERT_TRUE(retriever.ok());
  std::vector<std::unique_ptr<Contender>> cs;
  for (const char* n : {"jm-a", "jm-b", "jm-c"}) cs.push_back(Join(n));
  ASSERT_TRUE(cs[0]->WaitLeads(true, 10s));
  ASSERT_TRUE((*retriever)->WaitForLeader(10000).ok());
  auto left = Clock::now();
  cs[0].reset();  // leaves the election: its node goes at once, no session timeout to wait
  ASSERT_TRUE(cs[1]->WaitLeads(true, 5s));
  EXPECT_LT(Clock::now() - left, 2s);
  EXPECT_FALSE(cs[2]->Leads());
  auto deadline = Clock::now() + 10s;
  while (Clock::now() < deadline &&
         (!(*retriever)->leader() || (*retriever)->leader()->rpc_address != "jm-b:6123")) {
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_TRUE((*retriever)->leader().has_value());
  EXPECT_EQ((*retriever)->leader()->rpc_address, "jm-b:6123");
  absl::MutexLock lock(&mu);
  EXPECT_EQ(seen.front(), "jm-a:6123");
  EXPECT_EQ(seen.back(), "jm-b:6123");
}

TEST_F(LeaderElectionTest, AnExpiredLeaderStepsDownAndRejoinsAsFollower) {
  std::vector<std::unique_ptr<Contender>> cs;
  for (const char* n : {"jm-a", "jm-b"}) cs.push_back(Join(n));
  ASSERT_TRUE(cs[0]->WaitLeads(true, 10s));
  std::string first_latch = cs[0]->election->latch_node();
  ASSERT_TRUE(cs[0]->client->ExpireSessionForTesting().ok());
  // The server has closed the session, and with it the latch: the follower is told at once,
  // though under a sanitizer on a loaded machine the steps take seconds.
  ASSERT_TRUE(cs[1]->WaitLeads(true, 30s));
  EXPECT_FALSE(cs[0]->Leads());
  // The old leader joins again, behind the new one.
  auto deadline = Clock::now() + 10s;
  while (Clock::now() < deadline &&
         (cs[0]->election->latch_node().empty() || cs[0]->election->latch_node() == first_latch)) {
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_NE(cs[0]->election->latch_node(), first_latch);
  EXPECT_FALSE(cs[0]->election->latch_node().empty());
  std::this_thread::sleep_for(300ms);
  EXPECT_FALSE(cs[0]->Leads());
  EXPECT_TRUE(cs[1]->Leads());
}

// The leader is cut off from ZooKeeper (a partition, or a paused process): it must stop acting
// as leader before the server expires its session and another contender is elected.
TEST_F(LeaderElectionTest, APartitionedLeaderStepsDownBeforeAnotherLeads) {
  SilenceableRelay relay(server->port());
  auto a = Join("jm-a", relay.port());
  ASSERT_NE(a, nullptr);
  ASSERT_TRUE(a->WaitLeads(true, 10s));
  auto b = Join("jm-b");
  ASSERT_NE(b, nullptr);
  std::this_thread::sleep_for(200ms);
  ASSERT_FALSE(b->Leads());
  int64_t session_ms = a->client->negotiated_session_timeout_ms();
  auto cut = Clock::now();
  relay.set_silent(true);
  ASSERT_TRUE(b->WaitLeads(true, std::chrono::milliseconds(session_ms) + 5s));
  EXPECT_FALSE(a->Leads());
  {
    absl::MutexLock la(&a->mu);
    absl::MutexLock lb(&b->mu);
    EXPECT_LT(a->revoked_at, b->granted_at) << "two leaders at once";
    EXPECT_LT(a->revoked_at - cut, std::chrono::milliseconds(session_ms));
    EXPECT_LT(b->granted_at - cut, std::chrono::milliseconds(session_ms) + 3s);
  }
  // The partition heals: the old leader's session is gone; it joins again as a follower.
  relay.set_silent(false);
  auto deadline = Clock::now() + 15s;
  while (Clock::now() < deadline && a->client->state() != SessionState::kConnected) {
    std::this_thread::sleep_for(20ms);
  }
  std::this_thread::sleep_for(500ms);
  EXPECT_FALSE(a->Leads());
  EXPECT_TRUE(b->Leads());
  absl::MutexLock la(&a->mu);
  EXPECT_EQ(a->grants, 1);
}

}  // namespace
}  // namespace sluice::ha
