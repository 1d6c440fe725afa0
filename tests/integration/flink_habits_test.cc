// Flink's habits working unchanged on a real cluster: daemons started from the keys Flink's
// distribution ships in conf/config.yaml (tests/data/flink_conf), JVM-only keys warned about once,
// job arguments after the library without `--`, `-m` given the REST address, Flink's `list`
// output, usage and exit code 1 on argument errors, and Flink's fields in the REST overviews.
#include <gmock/gmock.h>
#include <httplib.h>

#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>

#include "absl/strings/str_cat.h"
#include "integration/harness.h"

namespace sluice::itest {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

std::string FlinkConfDir() {
  const char* src = std::getenv("SLUICE_SOURCE_DIR");
  return std::string(src ? src : ".") + "/tests/data/flink_conf";
}

size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

class FlinkHabitsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(std::filesystem::exists(FlinkConfDir() + "/config.yaml")) << FlinkConfDir();
    // The harness's -D settings (ports found at run time, 127.0.0.1) go over the file's.
    ClusterOptions o;
    o.task_managers = 1;
    o.slots_per_task_manager = 2;
    o.config_dir = FlinkConfDir();
    cluster_ = std::make_unique<TestCluster>(o);
    SLUICE_ASSERT_OK(cluster_->Start());
    rest_port_ = cluster_->RestPort();
    ASSERT_GT(rest_port_, 0) << cluster_->JobManagerLog();
  }

  json Get(const std::string& path) {
    httplib::Client http("127.0.0.1", rest_port_);
    http.set_connection_timeout(5);
    http.set_read_timeout(5);
    auto res = http.Get(path.c_str());
    EXPECT_TRUE(res && res->status == 200) << path;
    return res ? json::parse(res->body, nullptr, false) : json();
  }

  std::unique_ptr<TestCluster> cluster_;
  int rest_port_ = -1;
};

TEST_F(FlinkHabitsTest, ClusterStartsFromFlinksShippedConfig) {
  std::string log = cluster_->JobManagerLog();
  for (const char* key : {"env.java.opts.all", "jobmanager.memory.process.size",
                          "taskmanager.memory.process.size", "classloader.resolve-order"}) {
    // One warning per key, naming it.
    EXPECT_EQ(Count(log, absl::StrCat("configuration key '", key, "'")), 1u) << key << "\n" << log;
  }
  EXPECT_THAT(log, HasSubstr("does not apply to Sluice"));
  EXPECT_TRUE(cluster_->IsHealthy());
  EXPECT_TRUE(cluster_->RunsASmallJob(2));
}

TEST_F(FlinkHabitsTest, JobArgumentsFollowTheLibraryWithoutDashes) {
  std::string out = cluster_->dir() + "/no-dashes";
  CommandResult r = cluster_->Cli(
      {"run", TestJobLibrary("sequence_job"), "--count", "1000", "--keys", "4", "--output", out});
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_THAT(r.out, HasSubstr("FINISHED"));
  EXPECT_TRUE(SequenceOutputIsCorrect(out, 1000, 4));
  // `--` still works, and job flags that look like ours (-p) go to the job.
  std::string out2 = cluster_->dir() + "/dashes";
  r = cluster_->Cli({"run", "-p", "2", TestJobLibrary("sequence_job"), "--", "--count", "500",
                     "--keys", "3", "--output", out2});
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_TRUE(SequenceOutputIsCorrect(out2, 500, 3));
}

