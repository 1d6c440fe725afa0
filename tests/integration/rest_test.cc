// The JobManager's REST API and dashboard, on a real cluster: Flink's paths and field names,
// cancel over PATCH, failures visible as exceptions, and clear errors for what does not exist.
#include <httplib.h>

#include <nlohmann/json.hpp>
#include <regex>

#include "integration/harness.h"

namespace sluice::itest {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

// The REST port the JobManager logged ("REST API and dashboard at http://host:port/").
int RestPort(const TestCluster& cluster) {
  std::smatch m;
  std::string log = cluster.JobManagerLog();
  if (!std::regex_search(log, m, std::regex(R"(REST API and dashboard at http://[^:]+:(\d+)/)"))) {
    return -1;
  }
  return std::stoi(m[1]);
}

class RestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SLUICE_ASSERT_OK(cluster_.Start());
    int port = RestPort(cluster_);
    ASSERT_GT(port, 0) << cluster_.JobManagerLog();
    http_ = std::make_unique<httplib::Client>("127.0.0.1", port);
    http_->set_connection_timeout(5);
    http_->set_read_timeout(5);
  }

  // GET path; expects `status` and a JSON body.
  json Get(const std::string& path, int status = 200) {
    auto res = http_->Get(path.c_str());
    EXPECT_TRUE(res) << "GET " << path << " got no answer";
    if (!res) return json();
    EXPECT_EQ(res->status, status) << "GET " << path << ": " << res->body;
    EXPECT_EQ(res->get_header_value("Content-Type"), "application/json") << path;
    return json::parse(res->body);
  }

  TestCluster cluster_{2, 2};
  std::unique_ptr<httplib::Client> http_;
};

TEST_F(RestTest, OverviewAndTaskManagers) {
  json ov = Get("/overview");
  EXPECT_EQ(ov["taskmanagers"], 2);
  EXPECT_EQ(ov["slots-total"], 4);
  EXPECT_EQ(ov["slots-available"], 4);
  EXPECT_EQ(ov["jobs-running"], 0);

  json tms = Get("/taskmanagers")["taskmanagers"];
  ASSERT_EQ(tms.size(), 2u);
  std::set<std::string> ids = {tms[0]["id"], tms[1]["id"]};
  EXPECT_EQ(ids, (std::set<std::string>{cluster_.tm_id(0), cluster_.tm_id(1)}));
  for (const auto& tm : tms) {
    EXPECT_EQ(tm["slotsNumber"], 2);
    // As in Flink: the time of the last heartbeat (ms since the epoch), not an age.
    const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    EXPECT_GT(tm["timeSinceLastHeartbeat"].get<int64_t>(), now - 2000);
    EXPECT_LE(tm["timeSinceLastHeartbeat"].get<int64_t>(), now + 1000);
  }
}

TEST_F(RestTest, RunningJobIsListedAndCancelledWithPatch) {
  std::string job;
  SLUICE_ASSIGN_OR_FAIL(job,
                        cluster_.SubmitDetached(TestJobLibrary("sequence_job"), {"-p", "2"}, {}));
  proto::JobStatus status;
  SLUICE_ASSIGN_OR_FAIL(status, cluster_.WaitForAllTasksRunning(job, 20s));

  json jobs = Get("/jobs/overview")["jobs"];
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0]["jid"], job);
  EXPECT_EQ(jobs[0]["name"], "Sequence");
  EXPECT_EQ(jobs[0]["state"], "RUNNING");
  EXPECT_EQ(jobs[0]["parallelism"], 2);
  EXPECT_EQ(Get("/jobs")["jobs"][0]["status"], "RUNNING");
  EXPECT_EQ(Get("/overview")["slots-available"], 2);

  json detail = Get("/jobs/" + job);
  EXPECT_EQ(detail["state"], "RUNNING");
  ASSERT_FALSE(detail["vertices"].empty());
  for (const auto& v : detail["vertices"]) {
    EXPECT_EQ(v["status"], "RUNNING") << v.dump();
    EXPECT_EQ(v["tasks"]["RUNNING"], v["parallelism"]) << v.dump();
  }
  EXPECT_EQ(detail["plan"]["nodes"].size(), detail["vertices"].size());

  auto res = http_->Patch(("/jobs/" + job + "?mode=cancel").c_str(), "", "text/plain");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 202) << res->body;
  SLUICE_ASSIGN_OR_FAIL(status, cluster_.WaitForState(job, proto::JOB_CANCELED, 10s));
  EXPECT_EQ(Get("/jobs/" + job)["state"], "CANCELED");
  EXPECT_TRUE(Get("/jobs/" + job + "/exceptions")["root-exception"].is_null());
  EXPECT_EQ(Get("/overview")["jobs-cancelled"], 1);

  // Cancelling again conflicts with the job's state.
  res = http_->Patch(("/jobs/" + job + "?mode=cancel").c_str(), "", "text/plain");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 409);
  EXPECT_NE(res->body.find("already CANCELED"), std::string::npos) << res->body;
}

