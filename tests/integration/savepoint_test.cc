// Savepoints seen from outside, on a real cluster, with the sequence-count pipeline
// (tests/jobs/chaos_count_job.cc without faults): `sluice savepoint` mid-run, a savepoint moved to
// another folder and resumed at a lower and a higher parallelism and on the other state backend,
// `sluice stop` with and without --drain, the REST savepoint, stop and disposal operations, and
// the errors a user meets (a path that is not a savepoint, a finished job, no checkpointing,
// malformed REST bodies).
#include <httplib.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/checkpoint_storage.h"
#include "integration/harness.h"

namespace sluice::itest {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;
using nlohmann::json;

class SavepointTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    SLUICE_ASSERT_OK(cluster_.Start());
    markers_ = cluster_.dir() + "/markers";
    checkpoints_ = cluster_.dir() + "/checkpoints";
    savepoints_ = cluster_.dir() + "/savepoints";
    fs::create_directories(markers_);
  }

  std::vector<std::string> JobArgs(const std::string& output, int64_t per_key) const {
    return {"--keys",       absl::StrCat(kKeys),
            "--per-key",    absl::StrCat(per_key),
            "--rate",       absl::StrCat(kRate),
            "--output",     output,
            "--marker-dir", markers_};
  }
  // `-p p`, checkpoints every 200 ms, the state backend `backend`, and `more` first.
  std::vector<std::string> Flags(int p, const std::string& backend,
                                 std::vector<std::string> more = {}) const {
    std::vector<std::string> flags = std::move(more);
    for (const std::string& f : {std::string("-p"), absl::StrCat(p), std::string("-D"),
                                 std::string("execution.checkpointing.interval=200ms"),
                                 std::string("-D"), "state.checkpoints.dir=" + checkpoints_,
                                 std::string("-D"), "state.backend.type=" + backend}) {
      flags.push_back(f);
    }
    return flags;
  }
  // Starts the job at parallelism 2 and waits for its first completed checkpoint.
  std::string StartJob(const std::string& output, const std::string& backend,
                       std::vector<std::string> more = {}) {
    std::string job;
    auto submitted =
        cluster_.SubmitDetached(TestJobLibrary("chaos_count_job"),
                                Flags(2, backend, std::move(more)), JobArgs(output, kPerKey));
    EXPECT_TRUE(submitted.ok()) << submitted.status();
    if (!submitted.ok()) return "";
    auto st = cluster_.WaitUntilOrEnd(
        *submitted, [](const proto::JobStatus& s) { return s.last_checkpoint_id() >= 1; }, 30s);
    EXPECT_TRUE(st.ok() && st->state() == proto::JOB_RUNNING)
        << (st.ok() ? st->DebugString() : st.status().ToString());
    return *submitted;
  }
  // The folder in "Savepoint completed. Path: <folder>", or "" (with a failure).
  static std::string SavepointPath(const CommandResult& r) {
    static const std::regex kPath(R"(Savepoint completed\. Path: (\S+))");
    std::smatch m;
    EXPECT_EQ(r.exit_code, 0) << r.Describe();
    if (!std::regex_search(r.out, m, kPath)) {
      ADD_FAILURE() << "no savepoint path in the output: " << r.Describe();
      return "";
    }
    return m[1];
  }
  // Runs the job from `path` at parallelism `p` on `backend` into `output` to its end.
  void ResumeAndCheck(const std::string& path, int p, const std::string& backend,
                      const std::string& output) {
    SCOPED_TRACE(absl::StrCat("resumed from ", path, " at parallelism ", p, " on ", backend));
    std::string job;
    SLUICE_ASSIGN_OR_FAIL(
        job, cluster_.SubmitDetached(TestJobLibrary("chaos_count_job"),
                                     Flags(p, backend, {"-s", path}), JobArgs(output, kPerKey)));
    proto::JobStatus st;
    SLUICE_ASSIGN_OR_FAIL(
        st, cluster_.WaitForJob(
                job, [](const proto::JobStatus& s) { return IsTerminalJobState(s.state()); }, 60s));
    ASSERT_EQ(st.state(), proto::JOB_FINISHED) << st.failure();
    EXPECT_TRUE(SequenceCountOutputIsCorrect(output, kKeys, kPerKey));
    EXPECT_TRUE(InProgressFiles(output).empty());
  }
  static std::string OtherBackend(const std::string& b) {
    return b == "hashmap" ? "rocksdb" : "hashmap";
  }

  static constexpr int64_t kKeys = 20;
  // Long enough that a savepoint or stop on a loaded machine comes well before the end.
  static constexpr int64_t kPerKey = 300;
  static constexpr int64_t kRate = 600;  // records/s: 300 per key take 10 s
  TestCluster cluster_{2, 2};
  std::string markers_, checkpoints_, savepoints_;
};