TEST_F(FlinkHabitsTest, ListPrintsFlinksFormatAndTakesTheRestAddress) {
  // -m with the REST address: the CLI finds the RPC port through the REST API.
  const std::string rest = absl::StrCat("127.0.0.1:", rest_port_);
  CommandResult empty = RunCli({"list", "-m", rest}, cluster_->dir());
  ASSERT_EQ(empty.exit_code, 0) << empty.Describe();
  EXPECT_EQ(empty.out, "No running jobs.\nNo scheduled jobs.\n") << empty.Describe();

  std::string gate = cluster_->dir() + "/gate";
  std::string job;
  SLUICE_ASSIGN_OR_FAIL(
      job, cluster_->SubmitDetached(TestJobLibrary("gated_sequence_job"), {},
                                    {"--output", cluster_->dir() + "/gated", "--gate", gate}));
  SLUICE_ASSERT_OK(cluster_->WaitForAllTasksRunning(job, 30s).status());
  CommandResult list = RunCli({"list", "-m", rest}, cluster_->dir());
  ASSERT_EQ(list.exit_code, 0) << list.Describe();
  EXPECT_TRUE(std::regex_search(
      list.out, std::regex("------------------ Running/Restarting Jobs -------------------\n"
                           R"(\d\d\.\d\d\.\d{4} \d\d:\d\d:\d\d : )" +
                           job +
                           R"( : .+ \(RUNNING\)\n)"
                           "--------------------------------------------------------------\n"
                           "No scheduled jobs.\n")))
      << list.Describe();
  CommandResult scheduled = RunCli({"list", "-s", "-m", rest}, cluster_->dir());
  EXPECT_EQ(scheduled.out, "No scheduled jobs.\n") << scheduled.Describe();

  ASSERT_TRUE(WriteFile(gate, ""));
  SLUICE_ASSERT_OK(cluster_->WaitForState(job, proto::JOB_FINISHED, 60s).status());
  list = cluster_->Cli({"list", "-a"});
  ASSERT_EQ(list.exit_code, 0) << list.Describe();
  EXPECT_THAT(list.out,
              HasSubstr("No running jobs.\nNo scheduled jobs.\n"
                        "---------------------- Terminated Jobs -----------------------\n"));
  EXPECT_THAT(list.out, HasSubstr(" : " + job + " : ")) << list.Describe();
  EXPECT_THAT(list.out, HasSubstr("(FINISHED)")) << list.Describe();
  list = cluster_->Cli({"list", "-r"});
  EXPECT_EQ(list.out, "No running jobs.\n") << list.Describe();

  // REST: Flink's task counts and last modification in the job overview.
  json ov = Get("/jobs/overview");
  ASSERT_EQ(ov["jobs"].size(), 1u) << ov;
  const json& j = ov["jobs"][0];
  EXPECT_GE(j["last-modification"].get<int64_t>(), j["start-time"].get<int64_t>()) << j;
  EXPECT_EQ(j["tasks"]["total"], j["tasks"]["finished"]) << j;
  EXPECT_GT(j["tasks"]["total"].get<int>(), 0) << j;
  for (const char* k : {"created", "scheduled", "deploying", "running", "canceling", "canceled",
                        "failed", "reconciling", "initializing"}) {
    EXPECT_EQ(j["tasks"][k], 0) << k << ": " << j;
  }
  json overview = Get("/overview");
  EXPECT_TRUE(overview["flink-version"].is_string()) << overview;
  EXPECT_TRUE(overview["flink-commit"].is_string()) << overview;
  EXPECT_NE(overview["flink-version"], "") << overview;
}

TEST_F(FlinkHabitsTest, ArgumentErrorsPrintTheUsageAndExitOne) {
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"list", "--no-such-flag"}, std::vector<std::string>{"cancel"},
        std::vector<std::string>{"run"}, std::vector<std::string>{}}) {
    CommandResult r = RunCli(args, cluster_->dir());
    EXPECT_EQ(r.exit_code, 1) << r.Describe();
    EXPECT_THAT(r.err, HasSubstr("Usage:")) << r.Describe();
  }
  // An unknown key is an error with a suggestion; a JVM-only key is a warning.
  CommandResult r = cluster_->Cli({"list", "-D", "rest.prot=1"});
  EXPECT_EQ(r.exit_code, 1) << r.Describe();
  EXPECT_THAT(r.err, HasSubstr("did you mean 'rest.port'?")) << r.Describe();
  r = cluster_->Cli({"list", "-D", "env.java.opts.all=-Xmx1g"});
  EXPECT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_THAT(r.err, HasSubstr("'env.java.opts.all'")) << r.Describe();
  EXPECT_THAT(r.err, Not(HasSubstr("error"))) << r.Describe();
}

}  // namespace
}  // namespace sluice::itest
