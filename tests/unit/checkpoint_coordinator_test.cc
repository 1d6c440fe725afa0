#include "jobmanager/checkpoint_coordinator.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/checkpoint_storage.h"
#include "common/ids.h"
#include "jobmanager/savepoints.h"

namespace sluice {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;
using Clock = CheckpointCoordinator::Clock;
using Millis = std::chrono::milliseconds;
using TaskView = CheckpointCoordinator::TaskView;

// A source (vertex 0, one subtask on tm-a) and a sink (vertex 1, two subtasks on tm-a, tm-b).
class CheckpointCoordinatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = (std::filesystem::temp_directory_path() / NewInstanceId("coordinator-test")).string();
    graph_.set_name("job");
    graph_.set_max_parallelism(16);
    for (int v = 0; v < 2; ++v) {
      auto* vx = graph_.add_vertices();
      vx->set_id(v);
      vx->set_parallelism(v + 1);
      vx->add_node_ids(v);
      vx->set_is_source(v == 0);
    }
    tasks_ = {{{0, 0}, true, proto::TASK_RUNNING, "tm-a"},
              {{1, 0}, false, proto::TASK_RUNNING, "tm-a"},
              {{1, 1}, false, proto::TASK_RUNNING, "tm-b"}};
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  std::unique_ptr<CheckpointCoordinator> Make(int64_t tolerable = 0, size_t retained = 1) {
    CheckpointSettings s;
    s.interval = Millis(100);
    s.timeout = Millis(1000);
    s.tolerable_failures = tolerable;
    s.num_retained = retained;
    s.root = root_;
    s.job_dir = root_ + "/j1";
    return std::make_unique<CheckpointCoordinator>(
        "j1", s, std::make_unique<StandaloneCompletedCheckpointStore>(retained),
        std::make_unique<StandaloneCheckpointIdCounter>(), t0_);
  }

  proto::AcknowledgeCheckpointRequest Ack(int64_t id, int vertex, int subtask,
                                          std::vector<std::string> shared = {}) {
    proto::AcknowledgeCheckpointRequest a;
    a.set_checkpoint_id(id);
    a.mutable_task()->set_vertex_id(vertex);
    a.mutable_task()->set_subtask(subtask);
    auto* h = a.add_handles();
    h->set_vertex_id(vertex);
    h->set_subtask(subtask);
    h->set_file("chk-" + std::to_string(id) + "/v" + std::to_string(vertex) + "-s" +
                std::to_string(subtask));
    for (auto& f : shared) h->add_shared_files(f);
    return a;
  }

  // Triggers, acknowledges every task, writes and completes checkpoint at `t`.
  CheckpointCoordinator::WriteOutcome CompleteOne(CheckpointCoordinator& cc, Clock::time_point t,
                                                  std::vector<std::string> shared = {}) {
    auto trigger = cc.MaybeTrigger(tasks_, t);
    EXPECT_TRUE(trigger);
    if (!trigger) return {};
    for (const auto& task : tasks_)
      EXPECT_TRUE(cc.Acknowledge(Ack(trigger->id, task.key.first, task.key.second, shared)));
    auto ready = cc.TakeAcknowledged(graph_);
    EXPECT_TRUE(ready);
    EXPECT_TRUE(CheckpointCoordinator::WriteMetadataFile(*ready).ok());
    return cc.OnMetadataWritten(ready->metadata, absl::OkStatus(), t);
  }

  void Touch(const std::string& rel) {
    std::filesystem::create_directories(std::filesystem::path(root_ + "/j1/" + rel).parent_path());
    std::ofstream(root_ + "/j1/" + rel) << "x";
  }

  std::string root_;
  proto::JobGraph graph_;
  std::vector<TaskView> tasks_;
  Clock::time_point t0_ = Clock::now();
};

