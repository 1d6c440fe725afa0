// The daemons' log files over the JobManager's REST API, on a real cluster whose daemons write
// their standard error and output to files (the harness's <dir>/jobmanager-<n>.log and .out,
// <dir>/taskmanager-<i>.log and .out): each daemon lists and serves its own files only, a job can
// be followed by its id through the JobManager's and a TaskManager's log, and no request path
// reaches any other file.
#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>

#include "absl/strings/str_cat.h"
#include "integration/harness.h"

namespace sluice::itest {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
namespace fs = std::filesystem;

class RestLogsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SLUICE_ASSERT_OK(cluster_.Start());
    port_ = cluster_.RestPort();
    ASSERT_GT(port_, 0) << cluster_.JobManagerLog();
    http_ = std::make_unique<httplib::Client>("127.0.0.1", port_);
    http_->set_connection_timeout(5);
    http_->set_read_timeout(20);
  }

  // GET path: the answer, which must have `status`.
  httplib::Result Get(const std::string& path, int status = 200) {
    auto res = http_->Get(path.c_str());
    EXPECT_TRUE(res) << "GET " << path << " got no answer";
    if (res) {
      EXPECT_EQ(res->status, status) << "GET " << path << ": " << res->body.substr(0, 500);
    }
    return res;
  }

  // The names of the files GET `path` lists, after checking the listing's shape.
  std::vector<std::string> ListedNames(const std::string& path) {
    std::vector<std::string> names;
    auto res = Get(path);
    if (!res) return names;
    EXPECT_EQ(res->get_header_value("Content-Type"), "application/json");
    json list = json::parse(res->body);
    EXPECT_TRUE(list["logs"].is_array()) << res->body;
    for (const json& f : list["logs"]) {
      EXPECT_TRUE(f["name"].is_string()) << f;
      EXPECT_TRUE(f["size"].is_number_integer()) << f;
      EXPECT_GT(f["mtime"].get<int64_t>(), 1'600'000'000'000) << f;
      names.push_back(f["name"]);
    }
    return names;
  }

  // The name of the JobManager's current log file, as it lists it.
  std::string JobManagerLogName() {
    for (const std::string& n : ListedNames("/jobmanager/logs")) {
      if (std::regex_match(n, std::regex(R"(jobmanager-\d+\.log)"))) return n;
    }
    return "";
  }

  TestCluster cluster_{2, 2};
  int port_ = 0;
  std::unique_ptr<httplib::Client> http_;
};

TEST_F(RestLogsTest, EachDaemonListsAndServesItsOwnFiles) {
  // The JobManager: its own two files, none of the TaskManagers' beside them.
  std::vector<std::string> jm = ListedNames("/jobmanager/logs");
  ASSERT_EQ(jm.size(), 2u) << ::testing::PrintToString(jm);
  EXPECT_TRUE(std::regex_match(jm[0], std::regex(R"(jobmanager-\d+\.log)"))) << jm[0];
  EXPECT_EQ(jm[1], jm[0].substr(0, jm[0].size() - 4) + ".out");

  auto log = Get("/jobmanager/log");
  ASSERT_TRUE(log);
  EXPECT_EQ(log->get_header_value("Content-Type"), "text/plain; charset=utf-8");
  EXPECT_NE(log->body.find("REST API and dashboard at"), std::string::npos);
  // What was served is the file as it was then: it has only grown since.
  const std::string file = ReadFile(cluster_.dir() + "/" + jm[0]);
  EXPECT_EQ(file.substr(0, log->body.size()), log->body);
  EXPECT_EQ(log->get_header_value("X-Log-File-Offset"), "0");
  auto by_name = Get("/jobmanager/logs/" + jm[0]);
  ASSERT_TRUE(by_name);
  EXPECT_EQ(by_name->body.substr(0, log->body.size()), log->body);
  auto out = Get("/jobmanager/stdout");
  ASSERT_TRUE(out);
  EXPECT_EQ(out->body, ReadFile(cluster_.dir() + "/" + jm[1]));

  // Each TaskManager: its own files, asked for over gRPC.
  for (int i = 0; i < cluster_.num_task_managers(); ++i) {
    const std::string base = absl::StrCat("/taskmanagers/", cluster_.tm_id(i));
    std::vector<std::string> tm = ListedNames(base + "/logs");
    EXPECT_EQ(tm, (std::vector<std::string>{absl::StrCat("taskmanager-", i, ".log"),
                                            absl::StrCat("taskmanager-", i, ".out")}));
    auto tm_log = Get(base + "/log");
    ASSERT_TRUE(tm_log);
    EXPECT_EQ(tm_log->get_header_value("Content-Type"), "text/plain; charset=utf-8");
    EXPECT_NE(tm_log->body.find(cluster_.tm_id(i)), std::string::npos) << tm_log->body;
    EXPECT_EQ(cluster_.TaskManagerLog(i).substr(0, tm_log->body.size()), tm_log->body);
    auto tm_named = Get(absl::StrCat(base, "/logs/taskmanager-", i, ".log"));
    ASSERT_TRUE(tm_named);
    EXPECT_NE(tm_named->body.find(cluster_.tm_id(i)), std::string::npos);
    Get(base + "/stdout");
    // The other TaskManager's file, in the same folder, is not this one's.
    Get(absl::StrCat(base, "/logs/taskmanager-", 1 - i, ".log"), 404);
  }
  Get("/taskmanagers/tm-no-such-taskmanager/logs", 404);
  Get("/taskmanagers/tm-no-such-taskmanager/log", 404);
  EXPECT_TRUE(cluster_.IsHealthy());
}

