// Submission over REST on a real cluster, as Flink's REST API does it: a job library uploaded
// (POST /jars/upload), listed, its plan shown, run with arguments, parallelism, a savepoint and a
// per-job configuration, followed through /jobs/:id/status and /jobs/:id/execution-result to its
// exact output; and the libraries and requests that must fail, each with a 4xx (or a 5xx for a
// graph builder that ran out of time) in Flink's {"errors": [...]} shape, after which the
// JobManager still serves and runs jobs.
#include <filesystem>
#include <regex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/ids.h"
#include "common/job_states.h"
#include "integration/harness.h"
#include "integration/rest_jar_helpers.h"

namespace sluice::itest {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

// How long a library may take to build its graph: short, for the hanging library's case to end
// soon, but not so short that a sanitized build's graph builder (several times slower, on a busy
// machine) misses it.
#if defined(__SANITIZE_ADDRESS__)
constexpr int kSubmitTimeoutMs = 15000;
#else
constexpr int kSubmitTimeoutMs = 3000;
#endif

class RestJarsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SLUICE_ASSERT_OK(cluster_.Start());
    port_ = cluster_.RestPort();
    ASSERT_GT(port_, 0);
    http_ = RestClient(port_);
  }

  // Uploads a test job library; its jar id.
  std::string Upload(const std::string& job, const std::string& name = "") {
    RestReply r =
        UploadJar(*http_, ReadFile(TestJobLibrary(job)), name.empty() ? "lib" + job + ".so" : name);
    EXPECT_EQ(r.status, 200) << r.raw;
    EXPECT_EQ(r.body.value("status", ""), "success") << r.raw;
    return JarIdOf(r);
  }

  // The JobManager answers and still runs a job end to end.
  ::testing::AssertionResult StillServes() {
    RestReply ov = RestGet(*http_, "/overview");
    if (ov.status != 200) return ::testing::AssertionFailure() << "/overview: " << ov.raw;
    return cluster_.RunsASmallJob();
  }

  // An upload dir holds each library once, as <sha256>.so, beside a <sha256>-<token>.json per
  // upload.
  std::vector<std::string> StoredLibraries() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(cluster_.dir() + "/web-upload")) {
      if (e.path().extension() == ".so") out.push_back(e.path().filename().string());
    }
    return out;
  }

  TestCluster cluster_{
      ClusterOptions{1, 4, {absl::StrCat("web.submit.timeout=", kSubmitTimeoutMs, "ms")}, {}}};
  int port_ = 0;
  std::unique_ptr<httplib::Client> http_;
};