TEST_F(CheckpointCoordinatorTest, TriggersAtTheIntervalOnlyWhenEveryTaskRuns) {
  auto cc = Make();
  EXPECT_FALSE(cc->MaybeTrigger(tasks_, t0_ + Millis(50))) << "before the interval";
  auto deploying = tasks_;
  deploying[2].state = proto::TASK_DEPLOYING;
  EXPECT_FALSE(cc->MaybeTrigger(deploying, t0_ + Millis(150)));
  auto trigger = cc->MaybeTrigger(tasks_, t0_ + Millis(150));
  ASSERT_TRUE(trigger);
  EXPECT_EQ(trigger->id, 1);
  EXPECT_THAT(trigger->task_managers, ElementsAre("tm-a")) << "only the sources' TaskManagers";
  EXPECT_FALSE(cc->MaybeTrigger(tasks_, t0_ + Millis(400))) << "one at a time";
}

TEST_F(CheckpointCoordinatorTest, CompletesWhenEveryTaskAcknowledgedAndWritesMetadata) {
  auto cc = Make();
  auto trigger = cc->MaybeTrigger(tasks_, t0_ + Millis(150));
  ASSERT_TRUE(trigger);
  EXPECT_TRUE(cc->Acknowledge(Ack(1, 0, 0)));
  EXPECT_FALSE(cc->Acknowledge(Ack(1, 0, 0))) << "twice";
  EXPECT_FALSE(cc->Acknowledge(Ack(9, 1, 0))) << "not pending";
  EXPECT_FALSE(cc->TakeAcknowledged(graph_));
  EXPECT_TRUE(cc->Acknowledge(Ack(1, 1, 0)));
  EXPECT_TRUE(cc->Acknowledge(Ack(1, 1, 1)));
  auto ready = cc->TakeAcknowledged(graph_);
  ASSERT_TRUE(ready);
  EXPECT_TRUE(cc->writing());
  EXPECT_FALSE(cc->AbortPending("the job failed", false, t0_))
      << "a checkpoint being written is not aborted";
  EXPECT_EQ(ready->dir, root_ + "/j1/chk-1");
  EXPECT_EQ(ready->metadata.handles_size(), 3);
  EXPECT_THAT(ready->metadata.vertex_parallelism(), ElementsAre(1, 2));
  ASSERT_TRUE(CheckpointCoordinator::WriteMetadataFile(*ready).ok());
  EXPECT_TRUE(std::filesystem::exists(ready->dir + "/_metadata"));
  auto outcome = cc->OnMetadataWritten(ready->metadata, absl::OkStatus(), t0_ + Millis(160));
  EXPECT_TRUE(outcome.completed);
  EXPECT_EQ(cc->completed_count(), 1);
  ASSERT_NE(cc->latest(), nullptr);
  EXPECT_EQ(cc->latest()->checkpoint_id(), 1);
  EXPECT_EQ(cc->LatestPath(), root_ + "/j1/chk-1");
  std::string dir;
  EXPECT_EQ(cc->RestoreSource(&dir), cc->latest());
  EXPECT_EQ(dir, root_ + "/j1");
}

TEST_F(CheckpointCoordinatorTest, ExpiresAndFailsTheJobPastTheTolerableFailures) {
  auto cc = Make(/*tolerable=*/1);
  ASSERT_TRUE(cc->MaybeTrigger(tasks_, t0_ + Millis(150)));
  EXPECT_FALSE(cc->ExpireOverdue(t0_ + Millis(900)));
  auto first = cc->ExpireOverdue(t0_ + Millis(1200));
  ASSERT_TRUE(first);
  EXPECT_FALSE(first->job_failure) << "one failure is tolerated";
  EXPECT_EQ(first->dir, root_ + "/j1/chk-1");
  ASSERT_TRUE(cc->MaybeTrigger(tasks_, t0_ + Millis(1400)));
  auto second = cc->AbortPending("declined", /*count_failure=*/true, t0_ + Millis(1500));
  ASSERT_TRUE(second);
  ASSERT_TRUE(second->job_failure);
  EXPECT_THAT(*second->job_failure,
              HasSubstr("checkpoint 2 failed (declined) and 2 consecutive checkpoint failures"));
  EXPECT_EQ(cc->failed_count(), 2);
}

