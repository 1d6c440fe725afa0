// High availability's recovery, with real processes (tests/integration/harness_ha.h): a
// checkpointed keyed job (the sequence-count pipeline, tests/jobs/chaos_count_job.cc, exactly-once
// file sink) survives the loss of the leading JobManager and ends with exact per-key counts:
//   - kill -9 of the leader with a standby running, on both state backends; the old leader then
//     comes back as a standby;
//   - the leader stopped with SIGTERM: the standby leads at once;
//   - the leader killed twice in a row;
//   - both JobManagers and every TaskManager killed, then started again;
//   - ZooKeeper down for longer than the session timeout: the leader steps down, the job stops,
//     and it resumes when ZooKeeper is back;
//   - the leader paused (SIGSTOP) past the session timeout while a standby takes over, then
//     resumed: it writes no checkpoint and commits nothing after that;
//   - a finished job is not run again by a new leader.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <regex>

#include "absl/strings/str_cat.h"
#include "client/job_client.h"
#include "common/job_states.h"
#include "integration/harness_ha.h"

namespace sluice::itest {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

// Longer than the 2 s the failover test measures with: on a loaded 2-core machine ZooKeeper's JVM
// can be silent for over a second, and a lost session moves leadership on its own.
constexpr int kSessionMs = 4000;
constexpr int64_t kKeys = 20;
constexpr int64_t kRate = 500;  // records/s over all keys

class HaRecoveryTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    SLUICE_ASSERT_OK(ha_.StartZooKeeper());
    output_ = ha_.dir() + "/out";
    std::filesystem::create_directories(ha_.dir() + "/markers");
  }
  void TearDown() override {
    if (HasFailure()) ha_.DumpLogs();
  }

  // Starts JobManager `name` and waits until it contends (and, with `leads`, leads).
  std::string StartJobManager(const std::string& name, bool leads) {
    int before = ha_.Grants(name);
    ChildProcess* p = ha_.Start("sluice-jobmanager", name);
    if (!p) return "";
    if (leads) return ha_.WaitForLeadership(name, before, 30s);
    EXPECT_TRUE(WaitUntil(
        [&] {
          return ha_.Log(name).find("contending for leadership") != std::string::npos ||
                 !p->Running();
        },
        30s));
    return "";
  }
  void StartTaskManagers(int n) {
    for (int i = 1; i <= n; ++i) {
      ha_.Start("sluice-taskmanager", absl::StrCat("tm-", i), {"taskmanager.numberOfTaskSlots=2"});
    }
  }
  // Waits until `n` TaskManagers are registered at the JobManager at `address`.
  bool TaskManagersAt(const std::string& address, int n) {
    JobClient client(address, 5s);
    return WaitUntil(
        [&] {
          auto o = client.Overview();
          return o.ok() && o->task_managers_size() >= n;
        },
        30s);
  }

  // Submits the job through the CLI, which finds the leader in ZooKeeper.
  std::string Submit(int64_t per_key, std::vector<std::string> more_flags = {}) {
    std::vector<std::string> args{"run", "-d", "-p", "2"};
    std::vector<std::string> ha = ha_.CliFlags();
    args.insert(args.end(), ha.begin(), ha.end());
    for (const std::string& kv :
         {std::string("execution.checkpointing.interval=200ms"),
          "state.checkpoints.dir=" + ha_.dir() + "/checkpoints", "state.backend.type=" + GetParam(),
          std::string("restart-strategy.type=fixed-delay"),
          std::string("restart-strategy.fixed-delay.attempts=20"),
          std::string("restart-strategy.fixed-delay.delay=200ms")}) {
      args.push_back("-D");
      args.push_back(kv);
    }
    args.insert(args.end(), more_flags.begin(), more_flags.end());
    args.push_back(TestJobLibrary("chaos_count_job"));
    for (const std::string& a :
         {std::string("--keys"), absl::StrCat(kKeys), std::string("--per-key"),
          absl::StrCat(per_key), std::string("--rate"), absl::StrCat(kRate),
          std::string("--output"), output_, std::string("--marker-dir"), ha_.dir() + "/markers"}) {
      args.push_back(a);
    }
    CommandResult r = RunCli(args, ha_.dir(), 60s);
    static const std::regex kSubmitted(R"(Job has been submitted with JobID ([0-9a-f]{32}))");
    std::smatch m;
    EXPECT_TRUE(r.exit_code == 0 && std::regex_search(r.out, m, kSubmitted)) << r.Describe();
    return m.size() > 1 ? m[1].str() : "";
  }

  // The job's state at the JobManager at `address` once `done` holds (or the last one seen).
  // (When that JobManager no longer answers, the one that leads now is asked: on a loaded
  // machine a ZooKeeper session may be lost and leadership move without the test's doing.)
  absl::StatusOr<proto::JobStatus> WaitForJob(
      const std::string& address, const std::string& job,
      const std::function<bool(const proto::JobStatus&)>& done, std::chrono::milliseconds timeout) {
    std::string at = address;
    auto client = std::make_unique<JobClient>(at, 5s);
    absl::StatusOr<proto::JobStatus> last = absl::NotFoundError("never polled");
    WaitUntil(
        [&] {
          last = client->GetJob(job);
          if (!last.ok() && last.status().code() == absl::StatusCode::kUnavailable) {
            std::string now = ha_.CurrentLeaderAddress();
            if (!now.empty() && now != at) {
              at = now;
              client = std::make_unique<JobClient>(at, 5s);
            }
          }
          return last.ok() && done(*last);
        },
        timeout, 50ms);
    return last;
  }
  static bool Running(const proto::JobStatus& s) {
    if (s.state() != proto::JOB_RUNNING) return false;
    for (const auto& t : s.tasks()) {
      if (t.state() != proto::TASK_RUNNING && t.state() != proto::TASK_FINISHED) return false;
    }
    return s.tasks_size() > 0;
  }
  static bool Ended(const proto::JobStatus& s) { return IsTerminalJobState(s.state()); }
  // Waits until the leader at `address` has completed a checkpoint of `job` newer than `after`.
  int64_t WaitForCheckpoint(const std::string& name, const std::string& job, int64_t after) {
    int64_t newest = 0;
    static const std::regex re("job ([0-9a-f]{32}): checkpoint (\\d+) complete");
    WaitUntil(
        [&] {
          std::string log = ha_.Log(name);
          for (auto it = std::sregex_iterator(log.begin(), log.end(), re);
               it != std::sregex_iterator(); ++it) {
            if ((*it)[1].str() == job) newest = std::max<int64_t>(newest, std::stoll((*it)[2]));
          }
          return newest > after;
        },
        30s, 50ms);
    return newest;
  }
  // The checkpoint JobManager `name` last recovered `job` at (-1: never, 0: without one).
  int64_t RecoveredAt(const std::string& name, const std::string& job) {
    std::string log = ha_.Log(name);
    const std::regex re("job " + job + " \\(.*\\) recovered(?: at checkpoint (\\d+)| \\(no)");
    int64_t at = -1;
    for (auto it = std::sregex_iterator(log.begin(), log.end(), re); it != std::sregex_iterator();
         ++it) {
      at = (*it)[1].matched ? std::stoll((*it)[1].str()) : 0;
    }
    return at;
  }
  void ExpectExactOutput(int64_t per_key) {
    EXPECT_TRUE(SequenceCountOutputIsCorrect(output_, kKeys, per_key));
  }

  // jm-a leading (and jm-b as a standby with `standby`), `task_managers` TaskManagers, and the
  // job submitted with `per_key`; with `checkpoints`, waits until jm-a completed more than that
  // many of its checkpoints. Sets a_ (jm-a's address), job_ and checkpoint_ (the newest seen).
  void StartWithJob(int64_t per_key, bool standby, int task_managers, int64_t checkpoints) {
    a_ = StartJobManager("jm-a", /*leads=*/true);
    ASSERT_FALSE(a_.empty());
    if (standby) StartJobManager("jm-b", /*leads=*/false);
    StartTaskManagers(task_managers);
    ASSERT_TRUE(TaskManagersAt(a_, task_managers));
    job_ = Submit(per_key);
    ASSERT_FALSE(job_.empty());
    if (checkpoints > 0) {
      checkpoint_ = WaitForCheckpoint("jm-a", job_, checkpoints);
      ASSERT_GT(checkpoint_, checkpoints);
    }
  }

  HaCluster ha_{kSessionMs};
  std::string output_;
  std::string a_, job_;
  int64_t checkpoint_ = 0;
};

