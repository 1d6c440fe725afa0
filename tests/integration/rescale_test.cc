// `sluice rescale` and Flink's rescaling REST API on a real cluster (default scheduler): a
// checkpointed keyed job (tests/jobs/chaos_count_job.cc: per-key sequence counts into an
// exactly-once file sink) rescaled up and down, whole and per vertex, while it runs, ends with
// every key counted exactly once on both state backends; the JobManager logs each rescale with
// its reason; `sluice list` and the REST views show the live parallelism; what cannot be done
// gets a clear error naming the problem.
#include <gmock/gmock.h>
#include <httplib.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "integration/harness.h"
#include "integration/rescale_helpers.h"

namespace sluice::itest {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using ::testing::HasSubstr;

constexpr int64_t kKeys = 20;
constexpr int64_t kRate = 500;  // records/s over the whole job, whatever its parallelism

class RescaleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SLUICE_ASSERT_OK(cluster_.Start());
    output_ = cluster_.dir() + "/out";
    checkpoints_ = cluster_.dir() + "/checkpoints";
  }

  // The chaos count job at parallelism `p` with `per_key` records per key, and `more` flags.
  absl::StatusOr<std::string> Submit(int p, int64_t per_key, std::vector<std::string> more = {}) {
    return cluster_.SubmitDetached(TestJobLibrary("chaos_count_job"),
                                   CheckpointedRunFlags(checkpoints_, p, std::move(more)),
                                   ChaosCountArgs(kKeys, per_key, kRate, output_));
  }

  // The REST API: the status and the parsed body (discarded when not JSON).
  std::pair<int, json> Http(const std::string& method, const std::string& path,
                            const std::string& body = "") {
    httplib::Client http("127.0.0.1", cluster_.RestPort());
    http.set_connection_timeout(5);
    http.set_read_timeout(10);
    httplib::Result res = method == "GET"     ? http.Get(path.c_str())
                          : method == "PATCH" ? http.Patch(path.c_str(), body, "application/json")
                                              : http.Put(path.c_str(), body, "application/json");
    if (!res) return {0, json()};
    return {res->status, json::parse(res->body, nullptr, /*allow_exceptions=*/false)};
  }

  TestCluster cluster_{2, 2};
  std::string output_, checkpoints_;
};

class RescaleBackendTest : public RescaleTest, public ::testing::WithParamInterface<std::string> {};

// 1 -> 2 (whole job) -> Count Sequence at 4 (one vertex) -> 1 (whole job, down), each from the
// latest checkpoint while records flow; the counts come out exact.
TEST_P(RescaleBackendTest, UpAndDownWhileRunningKeepsEveryCountExact) {
  constexpr int64_t kPerKey = 250;  // 5000 records at 500/s: about 10 s
  std::string job;
  SLUICE_ASSIGN_OR_FAIL(job, Submit(1, kPerKey, {"-D", "state.backend.type=" + GetParam()}));
  proto::JobStatus st;
  SLUICE_ASSIGN_OR_FAIL(st, WaitForParallelismAndCheckpoint(cluster_, job, {1, 1}, 0, 30s));

  struct Step {
    std::vector<std::string> flags;
    std::vector<int> expect;  // Key Sequences, Count Sequence -> Sink
    std::string logged;       // the change as the JobManager logs it
  };
  const std::vector<Step> steps = {
      {{"-p", "2"}, {2, 2}, "'Source: Key Sequences' 1 -> 2"},
      {{"--vertex", "Count Sequence=4"}, {2, 4}, "-> Sink: Exactly-Once Text File' 2 -> 4"},
      {{"-p", "1"}, {1, 1}, "'Source: Key Sequences' 2 -> 1"},
  };
  for (size_t i = 0; i < steps.size(); ++i) {
    const Step& step = steps[i];
    SCOPED_TRACE(absl::StrCat("rescale ", i + 1, " to ", Describe(step.expect)));
    std::vector<std::string> args = {"rescale", job};
    args.insert(args.end(), step.flags.begin(), step.flags.end());
    const int restarts_before = st.restarts();
    CommandResult r = cluster_.Cli(args, 60s);
    ASSERT_EQ(r.exit_code, 0) << r.Describe();
    EXPECT_THAT(r.out, HasSubstr("Rescaled job " + job)) << r.Describe();
    // The CLI returned once every task of the new parallelism ran.
    SLUICE_ASSIGN_OR_FAIL(proto::JobStatus now, cluster_.client().GetJob(job));
    EXPECT_EQ(VertexParallelismOf(now), step.expect);
    EXPECT_EQ(now.parallelism(), *std::max_element(step.expect.begin(), step.expect.end()));
    EXPECT_EQ(now.tasks_size(), step.expect[0] + step.expect[1]);
    EXPECT_EQ(now.rescales(), static_cast<int>(i + 1));
    EXPECT_EQ(now.restarts(), restarts_before) << "a rescale is not a failure";
    EXPECT_THAT(cluster_.JobManagerLog(),
                HasSubstr(absl::StrCat("job ", job, " rescaling (sluice rescale): ")));
    EXPECT_THAT(cluster_.JobManagerLog(), HasSubstr(step.logged));
    // A checkpoint of the new parallelism, so the next rescale restores one.
    SLUICE_ASSIGN_OR_FAIL(st, WaitForParallelismAndCheckpoint(cluster_, job, step.expect,
                                                              now.last_checkpoint_id(), 30s));
  }

  SLUICE_ASSIGN_OR_FAIL(
      st, cluster_.WaitForJob(
              job, [](const proto::JobStatus& s) { return IsTerminalJobState(s.state()); }, 60s));
  ASSERT_EQ(st.state(), proto::JOB_FINISHED) << st.failure();
  EXPECT_EQ(st.rescales(), 3);
  EXPECT_TRUE(SequenceCountOutputIsCorrect(output_, kKeys, kPerKey));
  EXPECT_TRUE(InProgressFiles(output_).empty());
}