TEST_F(CheckpointCoordinatorTest, AFailedMetadataWriteCountsAsAFailedCheckpoint) {
  auto cc = Make(/*tolerable=*/5);
  auto trigger = cc->MaybeTrigger(tasks_, t0_ + Millis(150));
  for (const auto& task : tasks_)
    cc->Acknowledge(Ack(trigger->id, task.key.first, task.key.second));
  auto ready = cc->TakeAcknowledged(graph_);
  auto outcome =
      cc->OnMetadataWritten(ready->metadata, absl::DataLossError("disk gone"), t0_ + Millis(160));
  EXPECT_FALSE(outcome.completed);
  ASSERT_TRUE(outcome.aborted);
  EXPECT_EQ(cc->failed_count(), 1);
  EXPECT_EQ(cc->latest(), nullptr);
  EXPECT_TRUE(cc->OnMetadataWritten(ready->metadata, absl::OkStatus(), t0_).stale)
      << "no longer pending";
}

TEST_F(CheckpointCoordinatorTest, AWriteNamesAMissingSharedFile) {
  auto cc = Make();
  auto trigger = cc->MaybeTrigger(tasks_, t0_ + Millis(150));
  for (const auto& task : tasks_)
    cc->Acknowledge(Ack(trigger->id, task.key.first, task.key.second, {"shared/x.sst"}));
  auto ready = cc->TakeAcknowledged(graph_);
  absl::Status st = CheckpointCoordinator::WriteMetadataFile(*ready);
  EXPECT_EQ(st.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(st.message(), HasSubstr("shared/x.sst"));
}

TEST_F(CheckpointCoordinatorTest, RetainsTheNewestAndRemovesSharedFilesAfterAGraceCheckpoint) {
  auto cc = Make(/*tolerable=*/0, /*retained=*/1);
  Touch("shared/old.sst");
  Touch("shared/new.sst");
  auto first = CompleteOne(*cc, t0_ + Millis(150), {"shared/old.sst"});
  ASSERT_TRUE(first.completed);
  auto second = CompleteOne(*cc, t0_ + Millis(300), {"shared/new.sst"});
  ASSERT_TRUE(second.completed);
  EXPECT_TRUE(second.shared_to_remove.empty()) << "old.sst gets one checkpoint of grace";
  EXPECT_THAT(second.keep, UnorderedElementsAre("chk-2"));
  CheckpointCoordinator::DiscardSubsumed(root_ + "/j1", 2, second);
  EXPECT_FALSE(std::filesystem::exists(root_ + "/j1/chk-1"));
  EXPECT_TRUE(std::filesystem::exists(root_ + "/j1/chk-2"));
  auto third = CompleteOne(*cc, t0_ + Millis(450), {"shared/new.sst"});
  EXPECT_THAT(third.shared_to_remove, ElementsAre("shared/old.sst"));
  CheckpointCoordinator::DiscardSubsumed(root_ + "/j1", 3, third);
  EXPECT_FALSE(std::filesystem::exists(root_ + "/j1/shared/old.sst"));
  EXPECT_TRUE(std::filesystem::exists(root_ + "/j1/shared/new.sst"));
}

TEST_F(CheckpointCoordinatorTest, AnAbortRemovesOnlyTheSharedFilesStoredForIt) {
  auto cc = Make(/*tolerable=*/3);
  Touch("shared/kept.sst");
  ASSERT_TRUE(CompleteOne(*cc, t0_ + Millis(150), {"shared/kept.sst"}).completed);
  auto trigger = cc->MaybeTrigger(tasks_, t0_ + Millis(300));
  ASSERT_TRUE(trigger);
  EXPECT_TRUE(cc->Acknowledge(Ack(trigger->id, 0, 0, {"shared/kept.sst", "shared/own.sst"})));
  auto aborted = cc->AbortPending("declined", true, t0_ + Millis(310));
  ASSERT_TRUE(aborted);
  EXPECT_THAT(aborted->shared_files, ElementsAre("shared/own.sst"));
}

TEST_F(CheckpointCoordinatorTest,
       AFinishedTaskCarriesItsLastStateForwardAndTheFinalCheckpointComesAtOnce) {
  auto cc = Make();
  ASSERT_TRUE(CompleteOne(*cc, t0_ + Millis(150)).completed);
  // The source emitted everything: the final checkpoint is due without waiting for the interval.
  cc->OnEndOfData({0, 0});
  auto trigger = cc->MaybeTrigger(tasks_, t0_ + Millis(160));
  ASSERT_TRUE(trigger);
  EXPECT_TRUE(cc->OnTaskFinished({1, 1}));
  EXPECT_TRUE(cc->Acknowledge(Ack(trigger->id, 0, 0)));
  EXPECT_TRUE(cc->Acknowledge(Ack(trigger->id, 1, 0)));
  auto ready = cc->TakeAcknowledged(graph_);
  ASSERT_TRUE(ready);
  std::vector<std::string> files;
  for (const auto& h : ready->metadata.handles()) files.push_back(h.file());
  EXPECT_THAT(files, UnorderedElementsAre("chk-2/v0-s0", "chk-2/v1-s0", "chk-1/v1-s1"));
  ASSERT_TRUE(
      cc->OnMetadataWritten(ready->metadata, absl::OkStatus(), t0_ + Millis(170)).completed);
  EXPECT_FALSE(cc->MaybeTrigger(tasks_, t0_ + Millis(175))) << "the final checkpoint comes once";
}

TEST_F(CheckpointCoordinatorTest, ARestoredJobNumbersOnFromItsCheckpoint) {
  auto cc = Make();
  proto::CheckpointMetadata restored;
  restored.set_checkpoint_id(41);
  ASSERT_TRUE(cc->SetRestoreFrom(restored, "/old/j0").ok());
  std::string dir;
  ASSERT_NE(cc->RestoreSource(&dir), nullptr);
  EXPECT_EQ(dir, "/old/j0");
  auto trigger = cc->MaybeTrigger(tasks_, t0_ + Millis(150));
  ASSERT_TRUE(trigger);
  EXPECT_EQ(trigger->id, 42);
}

TEST_F(CheckpointCoordinatorTest, LoadForRestoreNamesAGraphThatDoesNotFit) {
  auto cc = Make();
  auto done = CompleteOne(*cc, t0_ + Millis(150));
  ASSERT_TRUE(done.completed);
  proto::JobGraph other = graph_;
  other.mutable_vertices(1)->set_node_ids(0, 7);
  std::string dir;
  auto st = CheckpointCoordinator::LoadForRestore(root_ + "/j1/chk-1", other,
                                                  /*allow_non_restored_state=*/false, &dir);
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(st.status().message(), HasSubstr("does not fit job 'job'"));
}

CheckpointCoordinator::SavepointRequest Savepoint(const std::string& folder, bool stop = false,
                                                  bool drain = false) {
  CheckpointCoordinator::SavepointRequest r;
  r.request_id = "req-" + std::to_string(stop) + std::to_string(drain);
  r.folder = folder;
  r.stop = stop;
  r.drain = drain;
  return r;
}

TEST_F(CheckpointCoordinatorTest, SavepointStartsAtOnceMovesIntoItsFolderAndIsNotRetained) {
  auto cc = Make();
  CompleteOne(*cc, t0_ + Millis(150));
  const std::string folder = root_ + "/sp/savepoint-j1-1";
  ASSERT_TRUE(cc->RequestSavepoint(Savepoint(folder)).ok());
  EXPECT_THAT(cc->RequestSavepoint(Savepoint(folder)).message(), HasSubstr("under way"));
  // Regardless of the interval.
  auto trigger = cc->MaybeTrigger(tasks_, t0_ + Millis(151));
  ASSERT_TRUE(trigger);
  EXPECT_EQ(trigger->type, proto::CHECKPOINT_TYPE_SAVEPOINT);
  for (const auto& task : tasks_) {
    Touch("chk-2/v" + std::to_string(task.key.first) + "-s" + std::to_string(task.key.second));
    ASSERT_TRUE(cc->Acknowledge(Ack(trigger->id, task.key.first, task.key.second)));
  }
  auto ready = cc->TakeAcknowledged(graph_);
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->dir, folder);
  EXPECT_TRUE(ready->metadata.savepoint());
  ASSERT_TRUE(WriteSavepoint(*ready).ok());
  auto outcome = cc->OnMetadataWritten(ready->metadata, absl::OkStatus(), t0_ + Millis(160));
  EXPECT_TRUE(outcome.completed);
  EXPECT_FALSE(outcome.notify) << "an intermediate savepoint commits no side effects";
  EXPECT_EQ(cc->latest()->checkpoint_id(), 1) << "failover keeps restoring the checkpoints";
  auto result = cc->GetSavepoint("req-00");
  ASSERT_TRUE(result.ok());
  EXPECT_TRUE(result->done);
  EXPECT_EQ(result->location, folder);
  // The folder stands alone: its files, relative to it; the chk folder is gone.
  auto meta = ReadMetadata(folder);
  ASSERT_TRUE(meta.ok()) << meta.status();
  for (const auto& h : meta->handles()) {
    EXPECT_EQ(h.file().find('/'), std::string::npos);
    EXPECT_TRUE(std::filesystem::exists(folder + "/" + h.file()));
  }
  EXPECT_FALSE(std::filesystem::exists(root_ + "/j1/chk-2"));
  EXPECT_EQ(cc->stats().snapshot().latest_savepoint->external_path, folder);
  EXPECT_EQ(cc->stats().snapshot().latest_completed->id, 1);
  std::string dir;
  graph_.mutable_vertices(0)->set_parallelism(1);
  // Its files are read relative to its own folder (the stand-ins here are no state files).
  auto loaded = CheckpointCoordinator::LoadForRestore(folder + "/_metadata", graph_, false, &dir);
  EXPECT_EQ(dir, folder);
  EXPECT_THAT(loaded.status().message(), HasSubstr(folder + "/v0-s0"));
  // Disposal removes it, and refuses a checkpoint.
  EXPECT_THAT(DisposeSavepoint(root_ + "/j1/chk-1").message(), HasSubstr("not a savepoint"));
  EXPECT_TRUE(std::filesystem::exists(root_ + "/j1/chk-1/_metadata"));
  EXPECT_TRUE(DisposeSavepoint(folder).ok());
  EXPECT_FALSE(std::filesystem::exists(folder));
}

