// Every kind of bad input to the CLI and the daemons: each is refused with a message that names
// the problem and a non-zero exit code, and the cluster is unharmed (its daemons run and serve
// the next job). One cluster serves the whole suite.
#include <sluice/sluice.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "integration/harness.h"

namespace sluice::itest {
namespace {

using namespace std::chrono_literals;

class BadInputTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    cluster_ = new TestCluster(2, 2);
    start_ = new absl::Status(cluster_->Start());
  }
  static void TearDownTestSuite() {
    delete cluster_;
    delete start_;
    cluster_ = nullptr;
    start_ = nullptr;
  }
  void SetUp() override { ASSERT_TRUE(start_->ok()) << start_->ToString(); }
  // After every refusal: all daemons still run, and they serve a job.
  void TearDown() override {
    if (!start_->ok()) return;
    EXPECT_TRUE(cluster_->IsHealthy());
    EXPECT_TRUE(cluster_->RunsASmallJob(2));
  }

  // Runs the CLI and expects a non-zero exit, no submission, and every one of `needles` in its
  // standard error. Returns the result for more checks.
  CommandResult ExpectRefused(const std::vector<std::string>& args,
                              const std::vector<std::string>& needles,
                              std::chrono::milliseconds timeout = 30s) {
    CommandResult r = cluster_->Cli(args, timeout);
    EXPECT_FALSE(r.timed_out) << r.Describe();
    EXPECT_NE(r.exit_code, 0) << r.Describe();
    EXPECT_EQ(r.out.find("submitted"), std::string::npos) << r.Describe();
    for (const auto& n : needles)
      EXPECT_NE(r.err.find(n), std::string::npos) << "expected '" << n << "' in\n" << r.Describe();
    return r;
  }
  // No job was ever accepted other than the small ones of TearDown.
  void ExpectNoFailedJobs() {
    auto jobs = cluster_->client().ListJobs(/*include_terminated=*/true);
    ASSERT_TRUE(jobs.ok()) << jobs.status();
    for (const auto& j : *jobs) EXPECT_EQ(j.state(), proto::JOB_FINISHED) << j.DebugString();
  }

  static TestCluster* cluster_;
  static absl::Status* start_;
};

TestCluster* BadInputTest::cluster_ = nullptr;
absl::Status* BadInputTest::start_ = nullptr;

TEST_F(BadInputTest, FileThatIsNotASharedLibrary) {
  const std::string path = cluster_->dir() + "/job.txt";
  ASSERT_TRUE(WriteFile(path, "SLUICE_JOB(env, args) { }\n"));
  ExpectRefused({"run", path}, {path, "is not a shared library"});
  ExpectNoFailedJobs();
}

TEST_F(BadInputTest, MissingLibraryFile) {
  const std::string path = cluster_->dir() + "/no-such-lib.so";
  ExpectRefused({"run", path}, {"cannot read job library", path});
}

TEST_F(BadInputTest, LibraryWithoutEntryPoint) {
  const std::string path = TestJobLibrary("no_entry_job");
  ExpectRefused({"run", path}, {path, "has no Sluice job entry point", "SLUICE_JOB"});
  ExpectNoFailedJobs();
}

TEST_F(BadInputTest, LibraryBuiltForAnotherAbiNamesBothStamps) {
  CommandResult r = ExpectRefused({"run", TestJobLibrary("other_abi_job")}, {"ABI"});
  // The library's stamp and this runtime's (the test is built with the same SDK and compiler).
  EXPECT_NE(r.err.find("sluice-sdk-0.0-other"), std::string::npos) << r.Describe();
  EXPECT_NE(r.err.find(SLUICE_ABI_STAMP), std::string::npos)
      << "runtime stamp " << SLUICE_ABI_STAMP << "\n"
      << r.Describe();
  ExpectNoFailedJobs();
}

TEST_F(BadInputTest, EntryPointThatThrows) {
  ExpectRefused({"run", TestJobLibrary("bad_entry_job")},
                {"entry point failed", "this entry point always fails"});
  ExpectNoFailedJobs();
}

TEST_F(BadInputTest, JobArgumentTheEntryPointRejects) {
  // --input is required by the word count: its entry point throws and the CLI reports it.
  ExpectRefused({"run", ExampleLibrary("wordcount")}, {"entry point failed", "input"});
}

TEST_F(BadInputTest, ZeroParallelism) {
  ExpectRefused({"run", "-p", "0", TestJobLibrary("sequence_job"), "--", "--count", "10"},
                {"parallelism", "at least 1", "got 0"});
}

TEST_F(BadInputTest, ParallelismBeyondTheClusterSlots) {
  ExpectRefused({"run", "-p", "5", TestJobLibrary("sequence_job"), "--", "--count", "10"},
                {"needs 5 task slots but the cluster has only 4", "2 TaskManagers"});
  ExpectNoFailedJobs();
}

TEST_F(BadInputTest, UnreachableJobManager) {
  const std::string address = absl::StrCat("127.0.0.1:", FreePort());
  for (std::vector<std::string> args :
       {std::vector<std::string>{"run", "-m", address, TestJobLibrary("sequence_job"), "--",
                                 "--count", "10"},
        std::vector<std::string>{"list", "-m", address},
        std::vector<std::string>{"cancel", "-m", address, std::string(32, 'a')}}) {
    auto start = std::chrono::steady_clock::now();
    CommandResult r = RunCli(args, cluster_->dir(), 30s);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 20s) << args[0] << " took too long";
    EXPECT_NE(r.exit_code, 0) << r.Describe();
    EXPECT_NE(r.err.find("cannot reach the JobManager at " + address), std::string::npos)
        << r.Describe();
  }
}