TEST_F(RestLogsTest, RotatedGenerationsAreListedAndOnlyTheEndOfALongFileIsServed) {
  const std::string jm_log = JobManagerLogName();
  ASSERT_FALSE(jm_log.empty());
  // As deploy/daemon.sh leaves them: older generations beside the current file.
  ASSERT_TRUE(WriteFile(cluster_.dir() + "/" + jm_log + ".1", "an older JobManager run\n"));
  // A link to another file, named like a generation, is neither listed nor followed.
  fs::create_symlink("/etc/passwd", cluster_.dir() + "/" + jm_log + ".2");
  std::vector<std::string> jm = ListedNames("/jobmanager/logs");
  EXPECT_EQ(std::count(jm.begin(), jm.end(), jm_log + ".1"), 1);
  EXPECT_EQ(std::count(jm.begin(), jm.end(), jm_log + ".2"), 0);
  auto older = Get("/jobmanager/logs/" + jm_log + ".1");
  ASSERT_TRUE(older);
  EXPECT_EQ(older->body, "an older JobManager run\n");
  auto link = Get("/jobmanager/logs/" + jm_log + ".2", 404);
  ASSERT_TRUE(link);
  EXPECT_EQ(link->body.find("root:"), std::string::npos);
  // Rotated away: gone.
  fs::remove(cluster_.dir() + "/" + jm_log + ".1");
  Get("/jobmanager/logs/" + jm_log + ".1", 404);

  // A 9 MiB generation of a TaskManager's log: its last 8 MiB, through gRPC and REST.
  std::string big;
  for (int i = 0; big.size() < (9u << 20); ++i) big += absl::StrCat("old line ", i, "\n");
  ASSERT_TRUE(WriteFile(cluster_.dir() + "/taskmanager-0.log.1", big));
  auto tail = Get(absl::StrCat("/taskmanagers/", cluster_.tm_id(0), "/logs/taskmanager-0.log.1"));
  ASSERT_TRUE(tail);
  EXPECT_EQ(tail->body.size(), 8u << 20);
  EXPECT_EQ(tail->get_header_value("X-Log-File-Size"), std::to_string(big.size()));
  EXPECT_EQ(tail->get_header_value("X-Log-File-Offset"), std::to_string(big.size() - (8u << 20)));
  EXPECT_TRUE(tail->body == big.substr(big.size() - (8u << 20)));
  EXPECT_TRUE(cluster_.IsHealthy());
}

TEST_F(RestLogsTest, AJobCanBeFollowedByItsIdInTheJobManagerAndTaskManagerLogs) {
  const std::string out_dir = cluster_.dir() + "/out";
  std::string job;
  SLUICE_ASSIGN_OR_FAIL(
      job, cluster_.SubmitDetached(TestJobLibrary("sequence_job"), {"-p", "2"},
                                   {"--count", "2000", "--keys", "4", "--output", out_dir}));
  proto::JobStatus status;
  SLUICE_ASSIGN_OR_FAIL(status, cluster_.WaitForState(job, proto::JOB_FINISHED, 60s));
  EXPECT_TRUE(SequenceOutputIsCorrect(out_dir, 2000, 4));

  auto jm_log = Get("/jobmanager/log");
  ASSERT_TRUE(jm_log);
  EXPECT_NE(jm_log->body.find(job), std::string::npos) << LastLines(jm_log->body, 30);

  // Every TaskManager that ran a task of the job names it, with the task's name and subtask.
  std::set<std::string> tms;
  for (const auto& t : status.tasks()) tms.insert(t.tm_id());
  ASSERT_FALSE(tms.empty());
  for (const std::string& tm : tms) {
    auto tm_log = Get("/taskmanagers/" + tm + "/log");
    ASSERT_TRUE(tm_log);
    const std::regex task_line(absl::StrCat(R"(task .+ \(\d+/2\) of job )", job));
    EXPECT_TRUE(std::regex_search(tm_log->body, task_line)) << tm << ":\n"
                                                            << LastLines(tm_log->body, 30);
  }
}

