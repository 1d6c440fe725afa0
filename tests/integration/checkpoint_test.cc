// Checkpoints and restarts seen from outside, on a real cluster, with the chaos job
// (tests/jobs/chaos_count_job.cc, the sequence-count pipeline): resuming a cancelled job from its
// retained checkpoint with `sluice run -s`, checkpoints that cannot be written (within and beyond
// execution.checkpointing.tolerable-failed-checkpoints), the REST view of checkpoints, the
// RESTARTS column of `sluice list`, and a failing job without checkpointing, which stays FAILED.
#include <httplib.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "integration/harness.h"

namespace sluice::itest {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SLUICE_ASSERT_OK(cluster_.Start());
    output_ = cluster_.dir() + "/out";
    markers_ = cluster_.dir() + "/markers";
    checkpoints_ = cluster_.dir() + "/checkpoints";
    fs::create_directories(markers_);
  }

  // The job's arguments: keys * per_key records at `rate` records/s, plus `more`.
  std::vector<std::string> JobArgs(int64_t per_key, std::vector<std::string> more = {}) const {
    std::vector<std::string> args{"--keys",       absl::StrCat(kKeys),
                                  "--per-key",    absl::StrCat(per_key),
                                  "--rate",       absl::StrCat(kRate),
                                  "--output",     output_,
                                  "--marker-dir", markers_};
    args.insert(args.end(), more.begin(), more.end());
    return args;
  }
  // `-p 2`, checkpoints every 200 ms into `checkpoint_dir`, and `more`.
  std::vector<std::string> CheckpointFlags(const std::string& checkpoint_dir,
                                           std::vector<std::string> more = {}) const {
    std::vector<std::string> flags{"-p", "2",
                                   "-D", "execution.checkpointing.interval=200ms",
                                   "-D", "state.checkpoints.dir=" + checkpoint_dir};
    flags.insert(flags.end(), more.begin(), more.end());
    return flags;
  }
  absl::StatusOr<proto::JobStatus> WaitForEnd(const std::string& job) {
    return cluster_.WaitForJob(
        job, [](const proto::JobStatus& s) { return IsTerminalJobState(s.state()); }, 60s);
  }

  static constexpr int64_t kKeys = 20;
  static constexpr int64_t kRate = 400;  // records/s: 100 per key take 5 s
  TestCluster cluster_{2, 2};
  std::string output_, markers_, checkpoints_;
};