TEST_F(CheckpointCoordinatorTest, StopSavepointIsNotifiedAndAFailedOneDoesNotFailTheJob) {
  auto cc = Make(/*tolerable=*/0);
  ASSERT_TRUE(cc->RequestSavepoint(Savepoint(root_ + "/sp/a", /*stop=*/true)).ok());
  auto trigger = cc->MaybeTrigger(tasks_, t0_ + Millis(1));
  ASSERT_TRUE(trigger);
  EXPECT_EQ(trigger->type, proto::CHECKPOINT_TYPE_STOP_SAVEPOINT);
  auto aborted = cc->AbortPending("declined by a task", /*count_failure=*/true, t0_ + Millis(2));
  ASSERT_TRUE(aborted);
  EXPECT_FALSE(aborted->job_failure) << "a savepoint's failure is not the job's";
  EXPECT_EQ(cc->failed_count(), 0);
  auto result = cc->GetSavepoint("req-10");
  ASSERT_TRUE(result.ok());
  EXPECT_TRUE(result->done);
  EXPECT_EQ(result->failure, "declined by a task");

  // Again, completed this time: the tasks are told (they end).
  ASSERT_TRUE(cc->RequestSavepoint(Savepoint(root_ + "/sp/b", /*stop=*/true)).ok());
  trigger = cc->MaybeTrigger(tasks_, t0_ + Millis(3));
  ASSERT_TRUE(trigger);
  for (const auto& task : tasks_) {
    ASSERT_TRUE(cc->Acknowledge(Ack(trigger->id, task.key.first, task.key.second)));
  }
  auto ready = cc->TakeAcknowledged(graph_);
  ASSERT_TRUE(ready);
  auto outcome = cc->OnMetadataWritten(ready->metadata, absl::OkStatus(), t0_ + Millis(4));
  EXPECT_TRUE(outcome.notify);
  // The job is ending at the savepoint: no checkpoint after it, no other savepoint.
  EXPECT_TRUE(cc->stopped());
  EXPECT_FALSE(cc->MaybeTrigger(tasks_, t0_ + Millis(1000)));
  EXPECT_THAT(cc->RequestSavepoint(Savepoint(root_ + "/sp/c")).message(), HasSubstr("stopping"));
  EXPECT_EQ(cc->stopped_id(), trigger->id);
  // A restart (which the Dispatcher refuses for a stopped job) would start afresh.
  cc->OnRestart(t0_ + Millis(5));
  EXPECT_FALSE(cc->stopped());
}

