// Failures during a job: a TaskManager killed with SIGKILL, and user code that throws. The job
// fails with a cause that says what happened; the rest of the cluster keeps serving.
#include <set>

#include "absl/strings/str_cat.h"
#include "integration/harness.h"

namespace sluice::itest {
namespace {

using namespace std::chrono_literals;

TEST(FailureTest, KilledTaskManagerFailsTheJobAndTheClusterKeepsServing) {
  TestCluster cluster(2, 2);
  SLUICE_ASSERT_OK(cluster.Start());
  std::string job;
  SLUICE_ASSIGN_OR_FAIL(job,
                        cluster.SubmitDetached(TestJobLibrary("sequence_job"), {"-p", "4"}, {}));
  proto::JobStatus status;
  SLUICE_ASSIGN_OR_FAIL(status, cluster.WaitForAllTasksRunning(job, 20s));
  std::set<std::string> tms;
  for (const auto& t : status.tasks()) tms.insert(t.tm_id());
  ASSERT_EQ(tms, (std::set<std::string>{cluster.tm_id(0), cluster.tm_id(1)}))
      << status.DebugString();

  const std::string victim = cluster.tm_id(1), victim_address = cluster.tm_address(1);
  auto killed_at = std::chrono::steady_clock::now();
  cluster.KillTaskManager(1);
  ASSERT_FALSE(cluster.TaskManagerRunning(1));

  // Either a consumer loses its connection to the dead TaskManager, or the heartbeat times out
  // (2 s): both causes name the dead TaskManager.
  SLUICE_ASSIGN_OR_FAIL(status, cluster.WaitForState(job, proto::JOB_FAILED, 20s));
  auto took = std::chrono::steady_clock::now() - killed_at;
  EXPECT_LT(took, 10s);
  EXPECT_TRUE(status.failure().find(victim) != std::string::npos ||
              status.failure().find(victim_address) != std::string::npos)
      << "failure cause names neither " << victim << " nor " << victim_address << ": "
      << status.failure();
  for (const auto& t : status.tasks()) {
    EXPECT_TRUE(t.state() == proto::TASK_FAILED || t.state() == proto::TASK_CANCELED)
        << t.DebugString();
  }
  CommandResult list = cluster.Cli({"list", "-a"});
  ASSERT_EQ(list.exit_code, 0) << list.Describe();
  EXPECT_NE(list.out.find("FAILED"), std::string::npos) << list.Describe();

  // The JobManager forgets the dead TaskManager (heartbeat timeout 2 s) and keeps the live one,
  // whose slots are all free again.
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto ov = cluster.client().Overview();
        return ov.ok() && ov->task_managers_size() == 1 &&
               ov->task_managers(0).tm_id() == cluster.tm_id(0) && ov->free_slots() == 2;
      },
      15s))
      << [&] {
           auto ov = cluster.client().Overview();
           return ov.ok() ? ov->DebugString() : ov.status().ToString();
         }();
  EXPECT_TRUE(cluster.IsHealthy());

  // A new job on the surviving TaskManager finishes; one needing the lost slots is refused.
  EXPECT_TRUE(cluster.RunsASmallJob(2));
  CommandResult r =
      cluster.Cli({"run", "-p", "3", TestJobLibrary("sequence_job"), "--", "--count", "100"}, 60s);
  EXPECT_NE(r.exit_code, 0) << r.Describe();
  EXPECT_NE(r.err.find("needs 3 task slots but the cluster has only 2"), std::string::npos)
      << r.Describe();
  SLUICE_EXPECT_OK(cluster.Stop());
}

TEST(FailureTest, UserExceptionFailsTheJobWithTheOperatorAndMessage) {
  TestCluster cluster(2, 2);
  SLUICE_ASSERT_OK(cluster.Start());
  CommandResult r = cluster.Cli({"run", "-p", "2", TestJobLibrary("throwing_job"), "--", "--count",
                                 "100000", "--fail-at", "5000"},
                                60s);
  EXPECT_NE(r.exit_code, 0) << r.Describe();
  EXPECT_NE(r.out.find("submitted"), std::string::npos) << r.Describe();
  EXPECT_NE(r.err.find("FAILED"), std::string::npos) << r.Describe();
  EXPECT_NE(r.err.find("Exploding Map"), std::string::npos) << r.Describe();
  EXPECT_NE(r.err.find("boom at record 5000"), std::string::npos) << r.Describe();

  // The TaskManager that ran the failing task logged it with the job id.
  auto jobs = cluster.client().ListJobs(/*include_terminated=*/true);
  ASSERT_TRUE(jobs.ok()) << jobs.status();
  ASSERT_EQ(jobs->size(), 1u);
  EXPECT_EQ(jobs->front().state(), proto::JOB_FAILED);
  const std::string log = cluster.TaskManagerLog(0) + cluster.TaskManagerLog(1);
  EXPECT_NE(log.find("boom at record 5000"), std::string::npos);
  EXPECT_NE(log.find(jobs->front().job_id()), std::string::npos);

  // The daemons are unharmed and run the next job; the failed job's slots are free.
  EXPECT_TRUE(cluster.IsHealthy());
  EXPECT_TRUE(WaitUntil(
      [&] {
        auto o = cluster.client().Overview();
        return o.ok() && o->free_slots() == 4;
      },
      5s));
  EXPECT_TRUE(cluster.RunsASmallJob(4));
  SLUICE_EXPECT_OK(cluster.Stop());
}

TEST(FailureTest, FailureTextThatIsNotUtf8StillFailsTheJob) {
  // Protobuf strings must be UTF-8; the failure is made valid before it is reported, so the
  // report arrives and the job ends instead of running on with its slots.
  TestCluster cluster(1, 1);
  SLUICE_ASSERT_OK(cluster.Start());
  CommandResult r = cluster.Cli(
      {"run", "-p", "1", TestJobLibrary("throwing_job"), "--", "--fail-at", "10", "--latin1"}, 30s);
  EXPECT_NE(r.exit_code, 0) << r.Describe();
  EXPECT_NE(r.err.find("FAILED"), std::string::npos) << r.Describe();
  EXPECT_NE(r.err.find("boom at record 10 caf?"), std::string::npos) << r.Describe();
  EXPECT_TRUE(cluster.RunsASmallJob(1));
}

}  // namespace
}  // namespace sluice::itest