TEST_F(RestJarsTest, UploadListPlanRunWithArgumentsAndParallelismToExactOutput) {
  const std::string jar = Upload("sequence_job");
  ASSERT_TRUE(std::regex_match(jar, std::regex("[0-9a-f]{64}-[0-9a-f]{16}_libsequence_job\\.so")))
      << jar;

  RestReply list = RestGet(*http_, "/v1/jars");
  ASSERT_EQ(list.status, 200) << list.raw;
  EXPECT_EQ(list.body.value("address", ""), absl::StrCat("http://127.0.0.1:", port_));
  ASSERT_EQ(list.body["files"].size(), 1u) << list.raw;
  const json& file = list.body["files"][0];
  EXPECT_EQ(file.value("id", ""), jar);
  EXPECT_EQ(file.value("name", ""), "libsequence_job.so");
  EXPECT_GT(file.value("uploaded", int64_t{0}), 0);
  ASSERT_EQ(file["entry"].size(), 1u) << file;
  EXPECT_EQ(file["entry"][0].value("name", ""), "sluice_job_entry");

  const std::string out = cluster_.dir() + "/out";
  const json run = {{"programArgsList", {"--count", "3000", "--keys", "7", "--output", out}},
                    {"parallelism", 2}};
  RestReply plan = RestPost(*http_, "/jars/" + jar + "/plan", run.dump());
  ASSERT_EQ(plan.status, 200) << plan.raw;
  EXPECT_EQ(plan.body["plan"].value("name", ""), "Sequence") << plan.raw;
  // Flink's plan: nodes with their parallelism and inputs.
  ASSERT_FALSE(plan.body["plan"]["nodes"].empty()) << plan.raw;
  for (const auto& v : plan.body["plan"]["nodes"]) {
    EXPECT_EQ(v.value("parallelism", 0), 2) << v;
    EXPECT_TRUE(v.contains("inputs")) << v;
  }

  RestReply started = RestPost(*http_, "/v1/jars/" + jar + "/run", run.dump());
  ASSERT_EQ(started.status, 200) << started.raw;
  const std::string job = started.body.value("jobid", "");
  ASSERT_TRUE(IsValidJobId(job)) << started.raw;
  EXPECT_EQ(WaitForRestStatus(*http_, job, "FINISHED", 60s), "FINISHED");
  RestReply result = RestGet(*http_, "/jobs/" + job + "/execution-result");
  ASSERT_EQ(result.status, 200) << result.raw;
  EXPECT_EQ(result.body["status"].value("id", ""), "COMPLETED") << result.raw;
  const json& r = result.body["job-execution-result"];
  EXPECT_EQ(r.value("id", ""), job);
  EXPECT_EQ(r.value("application-status", ""), "SUCCEEDED");
  EXPECT_GE(r.value("net-runtime", int64_t{-1}), 0);
  EXPECT_TRUE(r["accumulator-results"].is_object());
  EXPECT_FALSE(r.contains("failure-cause"));
  EXPECT_TRUE(SequenceOutputIsCorrect(out, 3000, 7));
  // The job ran as the CLI would have submitted it: at parallelism 2, with its arguments.
  auto st = cluster_.client().GetJob(job);
  ASSERT_TRUE(st.ok()) << st.status();
  for (const auto& v : st->graph().vertices()) EXPECT_EQ(v.parallelism(), 2);

  // programArgs, split as Flink splits it (quotes keep a part together), and the cluster's
  // default parallelism.
  const std::string out2 = cluster_.dir() + "/out 2";
  RestReply again =
      RestPost(*http_, "/jars/" + jar + "/run",
               json{{"programArgs", "--count 500  --keys 3 --output '" + out2 + "'"}}.dump());
  ASSERT_EQ(again.status, 200) << again.raw;
  const std::string job2 = again.body.value("jobid", "");
  EXPECT_EQ(WaitForRestStatus(*http_, job2, "FINISHED", 60s), "FINISHED");
  EXPECT_TRUE(SequenceOutputIsCorrect(out2, 500, 3));

  // Flink's query parameters: programArg comma-separated or repeated, parallelism.
  const std::string out3 = cluster_.dir() + "/out3";
  RestReply query = ToReply(http_->Post(
      ("/jars/" + jar + "/run?programArg=--count,400&programArg=--keys,2&programArg=--output," +
       out3 + "&parallelism=3")
          .c_str(),
      "", "application/json"));
  ASSERT_EQ(query.status, 200) << query.raw;
  const std::string job3 = query.body.value("jobid", "");
  EXPECT_EQ(WaitForRestStatus(*http_, job3, "FINISHED", 60s), "FINISHED");
  EXPECT_TRUE(SequenceOutputIsCorrect(out3, 400, 2));
  auto st3 = cluster_.client().GetJob(job3);
  ASSERT_TRUE(st3.ok()) << st3.status();
  EXPECT_EQ(st3->graph().vertices(0).parallelism(), 3);
}

TEST_F(RestJarsTest, AFailedJobsResultNamesTheFailure) {
  const std::string jar = Upload("throwing_job");
  RestReply started =
      RestPost(*http_, "/jars/" + jar + "/run",
               json{{"programArgsList", {"--count", "100", "--fail-at", "7"}}}.dump());
  ASSERT_EQ(started.status, 200) << started.raw;
  const std::string job = started.body.value("jobid", "");
  EXPECT_EQ(WaitForRestStatus(*http_, job, "FAILED", 60s), "FAILED");
  RestReply result = RestGet(*http_, "/jobs/" + job + "/execution-result");
  const json& r = result.body["job-execution-result"];
  EXPECT_EQ(r.value("application-status", ""), "FAILED") << result.raw;
  EXPECT_NE(r["failure-cause"].value("stack-trace", "").find("boom at record 7"), std::string::npos)
      << result.raw;
}