INSTANTIATE_TEST_SUITE_P(Backends, RescaleBackendTest, ::testing::Values("hashmap", "rocksdb"),
                         [](const auto& info) { return info.param; });

// Flink's REST paths: PATCH rescaling with its asynchronous result, resource requirements read
// and replaced (the default scheduler rescales to the upper bounds), and the live parallelism
// in the job views and `sluice list`.
TEST_F(RescaleTest, RestRescalesAndShowsTheLiveParallelism) {
  constexpr int64_t kPerKey = 200;  // about 8 s
  std::string job;
  SLUICE_ASSIGN_OR_FAIL(job, Submit(1, kPerKey));
  proto::JobStatus st;
  SLUICE_ASSIGN_OR_FAIL(st, WaitForParallelismAndCheckpoint(cluster_, job, {1, 1}, 0, 30s));
  const std::string base = "/jobs/" + job;

  auto [req_status, requirements] = Http("GET", base + "/resource-requirements");
  ASSERT_EQ(req_status, 200) << requirements;
  EXPECT_EQ(requirements, json::parse(R"({"0": {"parallelism": {"lowerBound": 1, "upperBound": 1}},
                                          "1": {"parallelism": {"lowerBound": 1, "upperBound": 1}}})"));

  auto [patch_status, trigger] = Http("PATCH", base + "/rescaling?parallelism=2");
  ASSERT_EQ(patch_status, 200) << trigger;
  ASSERT_TRUE(trigger["request-id"].is_string()) << trigger;
  const std::string op_path = base + "/rescaling/" + trigger["request-id"].get<std::string>();
  json op;
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto [status, body] = Http("GET", op_path);
        op = body;
        return status == 200 && body["status"]["id"] == "COMPLETED";
      },
      30s, 100ms))
      << op;
  EXPECT_TRUE(op["operation"]["failure-cause"].is_null()) << op;
  EXPECT_EQ(op["operation"]["to-parallelism"], json::parse(R"({"0": 2, "1": 2})")) << op;
  EXPECT_EQ(op["operation"]["from-parallelism"], json::parse(R"({"0": 1, "1": 1})")) << op;

  // The job views show the live parallelism.
  auto [job_status, view] = Http("GET", base);
  ASSERT_EQ(job_status, 200) << view;
  EXPECT_EQ(view["parallelism"], 2) << view;
  ASSERT_EQ(view["vertices"].size(), 2u) << view;
  for (const auto& v : view["vertices"]) EXPECT_EQ(v["parallelism"], 2) << view;
  auto [overview_status, overview] = Http("GET", "/jobs/overview");
  ASSERT_EQ(overview_status, 200);
  EXPECT_EQ(overview["jobs"][0]["parallelism"], 2) << overview;
  CommandResult list = cluster_.Cli({"list", "--table"});
  ASSERT_EQ(list.exit_code, 0) << list.Describe();
  EXPECT_THAT(list.out,
              ::testing::ContainsRegex(job + "  RUNNING +[-0-9: ]+ +2 +[0-9]+  Chaos Count"))
      << list.out;

  // New bounds: the default scheduler runs each vertex at its upper bound.
  auto [put_status, put_body] = Http("PUT", base + "/resource-requirements",
                                     R"({"0": {"parallelism": {"lowerBound": 1, "upperBound": 2}},
                                         "1": {"parallelism": {"lowerBound": 1, "upperBound": 4}}})");
  ASSERT_EQ(put_status, 200) << put_body;
  SLUICE_ASSIGN_OR_FAIL(st, WaitForParallelismAndCheckpoint(cluster_, job, {2, 4}, 0, 30s));
  auto [after_status, after] = Http("GET", base + "/resource-requirements");
  ASSERT_EQ(after_status, 200);
  EXPECT_EQ(after["1"]["parallelism"]["upperBound"], 4) << after;
  EXPECT_THAT(cluster_.JobManagerLog(),
              HasSubstr(absl::StrCat("job ", job, " rescaling (resource requirements changed)")));

  SLUICE_ASSIGN_OR_FAIL(
      st, cluster_.WaitForJob(
              job, [](const proto::JobStatus& s) { return IsTerminalJobState(s.state()); }, 60s));
  ASSERT_EQ(st.state(), proto::JOB_FINISHED) << st.failure();
  EXPECT_EQ(st.rescales(), 2);
  EXPECT_TRUE(SequenceCountOutputIsCorrect(output_, kKeys, kPerKey));
}

