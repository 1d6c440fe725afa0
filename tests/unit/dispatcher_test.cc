// The JobManager's logic in process: submission, job states, failover and checkpoints driven
// through the Dispatcher against TestingTaskManagerGateways, with the background loops run by
// hand, so no TaskManager process or network is involved.
#include "jobmanager/dispatcher.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include "common/ids.h"
#include "testing_task_manager_gateway.h"
#include "two_vertex_job.h"

namespace sluice {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

class DispatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (std::filesystem::temp_directory_path() / NewInstanceId("dispatcher-test")).string();
    ASSERT_TRUE(conf_.Set("state.checkpoints.dir", dir_ + "/checkpoints").ok());
  }
  void TearDown() override {
    dispatcher_.reset();
    std::filesystem::remove_all(dir_);
  }

  void Start(std::chrono::milliseconds heartbeat_timeout = 5s, bool threads = false,
             std::chrono::milliseconds cancel_timeout = 30s) {
    Dispatcher::Options o;
    o.jm_id = "jm-test";
    o.heartbeat_timeout = heartbeat_timeout;
    o.cancel_timeout = cancel_timeout;
    o.start_threads = threads;
    auto blobs = BlobStore::Create(dir_ + "/blobs");
    ASSERT_TRUE(blobs.ok());
    dispatcher_ = std::make_unique<Dispatcher>(conf_, o, std::move(*blobs), gateways_.factory());
    auto sha = dispatcher_->UploadLibrary(std::string("\x7f"
                                                      "ELF",
                                                      4) +
                                          "job");
    ASSERT_TRUE(sha.ok());
    sha_ = *sha;
  }

  void Register(const std::string& tm, int slots) {
    proto::RegisterTaskManagerRequest r;
    r.set_tm_id(tm);
    r.set_address(tm + ":1");
    r.set_num_slots(slots);
    auto jm = dispatcher_->RegisterTaskManager(r);
    ASSERT_TRUE(jm.ok());
    EXPECT_EQ(*jm, "jm-test");
  }

  // source (p) --hash--> sink (p)
  proto::SubmitJobRequest Job(int parallelism, std::map<std::string, std::string> config = {}) {
    proto::SubmitJobRequest req = TwoVertexJob(sha_, parallelism);
    req.mutable_config()->insert(config.begin(), config.end());
    return req;
  }

  // Reports every task of the job's current attempt in `state`.
  void ReportAll(const std::string& job_id, proto::TaskState state, int attempt = 0) {
    auto job = dispatcher_->GetJob(job_id);
    ASSERT_TRUE(job.ok());
    for (const auto& t : job->tasks())
      Report(job_id, t.vertex_id(), t.subtask(), state, attempt, t.tm_id());
  }
  void Report(const std::string& job_id, int vertex, int subtask, proto::TaskState state,
              int attempt, const std::string& tm, const std::string& failure = "") {
    proto::TaskStateUpdate u;
    u.mutable_task()->set_job_id(job_id);
    u.mutable_task()->set_vertex_id(vertex);
    u.mutable_task()->set_subtask(subtask);
    u.mutable_task()->set_attempt(attempt);
    u.set_state(state);
    u.set_tm_id(tm);
    u.set_failure(failure);
    ASSERT_TRUE(dispatcher_->UpdateTaskState(u).ok());
  }
  proto::JobState State(const std::string& job_id) {
    auto job = dispatcher_->GetJob(job_id);
    EXPECT_TRUE(job.ok()) << job.status();
    return job.ok() ? job->state() : proto::JOB_STATE_UNSPECIFIED;
  }
  void Ack(const std::string& job_id, int vertex, int64_t checkpoint, int attempt = 0) {
    proto::AcknowledgeCheckpointRequest a;
    a.mutable_task()->set_job_id(job_id);
    a.mutable_task()->set_vertex_id(vertex);
    a.mutable_task()->set_attempt(attempt);
    a.set_checkpoint_id(checkpoint);
    auto* h = a.add_handles();
    h->set_vertex_id(vertex);
    h->set_file("chk-" + std::to_string(checkpoint) + "/v" + std::to_string(vertex) + "-s0");
    ASSERT_TRUE(dispatcher_->AcknowledgeCheckpoint(a).ok());
  }

  std::string dir_;
  Configuration conf_;
  TestingTaskManagerGateways gateways_;
  std::unique_ptr<Dispatcher> dispatcher_;
  std::string sha_;
};