TEST_F(CheckpointCoordinatorTest, DrainEndsTheSourcesFirstAndTheFinalCheckpointIsTheSavepoint) {
  auto cc = Make();
  ASSERT_TRUE(cc->RequestSavepoint(Savepoint(root_ + "/sp/d", true, /*drain=*/true)).ok());
  auto drain = cc->MaybeTrigger(tasks_, t0_ + Millis(1));
  ASSERT_TRUE(drain);
  EXPECT_EQ(drain->type, proto::CHECKPOINT_TYPE_DRAIN);
  EXPECT_EQ(drain->id, 0);
  EXPECT_THAT(drain->task_managers, ElementsAre("tm-a"));
  // No checkpoint, even past the interval, until the sources have ended.
  EXPECT_FALSE(cc->MaybeTrigger(tasks_, t0_ + Millis(500))) << "waits for the sources to end";
  cc->OnEndOfData({0, 0});
  auto trigger = cc->MaybeTrigger(tasks_, t0_ + Millis(501));
  ASSERT_TRUE(trigger);
  EXPECT_EQ(trigger->type, proto::CHECKPOINT_TYPE_SAVEPOINT);
  for (const auto& task : tasks_) {
    ASSERT_TRUE(cc->Acknowledge(Ack(trigger->id, task.key.first, task.key.second)));
  }
  auto ready = cc->TakeAcknowledged(graph_);
  ASSERT_TRUE(ready);
  EXPECT_TRUE(ready->metadata.savepoint());
  EXPECT_TRUE(cc->OnMetadataWritten(ready->metadata, absl::OkStatus(), t0_ + Millis(4)).notify);
}