TEST_P(HaRecoveryTest, KilledLeaderIsReplacedAndTheJobEndsExactlyOnce) {
  constexpr int64_t kPerKey = 150;  // 3000 records: 6 s
  ASSERT_NO_FATAL_FAILURE(StartWithJob(kPerKey, /*standby=*/true, 2, 2));
  std::string a = a_, job = job_;
  int64_t checkpoint = checkpoint_;

  auto killed = std::chrono::steady_clock::now();
  ha_.Kill("jm-a");
  std::string b = ha_.WaitForLeadership("jm-b", 0, std::chrono::milliseconds(kSessionMs) + 30s);
  ASSERT_FALSE(b.empty());
  auto running = WaitForJob(b, job, Running, 60s);
  ASSERT_TRUE(running.ok() && Running(*running)) << running.status();
  auto again = std::chrono::steady_clock::now();
  std::cout << "kill -9 of the leader -> job RUNNING under the new leader: "
            << std::chrono::duration_cast<std::chrono::milliseconds>(again - killed).count()
            << " ms (session timeout " << kSessionMs << " ms, " << GetParam() << ")\n";
  // From the newest checkpoint the old leader completed (or one it completed after we looked).
  EXPECT_GE(RecoveredAt("jm-b", job), checkpoint);

  // The old leader comes back as a standby.
  StartJobManager("jm-a", /*leads=*/false);
  EXPECT_EQ(ha_.Grants("jm-a"), 1);

  auto end = WaitForJob(b, job, Ended, 120s);
  ASSERT_TRUE(end.ok()) << end.status();
  EXPECT_EQ(end->state(), proto::JOB_FINISHED) << end->failure();
  ExpectExactOutput(kPerKey);
  EXPECT_EQ(ha_.Grants("jm-a"), 1);
}