TEST_F(RestTest, FailedJobShowsItsExceptionNamingTheOperator) {
  auto run = cluster_.Cli({"run", "-p", "1", TestJobLibrary("throwing_job")});
  ASSERT_NE(run.exit_code, 0);
  json jobs = Get("/jobs/overview")["jobs"];
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0]["state"], "FAILED");
  std::string root =
      Get("/jobs/" + jobs[0]["jid"].get<std::string>() + "/exceptions")["root-exception"];
  EXPECT_NE(root.find("Exploding Map"), std::string::npos) << root;
  EXPECT_NE(root.find("boom at record"), std::string::npos) << root;
  EXPECT_EQ(Get("/overview")["jobs-failed"], 1);
}

TEST_F(RestTest, UnknownThingsAreClearErrors) {
  json err = Get("/jobs/0123456789abcdef0123456789abcdef", 404);
  EXPECT_NE(err["errors"][0].get<std::string>().find("0123456789abcdef0123456789abcdef"),
            std::string::npos);
  err = Get("/no/such/path", 404);
  EXPECT_NE(err["errors"][0].get<std::string>().find("/no/such/path"), std::string::npos);
  auto res = http_->Patch("/jobs/0123456789abcdef0123456789abcdef?mode=stop", "", "text/plain");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400);
  EXPECT_NE(res->body.find("unsupported mode 'stop'"), std::string::npos) << res->body;
  EXPECT_TRUE(cluster_.IsHealthy());
}

TEST_F(RestTest, DashboardPageIsServed) {
  // `/` is the page; its script and style come from /web/ on the same server, nothing from
  // elsewhere.
  auto res = http_->Get("/");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), "text/html; charset=utf-8");
  EXPECT_NE(res->body.find("<title>Sluice</title>"), std::string::npos);
  EXPECT_NE(res->body.find("src=\"/web/app.js\""), std::string::npos) << res->body;
  EXPECT_NE(res->body.find("href=\"/web/style.css\""), std::string::npos) << res->body;
  EXPECT_EQ(http_->Get("/web/index.html")->body, res->body);
  const std::pair<const char*, const char*> assets[] = {
      {"/web/app.js", "text/javascript; charset=utf-8"},
      {"/web/style.css", "text/css; charset=utf-8"}};
  for (const auto& [path, type] : assets) {
    auto r = http_->Get(path);
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 200) << path;
    EXPECT_EQ(r->get_header_value("Content-Type"), type) << path;
    EXPECT_GT(r->body.size(), 1000u) << path;
    for (const char* remote : {"http://", "https://", "//cdn"}) {
      EXPECT_EQ(r->body.find(remote), std::string::npos) << path << " refers to " << remote;
    }
  }
  // The script polls the REST API's paths.
  const std::string app = http_->Get("/web/app.js")->body;
  for (const char* p : {"'/overview'", "'/jobs/overview'", "'/taskmanagers'", "/checkpoints`"}) {
    EXPECT_NE(app.find(p), std::string::npos) << p;
  }
  // A file that is not embedded is a 404 naming it.
  for (const char* path : {"/web/nope.js", "/web/", "/web/index"}) {
    auto r = http_->Get(path);
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 404) << path;
  }
  json err = Get("/web/nope.js", 404);
  EXPECT_NE(err["errors"][0].get<std::string>().find("nope.js"), std::string::npos) << err;
}

}  // namespace
}  // namespace sluice::itest