TEST_P(SavepointTest, MovedSavepointResumesAtLowerAndHigherParallelismOnEitherBackend) {
  const std::string backend = GetParam();
  std::string job = StartJob(cluster_.dir() + "/out0", backend);
  ASSERT_FALSE(job.empty());
  std::string path = SavepointPath(cluster_.Cli({"savepoint", job, savepoints_}));
  ASSERT_FALSE(path.empty());
  // The job goes on after a savepoint.
  auto st = cluster_.client().GetJob(job);
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(st->state(), proto::JOB_RUNNING);

  // Self-contained: every state file is in the folder, named relative to it.
  ASSERT_EQ(path.rfind(savepoints_ + "/savepoint-" + job.substr(0, 6) + "-", 0), 0u) << path;
  auto meta = ReadMetadata(path);
  ASSERT_TRUE(meta.ok()) << meta.status();
  EXPECT_TRUE(meta->savepoint());
  EXPECT_GT(meta->handles_size(), 0);
  for (const auto& h : meta->handles()) {
    EXPECT_EQ(h.file().find('/'), std::string::npos) << h.file();
    EXPECT_EQ(h.shared_files_size(), 0) << h.file();
    EXPECT_TRUE(fs::exists(path + "/" + h.file())) << h.file();
  }
  // No chk-<n> folder is left of it among the job's checkpoints.
  EXPECT_FALSE(fs::exists(absl::StrCat(checkpoints_, "/", job, "/chk-", meta->checkpoint_id())));
  SLUICE_ASSERT_OK(cluster_.client().Cancel(job));
  SLUICE_ASSERT_OK(cluster_.WaitForState(job, proto::JOB_CANCELED, 30s).status());

  // Moved to another folder, it still restores: at parallelism 1 on the other backend, and at
  // parallelism 4 on the same one.
  const std::string moved = cluster_.dir() + "/elsewhere/sp";
  fs::create_directories(cluster_.dir() + "/elsewhere");
  fs::rename(path, moved);
  ResumeAndCheck(moved, 1, OtherBackend(backend), cluster_.dir() + "/out1");
  ResumeAndCheck(moved + "/_metadata", 4, backend, cluster_.dir() + "/out4");
  EXPECT_TRUE(cluster_.IsHealthy());
}

TEST_P(SavepointTest, StopEndsTheJobAtTheSavepointAndItResumes) {
  const std::string backend = GetParam();
  const std::string out = cluster_.dir() + "/out";
  std::string job = StartJob(out, backend);
  ASSERT_FALSE(job.empty());
  CommandResult r = cluster_.Cli({"stop", "--savepointPath", savepoints_, job});
  EXPECT_NE(r.out.find(absl::StrCat("Suspending job \"", job, "\" with a savepoint.")),
            std::string::npos)
      << r.Describe();
  std::string path = SavepointPath(r);
  ASSERT_FALSE(path.empty());
  auto st = cluster_.WaitForJob(
      job, [](const proto::JobStatus& s) { return IsTerminalJobState(s.state()); }, 30s);
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(st->state(), proto::JOB_FINISHED) << st->failure();
  // Stopped without draining: the input did not end, so no final count was emitted.
  EXPECT_TRUE(ReadPartFiles(out).empty());
  ResumeAndCheck(path, 2, backend, cluster_.dir() + "/resumed");
  EXPECT_TRUE(cluster_.IsHealthy());
}