TEST_F(RestLogsTest, NoPathReachesAnyOtherFile) {
  const std::string jm_log = JobManagerLogName();
  ASSERT_FALSE(jm_log.empty());
  const std::string tm = cluster_.tm_id(0);
  // A file of the cluster's folder that no daemon writes to.
  ASSERT_TRUE(WriteFile(cluster_.dir() + "/secret.txt", "the secret\n"));
  const std::vector<std::string> names = {
      "../../../../../../etc/passwd",
      "..%2f..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
      "%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
      "%2E%2E%2F%2E%2E%2F%2E%2E%2F%2E%2E%2F%2E%2E%2F%2E%2E%2Fetc%2Fpasswd",
      "%252e%252e%252f%252e%252e%252f%252e%252e%252fetc%252fpasswd",
      "..%252f..%252f..%252f..%252f..%252f..%252fetc%252fpasswd",
      "%2Fetc%2Fpasswd",
      "/etc/passwd",
      "%2F%2Fetc%2Fpasswd",
      "..%5c..%5c..%5c..%5cetc%5cpasswd",
      "%c0%ae%c0%ae%c0%af%c0%ae%c0%ae%c0%afetc%c0%afpasswd",
      "..",
      "%2e%2e",
      ".",
      "",
      "%00",
      jm_log + "%00",
      jm_log + "%00.txt",
      jm_log + "/../../../../../../etc/passwd",
      jm_log + "%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
      "..%2fsecret.txt",
      "secret.txt",
      "blobs",
      "taskmanager-0.log%2f..%2fsecret.txt",
      "~root%2f.profile",
      "%ff%fe",
      "a%0d%0aX-Injected:%20yes",
  };
  std::vector<std::string> targets;
  for (const std::string& n : names) {
    targets.push_back("/jobmanager/logs/" + n);
    targets.push_back(absl::StrCat("/taskmanagers/", tm, "/logs/", n));
  }
  // The TaskManager's files through the JobManager's path and the other way round; ids and
  // paths around the routes.
  targets.insert(
      targets.end(),
      {"/jobmanager/logs/taskmanager-0.log", absl::StrCat("/taskmanagers/", tm, "/logs/", jm_log),
       "/taskmanagers/../../etc/passwd/logs", "/taskmanagers/%2e%2e/logs",
       "/taskmanagers/..%2f..%2fetc/log", "/taskmanagers/../log",
       "/jobmanager/log/../../../etc/passwd", "/jobmanager/log%2f..%2f..%2fetc%2fpasswd",
       "/jobmanager/stdout/..%2f..%2fetc%2fpasswd", "/../../../../etc/passwd",
       "/%2e%2e/%2e%2e/etc/passwd", "/etc/passwd"});
  const std::string jm_file = ReadFile(cluster_.dir() + "/" + jm_log);
  for (const std::string& target : targets) {
    RawHttpResponse r = RawHttpRequest(port_, "GET", target, "", 5s);
    EXPECT_GE(r.status, 400) << target;
    EXPECT_LT(r.status, 500) << target << ": " << r.body;
    EXPECT_NE(r.headers.find("content-type: application/json"), std::string::npos)
        << target << ":\n"
        << r.headers;
    EXPECT_EQ(r.headers.find("x-injected"), std::string::npos) << target;
    json body = json::parse(r.body, nullptr, /*allow_exceptions=*/false);
    ASSERT_TRUE(body.is_object()) << target << ": " << r.body;
    ASSERT_TRUE(body["errors"].is_array()) << target << ": " << r.body;
    EXPECT_FALSE(body["errors"].empty()) << target;
    EXPECT_EQ(body.size(), 1u) << target << ": " << r.body;
    EXPECT_LT(r.body.size(), 1000u) << target;
    EXPECT_EQ(r.body.find("root:"), std::string::npos) << target;
    EXPECT_EQ(r.body.find("the secret"), std::string::npos) << target;
    EXPECT_EQ(r.body.find("REST API and dashboard at"), std::string::npos) << target;
  }
  // The daemons are unharmed, and serve their files still.
  EXPECT_TRUE(cluster_.IsHealthy());
  Get("/jobmanager/logs/" + jm_log);
  Get(absl::StrCat("/taskmanagers/", tm, "/logs/taskmanager-0.log"));
  EXPECT_TRUE(cluster_.RunsASmallJob(2));
  EXPECT_TRUE(cluster_.IsHealthy());
}

}  // namespace
}  // namespace sluice::itest