TEST_F(DispatcherTest, RefusesJobsItCannotRun) {
  Start();
  Register("tm-a", 2);
  auto too_wide = dispatcher_->SubmitJob(Job(3));
  EXPECT_EQ(too_wide.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(too_wide.status().message(),
              HasSubstr("needs 3 task slots but only 2 of 2 are free (1 TaskManagers"));
  auto no_library = Job(1);
  no_library.set_library_sha256(std::string(64, 'f'));
  EXPECT_EQ(dispatcher_->SubmitJob(no_library).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(dispatcher_->SubmitJob(Job(1, {{"no.such.key", "1"}})).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(dispatcher_->GetJob("nope").status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(dispatcher_->ListJobs(true).empty());
}

TEST_F(DispatcherTest, DeploysSpreadsAndFinishesAJob) {
  Start();
  Register("tm-a", 1);
  Register("tm-b", 1);
  auto id = dispatcher_->SubmitJob(Job(2));
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(gateways_.at("tm-a:1").deployed().size(), 2u);
  EXPECT_EQ(gateways_.at("tm-b:1").deployed().size(), 2u);
  EXPECT_EQ(dispatcher_->GetOverview().free_slots(), 0);
  EXPECT_EQ(State(*id), proto::JOB_RUNNING);
  ReportAll(*id, proto::TASK_RUNNING);
  ReportAll(*id, proto::TASK_FINISHED);
  EXPECT_EQ(State(*id), proto::JOB_FINISHED);
  EXPECT_EQ(dispatcher_->GetOverview().free_slots(), 2);
  EXPECT_TRUE(dispatcher_->ListJobs(false).empty());
  ASSERT_EQ(dispatcher_->ListJobs(true).size(), 1u);
  dispatcher_->RunMonitorOnce();
  EXPECT_EQ(gateways_.at("tm-a:1").released().size(), 1u) << "the job's resources are released";
}

TEST_F(DispatcherTest, CancelsAJobOnEveryTaskManagerItRuns) {
  Start();
  Register("tm-a", 1);
  Register("tm-b", 1);
  auto id = dispatcher_->SubmitJob(Job(2));
  ASSERT_TRUE(id.ok());
  ReportAll(*id, proto::TASK_RUNNING);
  ASSERT_TRUE(dispatcher_->CancelJob(*id).ok());
  EXPECT_EQ(State(*id), proto::JOB_CANCELLING);
  EXPECT_EQ(gateways_.at("tm-a:1").cancelled().size(), 1u);
  EXPECT_EQ(gateways_.at("tm-b:1").cancelled().size(), 1u);
  ReportAll(*id, proto::TASK_CANCELED);
  EXPECT_EQ(State(*id), proto::JOB_CANCELED);
  EXPECT_EQ(dispatcher_->CancelJob(*id).code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(DispatcherTest, AFailedTaskFailsTheJobWithoutARestartStrategy) {
  Start();
  Register("tm-a", 1);
  auto id = dispatcher_->SubmitJob(Job(1));
  ASSERT_TRUE(id.ok());
  ReportAll(*id, proto::TASK_RUNNING);
  Report(*id, 1, 0, proto::TASK_FAILED, 0, "tm-a", "boom");
  EXPECT_EQ(State(*id), proto::JOB_FAILING);
  EXPECT_EQ(gateways_.at("tm-a:1").cancelled().size(), 1u);
  Report(*id, 0, 0, proto::TASK_CANCELED, 0, "tm-a");
  auto job = dispatcher_->GetJob(*id);
  EXPECT_EQ(job->state(), proto::JOB_FAILED);
  EXPECT_EQ(job->failure(), "Sink (1/1) on TaskManager tm-a failed: boom");
}

TEST_F(DispatcherTest, RestartsFromTheLatestCheckpointAsTheStrategyAllows) {
  Start();
  Register("tm-a", 1);
  auto id = dispatcher_->SubmitJob(Job(1, {{"execution.checkpointing.interval", "1 ms"},
                                           {"restart-strategy.type", "fixed-delay"},
                                           {"restart-strategy.fixed-delay.attempts", "1"},
                                           {"restart-strategy.fixed-delay.delay", "0 ms"}}));
  ASSERT_TRUE(id.ok()) << id.status();
  ReportAll(*id, proto::TASK_RUNNING);
  auto& tm = gateways_.at("tm-a:1");
  // Checkpoint 1: triggered at the source's TaskManager, acknowledged, completed, notified.
  std::this_thread::sleep_for(5ms);
  dispatcher_->RunCoordinatorOnce();
  ASSERT_EQ(tm.triggered().size(), 1u);
  EXPECT_EQ(tm.triggered()[0].checkpoint_id(), 1);
  for (int v = 0; v < 2; ++v) {
    proto::AcknowledgeCheckpointRequest a;
    a.mutable_task()->set_job_id(*id);
    a.mutable_task()->set_vertex_id(v);
    a.set_checkpoint_id(1);
    auto* h = a.add_handles();
    h->set_vertex_id(v);
    h->set_file("chk-1/v" + std::to_string(v) + "-s0");
    ASSERT_TRUE(dispatcher_->AcknowledgeCheckpoint(a).ok());
  }
  dispatcher_->RunCoordinatorOnce();
  ASSERT_EQ(tm.notified().size(), 1u);
  EXPECT_FALSE(tm.notified()[0].aborted());
  EXPECT_EQ(dispatcher_->GetJob(*id)->last_checkpoint_id(), 1);
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/checkpoints/" + *id + "/chk-1/_metadata"));

  // A task fails: RESTARTING, the rest cancelled, then attempt 1 from checkpoint 1.
  Report(*id, 0, 0, proto::TASK_FAILED, 0, "tm-a", "lost its input");
  EXPECT_EQ(State(*id), proto::JOB_RESTARTING);
  Report(*id, 1, 0, proto::TASK_CANCELED, 0, "tm-a");
  dispatcher_->RunCoordinatorOnce();
  EXPECT_EQ(State(*id), proto::JOB_RUNNING);
  auto deployed = tm.deployed();
  ASSERT_EQ(deployed.size(), 4u);
  EXPECT_EQ(deployed[2].task().attempt(), 1);
  EXPECT_EQ(deployed[2].restore_checkpoint_id(), 1);
  ASSERT_EQ(deployed[2].restore_groups_size(), 1);
  EXPECT_EQ(deployed[2].restore_groups(0).handles_size(), 1);
  EXPECT_EQ(dispatcher_->GetJob(*id)->restarts(), 1);
  EXPECT_EQ(tm.released().size(), 1u) << "the old attempt's partitions";
  // The checkpoint statistics: checkpoint 1 completed, then restored by attempt 1.
  auto stats = dispatcher_->GetCheckpointStats(*id);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(stats->settings.interval, std::chrono::milliseconds(1));
  EXPECT_EQ(stats->state_backend, "hashmap");
  EXPECT_EQ(stats->stats.counts.completed, 1);
  EXPECT_EQ(stats->stats.counts.restored, 1);
  ASSERT_TRUE(stats->stats.latest_restored);
  EXPECT_EQ(stats->stats.latest_restored->id, 1);
  EXPECT_EQ(stats->stats.latest_restored->external_path, dir_ + "/checkpoints/" + *id + "/chk-1");
  EXPECT_EQ(dispatcher_->GetCheckpointStats("no-such-job").status().code(),
            absl::StatusCode::kNotFound);
  // Updates of the old attempt are ignored.
  Report(*id, 0, 0, proto::TASK_FAILED, 0, "tm-a", "late");
  EXPECT_EQ(State(*id), proto::JOB_RUNNING);

  // The one restart is used up: the next failure is final and says why.
  ReportAll(*id, proto::TASK_RUNNING, 1);
  Report(*id, 1, 0, proto::TASK_FAILED, 1, "tm-a", "again");
  Report(*id, 0, 0, proto::TASK_CANCELED, 1, "tm-a");
  auto job = dispatcher_->GetJob(*id);
  EXPECT_EQ(job->state(), proto::JOB_FAILED);
  EXPECT_THAT(job->failure(), HasSubstr("(no more restarts: fixed-delay allows 1 restarts)"));
}

TEST_F(DispatcherTest, ADeclinedCheckpointPastTheTolerableFailuresRestartsTheJob) {
  Start();
  Register("tm-a", 1);
  auto id = dispatcher_->SubmitJob(Job(1, {{"execution.checkpointing.interval", "1 ms"},
                                           {"restart-strategy.type", "fixed-delay"},
                                           {"restart-strategy.fixed-delay.delay", "0 ms"}}));
  ASSERT_TRUE(id.ok());
  ReportAll(*id, proto::TASK_RUNNING);
  std::this_thread::sleep_for(5ms);
  dispatcher_->RunCoordinatorOnce();
  proto::DeclineCheckpointRequest d;
  d.mutable_task()->set_job_id(*id);
  d.mutable_task()->set_vertex_id(1);
  d.set_checkpoint_id(1);
  d.set_reason("disk full");
  ASSERT_TRUE(dispatcher_->DeclineCheckpoint(d).ok());
  auto job = dispatcher_->GetJob(*id);
  EXPECT_EQ(job->state(), proto::JOB_RESTARTING);
  EXPECT_THAT(job->failure(), HasSubstr("Sink (1/1) declined it: disk full"));
  EXPECT_EQ(job->failed_checkpoints(), 1);
  dispatcher_->RunCoordinatorOnce();  // the deferred work: discard, notify aborted, cancel
  auto& tm = gateways_.at("tm-a:1");
  ASSERT_FALSE(tm.notified().empty());
  EXPECT_TRUE(tm.notified().back().aborted());
  EXPECT_FALSE(tm.cancelled().empty());
}

TEST_F(DispatcherTest, ATaskManagerThatStopsHeartbeatingIsLostAndNamed) {
  Start(/*heartbeat_timeout=*/1ms);
  Register("tm-a", 1);
  auto id = dispatcher_->SubmitJob(Job(1));
  ASSERT_TRUE(id.ok());
  ReportAll(*id, proto::TASK_RUNNING);
  std::this_thread::sleep_for(5ms);
  dispatcher_->RunMonitorOnce();
  auto job = dispatcher_->GetJob(*id);
  EXPECT_EQ(job->state(), proto::JOB_FAILED);
  EXPECT_THAT(job->failure(), HasSubstr("TaskManager tm-a at tm-a:1 was lost: no heartbeat for"));
  EXPECT_FALSE(dispatcher_->IsTaskManagerRegistered("tm-a"));
  EXPECT_FALSE(dispatcher_->HeartbeatFromTaskManager("tm-a")) << "it must register again";
}

TEST_F(DispatcherTest, ARestartDeclaresATaskManagerThatDoesNotAnswerLost) {
  Start();
  Register("tm-a", 1);
  Register("tm-b", 1);
  auto id = dispatcher_->SubmitJob(Job(1, {{"restart-strategy.type", "fixed-delay"},
                                           {"restart-strategy.fixed-delay.delay", "0 ms"}}));
  ASSERT_TRUE(id.ok());
  auto job = dispatcher_->GetJob(*id);
  std::string used = job->tasks(0).tm_id();
  std::string spare = used == "tm-a" ? "tm-b" : "tm-a";
  ReportAll(*id, proto::TASK_RUNNING);
  gateways_.at(used + ":1").set_alive(false);
  Report(*id, 0, 0, proto::TASK_FAILED, 0, used, "crashed");
  Report(*id, 1, 0, proto::TASK_CANCELED, 0, used);
  dispatcher_->RunCoordinatorOnce();
  EXPECT_FALSE(dispatcher_->IsTaskManagerRegistered(used));
  job = dispatcher_->GetJob(*id);
  EXPECT_EQ(job->state(), proto::JOB_RUNNING);
  for (const auto& t : job->tasks()) EXPECT_EQ(t.tm_id(), spare);
  EXPECT_EQ(gateways_.at(spare + ":1").deployed().size(), 2u);
}

TEST_F(DispatcherTest, ADeploymentThatFailsFailsTheJobNamingTheTaskManager) {
  Start();
  Register("tm-a", 1);
  gateways_.at("tm-a:1").set_deploy_status(absl::UnavailableError("connection refused"));
  auto id = dispatcher_->SubmitJob(Job(1));
  ASSERT_TRUE(id.ok());
  Report(*id, 1, 0, proto::TASK_CANCELED, 0, "tm-a");
  auto job = dispatcher_->GetJob(*id);
  EXPECT_EQ(job->state(), proto::JOB_FAILED);
  EXPECT_THAT(job->failure(),
              HasSubstr("could not deploy Source (1) to TaskManager tm-a: connection refused"));
}

TEST_F(DispatcherTest, AClosedConnectionLosesTheTaskManagerAtOnce) {
  Start();
  Register("tm-a", 1);
  auto id = dispatcher_->SubmitJob(Job(1));
  ASSERT_TRUE(id.ok());
  ReportAll(*id, proto::TASK_RUNNING);
  dispatcher_->DisconnectTaskManager("tm-a");
  auto job = dispatcher_->GetJob(*id);
  EXPECT_EQ(job->state(), proto::JOB_FAILED);
  EXPECT_EQ(job->failure(),
            "TaskManager tm-a at tm-a:1 was lost: its connection to the JobManager closed");
  EXPECT_EQ(dispatcher_->GetOverview().task_managers_size(), 0);
}

TEST_F(DispatcherTest, TasksThatNeverConfirmCancellationAreTakenAsGone) {
  Start(/*heartbeat_timeout=*/5s, /*threads=*/false, /*cancel_timeout=*/1ms);
  Register("tm-a", 1);
  auto id = dispatcher_->SubmitJob(Job(1));
  ASSERT_TRUE(id.ok());
  ASSERT_TRUE(dispatcher_->CancelJob(*id).ok());
  std::this_thread::sleep_for(5ms);
  dispatcher_->RunMonitorOnce();
  auto job = dispatcher_->GetJob(*id);
  EXPECT_EQ(job->state(), proto::JOB_CANCELED);
  EXPECT_EQ(job->tasks(0).failure(), "did not confirm cancellation within 1 ms");
  EXPECT_EQ(dispatcher_->GetOverview().free_slots(), 1);
}

TEST_F(DispatcherTest, TheFinalCheckpointComesAsSoonAsEverySourceHasEnded) {
  Start();
  Register("tm-a", 1);
  // An interval of an hour: only the end of the sources can make a checkpoint due.
  auto id = dispatcher_->SubmitJob(Job(1, {{"execution.checkpointing.interval", "1 h"}}));
  ASSERT_TRUE(id.ok());
  ReportAll(*id, proto::TASK_RUNNING);
  auto& tm = gateways_.at("tm-a:1");
  dispatcher_->RunCoordinatorOnce();
  EXPECT_TRUE(tm.triggered().empty());
  proto::TaskStateUpdate end;
  end.mutable_task()->set_job_id(*id);
  end.set_end_of_data(true);
  ASSERT_TRUE(dispatcher_->UpdateTaskState(end).ok());
  EXPECT_EQ(State(*id), proto::JOB_RUNNING) << "end of data is not a state";
  dispatcher_->RunCoordinatorOnce();
  ASSERT_EQ(tm.triggered().size(), 1u);
}

TEST_F(DispatcherTest, ACheckpointThatCannotBeTriggeredOrExpiresFails) {
  Start();
  Register("tm-a", 1);
  auto id = dispatcher_->SubmitJob(
      Job(1, {{"execution.checkpointing.interval", "1 ms"},
              {"execution.checkpointing.timeout", "20 ms"},
              {"execution.checkpointing.tolerable-failed-checkpoints", "5"}}));
  ASSERT_TRUE(id.ok());
  ReportAll(*id, proto::TASK_RUNNING);
  auto& tm = gateways_.at("tm-a:1");
  tm.set_trigger_status(absl::UnavailableError("connection reset"));
  std::this_thread::sleep_for(5ms);
  dispatcher_->RunCoordinatorOnce();
  EXPECT_EQ(dispatcher_->GetJob(*id)->failed_checkpoints(), 1);
  tm.set_trigger_status(absl::OkStatus());
  std::this_thread::sleep_for(5ms);
  dispatcher_->RunCoordinatorOnce();  // checkpoint 2 triggered; nobody acknowledges it
  std::this_thread::sleep_for(30ms);
  dispatcher_->RunCoordinatorOnce();
  auto job = dispatcher_->GetJob(*id);
  EXPECT_EQ(job->failed_checkpoints(), 2);
  EXPECT_EQ(job->state(), proto::JOB_RUNNING) << "within the tolerable failures";
  EXPECT_FALSE(tm.notified().empty());
  EXPECT_TRUE(tm.notified().back().aborted());
}

TEST_F(DispatcherTest, RefusesReportsThatAreNoTaskState) {
  Start();
  Register("tm-a", 1);
  auto id = dispatcher_->SubmitJob(Job(1));
  ASSERT_TRUE(id.ok());
  proto::TaskStateUpdate u;
  u.mutable_task()->set_job_id(*id);
  u.set_state(proto::TASK_DEPLOYING);
  EXPECT_EQ(dispatcher_->UpdateTaskState(u).code(), absl::StatusCode::kInvalidArgument);
  proto::DeclineCheckpointRequest d;
  d.mutable_task()->set_job_id(*id);
  d.mutable_task()->set_vertex_id(99);
  EXPECT_TRUE(dispatcher_->DeclineCheckpoint(d).ok()) << "no pending checkpoint: ignored";
}

TEST_F(DispatcherTest, ItsOwnThreadsCompleteCheckpointsAndRestartJobs) {
  Start(/*heartbeat_timeout=*/5s, /*threads=*/true);
  Register("tm-a", 1);
  auto id = dispatcher_->SubmitJob(Job(1, {{"execution.checkpointing.interval", "10 ms"},
                                           {"restart-strategy.type", "fixed-delay"},
                                           {"restart-strategy.fixed-delay.delay", "0 ms"}}));
  ASSERT_TRUE(id.ok());
  ReportAll(*id, proto::TASK_RUNNING);
  auto& tm = gateways_.at("tm-a:1");
  auto deadline = std::chrono::steady_clock::now() + 30s;
  while (tm.triggered().empty() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(1ms);
  ASSERT_FALSE(tm.triggered().empty());
  int64_t checkpoint = tm.triggered()[0].checkpoint_id();
  Ack(*id, 0, checkpoint);
  Ack(*id, 1, checkpoint);
  while (dispatcher_->GetJob(*id)->last_checkpoint_id() == 0 &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  EXPECT_EQ(dispatcher_->GetJob(*id)->last_checkpoint_id(), checkpoint);
  Report(*id, 0, 0, proto::TASK_FAILED, 0, "tm-a", "boom");
  Report(*id, 1, 0, proto::TASK_CANCELED, 0, "tm-a");
  while (tm.deployed().size() < 4 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(1ms);
  ASSERT_EQ(tm.deployed().size(), 4u);
  EXPECT_EQ(tm.deployed()[3].restore_checkpoint_id(), checkpoint);
  EXPECT_EQ(State(*id), proto::JOB_RUNNING);
}

TEST_F(DispatcherTest, StopRefusesNewJobs) {
  Start();
  Register("tm-a", 1);
  dispatcher_->Stop();
  EXPECT_EQ(dispatcher_->SubmitJob(Job(1)).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(dispatcher_->IsTaskManagerRegistered("tm-a"));
}

}  // namespace
}  // namespace sluice
