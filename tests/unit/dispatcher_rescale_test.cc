// The Dispatcher's rescales and its adaptive scheduler in process, against
// TestingTaskManagerGateways with the background loops run by hand: a rescale redeploys the
// next attempt at the new parallelism from the latest checkpoint without counting a restart;
// what it cannot do is refused by name; the adaptive scheduler lets a job wait in CREATED, start
// at what the slots allow, scale up when slots appear and down when a TaskManager is lost.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include "common/ids.h"
#include "jobmanager/dispatcher.h"
#include "testing_task_manager_gateway.h"
#include "two_vertex_job.h"

namespace sluice {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

class DispatcherRescaleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (std::filesystem::temp_directory_path() / NewInstanceId("dispatcher-rescale-test"))
               .string();
    ASSERT_TRUE(conf_.Set("state.checkpoints.dir", dir_ + "/checkpoints").ok());
  }
  void TearDown() override {
    dispatcher_.reset();
    std::filesystem::remove_all(dir_);
  }

  void Start(AdaptiveSchedulerSettings scheduler = {}) {
    Dispatcher::Options o;
    o.jm_id = "jm-test";
    o.start_threads = false;
    o.scheduler = scheduler;
    auto blobs = BlobStore::Create(dir_ + "/blobs");
    ASSERT_TRUE(blobs.ok());
    dispatcher_ = std::make_unique<Dispatcher>(conf_, o, std::move(*blobs), gateways_.factory());
    auto sha = dispatcher_->UploadLibrary(std::string("\x7f") + "ELF job");
    ASSERT_TRUE(sha.ok());
    sha_ = *sha;
  }
  static AdaptiveSchedulerSettings Adaptive(std::chrono::milliseconds stabilization = 0ms) {
    AdaptiveSchedulerSettings s;
    s.type = SchedulerType::kAdaptive;
    s.stabilization_timeout = stabilization;
    return s;
  }

  void Register(const std::string& tm, int slots) {
    proto::RegisterTaskManagerRequest r;
    r.set_tm_id(tm);
    r.set_address(tm + ":1");
    r.set_num_slots(slots);
    ASSERT_TRUE(dispatcher_->RegisterTaskManager(r).ok());
  }

  // Source (p) --hash (or forward)--> Sink (p), checkpointed unless `checkpointing` is false.
  proto::SubmitJobRequest Job(int p, bool checkpointing = true,
                              proto::Partitioner edge = proto::PARTITIONER_HASH) {
    proto::SubmitJobRequest req = TwoVertexJob(sha_, p, edge);
    if (checkpointing) (*req.mutable_config())["execution.checkpointing.interval"] = "1 ms";
    (*req.mutable_config())["restart-strategy.type"] = "fixed-delay";
    (*req.mutable_config())["restart-strategy.fixed-delay.attempts"] = "10";
    (*req.mutable_config())["restart-strategy.fixed-delay.delay"] = "0 ms";
    return req;
  }

  proto::JobStatus Status(const std::string& id) {
    auto job = dispatcher_->GetJob(id);
    EXPECT_TRUE(job.ok()) << job.status();
    return job.ok() ? *job : proto::JobStatus();
  }
  std::vector<int> Parallelism(const std::string& id) {
    std::vector<int> p;
    const proto::JobStatus st = Status(id);
    for (const auto& v : st.graph().vertices()) p.push_back(v.parallelism());
    return p;
  }
  // Reports every task of the job's current attempt in `state`.
  void ReportAll(const std::string& id, proto::TaskState state) {
    const proto::JobStatus st = Status(id);
    for (const auto& t : st.tasks()) {
      if (t.state() == state) continue;
      proto::TaskStateUpdate u;
      u.mutable_task()->set_job_id(id);
      u.mutable_task()->set_vertex_id(t.vertex_id());
      u.mutable_task()->set_subtask(t.subtask());
      u.mutable_task()->set_attempt(t.attempt());
      u.set_state(state);
      u.set_tm_id(t.tm_id());
      ASSERT_TRUE(dispatcher_->UpdateTaskState(u).ok());
    }
  }
  // Triggers a checkpoint of the running job, acknowledges it from every task and completes it.
  void CompleteCheckpoint(const std::string& id) {
    std::this_thread::sleep_for(5ms);
    dispatcher_->RunCoordinatorOnce();
    const proto::JobStatus st = Status(id);
    const int64_t checkpoint = st.last_checkpoint_id() + 1;
    for (const auto& t : st.tasks()) {
      proto::AcknowledgeCheckpointRequest a;
      a.mutable_task()->set_job_id(id);
      a.mutable_task()->set_vertex_id(t.vertex_id());
      a.mutable_task()->set_subtask(t.subtask());
      a.mutable_task()->set_attempt(t.attempt());
      a.set_checkpoint_id(checkpoint);
      auto* h = a.add_handles();
      h->set_vertex_id(t.vertex_id());
      h->set_subtask(t.subtask());
      h->set_file("chk-" + std::to_string(checkpoint) + "/v" + std::to_string(t.vertex_id()) +
                  "-s" + std::to_string(t.subtask()));
      ASSERT_TRUE(dispatcher_->AcknowledgeCheckpoint(a).ok());
    }
    dispatcher_->RunCoordinatorOnce();
    ASSERT_EQ(Status(id).last_checkpoint_id(), checkpoint);
  }
  // All deployment descriptors the TaskManagers got, oldest first.
  std::vector<proto::TaskDeploymentDescriptor> Deployed(std::vector<std::string> tms) {
    std::vector<proto::TaskDeploymentDescriptor> out;
    for (const auto& tm : tms) {
      auto d = gateways_.at(tm + ":1").deployed();
      out.insert(out.end(), d.begin(), d.end());
    }
    return out;
  }

  std::string dir_;
  Configuration conf_;
  TestingTaskManagerGateways gateways_;
  std::unique_ptr<Dispatcher> dispatcher_;
  std::string sha_;
};