TEST_F(CheckpointCoordinatorTest, SavepointRequestFailsWhenTheJobEndsOrRunsWithoutCheckpoints) {
  auto cc = Make();
  ASSERT_TRUE(cc->RequestSavepoint(Savepoint(root_ + "/sp/e")).ok());
  cc->OnRestart(t0_ + Millis(1));
  auto result = cc->GetSavepoint("req-00");
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->failure, "the job restarted");
  EXPECT_EQ(cc->GetSavepoint("nope").status().code(), absl::StatusCode::kNotFound);
  // A drain whose sources never end fails after execution.checkpointing.timeout (1 s here).
  ASSERT_TRUE(cc->RequestSavepoint(Savepoint(root_ + "/sp/g", true, true)).ok());
  ASSERT_TRUE(cc->MaybeTrigger(tasks_, Clock::now()));
  EXPECT_FALSE(cc->ExpireOverdue(Clock::now() + Millis(1500)));
  result = cc->GetSavepoint("req-11");
  ASSERT_TRUE(result.ok());
  EXPECT_THAT(result->failure, HasSubstr("the sources did not end their input"));

  CheckpointSettings off;
  off.root = root_;
  off.job_dir = root_ + "/j2";
  CheckpointCoordinator plain("j2", off, std::make_unique<StandaloneCompletedCheckpointStore>(1),
                              std::make_unique<StandaloneCheckpointIdCounter>(), t0_);
  EXPECT_THAT(plain.RequestSavepoint(Savepoint(root_ + "/sp/f")).message(),
              HasSubstr("without checkpointing"));
}