TEST_F(CheckpointTest, CancelledJobResumesFromItsRetainedCheckpoint) {
  constexpr int64_t kPerKey = 100;
  std::string job;
  SLUICE_ASSIGN_OR_FAIL(
      job, cluster_.SubmitDetached(TestJobLibrary("chaos_count_job"), CheckpointFlags(checkpoints_),
                                   JobArgs(kPerKey)));
  proto::JobStatus st;
  SLUICE_ASSIGN_OR_FAIL(
      st, cluster_.WaitUntilOrEnd(
              job, [](const proto::JobStatus& s) { return s.last_checkpoint_id() >= 2; }, 30s));
  ASSERT_EQ(st.state(), proto::JOB_RUNNING) << st.failure();

  // The REST view of the job's checkpoints (Flink's /jobs/:id/checkpoints).
  int port = cluster_.RestPort();
  ASSERT_GT(port, 0) << cluster_.JobManagerLog();
  httplib::Client http("127.0.0.1", port);
  http.set_connection_timeout(5);
  http.set_read_timeout(5);
  auto res = http.Get(absl::StrCat("/jobs/", job, "/checkpoints").c_str());
  ASSERT_TRUE(res) << "GET /jobs/" << job << "/checkpoints got no answer";
  ASSERT_EQ(res->status, 200) << res->body;
  nlohmann::json cp = nlohmann::json::parse(res->body, nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(cp.is_discarded()) << res->body;
  EXPECT_GE(cp["counts"].value("completed", 0), 2) << res->body;
  EXPECT_EQ(cp["counts"].value("failed", -1), 0) << res->body;
  ASSERT_TRUE(cp["latest"]["completed"].is_object()) << res->body;
  EXPECT_GE(cp["latest"]["completed"].value("id", 0), 2) << res->body;
  EXPECT_EQ(cp["latest"]["completed"]
                .value("external_path", "")
                .rfind(absl::StrCat(checkpoints_, "/", job, "/chk-"), 0),
            0u)
      << res->body;

  SLUICE_ASSERT_OK(cluster_.client().Cancel(job));
  SLUICE_ASSIGN_OR_FAIL(st, cluster_.WaitForState(job, proto::JOB_CANCELED, 30s));
  const std::string chk = st.last_checkpoint_path();
  ASSERT_TRUE(fs::exists(chk + "/_metadata")) << "checkpoint not retained: " << st.DebugString();
  // Results are emitted at the end of input: a cancelled job has committed none.
  EXPECT_TRUE(ReadPartFiles(output_).empty());

  // The resumed job restores checkpoint N, then takes checkpoints of its own (the last one
  // commits its output) and finishes.
  std::vector<std::string> flags{"-s", chk};
  for (const auto& f : CheckpointFlags(checkpoints_)) flags.push_back(f);
  std::string resumed;
  SLUICE_ASSIGN_OR_FAIL(
      resumed, cluster_.SubmitDetached(TestJobLibrary("chaos_count_job"), flags, JobArgs(kPerKey)));
  EXPECT_NE(cluster_.JobManagerLog().find(
                absl::StrCat("from checkpoint ", st.last_checkpoint_id(), " in ")),
            std::string::npos)
      << LastLines(cluster_.JobManagerLog(), 20);
  auto first = cluster_.WaitUntilOrEnd(
      resumed, [](const proto::JobStatus& s) { return s.completed_checkpoints() > 0; }, 15s);
  ASSERT_TRUE(first.ok() && first->completed_checkpoints() > 0)
      << "the job resumed from " << chk << " completed no checkpoint of its own within 15 s: "
      << (first.ok() ? first->DebugString() : first.status().ToString());
  SLUICE_ASSIGN_OR_FAIL(st, WaitForEnd(resumed));
  ASSERT_EQ(st.state(), proto::JOB_FINISHED) << st.failure();
  EXPECT_EQ(st.restarts(), 0);
  EXPECT_TRUE(SequenceCountOutputIsCorrect(output_, kKeys, kPerKey));
  EXPECT_TRUE(InProgressFiles(output_).empty());
}

TEST_F(CheckpointTest, UnwritableCheckpointsWithinToleranceDoNotFailTheJob) {
  constexpr int64_t kPerKey = 50;  // 2.5 s
  // A regular file where the checkpoint folder should be: every checkpoint is declined until it
  // goes away.
  const std::string blocked = cluster_.dir() + "/blocked";
  ASSERT_TRUE(WriteFile(blocked, "not a folder\n"));
  std::string job;
  SLUICE_ASSIGN_OR_FAIL(
      job, cluster_.SubmitDetached(
               TestJobLibrary("chaos_count_job"),
               CheckpointFlags(blocked,
                               {"-D", "execution.checkpointing.tolerable-failed-checkpoints=1000"}),
               JobArgs(kPerKey)));
  proto::JobStatus st;
  SLUICE_ASSIGN_OR_FAIL(
      st, cluster_.WaitUntilOrEnd(
              job, [](const proto::JobStatus& s) { return s.failed_checkpoints() >= 2; }, 30s));
  ASSERT_EQ(st.state(), proto::JOB_RUNNING) << st.failure();
  EXPECT_EQ(st.completed_checkpoints(), 0);
  ASSERT_TRUE(fs::remove(blocked));

  SLUICE_ASSIGN_OR_FAIL(st, WaitForEnd(job));
  ASSERT_EQ(st.state(), proto::JOB_FINISHED) << st.failure();
  EXPECT_EQ(st.restarts(), 0);
  EXPECT_GE(st.failed_checkpoints(), 2);
  EXPECT_GE(st.completed_checkpoints(), 1);
  EXPECT_TRUE(SequenceCountOutputIsCorrect(output_, kKeys, kPerKey));
  const std::string log = cluster_.JobManagerLog();
  EXPECT_NE(log.find("declined it: cannot create checkpoint directory"), std::string::npos)
      << LastLines(log, 20);
}

TEST_F(CheckpointTest, CheckpointThatTimesOutIsAbortedAndItsFilesRemoved) {
  constexpr int64_t kPerKey = 60;  // 3 s
  // The first checkpoint waits 1.5 s in one task's snapshot: beyond the 400 ms timeout.
  std::string job;
  SLUICE_ASSIGN_OR_FAIL(
      job,
      cluster_.SubmitDetached(
          TestJobLibrary("chaos_count_job"),
          CheckpointFlags(checkpoints_, {"-D", "execution.checkpointing.timeout=400ms", "-D",
                                         "execution.checkpointing.tolerable-failed-checkpoints=5"}),
          JobArgs(kPerKey, {"--slow-snapshot-ms", "1500"})));
  proto::JobStatus st;
  SLUICE_ASSIGN_OR_FAIL(st, WaitForEnd(job));
  ASSERT_EQ(st.state(), proto::JOB_FINISHED) << st.failure();
  EXPECT_EQ(st.restarts(), 0);
  EXPECT_GE(st.failed_checkpoints(), 1);
  EXPECT_GE(st.completed_checkpoints(), 1);
  EXPECT_TRUE(SequenceCountOutputIsCorrect(output_, kKeys, kPerKey));
  const std::string log = cluster_.JobManagerLog();
  size_t at = log.find(" failed: expired after 400 ms");
  ASSERT_NE(at, std::string::npos) << LastLines(log, 20);
  size_t chk = log.rfind("checkpoint ", at);
  ASSERT_NE(chk, std::string::npos);
  const std::string expired = log.substr(chk + 11, at - chk - 11);
  // Its folder was removed at the abort, and again after a later checkpoint completed (the slow
  // task wrote its file after the abort).
  EXPECT_FALSE(fs::exists(absl::StrCat(checkpoints_, "/", job, "/chk-", expired)))
      << "checkpoint " << expired << " timed out but its folder remains";
}

TEST_F(CheckpointTest, UnwritableCheckpointsBeyondToleranceRestartThenFailTheJob) {
  const std::string blocked = cluster_.dir() + "/blocked";
  ASSERT_TRUE(WriteFile(blocked, "not a folder\n"));
  std::string job;
  SLUICE_ASSIGN_OR_FAIL(
      job,
      cluster_.SubmitDetached(
          TestJobLibrary("chaos_count_job"),
          CheckpointFlags(blocked, {"-D", "execution.checkpointing.tolerable-failed-checkpoints=1",
                                    "-D", "restart-strategy.type=fixed-delay", "-D",
                                    "restart-strategy.fixed-delay.attempts=1", "-D",
                                    "restart-strategy.fixed-delay.delay=100ms"}),
          JobArgs(/*per_key=*/1000)));
  proto::JobStatus st;
  SLUICE_ASSIGN_OR_FAIL(st, WaitForEnd(job));
  ASSERT_EQ(st.state(), proto::JOB_FAILED);
  EXPECT_EQ(st.restarts(), 1);
  EXPECT_GE(st.failed_checkpoints(), 3);  // two in a row end the first attempt
  EXPECT_EQ(st.completed_checkpoints(), 0);
  EXPECT_NE(st.failure().find("execution.checkpointing.tolerable-failed-checkpoints (1)"),
            std::string::npos)
      << st.failure();
  EXPECT_NE(st.failure().find(blocked), std::string::npos) << st.failure();
  EXPECT_TRUE(cluster_.IsHealthy());
}

TEST_F(CheckpointTest, ListShowsTheNumberOfRestarts) {
  constexpr int64_t kPerKey = 50;
  std::string job;
  SLUICE_ASSIGN_OR_FAIL(
      job, cluster_.SubmitDetached(
               TestJobLibrary("chaos_count_job"),
               CheckpointFlags(checkpoints_, {"-D", "restart-strategy.type=fixed-delay", "-D",
                                              "restart-strategy.fixed-delay.attempts=2", "-D",
                                              "restart-strategy.fixed-delay.delay=100ms"}),
               JobArgs(kPerKey, {"--fail-map"})));
  proto::JobStatus st;
  SLUICE_ASSIGN_OR_FAIL(st, WaitForEnd(job));
  ASSERT_EQ(st.state(), proto::JOB_FINISHED) << st.failure();
  ASSERT_EQ(st.restarts(), 1);
  EXPECT_TRUE(SequenceCountOutputIsCorrect(output_, kKeys, kPerKey));

  CommandResult list = cluster_.Cli({"list", "-a"});
  ASSERT_EQ(list.exit_code, 0) << list.Describe();
  EXPECT_TRUE(std::regex_search(list.out, std::regex(R"(\bPAR\s+RESTARTS\s+NAME\b)")))
      << list.Describe();
  // JOB ID, STATE, START TIME (date and time), PAR, RESTARTS, NAME.
  EXPECT_TRUE(std::regex_search(list.out,
                                std::regex(job + R"(\s+FINISHED\s+\S+ \S+\s+2\s+1\s+Chaos Count)")))
      << list.Describe();
}

TEST_F(CheckpointTest, FailingJobWithoutCheckpointingStaysFailed) {
  // No checkpointing, so the default restart strategy is none.
  CommandResult r =
      cluster_.Cli({"run", "-p", "2", TestJobLibrary("chaos_count_job"), "--", "--keys",
                    absl::StrCat(kKeys), "--per-key", "50", "--rate", absl::StrCat(kRate),
                    "--output", output_, "--marker-dir", markers_, "--fail-map"},
                   60s);
  EXPECT_NE(r.exit_code, 0) << r.Describe();
  EXPECT_NE(r.err.find("FAILED"), std::string::npos) << r.Describe();
  EXPECT_NE(r.err.find("Failing Map"), std::string::npos) << r.Describe();
  EXPECT_NE(r.err.find("injected failure at record"), std::string::npos) << r.Describe();
  EXPECT_TRUE(fs::exists(markers_ + "/map"));

  auto jobs = cluster_.client().ListJobs(/*include_terminated=*/true);
  ASSERT_TRUE(jobs.ok()) << jobs.status();
  ASSERT_EQ(jobs->size(), 1u);
  const std::string job = jobs->front().job_id();
  // It stays FAILED: no restart comes later.
  std::this_thread::sleep_for(1s);
  auto st = cluster_.client().GetJob(job);
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(st->state(), proto::JOB_FAILED);
  EXPECT_EQ(st->restarts(), 0);
  EXPECT_EQ(st->completed_checkpoints(), 0);
  // Without checkpointing the sink publishes only at the end of input: nothing.
  EXPECT_TRUE(ReadPartFiles(output_).empty());
  EXPECT_TRUE(cluster_.IsHealthy());
}

}  // namespace
}  // namespace sluice::itest