TEST_F(DispatcherRescaleTest, RedeploysAtTheNewParallelismFromTheLatestCheckpoint) {
  Start();
  Register("tm-a", 2);
  Register("tm-b", 2);
  auto id = dispatcher_->SubmitJob(Job(1));
  ASSERT_TRUE(id.ok()) << id.status();
  ReportAll(*id, proto::TASK_RUNNING);
  CompleteCheckpoint(*id);

  auto trigger = dispatcher_->RescaleJob(*id, {{0, 2}, {1, 3}}, "test");
  ASSERT_TRUE(trigger.ok()) << trigger.status();
  EXPECT_EQ(Status(*id).state(), proto::JOB_RESTARTING);
  EXPECT_EQ(dispatcher_->GetRescaleStatus(*id, *trigger)->state(), "IN_PROGRESS");
  // The slots a rescale up needs are held for it.
  EXPECT_EQ(dispatcher_->GetOverview().free_slots(), 1);
  EXPECT_EQ(dispatcher_->RescaleJob(*id, {{0, 1}}, "again").status().code(),
            absl::StatusCode::kFailedPrecondition);

  ReportAll(*id, proto::TASK_CANCELED);
  dispatcher_->RunCoordinatorOnce();
  proto::JobStatus st = Status(*id);
  EXPECT_EQ(st.state(), proto::JOB_RUNNING);
  EXPECT_EQ(Parallelism(*id), (std::vector<int>{2, 3}));
  EXPECT_EQ(st.parallelism(), 3);
  EXPECT_EQ(st.tasks_size(), 5);
  EXPECT_EQ(st.restarts(), 0) << "a rescale is not a failure";
  EXPECT_EQ(st.rescales(), 1);
  EXPECT_EQ(dispatcher_->GetOverview().free_slots(), 1);
  // Attempt 1 at the new parallelism restores checkpoint 1, taken at parallelism 1.
  auto deployed = Deployed({"tm-a", "tm-b"});
  int new_attempt = 0;
  for (const auto& tdd : deployed) {
    if (tdd.task().attempt() != 1) continue;
    ++new_attempt;
    EXPECT_EQ(tdd.restore_checkpoint_id(), 1);
    ASSERT_EQ(tdd.restore_groups_size(), 1);
    EXPECT_EQ(tdd.restore_groups(0).vertex_id(), tdd.task().vertex_id());
    EXPECT_EQ(tdd.restore_groups(0).parallelism(), 1);
    EXPECT_EQ(tdd.graph().vertices(tdd.task().vertex_id()).parallelism(),
              tdd.task().vertex_id() == 0 ? 2 : 3);
  }
  EXPECT_EQ(new_attempt, 5);
  // Complete once every new task runs; the requirements follow the new parallelism.
  EXPECT_EQ(dispatcher_->GetRescaleStatus(*id, *trigger)->state(), "IN_PROGRESS");
  ReportAll(*id, proto::TASK_RUNNING);
  auto done = dispatcher_->GetRescaleStatus(*id, *trigger);
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(done->state(), "COMPLETED");
  EXPECT_EQ(done->to_parallelism().at(1), 3);
  EXPECT_EQ(done->from_parallelism().at(1), 1);
  EXPECT_EQ(dispatcher_->GetResourceRequirements(*id)->at(1), (ParallelismBounds{1, 3}));

  // Down again, through the whole-job call.
  CompleteCheckpoint(*id);
  ASSERT_TRUE(dispatcher_->RescaleWholeJob(*id, 1, "down").ok());
  ReportAll(*id, proto::TASK_CANCELED);
  dispatcher_->RunCoordinatorOnce();
  EXPECT_EQ(Parallelism(*id), (std::vector<int>{1, 1}));
  EXPECT_EQ(dispatcher_->GetOverview().free_slots(), 3);
  EXPECT_EQ(Status(*id).rescales(), 2);
}