TEST_F(RestJarsTest, SecondUploadOfTheSameBytesIsTheSameFileAndDeleteRemovesIt) {
  const std::string first = Upload("sequence_job");
  const std::string second = Upload("sequence_job");
  // Each upload is a jar of its own (as in Flink), over one stored file.
  EXPECT_NE(first, second);
  EXPECT_EQ(first.substr(0, 64), second.substr(0, 64));
  EXPECT_EQ(StoredLibraries().size(), 1u);
  const std::string renamed = Upload("sequence_job", "seq.so");
  EXPECT_EQ(StoredLibraries().size(), 1u);
  RestReply list = RestGet(*http_, "/jars");
  ASSERT_EQ(list.body["files"].size(), 3u) << list.raw;
  EXPECT_EQ(list.body["files"][0].value("name", ""), "seq.so");  // the newest first
  // An id whose name is not the jar's own names no jar.
  EXPECT_EQ(RestPost(*http_, "/jars/" + first.substr(0, 82) + "x.so/run", "{}").status, 404);

  // One client's delete leaves the others' jars runnable.
  EXPECT_EQ(RestDelete(*http_, "/jars/" + first).status, 200);
  EXPECT_EQ(RestPost(*http_, "/jars/" + second + "/plan", "{}").status, 200);
  EXPECT_EQ(RestDelete(*http_, "/jars/" + second).status, 200);
  EXPECT_EQ(StoredLibraries().size(), 1u);
  RestReply del = RestDelete(*http_, "/jars/" + renamed);
  EXPECT_EQ(del.status, 200) << del.raw;
  EXPECT_TRUE(StoredLibraries().empty());
  EXPECT_TRUE(RestGet(*http_, "/jars").body["files"].empty());
  RestReply gone = RestDelete(*http_, "/jars/" + renamed);
  EXPECT_EQ(gone.status, 404) << gone.raw;
  EXPECT_NE(FirstError(gone).find("no uploaded library"), std::string::npos) << gone.raw;
  RestReply run = RestPost(*http_, "/jars/" + renamed + "/run", "{}");
  EXPECT_EQ(run.status, 404) << run.raw;
}

TEST_F(RestJarsTest, RunsFromASavepointPathWithAPerJobConfiguration) {
  const std::string jar = Upload("chaos_count_job");
  const std::string markers = cluster_.dir() + "/markers";
  fs::create_directories(markers);
  constexpr int64_t kKeys = 10, kPerKey = 200;
  auto run = [&](const std::string& output, int p) {
    return json{{"programArgsList",
                 {"--keys", std::to_string(kKeys), "--per-key", std::to_string(kPerKey), "--rate",
                  "400", "--output", output, "--marker-dir", markers}},
                {"parallelism", p},
                {"flinkConfiguration",
                 {{"execution.checkpointing.interval", "200ms"},
                  {"state.checkpoints.dir", cluster_.dir() + "/checkpoints"}}}};
  };
  RestReply started =
      RestPost(*http_, "/jars/" + jar + "/run", run(cluster_.dir() + "/out0", 2).dump());
  ASSERT_EQ(started.status, 200) << started.raw;
  const std::string job = started.body.value("jobid", "");
  auto st = cluster_.WaitUntilOrEnd(
      job, [](const proto::JobStatus& s) { return s.last_checkpoint_id() >= 1; }, 30s);
  ASSERT_TRUE(st.ok() && st->state() == proto::JOB_RUNNING) << st.status();

  RestReply trigger = RestPost(
      *http_, "/jobs/" + job + "/savepoints",
      json{{"target-directory", cluster_.dir() + "/savepoints"}, {"cancel-job", true}}.dump());
  ASSERT_EQ(trigger.status, 202) << trigger.raw;
  std::string location;
  WaitUntil(
      [&] {
        RestReply op =
            RestGet(*http_, "/jobs/" + job + "/savepoints/" + trigger.body.value("request-id", ""));
        if (op.body.is_object() && op.body["status"].value("id", "") == "COMPLETED") {
          location = op.body["operation"].value("location", "");
          return true;
        }
        return false;
      },
      30s);
  ASSERT_TRUE(fs::exists(location + "/_metadata")) << location;
  EXPECT_EQ(WaitForRestStatus(*http_, job, "CANCELED", 30s), "CANCELED");

  json resume = run(cluster_.dir() + "/out1", 3);
  resume["savepointPath"] = location;
  resume["allowNonRestoredState"] = false;
  RestReply resumed = RestPost(*http_, "/jars/" + jar + "/run", resume.dump());
  ASSERT_EQ(resumed.status, 200) << resumed.raw;
  const std::string job2 = resumed.body.value("jobid", "");
  EXPECT_EQ(WaitForRestStatus(*http_, job2, "FINISHED", 90s), "FINISHED");
  // It started from the savepoint, not from nothing.
  RestReply checkpoints = RestGet(*http_, "/jobs/" + job2 + "/checkpoints");
  const json& restored = checkpoints.body["latest"]["restored"];
  EXPECT_EQ(restored.value("is_savepoint", false), true) << checkpoints.raw;
  EXPECT_EQ(restored.value("external_path", "").rfind(location, 0), 0u) << checkpoints.raw;
  EXPECT_TRUE(SequenceCountOutputIsCorrect(cluster_.dir() + "/out1", kKeys, kPerKey));
}