TEST_P(SavepointTest, StopWithDrainEmitsAndCommitsWhatTheSavepointCovers) {
  const std::string backend = GetParam();
  const std::string out = cluster_.dir() + "/out";
  std::string job = StartJob(out, backend);
  ASSERT_FALSE(job.empty());
  std::string path = SavepointPath(cluster_.Cli({"stop", "--drain", "-p", savepoints_, job}));
  ASSERT_FALSE(path.empty());
  auto st = cluster_.WaitForJob(
      job, [](const proto::JobStatus& s) { return IsTerminalJobState(s.state()); }, 30s);
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(st->state(), proto::JOB_FINISHED) << st->failure();
  // Draining ended the input: every key's count so far was emitted, and the stop's savepoint
  // committed it (no file left in progress).
  auto parts = ReadPartFiles(out);
  ASSERT_FALSE(parts.empty()) << "the drained job committed nothing";
  EXPECT_TRUE(InProgressFiles(out).empty());
  // Per key, the counts its lines say, across the committed part files.
  auto counts_by_key = [&]() {
    std::map<int64_t, std::vector<int64_t>> counts;
    for (const auto& [file, content] : ReadPartFiles(out)) {
      for (const std::string& line : content) {
        int64_t key = -1, count = -1, violations = -1;
        EXPECT_EQ(std::sscanf(line.c_str(), "%ld,%ld,%ld", &key, &count, &violations), 3) << line;
        EXPECT_EQ(violations, 0) << line;
        counts[key].push_back(count);
      }
    }
    return counts;
  };
  auto drained = counts_by_key();
  ASSERT_EQ(drained.size(), static_cast<size_t>(kKeys));
  int64_t total = 0;
  for (const auto& [key, counts] : drained) {
    ASSERT_EQ(counts.size(), 1u) << "key " << key;
    EXPECT_GT(counts[0], 0) << "key " << key;
    EXPECT_LE(counts[0], kPerKey) << "key " << key;
    total += counts[0];
  }
  EXPECT_LT(total, kKeys * kPerKey) << "the job had ended by itself before the stop";

  // The drained state goes on: resumed with the same arguments, the job re-commits the
  // savepoint's transaction (already done: nothing changes) and counts every key to the end,
  // so each key has its drained line and a final one with the full count.
  std::string resumed;
  SLUICE_ASSIGN_OR_FAIL(
      resumed, cluster_.SubmitDetached(TestJobLibrary("chaos_count_job"),
                                       Flags(2, backend, {"-s", path}), JobArgs(out, kPerKey)));
  SLUICE_ASSERT_OK(cluster_.WaitForState(resumed, proto::JOB_FINISHED, 60s).status());
  auto after = counts_by_key();
  ASSERT_EQ(after.size(), static_cast<size_t>(kKeys));
  for (const auto& [key, counts] : after) {
    EXPECT_EQ(counts.size(), 2u) << "key " << key;
    EXPECT_EQ(std::count(counts.begin(), counts.end(), drained[key][0]), 1) << "key " << key;
    EXPECT_EQ(*std::max_element(counts.begin(), counts.end()), kPerKey) << "key " << key;
  }
  EXPECT_TRUE(InProgressFiles(out).empty());
}

INSTANTIATE_TEST_SUITE_P(Backends, SavepointTest, ::testing::Values("hashmap", "rocksdb"),
                         [](const auto& info) { return info.param; });