TEST_F(DispatcherRescaleTest, RefusesWhatCannotBeRescaledByName) {
  Start();
  Register("tm-a", 4);
  auto forward = dispatcher_->SubmitJob(Job(2, true, proto::PARTITIONER_FORWARD));
  auto plain = dispatcher_->SubmitJob(Job(1, /*checkpointing=*/false));
  ASSERT_TRUE(forward.ok() && plain.ok());
  EXPECT_EQ(dispatcher_->RescaleJob(*forward, {{0, 3}}, "").status().code(),
            absl::StatusCode::kFailedPrecondition)
      << "its tasks are still DEPLOYING";
  ReportAll(*forward, proto::TASK_RUNNING);
  ReportAll(*plain, proto::TASK_RUNNING);

  auto error = [&](const std::string& id, std::map<int, int> p) {
    auto r = dispatcher_->RescaleJob(id, p, "");
    EXPECT_FALSE(r.ok());
    return r.status();
  };
  absl::Status s = error(*forward, {{0, 1}});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("the forward edge from 'Source' (parallelism 1) to 'Sink' "
                                     "(parallelism 2) needs equal parallelism"));
  EXPECT_THAT(error(*forward, {{2, 1}}).message(),
              HasSubstr("has no vertex 2 (its vertices are 0 to 1)"));
  EXPECT_THAT(error(*forward, {{0, 17}, {1, 17}}).message(),
              HasSubstr("parallelism 17 of vertex 0 'Source' is above its max parallelism 16"));
  s = error(*forward, {{0, 4}, {1, 4}});
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(s.message(), HasSubstr("needs 4 task slots at the new parallelism but only 3 are "
                                     "available to it (2 it holds and 1 free, of 4"));
  s = error(*plain, {{0, 2}, {1, 2}});
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("has no checkpointing"));
  EXPECT_EQ(error("nope", {{0, 1}}).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(dispatcher_->GetRescaleStatus(*forward, "nope").status().code(),
            absl::StatusCode::kNotFound);

  // Both ends of the forward edge together work; to the same parallelism: done at once.
  auto same = dispatcher_->RescaleJob(*forward, {{0, 2}, {1, 2}}, "");
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(dispatcher_->GetRescaleStatus(*forward, *same)->state(), "COMPLETED");
  EXPECT_EQ(Status(*forward).state(), proto::JOB_RUNNING);
  ASSERT_TRUE(dispatcher_->CancelJob(*forward).ok());
  ReportAll(*forward, proto::TASK_CANCELED);
  EXPECT_THAT(error(*forward, {{0, 1}, {1, 1}}).message(),
              HasSubstr("is CANCELED: only a RUNNING job can be rescaled"));
}