// A checkpoint of a graph with operator ids names them in its metadata; a job that lacks an
// operator with state is refused naming it, unless its state may be dropped; operators that moved
// to other vertices are found.
TEST_F(CheckpointCoordinatorTest, LoadForRestoreMatchesOperatorsByTheirIds) {
  for (int v = 0; v < 2; ++v) {
    graph_.mutable_vertices(v)->add_operator_ids(v == 0 ? "src" : "sink");
    graph_.mutable_vertices(v)->add_node_names(v == 0 ? "Source" : "Sink");
  }
  auto cc = Make();
  auto trigger = cc->MaybeTrigger(tasks_, t0_ + Millis(150));
  ASSERT_TRUE(trigger);
  std::filesystem::create_directories(root_ + "/j1/chk-1");
  for (const auto& task : tasks_) {
    proto::AcknowledgeCheckpointRequest a = Ack(trigger->id, task.key.first, task.key.second);
    internal::OperatorSnapshot s;
    s.node_id = task.key.first;
    s.lists["l"] = {"x"};
    ASSERT_TRUE(
        WriteStateFile(root_ + "/j1/" + a.handles(0).file(), {s}, a.mutable_handles(0)).ok());
    EXPECT_TRUE(cc->Acknowledge(a));
  }
  auto ready = cc->TakeAcknowledged(graph_);
  ASSERT_TRUE(ready);
  ASSERT_EQ(ready->metadata.vertex_operators_size(), 2);
  EXPECT_THAT(ready->metadata.vertex_operators(1).operator_ids(), ElementsAre("sink"));
  EXPECT_THAT(ready->metadata.vertex_operators(1).names(), ElementsAre("Sink"));
  ASSERT_TRUE(CheckpointCoordinator::WriteMetadataFile(*ready).ok());

  // The sink is gone: its state has nowhere to go.
  proto::JobGraph without_sink = graph_;
  without_sink.mutable_vertices(1)->set_operator_ids(0, "another-sink");
  std::string dir;
  auto refused =
      CheckpointCoordinator::LoadForRestore(root_ + "/j1/chk-1", without_sink, false, &dir);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.status().message(), HasSubstr("operator 'Sink' (id 'sink')"));
  EXPECT_TRUE(
      CheckpointCoordinator::LoadForRestore(root_ + "/j1/chk-1", without_sink, true, &dir).ok());

  // Source and sink chained into one vertex, under other node ids.
  proto::JobGraph chained = graph_;
  chained.mutable_vertices()->RemoveLast();
  auto* v0 = chained.mutable_vertices(0);
  v0->set_node_ids(0, 3);
  v0->add_node_ids(4);
  v0->add_operator_ids("sink");
  auto loaded = CheckpointCoordinator::LoadForRestore(root_ + "/j1/chk-1", chained, false, &dir);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(dir, root_ + "/j1");
}

}  // namespace
}  // namespace sluice
