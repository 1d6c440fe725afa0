// The dashboard in a real browser: a cluster runs a checkpointed job, and
// tests/browser/dashboard.test.mjs (node, playwright-core, Debian's chromium, headless) opens
// the dashboard, waits for the job's live figures in its graph and a completed checkpoint in its
// table, and cancels the job from the page. The test then checks over REST that the job is
// CANCELED.
//
// Needs node, chromium and playwright-core installed by the build (`npm ci` into
// <build>/tests/browser, tests/CMakeLists.txt); a missing one fails the test naming it.
#include <httplib.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "integration/harness.h"

namespace sluice::itest {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

std::string Env(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : fallback;
}

// `name` on $PATH, or "".
std::string FindOnPath(const std::string& name) {
  std::string path = Env("PATH", "/usr/bin:/bin");
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find(':', start);
    if (end == std::string::npos) end = path.size();
    std::string candidate = path.substr(start, end - start) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  return "";
}

// What the browser test needs: node, chromium, the script and playwright-core. A missing one is a
// failure naming it (deploy/install-deps.sh installs them).
struct BrowserTools {
  std::string node, script, source_dir;
};
void FindBrowserTools(BrowserTools* t) {
  t->node = Env("SLUICE_NODE", FindOnPath("node"));
  ASSERT_FALSE(t->node.empty()) << "node (Node.js) is not installed: run deploy/install-deps.sh";
  const std::string chromium = Env("SLUICE_CHROMIUM", "/usr/bin/chromium");
  ASSERT_EQ(::access(chromium.c_str(), X_OK), 0)
      << "no browser at " << chromium << ": run deploy/install-deps.sh (Debian's chromium)";
  t->source_dir = Env("SLUICE_SOURCE_DIR", "");
  ASSERT_FALSE(t->source_dir.empty())
      << "SLUICE_SOURCE_DIR is not set: run this test through ctest";
  t->script = t->source_dir + "/tests/browser/dashboard.test.mjs";
  ASSERT_TRUE(fs::exists(t->script)) << t->script;
  const std::string modules = Env("SLUICE_BROWSER_TEST_DIR", "");
  ASSERT_TRUE(fs::exists(modules + "/node_modules/playwright-core/package.json"))
      << "playwright-core is not installed under '" << modules
      << "/node_modules': the build runs `npm ci` there when npm is found (install npm with "
         "deploy/install-deps.sh and build again)";
}

// Waits until the REST API says `job` is CANCELED (the page's cancel reached the JobManager).
template <typename Client>
void ExpectCanceled(Client& http, TestCluster& cluster, const std::string& job,
                    const httplib::Headers& headers = {}) {
  std::string state;
  const bool canceled = WaitUntil(
      [&] {
        auto res = http.Get(("/jobs/" + job).c_str(), headers);
        if (!res || res->status != 200) return false;
        state = nlohmann::json::parse(res->body).value("state", "");
        return state == "CANCELED";
      },
      10s, 100ms);
  EXPECT_TRUE(canceled) << "the job's state over REST: " << state;
  if (!canceled) (void)cluster.client().Cancel(job);
}

TEST(DashboardTest, JobFiguresCheckpointsAndCancelInABrowser) {
  BrowserTools tools;
  ASSERT_NO_FATAL_FAILURE(FindBrowserTools(&tools));
  TestCluster cluster(2, 2);
  SLUICE_ASSERT_OK(cluster.Start());
  const int port = cluster.RestPort();
  ASSERT_GT(port, 0) << cluster.JobManagerLog();

  // A job that runs for hours at 1000 records/s, checkpointing every 500 ms, with the autoscaler
  // evaluating it (its decisions shown, not applied: the job keeps its parallelism).
  const std::string out = cluster.dir() + "/output";
  std::string job;
  SLUICE_ASSIGN_OR_FAIL(
      job, cluster.SubmitDetached(
               TestJobLibrary("chaos_count_job"),
               {"-p", "2", "-D", "execution.checkpointing.interval=500ms", "-D",
                "state.checkpoints.dir=" + cluster.dir() + "/checkpoints", "-D",
                "job.autoscaler.enabled=true", "-D", "job.autoscaler.scaling.enabled=false"},
               {"--keys", "20", "--per-key", "1000000000", "--rate", "1000", "--output", out}));
  proto::JobStatus status;
  SLUICE_ASSIGN_OR_FAIL(status, cluster.WaitForAllTasksRunning(job, 30s));

  const std::string url = absl::StrCat("http://127.0.0.1:", port, "/");
  CommandResult r = RunCommand({tools.node, tools.script, url, job}, cluster.dir(), 280s);
  EXPECT_FALSE(r.timed_out) << r.Describe();
  EXPECT_EQ(r.exit_code, 0) << r.Describe();
  std::cout << r.out;

  httplib::Client http("127.0.0.1", port);
  http.set_connection_timeout(5);
  http.set_read_timeout(5);
  ExpectCanceled(http, cluster, job);
}

// The dashboard over HTTPS from a JobManager that wants its REST token: the page asks for it,
// refuses a wrong one, and with the right one shows the job and cancels it.
TEST(DashboardTest, OverHttpsThePageAsksForTheTokenAndWorksWithIt) {
  BrowserTools tools;
  ASSERT_NO_FATAL_FAILURE(FindBrowserTools(&tools));
  const std::string dir = MakeTempDir();
  CommandResult made =
      RunCommand({tools.source_dir + "/deploy/gen-certs.sh", dir + "/certs"}, dir, 60s);
  ASSERT_EQ(made.exit_code, 0) << made.Describe();
  const std::string token = "dashboard-token-0123456789";
  WriteFile(dir + "/rest-token", token + "\n");
  ClusterOptions o;
  o.task_managers = 1;
  o.slots_per_task_manager = 2;
  o.extra_config = {"security.ssl.rest.enabled=true",
                    "security.ssl.rest.key=" + dir + "/certs/internal.key",
                    "security.ssl.rest.cert=" + dir + "/certs/internal.pem",
                    "security.rest.auth.token-file=" + dir + "/rest-token"};
  TestCluster cluster(o);
  SLUICE_ASSERT_OK(cluster.Start());
  const int port = cluster.RestPort();
  ASSERT_GT(port, 0) << cluster.JobManagerLog();
  std::string job;
  SLUICE_ASSIGN_OR_FAIL(
      job, cluster.SubmitDetached(TestJobLibrary("chaos_count_job"), {"-p", "1"},
                                  {"--keys", "5", "--per-key", "1000000000", "--rate", "100",
                                   "--output", cluster.dir() + "/output"}));
  proto::JobStatus status;
  SLUICE_ASSIGN_OR_FAIL(status, cluster.WaitForAllTasksRunning(job, 30s));

  const std::string url = absl::StrCat("https://127.0.0.1:", port, "/");
  // The token goes to the script by its environment, as it would never go on a command line.
  CommandResult r = RunCommand(
      {"/usr/bin/env", "SLUICE_DASHBOARD_TOKEN=" + token,
       "NODE_EXTRA_CA_CERTS=" + dir + "/certs/ca.pem", tools.node, tools.script, url, job},
      cluster.dir(), 200s);
  EXPECT_FALSE(r.timed_out) << r.Describe();
  EXPECT_EQ(r.exit_code, 0) << r.Describe();
  std::cout << r.out;

  httplib::SSLClient http("127.0.0.1", port);
  http.set_ca_cert_path((dir + "/certs/ca.pem").c_str());
  http.enable_server_certificate_verification(true);
  http.set_connection_timeout(5);
  http.set_read_timeout(5);
  ExpectCanceled(http, cluster, job, {{"Authorization", "Bearer " + token}});
  std::error_code ec;
  fs::remove_all(dir, ec);
}

}  // namespace
}  // namespace sluice::itest