TEST_P(HaRecoveryTest, StoppedLeaderHandsOverAtOnce) {
  if (GetParam() != "hashmap") GTEST_SKIP() << "the backend plays no part here";
  constexpr int64_t kPerKey = 200;
  ASSERT_NO_FATAL_FAILURE(StartWithJob(kPerKey, /*standby=*/true, 2, 1));
  std::string a = a_, job = job_;
  int64_t checkpoint = checkpoint_;
  // SIGTERM (stop-cluster.sh, a rolling restart): its JobManager stops before it leaves the
  // election, and then the standby leads without waiting for a session timeout.
  EXPECT_EQ(ha_.process("jm-a")->Stop(), 0);
  std::string b = ha_.WaitForLeadership("jm-b", 0, 30s);
  ASSERT_FALSE(b.empty());
  EXPECT_GE(RecoveredAt("jm-b", job), checkpoint);
  // The stopped leader completed no checkpoint after the one the new leader recovered at.
  EXPECT_LE(WaitForCheckpoint("jm-a", job, 0), RecoveredAt("jm-b", job));
  auto end = WaitForJob(b, job, Ended, 120s);
  ASSERT_TRUE(end.ok()) << end.status();
  EXPECT_EQ(end->state(), proto::JOB_FINISHED) << end->failure();
  ExpectExactOutput(kPerKey);
}

