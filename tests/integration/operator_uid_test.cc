// Restoring a retained checkpoint into a changed job (operator uids and structural ids), on a
// real cluster, with every state backend: tests/jobs/evolving_count_job.cc runs in its base
// version until it has checkpoints, is cancelled, and another version resumes from its retained
// checkpoint with `sluice run -s`:
//   - operators added (a stateless map, a keyed stateful one): every key's count exact;
//   - a stateful operator removed: refused, naming it, until --allowNonRestoredState;
//   - a job without uids, with a new branch built before its operators (their node ids and the
//     source's chain change, their structural ids do not): exact;
//   - another parallelism and other chains: exact.
// Exact means every key once in the committed output with count --per-key and no gaps or
// repeats: a lost state restarts a count (too low), a source restarted from the beginning
// repeats records (violations).
#include <gmock/gmock.h>

#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "integration/harness.h"

namespace sluice::itest {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

// state.backend.* settings, by the test parameter's name.
std::vector<std::string> BackendFlags(const std::string& backend) {
  if (backend == "hashmap") return {"-D", "state.backend.type=hashmap"};
  return {"-D", "state.backend.type=rocksdb", "-D",
          absl::StrCat("state.backend.incremental=", backend == "rocksdb-incremental")};
}

class OperatorUidTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    SLUICE_ASSERT_OK(cluster_.Start());
    output_ = cluster_.dir() + "/out";
    checkpoints_ = cluster_.dir() + "/checkpoints";
  }

  // `sluice run` flags: -p, checkpoints every 200 ms (a cancelled job's last one is retained),
  // the backend, then `more`.
  std::vector<std::string> RunFlags(int parallelism, std::vector<std::string> more = {}) const {
    std::vector<std::string> flags{"-p", absl::StrCat(parallelism),
                                   "-D", "execution.checkpointing.interval=200ms",
                                   "-D", "state.checkpoints.dir=" + checkpoints_};
    for (const auto& f : BackendFlags(GetParam())) flags.push_back(f);
    flags.insert(flags.end(), more.begin(), more.end());
    return flags;
  }
  std::vector<std::string> JobArgs(const std::string& version,
                                   std::vector<std::string> more = {}) const {
    std::vector<std::string> args{"--version", version,
                                  "--keys",    absl::StrCat(kKeys),
                                  "--per-key", absl::StrCat(kPerKey),
                                  "--rate",    absl::StrCat(kRate),
                                  "--output",  output_};
    args.insert(args.end(), more.begin(), more.end());
    return args;
  }

  // Runs `version` at `parallelism` until two checkpoints have completed, cancels it and returns
  // its retained checkpoint's folder (empty after a failed assertion).
  void RunAndCancel(const std::string& version, int parallelism, std::string* checkpoint) {
    std::string job;
    SLUICE_ASSIGN_OR_FAIL(job, cluster_.SubmitDetached(TestJobLibrary("evolving_count_job"),
                                                       RunFlags(parallelism), JobArgs(version)));
    proto::JobStatus st;
    SLUICE_ASSIGN_OR_FAIL(
        st, cluster_.WaitUntilOrEnd(
                job, [](const proto::JobStatus& s) { return s.last_checkpoint_id() >= 2; }, 30s));
    ASSERT_EQ(st.state(), proto::JOB_RUNNING) << st.failure();
    SLUICE_ASSERT_OK(cluster_.client().Cancel(job));
    SLUICE_ASSIGN_OR_FAIL(st, cluster_.WaitForState(job, proto::JOB_CANCELED, 30s));
    ASSERT_TRUE(fs::exists(st.last_checkpoint_path() + "/_metadata"))
        << "checkpoint not retained: " << st.DebugString();
    // Results are committed at the end of input: a cancelled job has committed none.
    ASSERT_TRUE(ReadPartFiles(output_).empty());
    first_vertices_ = st.graph().vertices_size();
    *checkpoint = st.last_checkpoint_path();
  }

  // Resumes `version` from `checkpoint` and checks that it finishes with exact counts.
  void ResumeExactly(const std::string& checkpoint, const std::string& version, int parallelism,
                     std::vector<std::string> run_flags = {},
                     std::vector<std::string> job_args = {}) {
    std::vector<std::string> flags{"-s", checkpoint};
    for (const auto& f : RunFlags(parallelism, run_flags)) flags.push_back(f);
    std::string job;
    SLUICE_ASSIGN_OR_FAIL(job, cluster_.SubmitDetached(TestJobLibrary("evolving_count_job"), flags,
                                                       JobArgs(version, job_args)));
    proto::JobStatus st;
    SLUICE_ASSIGN_OR_FAIL(
        st, cluster_.WaitForJob(
                job, [](const proto::JobStatus& s) { return IsTerminalJobState(s.state()); }, 60s));
    ASSERT_EQ(st.state(), proto::JOB_FINISHED) << st.failure();
    EXPECT_EQ(st.restarts(), 0);
    resumed_vertices_ = st.graph().vertices_size();
    EXPECT_TRUE(SequenceCountOutputIsCorrect(output_, kKeys, kPerKey));
    EXPECT_TRUE(InProgressFiles(output_).empty());
  }

  static constexpr int64_t kKeys = 20;
  static constexpr int64_t kPerKey = 100;
  static constexpr int64_t kRate = 500;  // records/s: the whole input takes 4 s
  TestCluster cluster_{2, 2};
  std::string output_, checkpoints_;
  int first_vertices_ = 0, resumed_vertices_ = 0;
};

