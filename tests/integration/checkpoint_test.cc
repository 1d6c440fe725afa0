// Checkpoints and restarts seen from outside, on a real cluster, with the chaos job
// (tests/jobs/chaos_count_job.cc, the sequence-count pipeline): resuming a cancelled job from its
// retained checkpoint with `sluice run -s`, checkpoints that cannot be written (within and beyond
// execution.checkpointing.tolerable-failed-checkpoints), the REST views of checkpoints
// (statistics, history, details per vertex and subtask, configuration, restores), the RESTARTS
// column of `sluice list`, and a failing job without checkpointing, which stays FAILED.
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

// GET `path` on the JobManager's REST server: the status and the parsed body (discarded when it
// is not JSON).
std::pair<int, nlohmann::json> GetJson(httplib::Client& http, const std::string& path) {
  auto res = http.Get(path.c_str());
  if (!res) return {0, nlohmann::json()};
  return {res->status, nlohmann::json::parse(res->body, nullptr, /*allow_exceptions=*/false)};
}

TEST_F(CheckpointTest, RestShowsCheckpointStatisticsHistoryDetailsAndConfig) {
  constexpr int64_t kPerKey = 80;  // 4 s
  std::string job;
  SLUICE_ASSIGN_OR_FAIL(
      job, cluster_.SubmitDetached(TestJobLibrary("chaos_count_job"), CheckpointFlags(checkpoints_),
                                   JobArgs(kPerKey)));
  proto::JobStatus st;
  SLUICE_ASSIGN_OR_FAIL(
      st, cluster_.WaitUntilOrEnd(
              job, [](const proto::JobStatus& s) { return s.completed_checkpoints() >= 2; }, 30s));
  ASSERT_EQ(st.state(), proto::JOB_RUNNING) << st.failure();
  int port = cluster_.RestPort();
  ASSERT_GT(port, 0) << cluster_.JobManagerLog();
  httplib::Client http("127.0.0.1", port);
  http.set_connection_timeout(5);
  http.set_read_timeout(5);
  const std::string base = absl::StrCat("/jobs/", job, "/checkpoints");

  // The configuration, from the job's -D settings and the defaults.
  auto [config_status, config] = GetJson(http, base + "/config");
  ASSERT_EQ(config_status, 200) << config;
  EXPECT_EQ(config["mode"], "exactly_once") << config;
  EXPECT_EQ(config["interval"], 200) << config;
  EXPECT_EQ(config["timeout"], 600000) << config;
  EXPECT_EQ(config["min_pause"], 0) << config;
  EXPECT_EQ(config["max_concurrent"], 1) << config;
  EXPECT_EQ(config["tolerable_failed_checkpoints"], 0) << config;
  EXPECT_EQ(config["unaligned_checkpoints"], false) << config;
  EXPECT_EQ(config["state_backend"], "HashMapStateBackend") << config;
  EXPECT_EQ(config["externalization"]["enabled"], true) << config;

  auto [first_status, first] = GetJson(http, base);
  ASSERT_EQ(first_status, 200) << first;
  const int64_t first_completed = first["counts"]["completed"].get<int64_t>();
  const int64_t first_total = first["counts"]["total"].get<int64_t>();
  EXPECT_GE(first_completed, 2) << first;
  // The counts grow while the job runs.
  auto grown = cluster_.WaitUntilOrEnd(
      job,
      [&](const proto::JobStatus& s) { return s.completed_checkpoints() >= first_completed + 2; },
      30s);
  ASSERT_TRUE(grown.ok()) << grown.status();
  ASSERT_EQ(grown->state(), proto::JOB_RUNNING) << grown->failure();
  auto [status, cp] = GetJson(http, base);
  ASSERT_EQ(status, 200) << cp;
  const auto& counts = cp["counts"];
  EXPECT_GE(counts["completed"].get<int64_t>(), first_completed + 2) << cp;
  EXPECT_GT(counts["total"].get<int64_t>(), first_total) << cp;
  EXPECT_EQ(counts["total"].get<int64_t>(), counts["completed"].get<int64_t>() +
                                                counts["failed"].get<int64_t>() +
                                                counts["in_progress"].get<int64_t>())
      << cp;
  EXPECT_EQ(counts["restored"], 0) << cp;
  EXPECT_TRUE(cp["latest"]["savepoint"].is_null()) << cp;
  EXPECT_TRUE(cp["latest"]["restored"].is_null()) << cp;
  const auto& summary = cp["summary"];
  EXPECT_GT(summary["checkpointed_size"]["min"].get<int64_t>(), 0) << cp;
  EXPECT_LE(summary["checkpointed_size"]["min"], summary["checkpointed_size"]["avg"]) << cp;
  EXPECT_LE(summary["checkpointed_size"]["avg"], summary["checkpointed_size"]["max"]) << cp;
  EXPECT_GT(summary["state_size"]["max"].get<int64_t>(), 0) << cp;
  EXPECT_GE(summary["end_to_end_duration"]["min"].get<int64_t>(), 0) << cp;

  // The history, newest first (10 at most), and the latest completed checkpoint in it.
  const auto& history = cp["history"];
  ASSERT_TRUE(history.is_array() && !history.empty()) << cp;
  EXPECT_LE(history.size(), 10u) << cp;
  for (size_t i = 1; i < history.size(); ++i)
    EXPECT_GT(history[i - 1]["id"], history[i]["id"]) << cp;
  const int64_t latest_id = cp["latest"]["completed"]["id"].get<int64_t>();
  int completed_seen = 0;
  for (const auto& c : history) {
    // The newest three: a checkpoint every 200 ms pushes older ones out of the history while
    // this runs.
    if (c["status"] != "COMPLETED" || completed_seen == 3) continue;
    ++completed_seen;
    const int64_t id = c["id"].get<int64_t>();
    EXPECT_LE(id, latest_id) << cp;
    EXPECT_GT(c["checkpointed_size"].get<int64_t>(), 0) << c;
    EXPECT_GE(c["state_size"].get<int64_t>(), c["checkpointed_size"].get<int64_t>()) << c;
    EXPECT_EQ(c["num_acknowledged_subtasks"], c["num_subtasks"]) << c;
    EXPECT_EQ(c["is_savepoint"], false) << c;
    EXPECT_EQ(c["external_path"], absl::StrCat(checkpoints_, "/", job, "/chk-", id)) << c;
    const int64_t trigger = c["trigger_timestamp"].get<int64_t>();
    const int64_t completion = trigger + c["end_to_end_duration"].get<int64_t>();
    EXPECT_GE(c["latest_ack_timestamp"].get<int64_t>(), trigger) << c;
    EXPECT_LE(c["latest_ack_timestamp"].get<int64_t>(), completion) << c;

    // The details view agrees with the list.
    auto [d_status, details] = GetJson(http, absl::StrCat(base, "/details/", id));
    ASSERT_EQ(d_status, 200) << details;
    for (const char* field : {"id", "status", "trigger_timestamp", "latest_ack_timestamp",
                              "checkpointed_size", "state_size", "end_to_end_duration",
                              "num_subtasks", "num_acknowledged_subtasks", "external_path"}) {
      EXPECT_EQ(details[field], c[field]) << field << ": " << details << " vs " << c;
    }
    ASSERT_TRUE(details["tasks"].is_object() && !details["tasks"].empty()) << details;
    int64_t subtasks_total = 0, checkpointed_total = 0;
    for (const auto& [vid, task] : details["tasks"].items()) {
      EXPECT_EQ(task, c["tasks"][vid]) << "vertex " << vid;
      EXPECT_EQ(task["status"], "COMPLETED") << task;
      subtasks_total += task["num_subtasks"].get<int64_t>();
      checkpointed_total += task["checkpointed_size"].get<int64_t>();

      // Per subtask: acknowledged between the trigger and the completion; the sums agree.
      auto [s_status, sub] = GetJson(http, absl::StrCat(base, "/details/", id, "/subtasks/", vid));
      ASSERT_EQ(s_status, 200) << sub;
      EXPECT_EQ(sub["id"], id) << sub;
      EXPECT_EQ(sub["checkpointed_size"], task["checkpointed_size"]) << sub;
      EXPECT_EQ(sub["num_acknowledged_subtasks"], task["num_subtasks"]) << sub;
      ASSERT_EQ(sub["subtasks"].size(), task["num_subtasks"].get<size_t>()) << sub;
      int64_t checkpointed = 0, state = 0;
      for (size_t i = 0; i < sub["subtasks"].size(); ++i) {
        const auto& s = sub["subtasks"][i];
        EXPECT_EQ(s["index"], i) << s;
        EXPECT_EQ(s["status"], "completed") << s;
        const int64_t ack = s["ack_timestamp"].get<int64_t>();
        EXPECT_GE(ack, trigger) << s;
        EXPECT_LE(ack, completion) << s;
        EXPECT_EQ(s["end_to_end_duration"], ack - trigger) << s;
        EXPECT_GE(s["alignment"]["duration"].get<int64_t>(), 0) << s;
        EXPECT_LE(s["alignment"]["duration"].get<int64_t>(), ack - trigger) << s;
        EXPECT_GE(s["start_delay"].get<int64_t>(), 0) << s;
        EXPECT_GE(s["checkpoint"]["sync"].get<int64_t>(), 0) << s;
        EXPECT_EQ(s["unaligned_checkpoint"], false) << s;
        checkpointed += s["checkpointed_size"].get<int64_t>();
        state += s["state_size"].get<int64_t>();
      }
      EXPECT_EQ(checkpointed, task["checkpointed_size"].get<int64_t>()) << sub;
      EXPECT_EQ(state, task["state_size"].get<int64_t>()) << sub;
      EXPECT_LE(sub["summary"]["checkpointed_size"]["min"],
                sub["summary"]["checkpointed_size"]["max"])
          << sub;
    }
    EXPECT_EQ(subtasks_total, c["num_subtasks"].get<int64_t>()) << c;
    EXPECT_EQ(checkpointed_total, c["checkpointed_size"].get<int64_t>()) << c;
  }
  EXPECT_GE(completed_seen, 1) << cp;

  // Unknown or malformed ids: 404 or 400 with Flink's {"errors": [...]}.
  auto expect_error = [&](const std::string& path, int want, const std::string& says) {
    auto [code, body] = GetJson(http, path);
    EXPECT_EQ(code, want) << path << ": " << body;
    ASSERT_TRUE(body.is_object() && body["errors"].is_array() && !body["errors"].empty())
        << path << ": " << body;
    EXPECT_NE(body["errors"][0].get<std::string>().find(says), std::string::npos)
        << path << ": " << body;
  };
  expect_error(base + "/details/999999", 404, "no checkpoint 999999");
  expect_error(base + "/details/abc", 400, "checkpoint id 'abc' is not a number");
  expect_error(absl::StrCat(base, "/details/", latest_id, "/subtasks/99"), 404, "no vertex 99");
  expect_error(absl::StrCat(base, "/details/", latest_id, "/subtasks/x"), 400,
               "vertex id 'x' is not a number");
  expect_error(base + "/details/999999/subtasks/0", 404, "no checkpoint 999999");
  const std::string unknown = "/jobs/00000000000000000000000000000000/checkpoints";
  expect_error(unknown, 404, "no job");
  expect_error(unknown + "/config", 404, "no job");
  expect_error(unknown + "/details/1", 404, "no job");
  expect_error("/jobs/not-a-job-id/checkpoints", 404, "no such resource");

  // At the end, nothing is in progress and the counts are the job's.
  SLUICE_ASSIGN_OR_FAIL(st, WaitForEnd(job));
  ASSERT_EQ(st.state(), proto::JOB_FINISHED) << st.failure();
  auto [end_status, end] = GetJson(http, base);
  ASSERT_EQ(end_status, 200) << end;
  EXPECT_EQ(end["counts"]["in_progress"], 0) << end;
  EXPECT_EQ(end["counts"]["completed"], st.completed_checkpoints()) << end;
  EXPECT_EQ(end["latest"]["completed"]["id"], st.last_checkpoint_id()) << end;

  // A job without checkpointing has no checkpoint views (as Flink's).
  std::string plain;
  SLUICE_ASSIGN_OR_FAIL(plain, cluster_.SubmitDetached(TestJobLibrary("chaos_count_job"),
                                                       {"-p", "1"}, JobArgs(/*per_key=*/1)));
  expect_error(absl::StrCat("/jobs/", plain, "/checkpoints"), 404,
               "checkpointing is not enabled for job " + plain);
  expect_error(absl::StrCat("/jobs/", plain, "/checkpoints/config"), 404,
               "checkpointing is not enabled");
  SLUICE_ASSIGN_OR_FAIL(st, WaitForEnd(plain));
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
  // The restart restored a completed checkpoint of the job: the REST view names it.
  httplib::Client http("127.0.0.1", cluster_.RestPort());
  http.set_connection_timeout(5);
  http.set_read_timeout(5);
  auto [status, cp] = GetJson(http, absl::StrCat("/jobs/", job, "/checkpoints"));
  ASSERT_EQ(status, 200) << cp;
  EXPECT_EQ(cp["counts"]["restored"], 1) << cp;
  const auto& restored = cp["latest"]["restored"];
  ASSERT_TRUE(restored.is_object()) << cp;
  EXPECT_GT(restored["id"].get<int64_t>(), 0) << cp;
  EXPECT_EQ(restored["external_path"],
            absl::StrCat(checkpoints_, "/", job, "/chk-", restored["id"].get<int64_t>()))
      << cp;
  EXPECT_EQ(restored["is_savepoint"], false) << cp;

  CommandResult list = cluster_.Cli({"list", "-a", "--table"});
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
