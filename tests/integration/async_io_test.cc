// Asynchronous I/O on a real cluster (tests/jobs/async_lookup_job.cc): requests answered from a
// thread pool after random delays, checkpoints every 200 ms, and a TaskManager killed with
// SIGKILL once a checkpoint has completed. The job restarts from that checkpoint, issues again
// the requests that were in flight in it, and must end with every input in the exactly-once
// file sink's committed output exactly once.
#include <filesystem>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "integration/harness.h"

namespace sluice::itest {
namespace {

using namespace std::chrono_literals;

// Every `key,seq` line for keys 0..keys-1 and seq 1..per_key exactly once over the committed
// part files of `dir`, and nothing else.
::testing::AssertionResult EveryInputExactlyOnce(const std::string& dir, int64_t keys,
                                                 int64_t per_key) {
  std::map<std::string, int> seen;
  int64_t lines = 0;
  for (const auto& [file, content] : ReadPartFiles(dir)) {
    for (const std::string& line : content) {
      ++lines;
      seen[line]++;
    }
  }
  std::vector<std::string> missing, twice;
  for (int64_t k = 0; k < keys; ++k) {
    for (int64_t s = 1; s <= per_key; ++s) {
      auto it = seen.find(absl::StrCat(k, ",", s));
      if (it == seen.end()) {
        missing.push_back(absl::StrCat(k, ",", s));
      } else {
        if (it->second > 1) twice.push_back(it->first);
        seen.erase(it);
      }
    }
  }
  if (missing.empty() && twice.empty() && seen.empty()) return ::testing::AssertionSuccess();
  auto first = [](const std::vector<std::string>& v) {
    std::string out;
    for (size_t i = 0; i < v.size() && i < 5; ++i) absl::StrAppend(&out, " ", v[i]);
    return out;
  };
  return ::testing::AssertionFailure()
         << lines << " lines; " << missing.size() << " inputs missing (" << first(missing) << " ), "
         << twice.size() << " more than once (" << first(twice) << " ), " << seen.size()
         << " unexpected lines";
}

TEST(AsyncIoTest, KilledTaskManagerDuringAsyncRequestsLosesAndRepeatsNothing) {
  constexpr int64_t kKeys = 20, kPerKey = 150, kRate = 600;  // 3000 records, about 5 s
  // One slot per TaskManager and parallelism 2: two TaskManagers run the job, one is spare.
  ClusterOptions options;
  options.task_managers = 3;
  options.slots_per_task_manager = 1;
  TestCluster cluster(options);
  SLUICE_ASSERT_OK(cluster.Start());
  const std::string output = cluster.dir() + "/out";
  std::string job;
  SLUICE_ASSIGN_OR_FAIL(
      job,
      cluster.SubmitDetached(
          TestJobLibrary("async_lookup_job"),
          {"-p", "2", "-D", "execution.checkpointing.interval=200ms", "-D",
           "state.checkpoints.dir=" + cluster.dir() + "/checkpoints", "-D",
           "state.checkpoints.num-retained=1000", "-D", "restart-strategy.type=fixed-delay", "-D",
           "restart-strategy.fixed-delay.attempts=3", "-D",
           "restart-strategy.fixed-delay.delay=200ms"},
          {"--keys", absl::StrCat(kKeys), "--per-key", absl::StrCat(kPerKey), "--rate",
           absl::StrCat(kRate), "--capacity", "8", "--max-delay-ms", "40", "--output", output}));

  // A completed checkpoint, with requests in flight in it (answers take up to 40 ms).
  proto::JobStatus st;
  SLUICE_ASSIGN_OR_FAIL(st, cluster.WaitUntilOrEnd(
                                job,
                                [](const proto::JobStatus& s) {
                                  return s.last_checkpoint_id() >= 2 && AllTasksRunning(s);
                                },
                                30s));
  ASSERT_EQ(st.state(), proto::JOB_RUNNING) << "the job ended before the kill: " << st.failure();
  const int victim = cluster.TaskManagerIndex(st.tasks(1).tm_id());
  ASSERT_GE(victim, 0) << "no TaskManager " << st.tasks(1).tm_id();
  cluster.KillTaskManager(victim);

  SLUICE_ASSIGN_OR_FAIL(
      st, cluster.WaitForJob(
              job, [](const proto::JobStatus& s) { return IsTerminalJobState(s.state()); }, 60s));
  ASSERT_EQ(st.state(), proto::JOB_FINISHED) << st.failure();
  EXPECT_GE(st.restarts(), 1);
  EXPECT_TRUE(EveryInputExactlyOnce(output, kKeys, kPerKey));
  EXPECT_TRUE(InProgressFiles(output).empty());
  // The tasks restored a checkpoint (all retained) that held requests in flight, which they
  // issued again.
  std::set<std::string> restored;
  const std::regex restore_line("restored from checkpoint ([0-9]+)");
  for (int i = 0; i < cluster.num_task_managers(); ++i) {
    if (i == victim) continue;
    const std::string log = cluster.TaskManagerLog(i);
    for (std::sregex_iterator m(log.begin(), log.end(), restore_line), end; m != end; ++m) {
      restored.insert((*m)[1]);
    }
  }
  ASSERT_FALSE(restored.empty()) << "no task restored from a checkpoint";
  bool in_flight_stored = false;
  for (const std::string& id : restored) {
    const std::string chk = absl::StrCat(cluster.dir(), "/checkpoints/", job, "/chk-", id);
    for (const auto& f : std::filesystem::directory_iterator(chk)) {
      if (ReadFile(f.path().string()).find("sluice.async-wait.in-flight") != std::string::npos) {
        in_flight_stored = true;
      }
    }
  }
  EXPECT_TRUE(in_flight_stored) << "the restored checkpoint held no request in flight";
  EXPECT_TRUE(cluster.IsHealthy());
}

}  // namespace
}  // namespace sluice::itest
