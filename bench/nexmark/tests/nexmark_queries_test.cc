// Every Nexmark query on a real local cluster (a JobManager and two TaskManagers of two slots),
// at parallelism 1 and 2, against its single-threaded baseline: the checksums (rows and the sum
// of their hashes) must be equal. And stateful queries with checkpoints, through the loss of a
// TaskManager and resumed at another parallelism: the restored jobs must still match.
//
// NEXMARK_JOBS_DIR (libnexmark_<q>.so) and NEXMARK_BASELINE (nexmark-baseline) come from
// bench/nexmark/CMakeLists.txt, beside the harness's variables.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "common/job_states.h"
#include "integration/harness.h"

namespace sluice::itest {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

// Generator settings of the tests: 40,000 events at 1,000 a second of event time (40 s: several
// windows of each kind), 10% held back up to 3 s, so the jobs see events out of order.
std::vector<std::string> GeneratorArgs(int64_t events, int64_t rate = 1000) {
  return {"--events",           std::to_string(events), "--rate",
          std::to_string(rate), "--prob-delayed-event", "0.1"};
}

struct Sum {
  int64_t rows = 0;
  uint64_t sum = 0;
  bool operator==(const Sum&) const = default;
};
std::ostream& operator<<(std::ostream& os, const Sum& s) {
  return os << s.rows << " rows, sum " << std::hex << s.sum << std::dec;
}

// The baseline's "rows R checksum H" from its output line.
::testing::AssertionResult BaselineSum(const std::string& query,
                                       const std::vector<std::string>& gen, const std::string& dir,
                                       Sum* out) {
  std::vector<std::string> argv{Env("NEXMARK_BASELINE"), "--query", query};
  argv.insert(argv.end(), gen.begin(), gen.end());
  CommandResult r = RunCommand(argv, dir, 120s);
  if (r.exit_code != 0) return ::testing::AssertionFailure() << r.Describe();
  std::istringstream words(r.out);
  std::string w;
  while (words >> w) {
    if (w == "rows") words >> out->rows;
    if (w == "checksum") words >> std::hex >> out->sum >> std::dec;
  }
  if (out->rows == 0 && out->sum == 0) {
    return ::testing::AssertionFailure() << "no checksum in the baseline's output: " << r.out;
  }
  return ::testing::AssertionSuccess();
}

// The sum of the part files the job's sinks wrote.
Sum JobSum(const std::string& dir, int* files) {
  Sum s;
  *files = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().filename().string().rfind("part-", 0) != 0) continue;
    ++*files;
    std::ifstream in(e.path());
    int64_t rows = 0;
    uint64_t sum = 0;
    in >> rows >> std::hex >> sum;
    s.rows += rows;
    s.sum += sum;
  }
  return s;
}

class NexmarkQueriesTest : public ::testing::TestWithParam<std::string> {
 protected:
  static void SetUpTestSuite() {
    cluster_ = std::make_unique<TestCluster>(2, 2);
    absl::Status s = cluster_->Start();
    if (!s.ok()) {
      start_error_ = new std::string(s.ToString());
    }
  }
  static void TearDownTestSuite() {
    if (cluster_) (void)cluster_->Stop();
    cluster_.reset();
  }

  // Runs `query` at `parallelism` to FINISHED; its checksum.
  ::testing::AssertionResult RunJob(const std::string& query, int parallelism,
                                    const std::vector<std::string>& gen, Sum* out) {
    std::string dir = cluster_->dir() + "/" + query + "-p" + std::to_string(parallelism);
    fs::create_directories(dir);
    std::vector<std::string> args = gen;
    args.push_back("--result-dir");
    args.push_back(dir);
    auto job = cluster_->SubmitDetached(Env("NEXMARK_JOBS_DIR") + "/libnexmark_" + query + ".so",
                                        {"-p", std::to_string(parallelism)}, args);
    if (!job.ok()) return ::testing::AssertionFailure() << job.status();
    auto st = cluster_->WaitForJob(
        *job, [](const proto::JobStatus& s) { return IsTerminalJobState(s.state()); }, 120s);
    if (!st.ok()) return ::testing::AssertionFailure() << st.status();
    if (st->state() != proto::JOB_FINISHED) {
      return ::testing::AssertionFailure() << query << " ended " << st->DebugString();
    }
    int files = 0;
    *out = JobSum(dir, &files);
    if (files != parallelism) {
      return ::testing::AssertionFailure()
             << query << " at parallelism " << parallelism << " wrote " << files << " part files";
    }
    return ::testing::AssertionSuccess();
  }

  static std::unique_ptr<TestCluster> cluster_;
  static std::string* start_error_;
};
std::unique_ptr<TestCluster> NexmarkQueriesTest::cluster_;
std::string* NexmarkQueriesTest::start_error_ = nullptr;