TEST_F(RestJarsTest, LibrariesThatMisbehaveGetAClearErrorAndTheJobManagerServes) {
  RestReply not_lib = UploadJar(*http_, "#!/bin/sh\necho not a library\n", "libjob.so");
  EXPECT_EQ(not_lib.status, 400) << not_lib.raw;
  EXPECT_NE(FirstError(not_lib).find("not a job library"), std::string::npos) << not_lib.raw;

  struct Case {
    std::string job;
    std::vector<std::string> args;
    int status;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"no_entry_job", {}, 400, "has no Sluice job entry point"},
      {"bad_entry_job", {}, 400, "this entry point always fails"},
      {"other_abi_job", {}, 400, "was built for ABI"},
      {"graph_trouble_job", {"--trouble", "crash"}, 400, "crashed while building its job graph"},
      {"graph_trouble_job", {"--trouble", "exit"}, 400, "before its job graph was built"},
      {"graph_trouble_job",
       {"--trouble", "hang"},
       400,
       absl::StrCat("did not build its job graph within ", kSubmitTimeoutMs,
                    " ms (web.submit.timeout)")},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.job + " " + (c.args.empty() ? "" : c.args[1]));
    const std::string jar = Upload(c.job);
    for (const char* what : {"plan", "run"}) {
      const auto start = std::chrono::steady_clock::now();
      RestReply r =
          RestPost(*http_, "/jars/" + jar + "/" + what, json{{"programArgsList", c.args}}.dump());
      EXPECT_EQ(r.status, c.status) << what << ": " << r.raw;
      EXPECT_NE(FirstError(r).find(c.message), std::string::npos) << what << ": " << r.raw;
      EXPECT_LT(std::chrono::steady_clock::now() - start, 20s) << what;
    }
    ASSERT_TRUE(cluster_.JobManagerRunning());
  }
  // Hanging libraries hold at most two of the server's threads: a third build is refused at
  // once, and the API answers meanwhile.
  {
    const std::string hang = Upload("graph_trouble_job");
    const std::string body = json{{"programArgsList", {"--trouble", "hang"}}}.dump();
    std::vector<std::thread> hanging;
    for (int i = 0; i < 2; ++i) {
      hanging.emplace_back([&] { RestPost(*RestClient(port_), "/jars/" + hang + "/plan", body); });
    }
    std::this_thread::sleep_for(500ms);
    const auto start = std::chrono::steady_clock::now();
    RestReply third = RestPost(*http_, "/jars/" + hang + "/plan", body);
    EXPECT_EQ(third.status, 503) << third.raw;
    EXPECT_NE(FirstError(third).find("try again"), std::string::npos) << third.raw;
    EXPECT_EQ(RestGet(*http_, "/overview").status, 200);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
    for (auto& t : hanging) t.join();
  }
  // What a library prints while its graph is built is no part of the answer.
  const std::string printing = Upload("graph_trouble_job");
  RestReply plan = RestPost(*http_, "/jars/" + printing + "/plan",
                            json{{"programArgsList", {"--trouble", "print"}}}.dump());
  EXPECT_EQ(plan.status, 200) << plan.raw;
  EXPECT_EQ(plan.body["plan"].value("name", ""), "Graph trouble") << plan.raw;
  // The hanging builder was killed: no `sluice graph` of this cluster (its folder is in the
  // command line) is left behind.
  CommandResult ps =
      RunCommand({"/bin/sh", "-c", "ps -eo args | grep -F -- \"$0\" | grep -c '[s]luice graph'",
                  cluster_.dir()},
                 cluster_.dir(), 10s);
  EXPECT_EQ(ps.out, "0\n") << ps.Describe();
  EXPECT_TRUE(StillServes());
}