TEST_P(HaRecoveryTest, LeaderKilledTwiceInARow) {
  constexpr int64_t kPerKey = 500;  // 10000 records: 20 s, two failovers of a session each
  ASSERT_NO_FATAL_FAILURE(StartWithJob(kPerKey, /*standby=*/true, 2, 1));
  std::string a = a_, job = job_;
  ha_.Kill("jm-a");
  StartJobManager("jm-a", false);  // back as a standby
  std::string b = ha_.WaitForLeadership("jm-b", 0, std::chrono::milliseconds(kSessionMs) + 30s);
  ASSERT_FALSE(b.empty());
  ASSERT_TRUE(WaitForJob(b, job, Running, 60s).ok());
  ASSERT_GT(WaitForCheckpoint("jm-b", job, 0), 0);
  ha_.Kill("jm-b");
  a = ha_.WaitForLeadership("jm-a", 1, std::chrono::milliseconds(kSessionMs) + 30s);
  ASSERT_FALSE(a.empty());
  auto end = WaitForJob(a, job, Ended, 120s);
  EXPECT_GT(RecoveredAt("jm-b", job), 0);
  EXPECT_GE(RecoveredAt("jm-a", job), RecoveredAt("jm-b", job));
  ASSERT_TRUE(end.ok()) << end.status();
  EXPECT_EQ(end->state(), proto::JOB_FINISHED) << end->failure();
  ExpectExactOutput(kPerKey);
}

TEST_P(HaRecoveryTest, JobManagersAndTaskManagersAllKilledAndStartedAgain) {
  constexpr int64_t kPerKey = 200;  // 4000 records: 8 s
  ASSERT_NO_FATAL_FAILURE(StartWithJob(kPerKey, /*standby=*/true, 2, 1));
  std::string a = a_, job = job_;
  // The leader with every TaskManager, then the standby: nothing of the cluster is left.
  for (const char* name : {"jm-a", "tm-1", "tm-2", "jm-b"}) ha_.Kill(name);
  int grants_a = ha_.Grants("jm-a"), grants_b = ha_.Grants("jm-b");
  StartJobManager("jm-a", false);
  StartJobManager("jm-b", false);
  StartTaskManagers(2);
  std::string leader;
  ASSERT_TRUE(WaitUntil(
      [&] {
        if (ha_.Grants("jm-a") > grants_a) leader = ha_.LeaderAddress("jm-a");
        if (ha_.Grants("jm-b") > grants_b) leader = ha_.LeaderAddress("jm-b");
        return !leader.empty();
      },
      std::chrono::milliseconds(kSessionMs) + 30s));
  EXPECT_GT(std::max(RecoveredAt("jm-a", job), RecoveredAt("jm-b", job)), 1);
  auto end = WaitForJob(leader, job, Ended, 120s);
  ASSERT_TRUE(end.ok()) << end.status();
  EXPECT_EQ(end->state(), proto::JOB_FINISHED) << end->failure();
  ExpectExactOutput(kPerKey);
}

TEST_P(HaRecoveryTest, ZooKeeperOutageStopsTheJobUntilItIsBack) {
  if (GetParam() != "hashmap") GTEST_SKIP() << "the backend plays no part here";
  constexpr int64_t kPerKey = 150;
  ASSERT_NO_FATAL_FAILURE(StartWithJob(kPerKey, /*standby=*/false, 2, 1));
  std::string a = a_, job = job_;
  SLUICE_ASSERT_OK(ha_.zookeeper().Stop());
  ASSERT_TRUE(
      WaitUntil([&] { return ha_.Log("jm-a").find("leadership lost") != std::string::npos; },
                std::chrono::milliseconds(kSessionMs) + 20s));
  // Stepped down: it no longer serves the job.
  JobClient old(a, 2s);
  EXPECT_TRUE(WaitUntil([&] { return !old.GetJob(job).ok(); }, 10s));
  std::this_thread::sleep_for(std::chrono::milliseconds(kSessionMs));
  SLUICE_ASSERT_OK(ha_.zookeeper().Start());
  std::string again = ha_.WaitForLeadership("jm-a", 1, 60s);
  ASSERT_FALSE(again.empty());
  EXPECT_GT(RecoveredAt("jm-a", job), 1);
  auto end = WaitForJob(again, job, Ended, 120s);
  ASSERT_TRUE(end.ok()) << end.status();
  EXPECT_EQ(end->state(), proto::JOB_FINISHED) << end->failure();
  ExpectExactOutput(kPerKey);
  EXPECT_TRUE(ha_.process("jm-a")->Running());
}