TEST_P(NexmarkQueriesTest, MatchesTheBaselineAtParallelismOneAndTwo) {
  ASSERT_EQ(start_error_, nullptr) << *start_error_;
  const std::string query = GetParam();
  std::vector<std::string> gen = GeneratorArgs(40'000);
  Sum expected;
  ASSERT_TRUE(BaselineSum(query, gen, cluster_->dir(), &expected));
  ASSERT_GT(expected.rows, 0) << query << " has no result on this input: the test checks nothing";
  for (int p : {1, 2}) {
    Sum got;
    ASSERT_TRUE(RunJob(query, p, gen, &got));
    EXPECT_EQ(got, expected) << query << " at parallelism " << p;
  }
  EXPECT_TRUE(cluster_->IsHealthy());
}

INSTANTIATE_TEST_SUITE_P(Queries, NexmarkQueriesTest,
                         ::testing::Values("q0", "q1", "q2", "q3", "q4", "q5", "q7", "q8", "q9",
                                           "q11", "q12", "q14", "q20", "q21"),
                         [](const auto& info) { return info.param; });

// q9 (keyed state, timers, early bids) with checkpoints every 100 ms; a TaskManager is killed
// after a checkpoint: the job restarts from it (sources rewind to their stored schedule, sinks
// to their stored sums) and must end with the baseline's checksum.
TEST(NexmarkRecoveryTest, WinningBidsSurviveTheLossOfATaskManager) {
  TestCluster cluster(
      ClusterOptions{2,
                     2,
                     {"restart-strategy.type=fixed-delay", "restart-strategy.fixed-delay.delay=0ms",
                      "restart-strategy.fixed-delay.attempts=3"},
                     {}});
  SLUICE_ASSERT_OK(cluster.Start());
  std::vector<std::string> gen = GeneratorArgs(4'000'000, 100'000);
  Sum expected;
  ASSERT_TRUE(BaselineSum("q9", gen, cluster.dir(), &expected));
  std::string dir = cluster.dir() + "/q9";
  fs::create_directories(dir);
  std::vector<std::string> args = gen;
  args.push_back("--result-dir");
  args.push_back(dir);
  std::string job;
  SLUICE_ASSIGN_OR_FAIL(
      job, cluster.SubmitDetached(Env("NEXMARK_JOBS_DIR") + "/libnexmark_q9.so",
                                  {"-p", "2", "-D", "execution.checkpointing.interval=100ms", "-D",
                                   "state.checkpoints.dir=" + cluster.dir() + "/checkpoints"},
                                  args));
  proto::JobStatus st;
  SLUICE_ASSIGN_OR_FAIL(
      st, cluster.WaitUntilOrEnd(
              job, [](const proto::JobStatus& s) { return s.completed_checkpoints() >= 1; }, 60s));
  ASSERT_EQ(st.state(), proto::JOB_RUNNING)
      << "the job ended before its first checkpoint: nothing to recover (" << st.DebugString()
      << ")";
  cluster.KillTaskManager(1);
  SLUICE_ASSIGN_OR_FAIL(
      st, cluster.WaitForJob(
              job, [](const proto::JobStatus& s) { return IsTerminalJobState(s.state()); }, 120s));
  ASSERT_EQ(st.state(), proto::JOB_FINISHED) << st.DebugString();
  EXPECT_GE(st.restarts(), 1) << "the loss of TaskManager 1 did not restart the job";
  int files = 0;
  EXPECT_EQ(JobSum(dir, &files), expected);
  EXPECT_EQ(files, 2);
}

// q11 (session windows) cancelled after a checkpoint at parallelism 2 and resumed from it at
// parallelism 3: the sources' stored schedules are spread over three subtasks, which emit
// exactly the events left, and the sinks' stored sums carry over.
TEST(NexmarkRecoveryTest, ResumesFromACheckpointAtAnotherParallelism) {
  TestCluster cluster(2, 2);
  SLUICE_ASSERT_OK(cluster.Start());
  std::vector<std::string> gen = GeneratorArgs(4'000'000, 100'000);
  Sum expected;
  ASSERT_TRUE(BaselineSum("q11", gen, cluster.dir(), &expected));
  std::string dir = cluster.dir() + "/q11";
  fs::create_directories(dir);
  std::vector<std::string> args = gen;
  args.push_back("--result-dir");
  args.push_back(dir);
  const std::string library = Env("NEXMARK_JOBS_DIR") + "/libnexmark_q11.so";
  const std::vector<std::string> checkpoints = {
      "-D", "execution.checkpointing.interval=100ms", "-D",
      "state.checkpoints.dir=" + cluster.dir() + "/checkpoints"};
  std::vector<std::string> flags{"-p", "2"};
  flags.insert(flags.end(), checkpoints.begin(), checkpoints.end());
  std::string job;
  SLUICE_ASSIGN_OR_FAIL(job, cluster.SubmitDetached(library, flags, args));
  proto::JobStatus st;
  SLUICE_ASSIGN_OR_FAIL(
      st, cluster.WaitUntilOrEnd(
              job, [](const proto::JobStatus& s) { return s.completed_checkpoints() >= 1; }, 60s));
  ASSERT_EQ(st.state(), proto::JOB_RUNNING)
      << "the job ended before its first checkpoint (" << st.DebugString() << ")";
  CommandResult cancel = cluster.Cli({"cancel", job});
  ASSERT_EQ(cancel.exit_code, 0) << cancel.Describe();
  SLUICE_ASSIGN_OR_FAIL(st, cluster.WaitForState(job, proto::JOB_CANCELED, 30s));
  const std::string chk = st.last_checkpoint_path();
  ASSERT_TRUE(fs::exists(chk + "/_metadata")) << "no retained checkpoint: " << st.DebugString();

  flags = {"-p", "3", "-s", chk};
  flags.insert(flags.end(), checkpoints.begin(), checkpoints.end());
  std::string resumed;
  SLUICE_ASSIGN_OR_FAIL(resumed, cluster.SubmitDetached(library, flags, args));
  SLUICE_ASSIGN_OR_FAIL(
      st,
      cluster.WaitForJob(
          resumed, [](const proto::JobStatus& s) { return IsTerminalJobState(s.state()); }, 120s));
  ASSERT_EQ(st.state(), proto::JOB_FINISHED) << st.DebugString();
  int files = 0;
  EXPECT_EQ(JobSum(dir, &files), expected);
  EXPECT_EQ(files, 3);
}

}  // namespace
}  // namespace sluice::itest
