// Chaos: faults injected into a running exactly-once job (tests/jobs/chaos_count_job.cc) on a
// real cluster, and damaged checkpoints offered to `sluice run -s`. Whatever fails, a job that
// restarts from its checkpoints must end with exact output: every key once across the committed
// part files, count == --per-key, no violations, no in-progress file left.
//
// The default form takes well under a minute; SLUICE_CHAOS_LONG=1 runs more keys and records.
#include <gmock/gmock.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "integration/harness.h"

namespace sluice::itest {
namespace {

using namespace std::chrono_literals;
using ::testing::IsEmpty;
namespace fs = std::filesystem;

bool ChaosLong() {
  const char* v = std::getenv("SLUICE_CHAOS_LONG");
  return v && *v && std::string(v) != "0";
}

// The size of one run: the job emits keys * per_key records at `rate` records/s.
struct Scale {
  int64_t keys;
  int64_t per_key;
  int64_t rate;
};
// About 4 s of records by default (so that faults at 40-70% fall after a few checkpoints),
// about 20 s in the long form.
Scale FaultScale() { return ChaosLong() ? Scale{200, 400, 4000} : Scale{40, 100, 1000}; }

std::chrono::milliseconds JobTimeout() { return ChaosLong() ? 600s : 120s; }

// One run of the chaos job: its output and marker folders, and the flags to submit it with.
struct ChaosRun {
  std::string output;
  std::string markers;
  std::string checkpoints;
  Scale scale;

  ChaosRun(const TestCluster& cluster, const std::string& name, Scale s)
      : output(absl::StrCat(cluster.dir(), "/", name, "-out")),
        markers(absl::StrCat(cluster.dir(), "/", name, "-markers")),
        checkpoints(absl::StrCat(cluster.dir(), "/checkpoints")),
        scale(s) {
    fs::create_directories(markers);
  }