TEST_F(DispatcherRescaleTest, NewResourceRequirementsRescaleTheDefaultSchedulerToTheUpperBounds) {
  Start();
  Register("tm-a", 4);
  auto id = dispatcher_->SubmitJob(Job(1));
  ASSERT_TRUE(id.ok());
  ReportAll(*id, proto::TASK_RUNNING);
  ResourceRequirements r = {{1, 2}, {1, 4}};
  ASSERT_TRUE(dispatcher_->SetResourceRequirements(*id, r).ok());
  ReportAll(*id, proto::TASK_CANCELED);
  dispatcher_->RunCoordinatorOnce();
  EXPECT_EQ(Parallelism(*id), (std::vector<int>{2, 4}));
  EXPECT_EQ(*dispatcher_->GetResourceRequirements(*id), r);
  ReportAll(*id, proto::TASK_RUNNING);
  EXPECT_EQ(dispatcher_->SetResourceRequirements(*id, {{1, 8}, {1, 8}}).code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(dispatcher_->SetResourceRequirements(*id, {{1, 2}}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(*dispatcher_->GetResourceRequirements(*id), r) << "unchanged by refused ones";
}

TEST_F(DispatcherRescaleTest, AdaptiveJobWaitsInCreatedAndRunsWhenSlotsAppear) {
  Start(Adaptive(/*stabilization=*/1h));
  auto id = dispatcher_->SubmitJob(Job(2));
  ASSERT_TRUE(id.ok()) << "no slot at all is no refusal: " << id.status();
  proto::JobStatus st = Status(*id);
  EXPECT_EQ(st.state(), proto::JOB_CREATED);
  EXPECT_THAT(st.waiting_for_resources(), HasSubstr("1 task slot (0 of 0 free"));
  EXPECT_EQ(st.tasks_size(), 0);
  dispatcher_->RunMonitorOnce();
  dispatcher_->RunCoordinatorOnce();
  EXPECT_EQ(Status(*id).state(), proto::JOB_CREATED);
  // One slot allows parallelism 1, but it waits the stabilization timeout for more.
  Register("tm-a", 1);
  dispatcher_->RunCoordinatorOnce();
  st = Status(*id);
  EXPECT_EQ(st.state(), proto::JOB_CREATED);
  EXPECT_THAT(st.waiting_for_resources(), HasSubstr("2 task slots for its full parallelism"));
  // Enough for its configured parallelism: it runs at once.
  Register("tm-b", 1);
  dispatcher_->RunCoordinatorOnce();
  st = Status(*id);
  EXPECT_EQ(st.state(), proto::JOB_RUNNING);
  EXPECT_EQ(Parallelism(*id), (std::vector<int>{2, 2}));
  EXPECT_EQ(st.tasks(0).attempt(), 0);
  EXPECT_TRUE(st.waiting_for_resources().empty());
}

TEST_F(DispatcherRescaleTest, AdaptiveJobStartsLowScalesUpAndDownWithTheSlots) {
  Start(Adaptive());
  Register("tm-a", 1);
  auto id = dispatcher_->SubmitJob(Job(2));
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(Status(*id).state(), proto::JOB_RUNNING);
  EXPECT_EQ(Parallelism(*id), (std::vector<int>{1, 1}));
  ReportAll(*id, proto::TASK_RUNNING);
  CompleteCheckpoint(*id);

  // A second TaskManager: the job scales up to its configured parallelism.
  Register("tm-b", 1);
  dispatcher_->RunCoordinatorOnce();
  EXPECT_EQ(Status(*id).state(), proto::JOB_RESTARTING);
  ReportAll(*id, proto::TASK_CANCELED);
  dispatcher_->RunCoordinatorOnce();
  EXPECT_EQ(Parallelism(*id), (std::vector<int>{2, 2}));
  EXPECT_EQ(Status(*id).rescales(), 1);
  ReportAll(*id, proto::TASK_RUNNING);
  CompleteCheckpoint(*id);

  // tm-b is lost: the job restarts at what tm-a holds instead of failing.
  gateways_.at("tm-b:1").set_alive(false);
  dispatcher_->DisconnectTaskManager("tm-b");
  EXPECT_EQ(Status(*id).state(), proto::JOB_RESTARTING);
  ReportAll(*id, proto::TASK_CANCELED);
  dispatcher_->RunCoordinatorOnce();
  proto::JobStatus st = Status(*id);
  EXPECT_EQ(st.state(), proto::JOB_RUNNING);
  EXPECT_EQ(Parallelism(*id), (std::vector<int>{1, 1}));
  EXPECT_EQ(st.restarts(), 1);

  // tm-a goes too: nothing is left, so the job waits (CREATED) instead of failing.
  ReportAll(*id, proto::TASK_RUNNING);
  dispatcher_->DisconnectTaskManager("tm-a");
  ReportAll(*id, proto::TASK_CANCELED);
  dispatcher_->RunCoordinatorOnce();
  st = Status(*id);
  EXPECT_EQ(st.state(), proto::JOB_CREATED);
  EXPECT_EQ(st.restarts(), 2);
  Register("tm-c", 2);
  dispatcher_->RunCoordinatorOnce();
  EXPECT_EQ(Status(*id).state(), proto::JOB_RUNNING);
  EXPECT_EQ(Parallelism(*id), (std::vector<int>{2, 2}));
}

TEST_F(DispatcherRescaleTest, AdaptiveRestartAfterAFailureTakesTheSlotsThatAppeared) {
  AdaptiveSchedulerSettings s = Adaptive(/*stabilization=*/1h);
  s.resource_wait_timeout = 0ms;  // with enough for its lower bounds it starts at once
  Start(s);
  Register("tm-a", 1);
  auto id = dispatcher_->SubmitJob(Job(2));
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(Parallelism(*id), (std::vector<int>{1, 1}));
  ReportAll(*id, proto::TASK_RUNNING);
  Register("tm-b", 1);
  dispatcher_->RunCoordinatorOnce();
  EXPECT_EQ(Status(*id).state(), proto::JOB_RUNNING) << "no scale-up within the stabilization";
  // A task fails: the restart takes both slots.
  proto::TaskStateUpdate u;
  u.mutable_task()->set_job_id(*id);
  u.mutable_task()->set_vertex_id(1);
  u.set_state(proto::TASK_FAILED);
  u.set_tm_id("tm-a");
  u.set_failure("boom");
  ASSERT_TRUE(dispatcher_->UpdateTaskState(u).ok());
  ReportAll(*id, proto::TASK_CANCELED);
  dispatcher_->RunCoordinatorOnce();
  proto::JobStatus st = Status(*id);
  EXPECT_EQ(st.state(), proto::JOB_RUNNING);
  EXPECT_EQ(Parallelism(*id), (std::vector<int>{2, 2}));
  EXPECT_EQ(st.restarts(), 1);
  EXPECT_EQ(st.rescales(), 0);
}

TEST_F(DispatcherRescaleTest, AdaptiveJobFailsWhenTheWaitTimesOut) {
  AdaptiveSchedulerSettings s = Adaptive();
  s.resource_wait_timeout = 0ms;
  Start(s);
  auto id = dispatcher_->SubmitJob(Job(2));
  ASSERT_TRUE(id.ok());
  proto::JobStatus st = Status(*id);
  EXPECT_EQ(st.state(), proto::JOB_FAILED);
  EXPECT_THAT(st.failure(),
              HasSubstr("could not get the 1 task slot its lowest parallelism needs within 0 ms "
                        "(jobmanager.adaptive-scheduler.resource-wait-timeout)"));
}

TEST_F(DispatcherRescaleTest, ReactiveJobTakesEverySlotAndNoScaleUpWithoutCheckpointing) {
  AdaptiveSchedulerSettings s = Adaptive();
  s.type = SchedulerType::kReactive;
  Start(s);
  Register("tm-a", 3);
  auto id = dispatcher_->SubmitJob(Job(1, /*checkpointing=*/false));
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(Parallelism(*id), (std::vector<int>{3, 3})) << "configured parallelism is ignored";
  EXPECT_EQ(*dispatcher_->GetResourceRequirements(*id), (ResourceRequirements{{1, 16}, {1, 16}}));
  ReportAll(*id, proto::TASK_RUNNING);
  Register("tm-b", 1);
  dispatcher_->RunCoordinatorOnce();
  EXPECT_EQ(Status(*id).state(), proto::JOB_RUNNING) << "its state would be lost";
  EXPECT_EQ(Parallelism(*id), (std::vector<int>{3, 3}));
  EXPECT_EQ(dispatcher_->GetOverview().scheduler(), "reactive");
}

}  // namespace
}  // namespace sluice
