// Broadcast state on a real cluster (tests/jobs/broadcast_rules_job.cc): a keyed stream of events
// connected with a broadcast stream of rules runs at parallelism 2 with checkpoints until every
// rule and event is in a completed checkpoint, and is cancelled. Started again from that
// retained checkpoint at parallelism 3 and at 1, with no rule emitted any more, every subtask
// still applies all the rules and every key has its count: the output is checked line by line.
#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/job_states.h"
#include "integration/harness.h"
#include "sluice/keys.h"

namespace sluice::itest {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

constexpr int kKeys = 12;
constexpr int kMaxParallelism = 128;  // pipeline.max-parallelism's default

// The probe phase's output at `parallelism`: per key one line from the subtask that owns it.
std::vector<std::string> ExpectedProbeLines(int parallelism) {
  std::vector<std::string> lines;
  for (int k = 0; k < kKeys; ++k) {
    std::string key = absl::StrCat("k", k);
    int owner =
        subtask_for_key_group(key_group_for_hash(KeyHash<std::string>{}(key), kMaxParallelism),
                              kMaxParallelism, parallelism);
    lines.push_back(absl::StrCat(key, " count=4 subtask=", owner, " rules=r0,r1,r3,r4"));
  }
  std::sort(lines.begin(), lines.end());
  return lines;
}

std::vector<std::string> AllLines(const std::string& dir) {
  std::vector<std::string> lines;
  for (const auto& [file, content] : ReadPartFiles(dir)) {
    lines.insert(lines.end(), content.begin(), content.end());
  }
  std::sort(lines.begin(), lines.end());
  return lines;
}

TEST(BroadcastStateTest, EverySubtaskHasTheRulesAfterARestoreAtAnotherParallelism) {
  TestCluster cluster(2, 2);
  SLUICE_ASSERT_OK(cluster.Start());
  const std::string markers = cluster.dir() + "/markers";
  const std::string checkpoints = cluster.dir() + "/checkpoints";
  fs::create_directories(markers);
  auto job_args = [&](const std::string& phase, const std::string& output) {
    return std::vector<std::string>{"--phase",      phase,   "--keys",   absl::StrCat(kKeys),
                                    "--marker-dir", markers, "--output", output};
  };

  std::string job;
  SLUICE_ASSIGN_OR_FAIL(
      job, cluster.SubmitDetached(TestJobLibrary("broadcast_rules_job"),
                                  {"-p", "2", "-D", "execution.checkpointing.interval=100ms", "-D",
                                   "state.checkpoints.dir=" + checkpoints},
                                  job_args("load", cluster.dir() + "/out-load")));
  ASSERT_TRUE(WaitUntil(
      [&] {
        return fs::exists(markers + "/rules") && fs::exists(markers + "/events-0") &&
               fs::exists(markers + "/events-1");
      },
      30s))
      << "the sources did not emit everything within 30 s";
  // Every checkpoint triggered from now on has every rule and event behind its barriers; one
  // in flight now may not, the one after it does.
  proto::JobStatus st;
  SLUICE_ASSIGN_OR_FAIL(st, cluster.WaitForAllTasksRunning(job, 10s));
  const int64_t after = st.last_checkpoint_id() + 2;
  SLUICE_ASSIGN_OR_FAIL(
      st,
      cluster.WaitUntilOrEnd(
          job, [&](const proto::JobStatus& s) { return s.last_checkpoint_id() >= after; }, 30s));
  ASSERT_EQ(st.state(), proto::JOB_RUNNING) << st.failure();
  SLUICE_ASSERT_OK(cluster.client().Cancel(job));
  SLUICE_ASSIGN_OR_FAIL(st, cluster.WaitForState(job, proto::JOB_CANCELED, 30s));
  const std::string chk = st.last_checkpoint_path();
  ASSERT_TRUE(fs::exists(chk + "/_metadata")) << "checkpoint not retained: " << st.DebugString();
  EXPECT_TRUE(AllLines(cluster.dir() + "/out-load").empty()) << "the load phase writes nothing";

  for (int p : {3, 1}) {
    SCOPED_TRACE(absl::StrCat("restored at parallelism ", p));
    const std::string output = absl::StrCat(cluster.dir(), "/out-", p);
    std::string resumed;
    SLUICE_ASSIGN_OR_FAIL(resumed, cluster.SubmitDetached(TestJobLibrary("broadcast_rules_job"),
                                                          {"-s", chk, "-p", absl::StrCat(p)},
                                                          job_args("probe", output)));
    SLUICE_ASSIGN_OR_FAIL(
        st,
        cluster.WaitForJob(
            resumed, [](const proto::JobStatus& s) { return IsTerminalJobState(s.state()); }, 60s));
    ASSERT_EQ(st.state(), proto::JOB_FINISHED) << st.failure();
    EXPECT_EQ(AllLines(output), ExpectedProbeLines(p));
  }
  SLUICE_EXPECT_OK(cluster.Stop());
}

}  // namespace
}  // namespace sluice::itest
