// Chaos: TaskManagers that run tasks of a checkpointed job are killed with SIGKILL, one after
// each of several completed checkpoints, with a spare TaskManager ready each time (a replacement
// starts after each kill). The job must restart from its latest checkpoint every time and end
// with exact output (EXACTLY_ONCE), or with nothing lost (AT_LEAST_ONCE), on the heap and on
// RocksDB with incremental checkpoints, and with internal TLS.
//
// The default form kills three times in a job of about 6 s; SLUICE_CHAOS_LONG=1 kills six times
// in a longer job with more keys.
#include <gmock/gmock.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "integration/harness.h"

namespace sluice::itest {
namespace {

using namespace std::chrono_literals;
using ::testing::IsEmpty;

bool ChaosLong() {
  const char* v = std::getenv("SLUICE_CHAOS_LONG");
  return v && *v && std::string(v) != "0";
}

struct KillScale {
  int64_t keys;
  int64_t per_key;
  int64_t rate;  // records/s over the whole job
  int rounds;    // TaskManagers killed
};
// About 6 s of records by default (the three kills take 2 s on an idle machine), 25 s long.
KillScale Scale() {
  return ChaosLong() ? KillScale{200, 500, 4000, 6} : KillScale{40, 150, 1000, 3};
}

// `backend`: extra -D options of the job (its state backend). `internal_tls`: every daemon and
// the CLI talk mutual TLS (security.ssl.internal.*), the data exchange of the job included.
void KillTaskManagersDuringAJob(const std::string& mode, std::vector<std::string> backend = {},
                                bool internal_tls = false) {
  const bool exactly_once = mode == "EXACTLY_ONCE";
  const KillScale scale = Scale();
  // One slot per TaskManager and parallelism 2: two TaskManagers run the job, one is spare.
  ClusterOptions options;
  options.task_managers = 3;
  options.slots_per_task_manager = 1;
  options.internal_tls = internal_tls;
  TestCluster cluster(options);
  SLUICE_ASSERT_OK(cluster.Start());
  const std::string output = cluster.dir() + "/out";
  std::vector<std::string> args = {
      "-p", "2",
      "-D", "execution.checkpointing.interval=250ms",
      "-D", "execution.checkpointing.mode=" + mode,
      "-D", "state.checkpoints.dir=" + cluster.dir() + "/checkpoints",
      "-D", "restart-strategy.type=fixed-delay",
      "-D", absl::StrCat("restart-strategy.fixed-delay.attempts=", scale.rounds + 2),
      "-D", "restart-strategy.fixed-delay.delay=200ms"};
  for (const std::string& option : backend) {
    args.push_back("-D");
    args.push_back(option);
  }
  std::string job;
  SLUICE_ASSIGN_OR_FAIL(
      job, cluster.SubmitDetached(
               TestJobLibrary("chaos_count_job"), args,
               {"--keys", absl::StrCat(scale.keys), "--per-key", absl::StrCat(scale.per_key),
                "--rate", absl::StrCat(scale.rate), "--output", output}));

  int restarts_at_kill = -1;
  for (int round = 1; round <= scale.rounds; ++round) {
    SCOPED_TRACE(absl::StrCat("kill round ", round));
    // The attempt after the previous kill runs every task...
    proto::JobStatus st;
    SLUICE_ASSIGN_OR_FAIL(st, cluster.WaitUntilOrEnd(
                                  job,
                                  [&](const proto::JobStatus& s) {
                                    return (s.restarts() > restarts_at_kill && AllTasksRunning(s));
                                  },
                                  30s));
    ASSERT_EQ(st.state(), proto::JOB_RUNNING)
        << "the job ended before kill round " << round << ": " << st.failure();
    // ... and completes a checkpoint of its own.
    const int64_t restored_from = st.last_checkpoint_id();
    SLUICE_ASSIGN_OR_FAIL(
        st, cluster.WaitUntilOrEnd(
                job,
                [&](const proto::JobStatus& s) {
                  return (s.last_checkpoint_id() > restored_from && AllTasksRunning(s));
                },
                30s));
    ASSERT_EQ(st.state(), proto::JOB_RUNNING)
        << "the job ended before kill round " << round << ": " << st.failure();
    // A TaskManager that runs tasks of the job, a different subtask's each round.
    const std::string victim = st.tasks(round % st.tasks_size()).tm_id();
    const int index = cluster.TaskManagerIndex(victim);
    ASSERT_GE(index, 0) << "no TaskManager " << victim << " in the cluster";
    restarts_at_kill = st.restarts();
    cluster.KillTaskManager(index);
    absl::StatusOr<int> spare = cluster.AddTaskManager();
    ASSERT_TRUE(spare.ok()) << spare.status();
  }

  proto::JobStatus st;
  SLUICE_ASSIGN_OR_FAIL(
      st, cluster.WaitForJob(
              job, [](const proto::JobStatus& s) { return IsTerminalJobState(s.state()); },
              ChaosLong() ? 600s : 120s));
  ASSERT_EQ(st.state(), proto::JOB_FINISHED) << st.failure();
  EXPECT_GE(st.restarts(), scale.rounds);
  EXPECT_TRUE(SequenceCountOutputIsCorrect(output, scale.keys, scale.per_key, exactly_once));
  EXPECT_THAT(InProgressFiles(output), IsEmpty());
  EXPECT_TRUE(cluster.IsHealthy());
}

TEST(ChaosKillTest, KilledTaskManagersExactlyOnce) { KillTaskManagersDuringAJob("EXACTLY_ONCE"); }

TEST(ChaosKillTest, KilledTaskManagersAtLeastOnceLoseNothing) {
  KillTaskManagersDuringAJob("AT_LEAST_ONCE");
}

// The same with internal TLS: the restarts reconnect over TLS, the replacements register over
// it, and the counts stay exact.
TEST(ChaosKillTest, KilledTaskManagersExactlyOnceWithInternalTls) {
  KillTaskManagersDuringAJob("EXACTLY_ONCE", {}, /*internal_tls=*/true);
}

// The same on RocksDB with incremental checkpoints: every restore downloads the files of the
// latest checkpoint, shared ones included, and the counts stay exact.
TEST(ChaosKillTest, KilledTaskManagersExactlyOnceOnRocksDbIncremental) {
  KillTaskManagersDuringAJob("EXACTLY_ONCE",
                             {"state.backend.type=rocksdb", "state.backend.incremental=true"});
}

}  // namespace
}  // namespace sluice::itest
