// ZooKeeperClient against a real single-node ZooKeeper server (integration/zookeeper_dev.h) on a
// free 127.0.0.1 port, started once for the whole program.
#include "jobmanager/ha/zookeeper_client.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "integration/zookeeper_dev.h"

namespace sluice::ha {
namespace {

using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;
using namespace std::chrono_literals;

itest::ZooKeeperDev* server = nullptr;

class ZooKeeperClientTest : public ::testing::Test {
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
  static std::unique_ptr<ZooKeeperClient> Client(int64_t session_ms = 4000) {
    ZooKeeperClientOptions o;
    o.quorum = server->quorum();
    o.session_timeout_ms = session_ms;
    o.connection_timeout_ms = 10000;
    auto c = ZooKeeperClient::Connect(o);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? std::move(*c) : nullptr;
  }
};

// Collects events from the event thread.
template <typename T>
class Inbox {
 public:
  void Push(T v) {
    absl::MutexLock lock(&mu_);
    items_.push_back(std::move(v));
  }
  // Waits up to `timeout` until `pred` holds for some received item.
  bool WaitFor(std::function<bool(const T&)> pred, std::chrono::milliseconds timeout) {
    absl::MutexLock lock(&mu_);
    auto found = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      for (const T& v : items_) {
        if (pred(v)) return true;
      }
      return false;
    };
    return mu_.AwaitWithTimeout(absl::Condition(&found), absl::FromChrono(timeout));
  }
  std::vector<T> items() {
    absl::MutexLock lock(&mu_);
    return items_;
  }

 private:
  absl::Mutex mu_;
  std::vector<T> items_ ABSL_GUARDED_BY(mu_);
};

TEST_F(ZooKeeperClientTest, CreateGetSetDeleteChildren) {
  auto c = Client();
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->state(), SessionState::kConnected);
  EXPECT_NE(c->session_id(), 0);
  ASSERT_TRUE(c->CreateParents("/crud/a/b").ok());
  ASSERT_TRUE(c->CreateParents("/crud/a/b").ok());  // idempotent
  auto created = c->Create("/crud/a/b/n", "hello", CreateMode::kPersistent);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(*created, "/crud/a/b/n");
  auto data = c->Get("/crud/a/b/n");
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(*data, "hello");
  ASSERT_TRUE(c->Set("/crud/a/b/n", std::string(100000, 'x')).ok());
  data = c->Get("/crud/a/b/n");
  ASSERT_TRUE(data.ok());
  EXPECT_EQ(data->size(), 100000u);  // larger than the first read buffer
  auto seq1 = c->Create("/crud/a/s-", "", CreateMode::kPersistentSequential);
  auto seq2 = c->Create("/crud/a/s-", "", CreateMode::kPersistentSequential);
  ASSERT_TRUE(seq1.ok() && seq2.ok());
  EXPECT_LT(*seq1, *seq2);
  auto kids = c->Children("/crud/a");
  ASSERT_TRUE(kids.ok());
  EXPECT_THAT(*kids, UnorderedElementsAre("b", seq1->substr(8), seq2->substr(8)));
  EXPECT_TRUE(*c->Exists("/crud/a/b/n"));
  ASSERT_TRUE(c->Delete("/crud/a/b/n").ok());
  EXPECT_FALSE(*c->Exists("/crud/a/b/n"));
}

