// CheckpointStatsTracker on its own, with the times and sizes given, so every figure is exact;
// then as the CheckpointCoordinator feeds it (acknowledgements with their handles and
// durations, finished tasks, completion, failure), without daemons.
#include "jobmanager/checkpoint_stats.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "common/ids.h"
#include "jobmanager/checkpoint_coordinator.h"

namespace sluice {
namespace {

using Millis = std::chrono::milliseconds;

SubtaskCheckpointStats Sub(int64_t ack, int64_t checkpointed, int64_t state, int64_t alignment = 0,
                           int64_t sync = 0, int64_t async = 0, int64_t start_delay = 0) {
  SubtaskCheckpointStats s;
  s.ack_timestamp = ack;
  s.checkpointed_size = checkpointed;
  s.state_size = state;
  s.alignment_duration = alignment;
  s.sync_duration = sync;
  s.async_duration = async;
  s.start_delay = start_delay;
  return s;
}

// Vertex 0 with one subtask, vertex 1 with two.
const std::map<int, int> kShape = {{0, 1}, {1, 2}};

TEST(CheckpointStatsTest, APendingCheckpointSumsItsAcknowledgementsPerVertex) {
  CheckpointStatsTracker t(10);
  t.ReportPending(1, 1000, kShape);
  const auto& s = t.snapshot();
  EXPECT_EQ(s.counts.total, 1);
  EXPECT_EQ(s.counts.in_progress, 1);
  ASSERT_EQ(s.history.size(), 1u);
  const CheckpointStats& c = s.history[0];
  EXPECT_EQ(c.status, CheckpointStatus::kInProgress);
  EXPECT_STREQ(CheckpointStatusName(c.status), "IN_PROGRESS");
  EXPECT_EQ(c.num_subtasks(), 3);
  EXPECT_EQ(c.num_acknowledged(), 0);
  EXPECT_EQ(c.latest_ack_timestamp(), -1);
  EXPECT_EQ(c.end_to_end_duration(), -1);

  t.ReportAcknowledged(1, 0, 0, Sub(1010, 100, 100, 0, 2, 5, 3));
  t.ReportAcknowledged(1, 1, 0, Sub(1030, 200, 300, 7));
  t.ReportAcknowledged(1, 1, 0, Sub(1090, 999, 999, 99)) /* twice: the first stays */;
  t.ReportAcknowledged(1, 1, 5, Sub(1090, 999, 999)) /* no such subtask */;
  t.ReportAcknowledged(1, 7, 0, Sub(1090, 999, 999)) /* no such vertex */;
  t.ReportAcknowledged(2, 1, 1, Sub(1090, 999, 999)) /* no such checkpoint */;
  EXPECT_EQ(c.num_acknowledged(), 2);
  EXPECT_EQ(c.latest_ack_timestamp(), 1030);
  EXPECT_EQ(c.end_to_end_duration(), 30);
  EXPECT_EQ(c.checkpointed_size(), 300);
  EXPECT_EQ(c.state_size(), 400);
  EXPECT_EQ(c.alignment_duration(), 7);

  t.ReportAcknowledged(1, 1, 1, Sub(1025, 50, 60, 12));
  const TaskCheckpointStats& v1 = c.tasks.at(1);
  EXPECT_EQ(v1.num_acknowledged(), 2);
  EXPECT_EQ(v1.latest_ack_timestamp(), 1030);
  EXPECT_EQ(v1.checkpointed_size(), 250);
  EXPECT_EQ(v1.state_size(), 360);
  const SubtaskCheckpointStats& s00 = c.tasks.at(0).subtasks[0];
  EXPECT_TRUE(s00.acknowledged);
  EXPECT_EQ(s00.sync_duration, 2);
  EXPECT_EQ(s00.async_duration, 5);
  EXPECT_EQ(s00.start_delay, 3);
  EXPECT_EQ(c.checkpointed_size(), 350);
  EXPECT_EQ(c.state_size(), 460);
  EXPECT_EQ(c.alignment_duration(), 12);
  EXPECT_EQ(s.counts.completed, 0);
}

TEST(CheckpointStatsTest, CompletionCountsAndSummarisesAndKeepsTheLatest) {
  CheckpointStatsTracker t(10);
  // Three checkpoints: checkpointed 350, 100, 200; state 460, 150, 1000; durations 40, 10, 25;
  // longest alignments 12, 0, 4.
  t.ReportPending(1, 1000, kShape);
  t.ReportAcknowledged(1, 0, 0, Sub(1010, 100, 100));
  t.ReportAcknowledged(1, 1, 0, Sub(1030, 200, 300, 7));
  t.ReportAcknowledged(1, 1, 1, Sub(1025, 50, 60, 12));
  t.ReportCompleted(1, 1040, 40, "/c/j/chk-1");
  t.ReportPending(2, 2000, kShape);
  t.ReportAcknowledged(2, 0, 0, Sub(2005, 100, 150));
  t.ReportFinishedSubtask(2, 1, 0, 2000, 0);
  t.ReportFinishedSubtask(2, 1, 1, 2000, 0);
  t.ReportCompleted(2, 2010, 10, "/c/j/chk-2");
  t.ReportPending(3, 3000, kShape);
  t.ReportAcknowledged(3, 0, 0, Sub(3010, 100, 500, 4));
  t.ReportAcknowledged(3, 1, 0, Sub(3011, 60, 300));
  t.ReportAcknowledged(3, 1, 1, Sub(3012, 40, 200));
  t.ReportCompleted(3, 3025, 25, "/c/j/chk-3");

  const auto& s = t.snapshot();
  EXPECT_EQ(s.counts.total, 3);
  EXPECT_EQ(s.counts.completed, 3);
  EXPECT_EQ(s.counts.in_progress, 0);
  EXPECT_EQ(s.counts.failed, 0);
  const auto& sum = s.summary;
  EXPECT_EQ(sum.checkpointed_size.min, 100);
  EXPECT_EQ(sum.checkpointed_size.max, 350);
  EXPECT_EQ(sum.checkpointed_size.avg(), 216);  // 650 / 3
  EXPECT_EQ(sum.state_size.min, 150);
  EXPECT_EQ(sum.state_size.max, 1000);
  EXPECT_EQ(sum.state_size.avg(), 536);  // 1610 / 3
  EXPECT_EQ(sum.end_to_end_duration.min, 10);
  EXPECT_EQ(sum.end_to_end_duration.max, 40);
  EXPECT_EQ(sum.end_to_end_duration.avg(), 25);
  EXPECT_EQ(sum.alignment_duration.min, 0);
  EXPECT_EQ(sum.alignment_duration.max, 12);
  EXPECT_EQ(sum.alignment_duration.avg(), 5);  // 16 / 3

  ASSERT_EQ(s.history.size(), 3u);
  EXPECT_EQ(s.history[0].id, 3) << "newest first";
  EXPECT_EQ(s.history[2].id, 1);
  const CheckpointStats* two = s.Find(2);
  ASSERT_NE(two, nullptr);
  EXPECT_EQ(two->status, CheckpointStatus::kCompleted);
  EXPECT_EQ(two->end_to_end_duration(), 10) << "trigger to completion";
  EXPECT_EQ(two->checkpointed_size(), 100) << "finished subtasks stored nothing";
  EXPECT_TRUE(two->tasks.at(1).subtasks[1].finished);
  EXPECT_EQ(two->num_acknowledged(), 3);
  EXPECT_EQ(s.Find(4), nullptr);

  ASSERT_TRUE(s.latest_completed);
  EXPECT_EQ(s.latest_completed->id, 3);
  EXPECT_EQ(s.latest_completed->external_path, "/c/j/chk-3");
  EXPECT_EQ(s.latest_completed->completion_timestamp, 3025);
  EXPECT_EQ(t.latest_completed()->state_size(), 1000);
  EXPECT_FALSE(s.latest_failed);
  EXPECT_FALSE(s.latest_restored);

  // Subsumed checkpoints are marked discarded.
  t.ReportDiscarded(2);
  EXPECT_TRUE(s.Find(2)->discarded);
  EXPECT_FALSE(s.Find(3)->discarded);
}

TEST(CheckpointStatsTest, AFailedCheckpointKeepsItsMessageAndTakesNoMoreReports) {
  CheckpointStatsTracker t(10);
  t.ReportPending(4, 4000, kShape);
  t.ReportAcknowledged(4, 0, 0, Sub(4010, 100, 100));
  t.ReportFailed(4, 4500, "Sink (2/2) declined it: disk full");
  t.ReportAcknowledged(4, 1, 0, Sub(4600, 100, 100));
  t.ReportCompleted(4, 4700, 700, "/c/j/chk-4");
  t.ReportFailed(4, 4800, "again");
  const auto& s = t.snapshot();
  EXPECT_EQ(s.counts.total, 1);
  EXPECT_EQ(s.counts.failed, 1);
  EXPECT_EQ(s.counts.completed, 0);
  EXPECT_EQ(s.counts.in_progress, 0);
  EXPECT_EQ(s.summary.checkpointed_size.count, 0);
  EXPECT_EQ(s.summary.checkpointed_size.min, 0);
  EXPECT_EQ(s.summary.checkpointed_size.avg(), 0);
  ASSERT_TRUE(s.latest_failed);
  EXPECT_EQ(s.latest_failed->id, 4);
  EXPECT_EQ(s.latest_failed->failure_timestamp, 4500);
  EXPECT_EQ(s.latest_failed->failure_message, "Sink (2/2) declined it: disk full");
  EXPECT_EQ(s.latest_failed->num_acknowledged(), 1);
  EXPECT_EQ(s.latest_failed->end_to_end_duration(), 10) << "to its latest acknowledgement";
  EXPECT_STREQ(CheckpointStatusName(s.history[0].status), "FAILED");
  EXPECT_FALSE(s.latest_completed);
}

TEST(CheckpointStatsTest, TheHistoryKeepsTheNewestAndEveryCheckpointInProgress) {
  CheckpointStatsTracker t(3);
  for (int64_t id = 1; id <= 5; ++id) {
    t.ReportPending(id, id * 1000, {{0, 1}});
    t.ReportAcknowledged(id, 0, 0, Sub(id * 1000 + 5, id, id));
    t.ReportCompleted(id, id * 1000 + 9, 9, "/chk");
  }
  const auto& s = t.snapshot();
  ASSERT_EQ(s.history.size(), 3u);
  EXPECT_EQ(s.history[0].id, 5);
  EXPECT_EQ(s.history[1].id, 4);
  EXPECT_EQ(s.history[2].id, 3);
  EXPECT_EQ(s.Find(2), nullptr);
  EXPECT_EQ(s.counts.completed, 5);
  EXPECT_EQ(s.summary.checkpointed_size.min, 1) << "the summary covers every completed one";
  EXPECT_EQ(s.summary.checkpointed_size.max, 5);

  // A history of one: a checkpoint in progress is not dropped for a newer one, so it still
  // ends in the counts.
  CheckpointStatsTracker one(1);
  one.ReportPending(1, 1000, {{0, 1}});
  one.ReportPending(1, 1000, {{0, 1}}) /* reported twice: once */;
  one.ReportPending(2, 2000, {{0, 1}});
  ASSERT_EQ(one.snapshot().history.size(), 2u);
  EXPECT_EQ(one.snapshot().counts.in_progress, 2);
  EXPECT_EQ(one.snapshot().counts.total, 2);
  one.ReportFailed(1, 2500, "expired");
  EXPECT_EQ(one.snapshot().counts.in_progress, 1);
  EXPECT_EQ(one.snapshot().counts.failed, 1);
  ASSERT_EQ(one.snapshot().history.size(), 1u);
  EXPECT_EQ(one.snapshot().history[0].id, 2);
  EXPECT_EQ(one.snapshot().latest_failed->id, 1);
}

TEST(CheckpointStatsTest, RestoresAreCountedAndTheLatestKept) {
  CheckpointStatsTracker t(10);
  t.ReportRestored(7, 5000, "/c/old/chk-7");
  t.ReportRestored(9, 6000, "/c/j/chk-9");
  const auto& s = t.snapshot();
  EXPECT_EQ(s.counts.restored, 2);
  EXPECT_EQ(s.counts.total, 0) << "a restore is no checkpoint of this job";
  ASSERT_TRUE(s.latest_restored);
  EXPECT_EQ(s.latest_restored->id, 9);
  EXPECT_EQ(s.latest_restored->restore_timestamp, 6000);
  EXPECT_EQ(s.latest_restored->external_path, "/c/j/chk-9");
  EXPECT_FALSE(s.latest_restored->is_savepoint);
}

// ---- As the coordinator feeds it ----

class CoordinatorStatsTest : public ::testing::Test {
 protected:
  using Clock = CheckpointCoordinator::Clock;
  void SetUp() override {
    root_ = (std::filesystem::temp_directory_path() / NewInstanceId("stats-test")).string();
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
    CheckpointSettings s;
    s.interval = Millis(100);
    s.timeout = Millis(1000);
    s.tolerable_failures = 10;
    s.stats_history = 2;
    s.root = root_;
    s.job_dir = root_ + "/j1";
    cc_ = std::make_unique<CheckpointCoordinator>(
        "j1", s, std::make_unique<StandaloneCompletedCheckpointStore>(1),
        std::make_unique<StandaloneCheckpointIdCounter>(), t0_);
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  // An acknowledgement with one handle of the given sizes and durations in microseconds.
  proto::AcknowledgeCheckpointRequest Ack(int64_t id, int vertex, int subtask, int64_t stored,
                                          int64_t full, int64_t alignment_us = 0) {
    proto::AcknowledgeCheckpointRequest a;
    a.set_checkpoint_id(id);
    a.mutable_task()->set_vertex_id(vertex);
    a.mutable_task()->set_subtask(subtask);
    a.set_sync_duration_us(2500);
    a.set_async_duration_us(41999);
    a.set_alignment_duration_us(alignment_us);
    a.set_start_delay_ms(6);
    auto* h = a.add_handles();
    h->set_vertex_id(vertex);
    h->set_subtask(subtask);
    h->set_file("chk-" + std::to_string(id) + "/v" + std::to_string(vertex) + "-s" +
                std::to_string(subtask));
    h->set_checkpointed_size(stored);
    h->set_full_size(full);
    return a;
  }
  // Writes and completes the acknowledged checkpoint at `t`.
  void Complete(Clock::time_point t) {
    auto ready = cc_->TakeAcknowledged(graph_);
    ASSERT_TRUE(ready);
    ASSERT_TRUE(CheckpointCoordinator::WriteMetadataFile(*ready).ok());
    ASSERT_TRUE(cc_->OnMetadataWritten(ready->metadata, absl::OkStatus(), t).completed);
  }

  std::string root_;
  proto::JobGraph graph_;
  std::vector<CheckpointCoordinator::TaskView> tasks_;
  Clock::time_point t0_ = Clock::now();
  std::unique_ptr<CheckpointCoordinator> cc_;
};

TEST_F(CoordinatorStatsTest, TriggerAcknowledgementsAndCompletionReachTheTracker) {
  auto trigger = cc_->MaybeTrigger(tasks_, t0_ + Millis(100));
  ASSERT_TRUE(trigger);
  const auto& s = cc_->stats().snapshot();
  ASSERT_EQ(s.history.size(), 1u);
  EXPECT_EQ(s.history[0].id, trigger->id);
  EXPECT_EQ(s.history[0].trigger_timestamp, trigger->timestamp_ms);
  EXPECT_EQ(s.history[0].tasks.at(0).subtasks.size(), 1u);
  EXPECT_EQ(s.history[0].tasks.at(1).subtasks.size(), 2u);
  const int64_t ts = trigger->timestamp_ms;
  ASSERT_TRUE(cc_->Acknowledge(Ack(1, 0, 0, 1000, 1000), t0_ + Millis(110)));
  ASSERT_TRUE(cc_->Acknowledge(Ack(1, 1, 0, 300, 2000, 7999), t0_ + Millis(130)));
  ASSERT_TRUE(cc_->Acknowledge(Ack(1, 1, 1, 200, 500, 12000), t0_ + Millis(120)));
  EXPECT_EQ(s.history[0].latest_ack_timestamp(), ts + 30);
  const SubtaskCheckpointStats& sub = s.history[0].tasks.at(1).subtasks[0];
  EXPECT_EQ(sub.ack_timestamp, ts + 30);
  EXPECT_EQ(sub.checkpointed_size, 300);
  EXPECT_EQ(sub.state_size, 2000);
  EXPECT_EQ(sub.sync_duration, 2) << "microseconds to whole milliseconds";
  EXPECT_EQ(sub.async_duration, 41);
  EXPECT_EQ(sub.alignment_duration, 7);
  EXPECT_EQ(sub.start_delay, 6);
  Complete(t0_ + Millis(145));

  EXPECT_EQ(s.counts.completed, 1);
  EXPECT_EQ(s.counts.in_progress, 0);
  ASSERT_TRUE(s.latest_completed);
  EXPECT_EQ(s.latest_completed->end_to_end_duration(), 45) << "trigger to completion";
  EXPECT_EQ(s.latest_completed->completion_timestamp, ts + 45);
  EXPECT_EQ(s.latest_completed->checkpointed_size(), 1500);
  EXPECT_EQ(s.latest_completed->state_size(), 3500);
  EXPECT_EQ(s.latest_completed->alignment_duration(), 12);
  EXPECT_EQ(s.latest_completed->external_path, root_ + "/j1/chk-1");
  EXPECT_EQ(s.summary.end_to_end_duration.max, 45);
}

TEST_F(CoordinatorStatsTest, FinishedTasksCarryTheirStateAndFailuresAreReported) {
  ASSERT_TRUE(cc_->MaybeTrigger(tasks_, t0_ + Millis(100)));
  for (const auto& t : tasks_)
    ASSERT_TRUE(cc_->Acknowledge(Ack(1, t.key.first, t.key.second, 100, 400)));
  Complete(t0_ + Millis(120));

  // Checkpoint 2: the second sink subtask has finished, the first finishes while it runs.
  auto tasks = tasks_;
  tasks[2].state = proto::TASK_FINISHED;
  auto trigger = cc_->MaybeTrigger(tasks, t0_ + Millis(300));
  ASSERT_TRUE(trigger);
  const auto& s = cc_->stats().snapshot();
  const CheckpointStats& two = s.history[0];
  EXPECT_EQ(two.num_acknowledged(), 1) << "the finished subtask counts at once";
  EXPECT_TRUE(two.tasks.at(1).subtasks[1].finished);
  EXPECT_EQ(two.tasks.at(1).subtasks[1].state_size, 400);
  EXPECT_EQ(two.tasks.at(1).subtasks[1].checkpointed_size, 0);
  ASSERT_TRUE(cc_->OnTaskFinished({1, 0}));
  EXPECT_EQ(two.num_acknowledged(), 2);
  ASSERT_TRUE(cc_->Acknowledge(Ack(2, 0, 0, 50, 450)));
  Complete(t0_ + Millis(310));
  ASSERT_TRUE(s.latest_completed);
  EXPECT_EQ(s.latest_completed->id, 2);
  EXPECT_EQ(s.latest_completed->checkpointed_size(), 50) << "only what checkpoint 2 stored";
  EXPECT_EQ(s.latest_completed->state_size(), 1250);
  EXPECT_TRUE(s.Find(1)->discarded) << "subsumed by checkpoint 2 (one retained)";

  // Checkpoint 3 fails: the tracker has the coordinator's reason and time.
  auto three = cc_->MaybeTrigger(tasks_, t0_ + Millis(500));
  ASSERT_TRUE(three);
  auto aborted = cc_->AbortPending("Sink (1/2) declined it: disk full", true, t0_ + Millis(510));
  ASSERT_TRUE(aborted);
  EXPECT_EQ(s.counts.failed, 1);
  EXPECT_EQ(s.counts.total, 3);
  ASSERT_TRUE(s.latest_failed);
  EXPECT_EQ(s.latest_failed->id, 3);
  EXPECT_EQ(s.latest_failed->failure_message, "Sink (1/2) declined it: disk full");
  EXPECT_EQ(s.latest_failed->failure_timestamp, three->timestamp_ms + 10);
  ASSERT_EQ(s.history.size(), 2u) << "stats_history = 2";
  EXPECT_EQ(s.history[0].id, 3);
  EXPECT_EQ(s.history[1].id, 2);
  EXPECT_EQ(cc_->failed_count(), 1);
}

TEST_F(CoordinatorStatsTest, ARestoreNamesTheCheckpointFolder) {
  ASSERT_TRUE(cc_->MaybeTrigger(tasks_, t0_ + Millis(100)));
  for (const auto& t : tasks_)
    ASSERT_TRUE(cc_->Acknowledge(Ack(1, t.key.first, t.key.second, 100, 100)));
  Complete(t0_ + Millis(120));
  cc_->OnRestored(123456);
  const auto& s = cc_->stats().snapshot();
  EXPECT_EQ(s.counts.restored, 1);
  ASSERT_TRUE(s.latest_restored);
  EXPECT_EQ(s.latest_restored->id, 1);
  EXPECT_EQ(s.latest_restored->restore_timestamp, 123456);
  EXPECT_EQ(s.latest_restored->external_path, root_ + "/j1/chk-1");
}

}  // namespace
}  // namespace sluice