TEST_P(HaRecoveryTest, PausedLeaderWritesNothingAfterANewOneTookOver) {
  if (GetParam() != "hashmap") GTEST_SKIP() << "the backend plays no part here";
  constexpr int64_t kPerKey = 150;
  ASSERT_NO_FATAL_FAILURE(StartWithJob(kPerKey, /*standby=*/true, 2, 1));
  std::string a = a_, job = job_;
  ChildProcess* pa = ha_.process("jm-a");
  pa->Signal(SIGSTOP);
  std::string b = ha_.WaitForLeadership("jm-b", 0, std::chrono::milliseconds(kSessionMs) + 30s);
  if (b.empty()) pa->Signal(SIGCONT);
  ASSERT_FALSE(b.empty());
  ASSERT_TRUE(WaitForJob(b, job, Running, 60s).ok());
  EXPECT_GT(RecoveredAt("jm-b", job), 1);
  const size_t log_before = ha_.Log("jm-a").size();
  pa->Signal(SIGCONT);
  ASSERT_TRUE(WaitUntil(
      [&] { return ha_.Log("jm-a").find("leadership lost", log_before) != std::string::npos; },
      20s));
  auto end = WaitForJob(b, job, Ended, 120s);
  ASSERT_TRUE(end.ok()) << end.status();
  EXPECT_EQ(end->state(), proto::JOB_FINISHED) << end->failure();
  ExpectExactOutput(kPerKey);
  // After it woke, the old leader completed no checkpoint (and so told no sink to commit).
  std::string after = ha_.Log("jm-a").substr(log_before);
  EXPECT_THAT(after, ::testing::Not(HasSubstr("complete ("))) << after;
  EXPECT_EQ(ha_.Grants("jm-a"), 1);
}

TEST_P(HaRecoveryTest, FinishedJobIsNotRunAgain) {
  if (GetParam() != "hashmap") GTEST_SKIP() << "the backend plays no part here";
  constexpr int64_t kPerKey = 50;
  ASSERT_NO_FATAL_FAILURE(StartWithJob(kPerKey, /*standby=*/true, 1, 0));
  std::string a = a_, job = job_;
  auto end = WaitForJob(a, job, Ended, 60s);
  ASSERT_TRUE(end.ok() && end->state() == proto::JOB_FINISHED) << end.status();
  // The end is recorded on the coordinator thread, after the state.
  ASSERT_TRUE(WaitUntil(
      [&] {
        return ha_.Log("jm-a").find(absl::StrCat(
                   "job ", job, ": its end (FINISHED) is recorded")) != std::string::npos;
      },
      30s));
  ha_.Kill("jm-a");
  std::string b = ha_.WaitForLeadership("jm-b", 0, std::chrono::milliseconds(kSessionMs) + 30s);
  ASSERT_FALSE(b.empty());
  std::this_thread::sleep_for(1s);
  JobClient client(b, 5s);
  auto jobs = client.ListJobs(/*include_terminated=*/true);
  ASSERT_TRUE(jobs.ok()) << jobs.status();
  EXPECT_TRUE(jobs->empty()) << jobs->size() << " jobs, the first " << (*jobs)[0].job_id();
  ExpectExactOutput(kPerKey);
}

INSTANTIATE_TEST_SUITE_P(Backends, HaRecoveryTest, ::testing::Values("hashmap", "rocksdb"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace sluice::itest