TEST_P(OperatorUidTest, AJobWithAddedOperatorsResumesWithExactCounts) {
  std::string chk;
  ASSERT_NO_FATAL_FAILURE(RunAndCancel("base", 2, &chk));
  // A stateless map chained to the source and a keyed stateful operator of its own: the node ids
  // of Audit, Count Sequence and the sink shift, and Count Sequence's vertex with them.
  ASSERT_NO_FATAL_FAILURE(ResumeExactly(chk, "added", 2));
  EXPECT_EQ(resumed_vertices_, first_vertices_ + 1);
}

TEST_P(OperatorUidTest, ARemovedStatefulOperatorIsNamedUntilItsStateMayBeDropped) {
  std::string chk;
  ASSERT_NO_FATAL_FAILURE(RunAndCancel("base", 2, &chk));
  std::vector<std::string> flags{"-s", chk};
  for (const auto& f : RunFlags(2)) flags.push_back(f);
  auto refused =
      cluster_.SubmitDetached(TestJobLibrary("evolving_count_job"), flags, JobArgs("removed"));
  ASSERT_FALSE(refused.ok()) << "job " << *refused << " started without Audit's state";
  EXPECT_THAT(refused.status().message(), HasSubstr("operator 'Audit' (id 'audit')"));
  EXPECT_THAT(refused.status().message(), HasSubstr("--allowNonRestoredState"));

  ASSERT_NO_FATAL_FAILURE(ResumeExactly(chk, "removed", 2, {"--allowNonRestoredState"}));
  EXPECT_THAT(cluster_.JobManagerLog(),
              HasSubstr("the state of operator 'Audit' (id 'audit') is not restored"));
}

TEST_P(OperatorUidTest, AJobWithoutUidsResumesAfterANewBranchIsAdded) {
  std::string chk;
  ASSERT_NO_FATAL_FAILURE(RunAndCancel("no-uids", 2, &chk));
  ASSERT_NO_FATAL_FAILURE(ResumeExactly(chk, "no-uids-tap", 2));
  EXPECT_EQ(resumed_vertices_, first_vertices_);  // Tap and Drop chain to the source
}

TEST_P(OperatorUidTest, AJobResumesAtAnotherParallelismWithOtherChains) {
  std::string chk;
  ASSERT_NO_FATAL_FAILURE(RunAndCancel("base", 2, &chk));
  // The sink leaves Count Sequence's chain for a vertex of its own, at parallelism 3.
  ASSERT_NO_FATAL_FAILURE(ResumeExactly(chk, "base", 3, {}, {"--unchain"}));
  EXPECT_EQ(resumed_vertices_, first_vertices_ + 1);
}

INSTANTIATE_TEST_SUITE_P(Backends, OperatorUidTest,
                         ::testing::Values("hashmap", "rocksdb-full", "rocksdb-incremental"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string name = info.param;
                           std::erase(name, '-');
                           return name;
                         });

}  // namespace
}  // namespace sluice::itest