// POST `body` to `path`; the status and the parsed body (discarded when it is not JSON).
std::pair<int, json> PostJson(httplib::Client& http, const std::string& path,
                              const std::string& body) {
  auto res = http.Post(path.c_str(), body, "application/json");
  if (!res) return {0, json()};
  return {res->status, json::parse(res->body, nullptr, /*allow_exceptions=*/false)};
}
std::pair<int, json> GetJson(httplib::Client& http, const std::string& path) {
  auto res = http.Get(path.c_str());
  if (!res) return {0, json()};
  return {res->status, json::parse(res->body, nullptr, /*allow_exceptions=*/false)};
}
// Polls Flink's asynchronous operation at `path` until COMPLETED; its "operation".
json AwaitOperation(httplib::Client& http, const std::string& path) {
  json last;
  WaitUntil(
      [&] {
        auto [status, body] = GetJson(http, path);
        last = body;
        return status == 200 && body["status"].value("id", "") == "COMPLETED";
      },
      30s, 50ms);
  EXPECT_EQ(last["status"].value("id", ""), "COMPLETED") << path << ": " << last;
  return last.contains("operation") ? last["operation"] : json();
}

TEST_F(SavepointTest, RestTriggersSavepointsStopsAndDisposals) {
  std::string job = StartJob(cluster_.dir() + "/out", "hashmap");
  ASSERT_FALSE(job.empty());
  int port = cluster_.RestPort();
  ASSERT_GT(port, 0);
  httplib::Client http("127.0.0.1", port);
  http.set_read_timeout(10);

  auto [status, trigger] =
      PostJson(http, "/jobs/" + job + "/savepoints",
               json{{"target-directory", savepoints_}, {"cancel-job", false}}.dump());
  ASSERT_EQ(status, 202) << trigger;
  const std::string request = trigger.value("request-id", "");
  ASSERT_EQ(request.size(), 32u) << trigger;
  json op = AwaitOperation(http, "/jobs/" + job + "/savepoints/" + request);
  const std::string location = op.value("location", "");
  ASSERT_TRUE(fs::exists(location + "/_metadata")) << op;
  // The checkpoint statistics show it as the latest savepoint.
  auto [cs, checkpoints] = GetJson(http, "/jobs/" + job + "/checkpoints");
  ASSERT_EQ(cs, 200);
  EXPECT_EQ(checkpoints["latest"]["savepoint"].value("external_path", ""), location) << checkpoints;
  EXPECT_EQ(checkpoints["latest"]["savepoint"].value("is_savepoint", false), true);

  // Disposal removes it; a second disposal fails, as does disposing of a checkpoint.
  auto [ds, dispose] =
      PostJson(http, "/savepoint-disposal", json{{"savepoint-path", location}}.dump());
  ASSERT_EQ(ds, 202) << dispose;
  json done = AwaitOperation(http, "/savepoint-disposal/" + dispose.value("request-id", ""));
  EXPECT_FALSE(done.contains("failure-cause")) << done;
  EXPECT_FALSE(fs::exists(location));
  auto [ds2, again] =
      PostJson(http, "/savepoint-disposal", json{{"savepoint-path", location}}.dump());
  ASSERT_EQ(ds2, 202);
  done = AwaitOperation(http, "/savepoint-disposal/" + again.value("request-id", ""));
  EXPECT_NE(done["failure-cause"].value("stack-trace", "").find("is not a savepoint"),
            std::string::npos)
      << done;

  // Stop over REST: the job ends FINISHED and the operation names the savepoint.
  auto [ss, stop] = PostJson(http, "/jobs/" + job + "/stop",
                             json{{"targetDirectory", savepoints_}, {"drain", false}}.dump());
  ASSERT_EQ(ss, 202) << stop;
  op = AwaitOperation(http, "/jobs/" + job + "/savepoints/" + stop.value("request-id", ""));
  EXPECT_TRUE(fs::exists(op.value("location", "") + "/_metadata")) << op;
  SLUICE_ASSERT_OK(cluster_.WaitForState(job, proto::JOB_FINISHED, 30s).status());

  // Malformed requests: 4xx with Flink's error shape, and the JobManager keeps serving.
  for (const auto& [path, body, want] : std::vector<std::tuple<std::string, std::string, int>>{
           {"/jobs/" + job + "/savepoints", "{not json", 400},
           {"/jobs/" + job + "/savepoints", R"({"target-directory": 5})", 400},
           {"/jobs/" + job + "/stop", R"({"drain": "yes"})", 400},
           {"/jobs/" + job + "/stop", "{}", 409},  // FINISHED
           {"/jobs/" + std::string(32, 'a') + "/savepoints", "{}", 404},
           {"/savepoint-disposal", "[]", 400},
           {"/savepoint-disposal", "{}", 400}}) {
    auto [code, reply] = PostJson(http, path, body);
    EXPECT_EQ(code, want) << path << " " << body << ": " << reply;
    EXPECT_TRUE(reply["errors"].is_array() && !reply["errors"].empty()) << reply;
  }
  auto [gs, unknown] = GetJson(http, "/jobs/" + job + "/savepoints/" + std::string(32, 'b'));
  EXPECT_EQ(gs, 404) << unknown;
  EXPECT_TRUE(cluster_.IsHealthy());
}

