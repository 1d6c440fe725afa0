// The adaptive scheduler (jobmanager.scheduler: adaptive) and reactive mode (scheduler-mode:
// reactive) on real daemons, with the checkpointed chaos count job (per-key sequence counts into
// an exactly-once file sink): a job without slots waits in CREATED and runs when a TaskManager
// starts; a job that finds fewer slots than its parallelism runs lower and scales up when more
// appear; a reactive job uses every slot, grows when a TaskManager starts and shrinks when one
// is killed with kill -9. Every run ends with each key counted exactly once.
#include <gmock/gmock.h>
#include <httplib.h>

#include <nlohmann/json.hpp>
#include <string>
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
constexpr int64_t kRate = 500;  // records/s over the whole job

ClusterOptions Options(int task_managers, int slots, std::vector<std::string> config) {
  ClusterOptions o;
  o.task_managers = task_managers;
  o.slots_per_task_manager = slots;
  o.extra_config = std::move(config);
  return o;
}

absl::StatusOr<proto::JobStatus> WaitForEnd(TestCluster& cluster, const std::string& job) {
  return cluster.WaitForJob(
      job, [](const proto::JobStatus& s) { return IsTerminalJobState(s.state()); }, 60s);
}

TEST(AdaptiveTest, AJobWithoutSlotsWaitsInCreatedAndRunsWhenATaskManagerStarts) {
  TestCluster cluster(Options(0, 2, {"jobmanager.scheduler=adaptive"}));
  SLUICE_ASSERT_OK(cluster.Start());
  const std::string output = cluster.dir() + "/out";
  constexpr int64_t kPerKey = 50;  // 2 s
  std::string job;
  SLUICE_ASSIGN_OR_FAIL(
      job, cluster.SubmitDetached(TestJobLibrary("chaos_count_job"),
                                  CheckpointedRunFlags(cluster.dir() + "/checkpoints", 2),
                                  ChaosCountArgs(kKeys, kPerKey, kRate, output)));
  SLUICE_ASSIGN_OR_FAIL(proto::JobStatus st, cluster.client().GetJob(job));
  EXPECT_EQ(st.state(), proto::JOB_CREATED);
  EXPECT_THAT(st.waiting_for_resources(), HasSubstr("1 task slot (0 of 0 free"));
  EXPECT_THAT(cluster.JobManagerLog(),
              HasSubstr(absl::StrCat("job ", job, " is waiting for task slots (CREATED")));
  // The REST view says so.
  httplib::Client http("127.0.0.1", cluster.RestPort());
  http.set_read_timeout(5);
  auto res = http.Get(("/jobs/" + job).c_str());
  ASSERT_TRUE(res && res->status == 200);
  json view = json::parse(res->body);
  EXPECT_EQ(view["state"], "CREATED") << view;
  EXPECT_THAT(view["waiting-for-resources"].get<std::string>(), HasSubstr("1 task slot"));
  EXPECT_EQ(view["vertices"][0]["status"], "CREATED") << view;
  CommandResult list = cluster.Cli({"list"});
  // Flink's list: a job waiting for slots is a scheduled one.
  EXPECT_THAT(list.out, HasSubstr("No running jobs.")) << list.Describe();
  EXPECT_THAT(list.out, HasSubstr("Scheduled Jobs")) << list.Describe();
  EXPECT_THAT(list.out, HasSubstr(" : " + job + " : ")) << list.Describe();
  EXPECT_THAT(list.out, HasSubstr("(CREATED)")) << list.Describe();

  SLUICE_ASSERT_OK(cluster.AddTaskManager().status());
  SLUICE_ASSIGN_OR_FAIL(st, WaitForParallelismAndCheckpoint(cluster, job, {2, 2}, 0, 30s));
  EXPECT_THAT(cluster.JobManagerLog(), HasSubstr(absl::StrCat("job ", job, " got its task slots")));
  SLUICE_ASSIGN_OR_FAIL(st, WaitForEnd(cluster, job));
  ASSERT_EQ(st.state(), proto::JOB_FINISHED) << st.failure();
  EXPECT_TRUE(SequenceCountOutputIsCorrect(output, kKeys, kPerKey));
}

