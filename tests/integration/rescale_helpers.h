// What the rescaling tests (rescale_test.cc, adaptive_test.cc) share: the checkpointed chaos
// count job (tests/jobs/chaos_count_job.cc, the sequence-count pipeline with an exactly-once
// file sink) and waits on its parallelism and checkpoints. Header-only; single-threaded use.
#pragma once

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "integration/harness.h"

namespace sluice::itest {

// The parallelism of every vertex of the job, by vertex id.
inline std::vector<int> VertexParallelismOf(const proto::JobStatus& s) {
  std::vector<int> p;
  for (const auto& v : s.graph().vertices()) p.push_back(v.parallelism());
  return p;
}

inline std::string Describe(const std::vector<int>& p) {
  return absl::StrCat("[", absl::StrJoin(p, ", "), "]");
}

// `sluice run` flags of a checkpointed job: checkpoints every 200 ms into `checkpoint_dir`, a
// fixed-delay restart strategy, `-p p` (none when p is 0) and `more`.
inline std::vector<std::string> CheckpointedRunFlags(const std::string& checkpoint_dir, int p,
                                                     std::vector<std::string> more = {}) {
  std::vector<std::string> flags{"-D", "execution.checkpointing.interval=200ms",
                                 "-D", "state.checkpoints.dir=" + checkpoint_dir,
                                 "-D", "restart-strategy.type=fixed-delay",
                                 "-D", "restart-strategy.fixed-delay.attempts=5",
                                 "-D", "restart-strategy.fixed-delay.delay=200ms"};
  if (p > 0) flags.insert(flags.begin(), {"-p", std::to_string(p)});
  flags.insert(flags.end(), more.begin(), more.end());
  return flags;
}

// The chaos count job's arguments: `keys` * `per_key` records at `rate` records/s.
inline std::vector<std::string> ChaosCountArgs(int64_t keys, int64_t per_key, int64_t rate,
                                               const std::string& output) {
  return {"--keys", absl::StrCat(keys), "--per-key", absl::StrCat(per_key),
          "--rate", absl::StrCat(rate), "--output",  output};
}

// Until the job runs every task at `parallelism` (by vertex id) and has completed a checkpoint
// newer than `after_checkpoint`: its status. An error when the job ends or `timeout` passes.
inline absl::StatusOr<proto::JobStatus> WaitForParallelismAndCheckpoint(
    TestCluster& cluster, const std::string& job, const std::vector<int>& parallelism,
    int64_t after_checkpoint, std::chrono::milliseconds timeout) {
  auto st = cluster.WaitUntilOrEnd(
      job,
      [&](const proto::JobStatus& s) {
        return AllTasksRunning(s) && VertexParallelismOf(s) == parallelism &&
               s.last_checkpoint_id() > after_checkpoint;
      },
      timeout);
  if (!st.ok()) return st.status();
  if (st->state() != proto::JOB_RUNNING) {
    return absl::FailedPreconditionError(
        absl::StrCat("the job is ", std::string(JobStateName(st->state())), " at parallelism ",
                     Describe(VertexParallelismOf(*st)), " instead of running at ",
                     Describe(parallelism), ": ", st->failure()));
  }
  return st;
}

}  // namespace sluice::itest