TEST_F(ZooKeeperClientTest, ErrorsNameTheNodeAndTheQuorum) {
  auto c = Client();
  ASSERT_NE(c, nullptr);
  auto missing = c->Get("/nowhere/x");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("/nowhere/x"));
  EXPECT_THAT(missing.status().message(), HasSubstr(server->quorum()));
  EXPECT_EQ(c->Delete("/nowhere/x").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(c->Create("/nowhere/x", "", CreateMode::kPersistent).status().code(),
            absl::StatusCode::kNotFound);  // no parent
  ASSERT_TRUE(c->CreateParents("/errors/n").ok());
  EXPECT_EQ(c->Create("/errors/n", "", CreateMode::kPersistent).status().code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(c->Delete("/errors").code(), absl::StatusCode::kFailedPrecondition);  // not empty
  EXPECT_EQ(c->Set("/errors/n", "v", 7).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(c->Get("no-slash").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(ZooKeeperClientTest, EphemeralNodesGoWithTheirSession) {
  Inbox<WatchEvent> events;  // before the clients: it must outlive their event threads
  auto owner = Client();
  auto other = Client();
  ASSERT_NE(owner, nullptr);
  ASSERT_NE(other, nullptr);
  ASSERT_TRUE(owner->CreateParents("/eph").ok());
  auto e = owner->Create("/eph/e-", "", CreateMode::kEphemeralSequential);
  ASSERT_TRUE(e.ok()) << e.status();
  ASSERT_TRUE(*other->Exists(*e, [&](const WatchEvent& ev) { events.Push(ev); }));
  owner.reset();  // closing the session removes its ephemeral nodes at once
  EXPECT_TRUE(events.WaitFor(
      [&](const WatchEvent& ev) { return ev.type == WatchEvent::Type::kDeleted && ev.path == *e; },
      5s));
  EXPECT_FALSE(*other->Exists(*e));
}

TEST_F(ZooKeeperClientTest, WatchesFireOnceOnTheEventThread) {
  Inbox<WatchEvent> events;  // before the client: they must outlive its event thread
  std::atomic<int> calls{0};
  auto c = Client();
  ASSERT_NE(c, nullptr);
  ASSERT_TRUE(c->CreateParents("/watch").ok());
  // A callback may call the client (it runs on the client's own thread, not the C client's).
  auto record = [&](const WatchEvent& ev) {
    ++calls;
    (void)c->Exists("/watch");
    events.Push(ev);
  };
  ASSERT_FALSE(*c->Exists("/watch/n", record));
  ASSERT_TRUE(c->Create("/watch/n", "1", CreateMode::kPersistent).ok());
  EXPECT_TRUE(events.WaitFor(
      [](const WatchEvent& ev) { return ev.type == WatchEvent::Type::kCreated; }, 5s));
  ASSERT_TRUE(c->Get("/watch/n", record).ok());
  ASSERT_TRUE(c->Set("/watch/n", "2").ok());
  EXPECT_TRUE(events.WaitFor(
      [](const WatchEvent& ev) { return ev.type == WatchEvent::Type::kChanged; }, 5s));
  ASSERT_TRUE(c->Children("/watch", record).ok());
  ASSERT_TRUE(c->Create("/watch/m", "", CreateMode::kEphemeral).ok());
  EXPECT_TRUE(events.WaitFor(
      [](const WatchEvent& ev) {
        return ev.type == WatchEvent::Type::kChildren && ev.path == "/watch";
      },
      5s));
  ASSERT_TRUE(c->Set("/watch/n", "3").ok());  // no watch left on it
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(calls.load(), 3);
}

TEST_F(ZooKeeperClientTest, SuspendedWhileTheServerIsAwayThenConnectedAgain) {
  // Before the client: the event thread may still report states while the client closes.
  Inbox<SessionState> states;
  auto c = Client(/*session_ms=*/3000);
  ASSERT_NE(c, nullptr);
  c->AddSessionListener([&](SessionState s) { states.Push(s); });
  int64_t session = c->session_id();
  server->Pause();
  bool suspended = states.WaitFor([](SessionState s) { return s == SessionState::kSuspended; }, 5s);
  server->Resume();
  EXPECT_TRUE(suspended);
  EXPECT_TRUE(states.WaitFor([](SessionState s) { return s == SessionState::kConnected; }, 10s));
  EXPECT_EQ(c->session_id(), session);  // the same session: it did not expire
}

TEST_F(ZooKeeperClientTest, AnExpiredSessionIsReplaced) {
  // Before the client: they must outlive its event thread.
  Inbox<std::pair<SessionState, int64_t>> states;  // with the session id seen then
  std::atomic<bool> fired{false};
  auto c = Client();
  ASSERT_NE(c, nullptr);
  c->AddSessionListener([&](SessionState s) { states.Push({s, c->session_id()}); });
  int64_t session = c->session_id();
  ASSERT_TRUE(c->CreateParents("/expiry").ok());
  auto e = c->Create("/expiry/e", "", CreateMode::kEphemeral);
  ASSERT_TRUE(e.ok());
  ASSERT_FALSE(*c->Exists("/expiry/never", [&](const WatchEvent&) { fired = true; }));
  ASSERT_TRUE(c->ExpireSessionForTesting().ok());
  EXPECT_TRUE(states.WaitFor([](const auto& s) { return s.first == SessionState::kExpired; }, 10s));
  EXPECT_TRUE(states.WaitFor(
      [&](const auto& s) { return s.first == SessionState::kConnected && s.second != session; },
      10s));
  EXPECT_NE(c->session_id(), session);
  EXPECT_FALSE(*c->Exists("/expiry/e"));  // went with the old session
  // A watch of the dead session is gone: creating its node does not call it.
  ASSERT_TRUE(c->Create("/expiry/never", "", CreateMode::kEphemeral).ok());
  std::this_thread::sleep_for(300ms);
  EXPECT_FALSE(fired.load());
}

TEST_F(ZooKeeperClientTest, UnreachableQuorumIsAClearError) {
  ZooKeeperClientOptions o;
  o.quorum = "127.0.0.1:" + std::to_string(itest::FreePort());  // nobody listens there
  o.connection_timeout_ms = 1000;
  auto start = std::chrono::steady_clock::now();
  auto c = ZooKeeperClient::Connect(o);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(c.status().message(), HasSubstr(o.quorum));
  EXPECT_THAT(c.status().message(), HasSubstr("high-availability.zookeeper.quorum"));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

TEST_F(ZooKeeperClientTest, MalformedQuorumIsAClearError) {
  for (std::string quorum : {"", "no-port-here", "127.0.0.1:notaport"}) {
    ZooKeeperClientOptions o;
    o.quorum = quorum;
    o.connection_timeout_ms = 1000;
    auto c = ZooKeeperClient::Connect(o);
    ASSERT_FALSE(c.ok()) << quorum;
    EXPECT_THAT(c.status().message(), HasSubstr("high-availability.zookeeper.quorum")) << quorum;
    if (!quorum.empty()) {
      EXPECT_THAT(c.status().message(), HasSubstr(quorum)) << quorum;
    }
  }
}

}  // namespace
}  // namespace sluice::ha