TEST(AdaptiveTest, AJobThatFindsFewerSlotsRunsLowerAndScalesUpWhenMoreAppear) {
  TestCluster cluster(
      Options(1, 1,
              {"jobmanager.scheduler=adaptive",
               "jobmanager.adaptive-scheduler.resource-stabilization-timeout=300ms"}));
  SLUICE_ASSERT_OK(cluster.Start());
  const std::string output = cluster.dir() + "/out";
  constexpr int64_t kPerKey = 200;  // 8 s
  std::string job;
  SLUICE_ASSIGN_OR_FAIL(
      job, cluster.SubmitDetached(TestJobLibrary("chaos_count_job"),
                                  CheckpointedRunFlags(cluster.dir() + "/checkpoints", 2),
                                  ChaosCountArgs(kKeys, kPerKey, kRate, output)));
  // One slot: after the stabilization timeout it runs at 1 instead of its configured 2.
  proto::JobStatus st;
  SLUICE_ASSIGN_OR_FAIL(st, WaitForParallelismAndCheckpoint(cluster, job, {1, 1}, 0, 30s));
  EXPECT_THAT(cluster.JobManagerLog(), HasSubstr("at parallelism 1 (1 task slot of the 2 its "
                                                 "bounds allow)"));
  // A second TaskManager: it scales up to its configured parallelism, from a checkpoint.
  SLUICE_ASSERT_OK(cluster.AddTaskManager().status());
  SLUICE_ASSIGN_OR_FAIL(
      st, WaitForParallelismAndCheckpoint(cluster, job, {2, 2}, st.last_checkpoint_id(), 30s));
  EXPECT_EQ(st.rescales(), 1);
  EXPECT_THAT(cluster.JobManagerLog(),
              HasSubstr(absl::StrCat(
                  "job ", job, " rescaling (task slots became free: 1 (adaptive scheduler)")));

  SLUICE_ASSIGN_OR_FAIL(st, WaitForEnd(cluster, job));
  ASSERT_EQ(st.state(), proto::JOB_FINISHED) << st.failure();
  EXPECT_TRUE(SequenceCountOutputIsCorrect(output, kKeys, kPerKey));
}

// Reactive mode on RocksDB with incremental checkpoints: configured parallelism is ignored, the
// job follows the cluster's slots, each change restored from the latest checkpoint.
TEST(ReactiveTest, AJobFollowsTaskManagersComingAndGoingWithExactCounts) {
  TestCluster cluster(Options(1, 2, {"scheduler-mode=reactive"}));
  SLUICE_ASSERT_OK(cluster.Start());
  const std::string output = cluster.dir() + "/out";
  constexpr int64_t kPerKey = 250;  // 10 s
  std::string job;
  SLUICE_ASSIGN_OR_FAIL(
      job, cluster.SubmitDetached(TestJobLibrary("chaos_count_job"),
                                  CheckpointedRunFlags(cluster.dir() + "/checkpoints", 0,
                                                       {"-D", "state.backend.type=rocksdb", "-D",
                                                        "state.backend.incremental=true"}),
                                  ChaosCountArgs(kKeys, kPerKey, kRate, output)));
  proto::JobStatus st;
  SLUICE_ASSIGN_OR_FAIL(st, WaitForParallelismAndCheckpoint(cluster, job, {2, 2}, 0, 30s));

  int added = -1;
  SLUICE_ASSIGN_OR_FAIL(added, cluster.AddTaskManager());
  SLUICE_ASSIGN_OR_FAIL(
      st, WaitForParallelismAndCheckpoint(cluster, job, {4, 4}, st.last_checkpoint_id(), 30s));
  EXPECT_EQ(st.rescales(), 1);

  // kill -9 of the first TaskManager: the job restarts on the two slots left.
  cluster.KillTaskManager(0);
  SLUICE_ASSIGN_OR_FAIL(
      st, WaitForParallelismAndCheckpoint(cluster, job, {2, 2}, st.last_checkpoint_id(), 30s));
  EXPECT_GE(st.restarts(), 1);
  for (const auto& t : st.tasks()) EXPECT_EQ(t.tm_id(), cluster.tm_id(added));
  EXPECT_THAT(cluster.JobManagerLog(), HasSubstr("at the parallelism the free slots allow"));

  SLUICE_ASSIGN_OR_FAIL(st, WaitForEnd(cluster, job));
  ASSERT_EQ(st.state(), proto::JOB_FINISHED) << st.failure();
  EXPECT_TRUE(SequenceCountOutputIsCorrect(output, kKeys, kPerKey));
  EXPECT_TRUE(InProgressFiles(output).empty());
  EXPECT_TRUE(cluster.IsHealthy());
}

}  // namespace
}  // namespace sluice::itest