  // Checkpoints every 250 ms, a fixed-delay restart strategy (`attempts`, 200 ms apart).
  std::vector<std::string> RunFlags(int attempts) const {
    return {"-p", "2",
            "-D", "execution.checkpointing.interval=250ms",
            "-D", "state.checkpoints.dir=" + checkpoints,
            "-D", "restart-strategy.type=fixed-delay",
            "-D", absl::StrCat("restart-strategy.fixed-delay.attempts=", attempts),
            "-D", "restart-strategy.fixed-delay.delay=200ms"};
  }
  std::vector<std::string> JobArgs(std::vector<std::string> faults) const {
    std::vector<std::string> args{"--keys",       absl::StrCat(scale.keys),
                                  "--per-key",    absl::StrCat(scale.per_key),
                                  "--rate",       absl::StrCat(scale.rate),
                                  "--output",     output,
                                  "--marker-dir", markers};
    args.insert(args.end(), faults.begin(), faults.end());
    return args;
  }
  bool Fired(const std::string& fault) const { return fs::exists(markers + "/" + fault); }
};

// Submits the chaos job and waits for its end; the final status.
absl::StatusOr<proto::JobStatus> RunToEnd(TestCluster& cluster, const ChaosRun& run, int attempts,
                                          std::vector<std::string> faults) {
  auto job = cluster.SubmitDetached(TestJobLibrary("chaos_count_job"), run.RunFlags(attempts),
                                    run.JobArgs(std::move(faults)));
  if (!job.ok()) return job.status();
  return cluster.WaitForJob(
      *job, [](const proto::JobStatus& s) { return IsTerminalJobState(s.state()); }, JobTimeout());
}

std::string AllTaskManagerLogs(const TestCluster& cluster) {
  std::string logs;
  for (int i = 0; i < cluster.num_task_managers(); ++i) logs += cluster.TaskManagerLog(i);
  return logs;
}

TEST(ChaosFaultTest, MapThatThrowsOnceRestartsWithExactOutput) {
  TestCluster cluster(2, 2);
  SLUICE_ASSERT_OK(cluster.Start());
  ChaosRun run(cluster, "map", FaultScale());
  proto::JobStatus st;
  SLUICE_ASSIGN_OR_FAIL(st, RunToEnd(cluster, run, /*attempts=*/3, {"--fail-map"}));
  ASSERT_EQ(st.state(), proto::JOB_FINISHED) << st.failure();
  EXPECT_TRUE(run.Fired("map"));
  EXPECT_GE(st.restarts(), 1);
  EXPECT_GE(st.completed_checkpoints(), 2);
  EXPECT_TRUE(SequenceCountOutputIsCorrect(run.output, run.scale.keys, run.scale.per_key));
  EXPECT_THAT(InProgressFiles(run.output), IsEmpty());
  EXPECT_NE(AllTaskManagerLogs(cluster).find("injected failure at record"), std::string::npos);
  EXPECT_TRUE(cluster.IsHealthy());
}

TEST(ChaosFaultTest, FailureInsideASnapshotRestartsWithExactOutput) {
  TestCluster cluster(2, 2);
  SLUICE_ASSERT_OK(cluster.Start());
  ChaosRun run(cluster, "snapshot", FaultScale());
  proto::JobStatus st;
  SLUICE_ASSIGN_OR_FAIL(st, RunToEnd(cluster, run, /*attempts=*/3, {"--fail-snapshot"}));
  ASSERT_EQ(st.state(), proto::JOB_FINISHED) << st.failure();
  EXPECT_TRUE(run.Fired("snapshot"));
  EXPECT_GE(st.restarts(), 1);
  EXPECT_TRUE(SequenceCountOutputIsCorrect(run.output, run.scale.keys, run.scale.per_key));
  EXPECT_THAT(InProgressFiles(run.output), IsEmpty());
  EXPECT_NE(AllTaskManagerLogs(cluster).find("injected failure in the snapshot"),
            std::string::npos);
  EXPECT_TRUE(cluster.IsHealthy());
}

TEST(ChaosFaultTest, FailureDuringRestoreRestartsAgainWithExactOutput) {
  // The map throws (restart 1); the restored attempt throws in open() (restart 2); the third
  // attempt restores again and finishes.
  TestCluster cluster(2, 2);
  SLUICE_ASSERT_OK(cluster.Start());
  ChaosRun run(cluster, "restore", FaultScale());
  proto::JobStatus st;
  SLUICE_ASSIGN_OR_FAIL(st,
                        RunToEnd(cluster, run, /*attempts=*/4, {"--fail-map", "--fail-restore"}));
  ASSERT_EQ(st.state(), proto::JOB_FINISHED) << st.failure();
  EXPECT_TRUE(run.Fired("map"));
  EXPECT_TRUE(run.Fired("restore"));
  EXPECT_GE(st.restarts(), 2);
  EXPECT_TRUE(SequenceCountOutputIsCorrect(run.output, run.scale.keys, run.scale.per_key));
  EXPECT_THAT(InProgressFiles(run.output), IsEmpty());
  EXPECT_NE(AllTaskManagerLogs(cluster).find("injected failure while restoring"),
            std::string::npos);
  EXPECT_TRUE(cluster.IsHealthy());
}

// The files of a checkpoint folder that tasks wrote (v<vertex>-s<subtask>), sorted.
std::vector<std::string> StateFiles(const std::string& chk) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(chk, ec)) {
    std::string name = e.path().filename().string();
    if (!name.empty() && name[0] == 'v') names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

TEST(ChaosFaultTest, CorruptCheckpointIsRefusedNamingTheFile) {
  TestCluster cluster(2, 2);
  SLUICE_ASSERT_OK(cluster.Start());
  // About 5 s of records; cancelled after the third completed checkpoint.
  ChaosRun run(cluster, "corrupt", Scale{20, 100, 400});
  std::string job;
  SLUICE_ASSIGN_OR_FAIL(job, cluster.SubmitDetached(TestJobLibrary("chaos_count_job"),
                                                    run.RunFlags(1), run.JobArgs({})));
  proto::JobStatus st;
  SLUICE_ASSIGN_OR_FAIL(
      st, cluster.WaitUntilOrEnd(
              job, [](const proto::JobStatus& s) { return s.last_checkpoint_id() >= 3; }, 30s));
  ASSERT_EQ(st.state(), proto::JOB_RUNNING) << st.failure();
  SLUICE_ASSERT_OK(cluster.client().Cancel(job));
  SLUICE_ASSIGN_OR_FAIL(st, cluster.WaitForState(job, proto::JOB_CANCELED, 30s));
  const std::string chk = st.last_checkpoint_path();
  ASSERT_FALSE(chk.empty()) << st.DebugString();
  ASSERT_TRUE(fs::exists(chk + "/_metadata")) << chk;
  std::vector<std::string> state_files = StateFiles(chk);
  ASSERT_FALSE(state_files.empty()) << "no state files in " << chk;

  // `sluice run -d -s <from>`: a refusal comes from the submission itself.
  auto resume = [&](const std::string& from) {
    std::vector<std::string> args{"run", "-d", "-s", from};
    for (const auto& f : run.RunFlags(1)) args.push_back(f);
    args.push_back(TestJobLibrary("chaos_count_job"));
    args.push_back("--");
    for (const auto& a : run.JobArgs({})) args.push_back(a);
    return cluster.Cli(args, 60s);
  };

  // One flipped byte in a state file: refused, naming that file.
  const std::string state_file = chk + "/" + state_files.front();
  const std::string intact_state = ReadFile(state_file);
  ASSERT_GT(intact_state.size(), 8u);
  std::string flipped = intact_state;
  flipped[flipped.size() / 2] ^= 0x5a;
  ASSERT_TRUE(WriteFile(state_file, flipped));
  CommandResult r = resume(chk);
  EXPECT_NE(r.exit_code, 0) << r.Describe();
  EXPECT_EQ(r.out.find("submitted"), std::string::npos) << r.Describe();
  EXPECT_NE(r.err.find(state_file), std::string::npos) << r.Describe();
  ASSERT_TRUE(WriteFile(state_file, intact_state));

  // A truncated _metadata, given by its own path: refused, naming it.
  const std::string metadata = chk + "/_metadata";
  const std::string intact_metadata = ReadFile(metadata);
  ASSERT_GT(intact_metadata.size(), 8u);
  ASSERT_TRUE(WriteFile(metadata, intact_metadata.substr(0, intact_metadata.size() / 2)));
  r = resume(metadata);
  EXPECT_NE(r.exit_code, 0) << r.Describe();
  EXPECT_EQ(r.out.find("submitted"), std::string::npos) << r.Describe();
  EXPECT_NE(r.err.find(metadata), std::string::npos) << r.Describe();
  ASSERT_TRUE(WriteFile(metadata, intact_metadata));

  // Repaired, the same checkpoint resumes the job: it takes checkpoints of its own (the last one
  // commits the output) and finishes with exact output.
  std::vector<std::string> flags{"-s", chk};
  for (const auto& f : run.RunFlags(1)) flags.push_back(f);
  SLUICE_ASSIGN_OR_FAIL(
      job, cluster.SubmitDetached(TestJobLibrary("chaos_count_job"), flags, run.JobArgs({})));
  auto first = cluster.WaitUntilOrEnd(
      job, [](const proto::JobStatus& s) { return s.completed_checkpoints() > 0; }, 15s);
  ASSERT_TRUE(first.ok() && first->completed_checkpoints() > 0)
      << "the job resumed from " << chk << " completed no checkpoint of its own within 15 s: "
      << (first.ok() ? first->DebugString() : first.status().ToString());
  SLUICE_ASSIGN_OR_FAIL(
      st, cluster.WaitForJob(
              job, [](const proto::JobStatus& s) { return IsTerminalJobState(s.state()); },
              JobTimeout()));
  ASSERT_EQ(st.state(), proto::JOB_FINISHED) << st.failure();
  EXPECT_TRUE(SequenceCountOutputIsCorrect(run.output, run.scale.keys, run.scale.per_key));
  EXPECT_THAT(InProgressFiles(run.output), IsEmpty());
  EXPECT_TRUE(cluster.IsHealthy());
}

}  // namespace
}  // namespace sluice::itest
