// Chaos: keyed state far larger than the RocksDB block cache survives the loss of a TaskManager.
// Five million keys, each counted twice and checked for order (tests/jobs/large_state_job.cc),
// on RocksDB with incremental checkpoints and an 8 MiB memory budget per TaskManager. The job's
// first pass puts every key into state, registers an event-time timer for every tenth key (half
// a million timers, in RocksDB too, where memory holds a few thousand) and waits at a gate; a
// TaskManager running a counting task is killed with SIGKILL; once the job has restored and
// checkpointed again, the gate opens and the second pass updates every key from restored state.
// At the end of input every timer fires. Every key must end with count 2, its timer (if any)
// fired once, and no violations.
#include <gmock/gmock.h>

#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "integration/harness.h"

namespace sluice::itest {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using ::testing::IsEmpty;

constexpr int64_t kKeys = 5'000'000;
constexpr int64_t kManagedBytes = 8 << 20;

TEST(LargeStateTest, FiveMillionKeysOnRocksDbRestoreExactlyAfterAKill) {
  // One slot per TaskManager and parallelism 2: two TaskManagers run the job, one is spare.
  ClusterOptions options;
  options.task_managers = 3;
  options.slots_per_task_manager = 1;
  options.extra_config = {absl::StrCat("taskmanager.memory.managed.size=", kManagedBytes)};
  TestCluster cluster(options);
  SLUICE_ASSERT_OK(cluster.Start());
  const std::string checkpoints = cluster.dir() + "/checkpoints";
  const std::string out = cluster.dir() + "/out", gate = cluster.dir() + "/gate";
  std::string job;
  SLUICE_ASSIGN_OR_FAIL(
      job, cluster.SubmitDetached(
               TestJobLibrary("large_state_job"),
               {"-p", "2", "-D", "state.backend.type=rocksdb", "-D",
                "state.backend.incremental=true", "-D", "execution.checkpointing.interval=2s", "-D",
                "state.checkpoints.dir=" + checkpoints, "-D", "restart-strategy.type=fixed-delay",
                "-D", "restart-strategy.fixed-delay.attempts=3", "-D",
                "restart-strategy.fixed-delay.delay=200ms"},
               {"--keys", absl::StrCat(kKeys), "--per-key", "2", "--timer-every", "10", "--gate",
                gate, "--output", out}));
  const std::string job_dir = checkpoints + "/" + job;

  // The first pass is in state once both sources wait at the gate, and in a checkpoint once one
  // triggered after that has completed (the next but one).
  ASSERT_TRUE(
      WaitUntil([&] { return fs::exists(gate + ".waiting-0") && fs::exists(gate + ".waiting-1"); },
                240s, 200ms))
      << "the sources did not reach the gate";
  proto::JobStatus st;
  SLUICE_ASSIGN_OR_FAIL(st, cluster.WaitForAllTasksRunning(job, 30s));
  const int64_t at_gate = st.last_checkpoint_id();
  SLUICE_ASSIGN_OR_FAIL(
      st, cluster.WaitUntilOrEnd(
              job, [&](const proto::JobStatus& s) { return s.last_checkpoint_id() >= at_gate + 2; },
              60s));
  ASSERT_EQ(st.state(), proto::JOB_RUNNING) << st.failure();
  std::optional<proto::CheckpointMetadata> meta = NewestCheckpoint(job_dir);
  ASSERT_TRUE(meta.has_value());
  // The state on disk is several times the block caches of both TaskManagers together.
  SharedStateSizes sizes = SharedStateSizesOf(*meta);
  EXPECT_GT(sizes.full, 2 * 2 * kManagedBytes)
      << "checkpoint " << meta->checkpoint_id() << " has " << sizes.full << " bytes of state";

  // Kill a TaskManager of the job (each runs a source and a counting subtask, slots being
  // shared); a spare replaces it.
  const std::string victim = st.tasks(0).tm_id();
  const int index = cluster.TaskManagerIndex(victim);
  ASSERT_GE(index, 0) << "no TaskManager " << victim << " in the cluster";
  const int restarts = st.restarts();
  cluster.KillTaskManager(index);
  SLUICE_ASSERT_OK(cluster.AddTaskManager().status());

  // Restored from the newest checkpoint, and checkpointing again from restored state.
  SLUICE_ASSIGN_OR_FAIL(st, cluster.WaitUntilOrEnd(
                                job,
                                [&](const proto::JobStatus& s) {
                                  return s.restarts() > restarts && AllTasksRunning(s);
                                },
                                120s));
  ASSERT_EQ(st.state(), proto::JOB_RUNNING) << st.failure();
  const int64_t restored_from = st.last_checkpoint_id();
  SLUICE_ASSIGN_OR_FAIL(
      st,
      cluster.WaitUntilOrEnd(
          job, [&](const proto::JobStatus& s) { return s.last_checkpoint_id() > restored_from; },
          120s));
  ASSERT_EQ(st.state(), proto::JOB_RUNNING) << st.failure();

  // The second pass updates every key from restored state; the counts are exact.
  ASSERT_TRUE(WriteFile(gate, ""));
  SLUICE_ASSIGN_OR_FAIL(st, cluster.WaitForState(job, proto::JOB_FINISHED, 300s));
  EXPECT_EQ(st.restarts(), restarts + 1);
  EXPECT_TRUE(SequenceCountOutputIsCorrect(out, kKeys, 2, /*exactly_once=*/true));
  EXPECT_THAT(InProgressFiles(out), IsEmpty());
  SLUICE_EXPECT_OK(cluster.Stop());
}

}  // namespace
}  // namespace sluice::itest