TEST_F(SavepointTest, BadPathsAndStatesGetClearErrors) {
  // A path that does not exist, and a folder that is not a savepoint.
  for (const std::string& path : {cluster_.dir() + "/nowhere", cluster_.dir()}) {
    CommandResult r =
        cluster_.Cli({"run", "-d", "-s", path, TestJobLibrary("chaos_count_job"), "--", "--keys",
                      "2", "--per-key", "2", "--output", cluster_.dir() + "/x"});
    EXPECT_NE(r.exit_code, 0) << r.Describe();
    EXPECT_NE(r.err.find(path), std::string::npos) << r.Describe();
  }
  // Disposing of something that is not a savepoint.
  CommandResult r = cluster_.Cli({"savepoint", "-d", cluster_.dir()});
  EXPECT_NE(r.exit_code, 0) << r.Describe();
  EXPECT_NE(r.err.find("is not a savepoint"), std::string::npos) << r.Describe();
  EXPECT_TRUE(fs::exists(cluster_.dir() + "/taskmanager-0.log")) << "disposal removed a folder";

  // A job without checkpointing, and then the same job once it has finished.
  const std::string out = cluster_.dir() + "/plain";
  std::string job;
  SLUICE_ASSIGN_OR_FAIL(
      job, cluster_.SubmitDetached(TestJobLibrary("chaos_count_job"), {}, JobArgs(out, kPerKey)));
  r = cluster_.Cli({"savepoint", job, savepoints_});
  EXPECT_NE(r.exit_code, 0) << r.Describe();
  EXPECT_NE(r.err.find("without checkpointing"), std::string::npos) << r.Describe();
  SLUICE_ASSERT_OK(cluster_.WaitForState(job, proto::JOB_FINISHED, 60s).status());
  r = cluster_.Cli({"stop", "-p", savepoints_, job});
  EXPECT_NE(r.exit_code, 0) << r.Describe();
  EXPECT_NE(r.err.find("FINISHED"), std::string::npos) << r.Describe();
  // No folder given and none configured.
  std::string running = StartJob(cluster_.dir() + "/out", "hashmap");
  ASSERT_FALSE(running.empty());
  r = cluster_.Cli({"savepoint", running});
  EXPECT_NE(r.exit_code, 0) << r.Describe();
  EXPECT_NE(r.err.find("execution.checkpointing.savepoint-dir"), std::string::npos) << r.Describe();
  r = cluster_.Cli({"savepoint", "not-a-job"});
  EXPECT_NE(r.exit_code, 0) << r.Describe();
  EXPECT_NE(r.err.find("not a job id"), std::string::npos) << r.Describe();
  EXPECT_TRUE(cluster_.IsHealthy());
}

}  // namespace
}  // namespace sluice::itest