TEST_F(BadInputTest, MalformedJobIdToCancel) {
  ExpectRefused({"cancel", "not-a-job-id"}, {"'not-a-job-id' is not a job id"});
  ExpectRefused({"cancel", std::string(32, 'G')}, {"is not a job id"});
}

TEST_F(BadInputTest, UnknownJobIdToCancel) {
  const std::string id(32, '0');
  ExpectRefused({"cancel", id}, {"no job " + id});
}

TEST_F(BadInputTest, UnknownDynamicKey) {
  ExpectRefused(
      {"run", "-D", "no.such.key=1", TestJobLibrary("sequence_job"), "--", "--count", "10"},
      {"unknown configuration key 'no.such.key'"});
  ExpectRefused({"list", "-D", "jobmanager.rpc.prot=1"},
                {"unknown configuration key 'jobmanager.rpc.prot'"});
}

TEST_F(BadInputTest, MalformedDynamicValue) {
  ExpectRefused({"run", "-D", "client.timeout=soon", TestJobLibrary("sequence_job")},
                {"client.timeout", "'soon' is not a duration"});
  ExpectRefused({"run", "-D", "parallelism.default", TestJobLibrary("sequence_job")},
                {"-D expects key=value", "parallelism.default"});
}

TEST_F(BadInputTest, ConfigDirWithUnknownKey) {
  const std::string conf = cluster_->dir() + "/bad-conf";
  std::filesystem::create_directories(conf);
  ASSERT_TRUE(
      WriteFile(conf + "/config.yaml", "parallelism:\n  default: 2\nbogus:\n  setting: 7\n"));
  ExpectRefused(
      {"run", "--config-dir", conf, TestJobLibrary("sequence_job"), "--", "--count", "10"},
      {"unknown configuration key 'bogus.setting'", conf + "/config.yaml"});
  ExpectRefused({"list", "--config-dir", conf}, {"unknown configuration key 'bogus.setting'"});
}

TEST_F(BadInputTest, ConfigDirWithoutConfigFile) {
  const std::string conf = cluster_->dir() + "/empty-conf";
  std::filesystem::create_directories(conf);
  ExpectRefused({"list", "--config-dir", conf}, {conf + "/config.yaml", "does not exist"});
}

TEST_F(BadInputTest, DaemonsRefuseBadConfiguration) {
  for (const char* daemon : {"sluice-jobmanager", "sluice-taskmanager"}) {
    CommandResult r =
        RunCommand({BinDir() + "/" + daemon, "-D", "no.such.key=1"}, cluster_->dir(), 10s);
    EXPECT_FALSE(r.timed_out) << daemon << ": " << r.Describe();
    EXPECT_NE(r.exit_code, 0) << daemon << ": " << r.Describe();
    EXPECT_NE(r.err.find("unknown configuration key 'no.such.key'"), std::string::npos)
        << daemon << ": " << r.Describe();
  }
  CommandResult r =
      RunCommand({BinDir() + "/sluice-taskmanager", "-D", "taskmanager.numberOfTaskSlots=0", "-D",
                  absl::StrCat("jobmanager.rpc.port=", cluster_->jm_port())},
                 cluster_->dir(), 10s);
  EXPECT_FALSE(r.timed_out) << r.Describe();
  EXPECT_NE(r.exit_code, 0) << r.Describe();
  EXPECT_NE(r.err.find("taskmanager.numberOfTaskSlots"), std::string::npos) << r.Describe();
}

// gRPC sets SO_REUSEPORT on listening sockets by default; without turning it off a second
// daemon would bind a taken port, start "successfully", and share its connections.
TEST_F(BadInputTest, DaemonsRefuseATakenPort) {
  const std::string taken = std::to_string(cluster_->jm_port());
  // A daemon that got the port would run until killed; one that did not exits, but under a
  // sanitizer on a loaded machine it may take more than a few seconds to.
  constexpr auto kExitWithin = 60s;
  CommandResult r =
      RunCommand({BinDir() + "/sluice-jobmanager", "-D", "jobmanager.bind-host=127.0.0.1", "-D",
                  "jobmanager.rpc.port=" + taken, "-D", "rest.port=-1", "-D",
                  "blob.storage.directory=" + cluster_->dir() + "/blobs2"},
                 cluster_->dir(), kExitWithin);
  EXPECT_FALSE(r.timed_out) << "a second JobManager started on the cluster's port " << taken << "\n"
                            << r.Describe();
  EXPECT_NE(r.exit_code, 0) << r.Describe();
  EXPECT_NE(r.err.find("JobManager cannot listen on 127.0.0.1:" + taken), std::string::npos)
      << r.Describe();

  r = RunCommand({BinDir() + "/sluice-taskmanager", "-D", "taskmanager.bind-host=127.0.0.1", "-D",
                  "taskmanager.rpc.port=" + taken, "-D", "jobmanager.rpc.address=127.0.0.1", "-D",
                  "jobmanager.rpc.port=" + taken, "-D",
                  "blob.storage.directory=" + cluster_->dir() + "/blobs2"},
                 cluster_->dir(), kExitWithin);
  EXPECT_FALSE(r.timed_out) << "a TaskManager started on the JobManager's port " << taken << "\n"
                            << r.Describe();
  EXPECT_NE(r.exit_code, 0) << r.Describe();
  EXPECT_NE(r.err.find("TaskManager cannot listen on 127.0.0.1:" + taken), std::string::npos)
      << r.Describe();
}

}  // namespace
}  // namespace sluice::itest