// What cannot be rescaled, over the CLI and REST: each a clear error naming the problem, and
// the job runs on untouched.
TEST_F(RescaleTest, RefusesWhatItCannotDoWithClearErrors) {
  // A job that has finished.
  ASSERT_TRUE(cluster_.RunsASmallJob(1));
  auto ended = cluster_.client().ListJobs(/*include_terminated=*/true);
  ASSERT_TRUE(ended.ok() && ended->size() == 1u) << ended.status();
  const std::string finished = (*ended)[0].job_id();
  CommandResult r = cluster_.Cli({"rescale", finished, "-p", "2"});
  EXPECT_EQ(r.exit_code, 1) << r.Describe();
  EXPECT_THAT(r.err, HasSubstr("job " + finished + " is FINISHED")) << r.Describe();

  // A long checkpointed job at 2 (2 slots of 4) and one without checkpointing at 1.
  std::string job;
  SLUICE_ASSIGN_OR_FAIL(job, Submit(2, 100000));
  std::string plain;
  SLUICE_ASSIGN_OR_FAIL(
      plain,
      cluster_.SubmitDetached(TestJobLibrary("chaos_count_job"), {"-p", "1"},
                              ChaosCountArgs(kKeys, 100000, kRate, cluster_.dir() + "/plain")));
  SLUICE_ASSERT_OK(cluster_.WaitForAllTasksRunning(plain, 30s).status());
  proto::JobStatus st;
  SLUICE_ASSIGN_OR_FAIL(st, WaitForParallelismAndCheckpoint(cluster_, job, {2, 2}, 0, 30s));

  struct Case {
    std::vector<std::string> args;
    std::string error;
  };
  const std::vector<Case> cases = {
      {{"rescale", job, "-p", "200"},
       "parallelism 200 is above the job's max parallelism 128 (pipeline.max-parallelism)"},
      {{"rescale", job, "--vertex", "Count Sequence=129"},
       "parallelism 129 of vertex 1 'Count Sequence -> Sink: Exactly-Once Text File' is above "
       "its max parallelism 128"},
      {{"rescale", job, "--vertex", "Nope=2"},
       "--vertex 'Nope=2': no vertex of the job is called 'Nope' (its vertices: 0 'Source: Key "
       "Sequences', 1 'Count Sequence -> Sink: Exactly-Once Text File')"},
      {{"rescale", job, "--vertex", "Count Sequence"},
       "expected <vertex id or name>=<parallelism>"},
      {{"rescale", job, "-p", "4"},
       "needs 4 task slots at the new parallelism but only 3 are available to it (2 it holds and "
       "1 free"},
      {{"rescale", job, "-p", "0"}, "parallelism (-p) must be at least 1, got 0"},
      {{"rescale", job}, "give either -p N (the whole job) or --vertex"},
      {{"rescale", "not-a-job", "-p", "2"}, "'not-a-job' is not a job id"},
      {{"rescale", plain, "-p", "2"},
       "job " + plain + " has no checkpointing (execution.checkpointing.interval is 0)"},
  };
  for (const Case& c : cases) {
    CommandResult bad = cluster_.Cli(c.args);
    EXPECT_EQ(bad.exit_code, 1) << bad.Describe();
    EXPECT_THAT(bad.err, HasSubstr(c.error)) << bad.Describe();
  }

  // REST: malformed requests are 4xx with Flink's {"errors": [...]}.
  const std::string base = "/jobs/" + job;
  const std::string two = R"("1": {"parallelism": {"lowerBound": 1, "upperBound": 2}})";
  struct RestCase {
    std::string method, path, body;
    int status;
    std::string error;
  };
  const std::vector<RestCase> rest = {
      {"PATCH", base + "/rescaling", "", 400, "the query parameter 'parallelism' is required"},
      {"PATCH", base + "/rescaling?parallelism=two", "", 400, "must be an integer, got 'two'"},
      {"PATCH", base + "/rescaling?parallelism=0", "", 400, "parallelism must be at least 1"},
      {"PATCH", base + "/rescaling?parallelism=200", "", 400, "above the job's max parallelism"},
      {"PATCH", base + "/rescaling?parallelism=8", "", 409, "needs 8 task slots"},
      {"PATCH", "/jobs/" + plain + "/rescaling?parallelism=2", "", 409, "has no checkpointing"},
      {"PATCH", "/jobs/" + finished + "/rescaling?parallelism=2", "", 409, "is FINISHED"},
      {"GET", base + "/rescaling/" + std::string(32, '0'), "", 404, "has no rescale with"},
      {"GET", "/jobs/" + std::string(32, 'f') + "/resource-requirements", "", 404, "no job"},
      {"PUT", base + "/resource-requirements", "{", 400, "the request body is not JSON"},
      {"PUT", base + "/resource-requirements", "[1, 2]", 400, "must be an object"},
      {"PUT", base + "/resource-requirements", "{" + two + "}", 400,
       "vertex 0 has no requirements"},
      {"PUT", base + "/resource-requirements",
       R"({"7": {"parallelism": {"lowerBound": 1, "upperBound": 2}}, )" + two + "}", 400,
       "'7' is not a vertex of the job (its vertex ids are 0 to 1)"},
      {"PUT", base + "/resource-requirements", R"({"0": {"lowerBound": 1}, )" + two + "}", 400,
       "vertex 0: expected {\"parallelism\""},
      {"PUT", base + "/resource-requirements",
       R"({"0": {"parallelism": {"lowerBound": 1}}, )" + two + "}", 400,
       "vertex 0 parallelism has no \"upperBound\""},
      {"PUT", base + "/resource-requirements",
       R"({"0": {"parallelism": {"lowerBound": 1, "upperBound": "2"}}, )" + two + "}", 400,
       "\"upperBound\" must be an integer, got \"2\""},
      {"PUT", base + "/resource-requirements",
       R"({"0": {"parallelism": {"lowerBound": 3, "upperBound": 2}}, )" + two + "}", 400,
       "the upper bound of vertex 0 'Source: Key Sequences' (2) is below its lower bound (3)"},
      {"PUT", base + "/resource-requirements",
       R"({"0": {"parallelism": {"lowerBound": 1, "upperBound": 500}}, )" + two + "}", 400,
       "the upper bound 500 of vertex 0 'Source: Key Sequences' is above its max parallelism 128"},
  };
  for (const RestCase& c : rest) {
    auto [status, body] = Http(c.method, c.path, c.body);
    EXPECT_EQ(status, c.status) << c.method << " " << c.path << " " << c.body << ": " << body;
    ASSERT_TRUE(body.is_object() && body["errors"].is_array() && body["errors"].size() == 1)
        << c.method << " " << c.path << ": " << body;
    EXPECT_THAT(body["errors"][0].get<std::string>(), HasSubstr(c.error))
        << c.method << " " << c.path << " " << c.body;
  }

  // Nothing of that touched the jobs.
  SLUICE_ASSIGN_OR_FAIL(st, cluster_.client().GetJob(job));
  EXPECT_EQ(st.state(), proto::JOB_RUNNING);
  EXPECT_EQ(VertexParallelismOf(st), (std::vector<int>{2, 2}));
  EXPECT_EQ(st.rescales(), 0);
  SLUICE_ASSERT_OK(cluster_.client().Cancel(job));
  SLUICE_ASSERT_OK(cluster_.client().Cancel(plain));
  SLUICE_ASSERT_OK(cluster_.WaitForState(job, proto::JOB_CANCELED, 30s).status());
  SLUICE_ASSERT_OK(cluster_.WaitForState(plain, proto::JOB_CANCELED, 30s).status());
  r = cluster_.Cli({"rescale", job, "-p", "1"});
  EXPECT_EQ(r.exit_code, 1) << r.Describe();
  EXPECT_THAT(r.err, HasSubstr("job " + job + " is CANCELED: only a RUNNING job can be rescaled"));
  EXPECT_TRUE(cluster_.IsHealthy());
}

}  // namespace
}  // namespace sluice::itest
