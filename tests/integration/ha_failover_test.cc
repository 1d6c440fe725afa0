// High availability with real processes: a ZooKeeper server, two JobManagers contending for
// leadership and a TaskManager following the leader published in ZooKeeper, all on 127.0.0.1
// with ports chosen at run time, stopped by pid.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>

#include <chrono>
#include <regex>

#include "absl/strings/str_cat.h"
#include "client/job_client.h"
#include "integration/harness.h"
#include "integration/harness_ha.h"

namespace sluice::itest {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

constexpr int kSessionMs = 2000;

class HaFailoverTest : public ::testing::Test {
 protected:
  void SetUp() override { SLUICE_ASSERT_OK(ha_.StartZooKeeper()); }
  void TearDown() override {
    if (HasFailure()) ha_.DumpLogs();
  }
  std::vector<std::string> Args(const std::string& binary, std::vector<std::string> extra = {}) {
    return ha_.Args(binary, extra);
  }
  ChildProcess* Start(const std::string& binary, const std::string& name) {
    return ha_.Start(binary, name);
  }
  std::string Log(const std::string& name) { return ha_.Log(name); }
  std::string LeaderAddress(const std::string& name) { return ha_.LeaderAddress(name); }

  HaCluster ha_{kSessionMs};
  const std::string& dir_ = ha_.dir();
};

TEST_F(HaFailoverTest, StandbyTakesOverAndTheTaskManagerFollows) {
  auto a = Start("sluice-jobmanager", "jm-a");
  ASSERT_NE(a, nullptr);
  ASSERT_TRUE(WaitUntil([&] { return !LeaderAddress("jm-a").empty() || !a->Running(); }, 30s));
  std::string addr_a = LeaderAddress("jm-a");
  ASSERT_FALSE(addr_a.empty()) << Log("jm-a");
  auto b = Start("sluice-jobmanager", "jm-b");
  ASSERT_NE(b, nullptr);
  ASSERT_TRUE(WaitUntil(
      [&] { return Log("jm-b").find("contending for leadership") != std::string::npos; }, 30s));
  auto tm = Start("sluice-taskmanager", "tm");
  ASSERT_NE(tm, nullptr);
  ASSERT_TRUE(WaitUntil(
      [&] { return Log("tm").find("registered at JobManager " + addr_a) != std::string::npos; },
      30s))
      << Log("tm");
  EXPECT_TRUE(LeaderAddress("jm-b").empty());  // a standby
  // The standby's REST port sends clients to the leader's REST API.
  std::smatch m;
  std::string log_b = Log("jm-b");
  ASSERT_TRUE(std::regex_search(log_b, m, std::regex("standby REST at http://[^:]+:(\\d+)/")))
      << log_b;
  std::smatch leader_rest;
  std::string log_a = Log("jm-a");
  ASSERT_TRUE(std::regex_search(log_a, leader_rest, std::regex("\\(REST (http://\\S+)\\)")));
  httplib::Client standby("127.0.0.1", std::stoi(m[1].str()));
  auto res = standby.Get("/overview");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 307);
  EXPECT_EQ(res->get_header_value("Location"), leader_rest[1].str() + "/overview");

  auto killed = std::chrono::steady_clock::now();
  a->Signal(SIGKILL);
  ASSERT_TRUE(a->WaitForExit(10s));
  ASSERT_TRUE(WaitUntil([&] { return !LeaderAddress("jm-b").empty() || !b->Running(); },
                        std::chrono::milliseconds(kSessionMs) + 20s));
  std::string addr_b = LeaderAddress("jm-b");
  ASSERT_FALSE(addr_b.empty());
  auto leads = std::chrono::steady_clock::now();
  ASSERT_TRUE(WaitUntil(
      [&] { return Log("tm").find("registered at JobManager " + addr_b) != std::string::npos; },
      30s))
      << Log("tm");
  auto registered = std::chrono::steady_clock::now();
  std::cout << "kill -9 of the leader -> standby leads: "
            << std::chrono::duration_cast<std::chrono::milliseconds>(leads - killed).count()
            << " ms; -> TaskManager registered there: "
            << std::chrono::duration_cast<std::chrono::milliseconds>(registered - killed).count()
            << " ms (session timeout " << kSessionMs << " ms)\n";
  JobClient client(addr_b, 10s);
  auto overview = client.Overview();
  ASSERT_TRUE(overview.ok()) << overview.status();
  EXPECT_EQ(overview->task_managers_size(), 1);
  EXPECT_TRUE(tm->Running());
  EXPECT_TRUE(b->Running());
  // The CLI finds the new leader in ZooKeeper, without -m.
  CommandResult list = RunCli({"list", "-D", "high-availability.type=zookeeper", "-D",
                               "high-availability.zookeeper.quorum=" + ha_.zookeeper().quorum(),
                               "-D", "high-availability.storageDir=" + dir_ + "/ha"},
                              dir_, 30s);
  EXPECT_EQ(list.exit_code, 0) << list.Describe();
  EXPECT_THAT(list.out, HasSubstr("No running jobs")) << list.Describe();
  tm->Stop();
  EXPECT_EQ(b->Stop(), 0);
}

TEST_F(HaFailoverTest, SubmissionWithoutALeaderFailsClearly) {
  // ZooKeeper runs, no JobManager: the CLI waits the connection timeout for a leader, then says
  // there is none, naming where it looked.
  std::vector<std::string> args{"run", "-d"};
  std::vector<std::string> flags = ha_.CliFlags();
  args.insert(args.end(), flags.begin(), flags.end());
  args.insert(args.end(), {"-D", "high-availability.zookeeper.client.connection-timeout=1 s",
                           TestJobLibrary("sequence_job")});
  CommandResult r = RunCli(args, dir_, 30s);
  EXPECT_NE(r.exit_code, 0) << r.Describe();
  EXPECT_THAT(r.err, HasSubstr("no JobManager leads the cluster")) << r.Describe();
  EXPECT_THAT(r.err, HasSubstr(ha_.zookeeper().quorum())) << r.Describe();
}

TEST_F(HaFailoverTest, BadInputIsAClearError) {
  struct Case {
    std::vector<std::string> extra;
    int exit_code;
    std::string message;
  };
  std::string nobody = absl::StrCat("127.0.0.1:", FreePort());
  for (const Case& c : std::vector<Case>{
           {{"high-availability.zookeeper.quorum=" + nobody,
             "high-availability.zookeeper.client.connection-timeout=500 ms"},
            1,
            nobody},
           {{"high-availability.zookeeper.quorum=zk-without-port"},
            2,
            "high-availability.zookeeper.quorum"},
           {{"high-availability.jobmanager.port=70000"}, 2, "high-availability.jobmanager.port"},
           {{"high-availability.storageDir=/proc/sluice-cannot-write"},
            1,
            "high-availability.storageDir"},
       }) {
    for (const char* binary : {"sluice-jobmanager", "sluice-taskmanager"}) {
      // The TaskManager does not check the storage folder (it never writes there).
      if (std::string(binary) == "sluice-taskmanager" &&
          c.message == "high-availability.storageDir") {
        continue;
      }
      CommandResult r = RunCommand(Args(binary, c.extra), dir_, 30s);
      EXPECT_EQ(r.exit_code, c.exit_code) << binary << " " << c.extra[0] << "\n" << r.Describe();
      EXPECT_THAT(r.err, HasSubstr(c.message)) << binary << " " << c.extra[0];
    }
  }
}

}  // namespace
}  // namespace sluice::itest