TEST_F(RestJarsTest, BodiesThatAreNotJsonOrHaveWrongTypesGet400) {
  const std::string jar = Upload("sequence_job");
  const std::vector<std::pair<std::string, std::string>> bodies = {
      {"not json", "the request body is not JSON"},
      {"[1, 2]", "not a JSON object"},
      {R"({"programArgsList": "--count 5"})", "'programArgsList' must be an array of strings"},
      {R"({"programArgsList": [1, 2]})", "'programArgsList' must be an array of strings"},
      {R"({"programArgs": ["--count"]})", "'programArgs' must be a string"},
      {R"({"programArgs": "--count '5"})", "unclosed quote"},
      {R"({"programArgs": "a", "programArgsList": ["b"]})", "not both"},
      {R"({"parallelism": "2"})", "'parallelism' must be an integer"},
      {R"({"parallelism": 0})", "'parallelism' must be an integer"},
      {R"({"parallelism": 1.5})", "'parallelism' must be an integer"},
      {R"({"savepointPath": 5})", "'savepointPath' must be a string"},
      {R"({"savepointPath": "relative/sp"})", "must be an absolute path"},
      {R"({"allowNonRestoredState": "yes"})", "'allowNonRestoredState' must be true or false"},
      {R"({"flinkConfiguration": ["a"]})", "'flinkConfiguration' must be an object"},
      {R"({"flinkConfiguration": {"a": {"b": 1}}})", "must be a string, number or boolean"},
      {R"({"flinkConfiguration": {"no.such.key": "1"}})", "unknown configuration key"},
  };
  for (const auto& [body, message] : bodies) {
    for (const char* what : {"plan", "run"}) {
      RestReply r = RestPost(*http_, "/jars/" + jar + "/" + what, body);
      EXPECT_EQ(r.status, 400) << what << " " << body << ": " << r.raw;
      EXPECT_NE(FirstError(r).find(message), std::string::npos)
          << what << " " << body << ": " << r.raw;
    }
  }
  // As `sluice run`: more slots than the cluster has is refused, not queued.
  RestReply too_wide = RestPost(*http_, "/jars/" + jar + "/run", R"({"parallelism": 64})");
  EXPECT_EQ(too_wide.status, 400) << too_wide.raw;
  EXPECT_NE(FirstError(too_wide).find("job needs 64 task slots but the cluster has only 4"),
            std::string::npos)
      << too_wide.raw;
  const std::string unknown = std::string(64, 'a') + "-0123456789abcdef_libjob.so";
  for (const std::string& what : {std::string("/run"), std::string("/plan")}) {
    RestReply r = RestPost(*http_, "/jars/" + unknown + what, "{}");
    EXPECT_EQ(r.status, 404) << what << ": " << r.raw;
    EXPECT_NE(FirstError(r).find("no uploaded library has id"), std::string::npos) << r.raw;
  }
  RestReply del = RestDelete(*http_, "/jars/" + unknown);
  EXPECT_EQ(del.status, 404) << del.raw;
  RestReply no_field = ToReply(
      http_->Post("/jars/upload", httplib::MultipartFormDataItems{{"file", "x", "libjob.so", ""}}));
  EXPECT_EQ(no_field.status, 400) << no_field.raw;
  EXPECT_NE(FirstError(no_field).find("'jarfile'"), std::string::npos) << no_field.raw;
  RestReply job = RestGet(*http_, "/jobs/" + std::string(32, 'f') + "/execution-result");
  EXPECT_EQ(job.status, 404) << job.raw;
  EXPECT_TRUE(StillServes());
}

}  // namespace
}  // namespace sluice::itest
