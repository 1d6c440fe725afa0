// The RocksDB state backend in a real cluster, chosen per job with -D: incremental checkpoints
// whose metadata shows that a checkpoint without changes stores a small fraction of the state,
// shared files removed once no retained checkpoint names them, and exact output. (Restores:
// unit tests of the backend, chaos/task_manager_kill_test and chaos/large_state_test.)
#include <gmock/gmock.h>

#include <filesystem>
#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "integration/harness.h"

namespace sluice::itest {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::set<std::string> SharedFilesIn(const std::string& job_dir) {
  std::set<std::string> files;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(job_dir + "/shared", ec)) {
    std::string name = e.path().filename().string();
    if (name.find(".tmp-") == std::string::npos) files.insert("shared/" + name);
  }
  return files;
}

TEST(RocksDbTest, IncrementalCheckpointsOfAnIdleJobStoreLittle) {
  TestCluster cluster(/*task_managers=*/1, /*slots_per_task_manager=*/2);
  SLUICE_ASSERT_OK(cluster.Start());
  const std::string checkpoints = cluster.dir() + "/checkpoints";
  const std::string out = cluster.dir() + "/out", gate = cluster.dir() + "/gate";
  constexpr int64_t kCount = 400000, kKeys = 200000;  // two numbers per key
  const std::vector<std::string> flags = {"-p", "2",
                                          "-D", "state.backend.type=rocksdb",
                                          "-D", "execution.checkpointing.interval=200ms",
                                          "-D", "state.checkpoints.dir=" + checkpoints,
                                          "-D", "state.checkpoints.num-retained=1"};
  std::string job;
  SLUICE_ASSIGN_OR_FAIL(
      job, cluster.SubmitDetached(TestJobLibrary("gated_sequence_job"), flags,
                                  {"--count", absl::StrCat(kCount), "--keys", absl::StrCat(kKeys),
                                   "--output", out, "--gate", gate, "--gate-timeout-s", "90"}));
  const std::string job_dir = checkpoints + "/" + job;

  // Once every number is in, the job idles at the gate: its checkpoints store only the small
  // files of each instance (and the state files), not the SST files again.
  std::optional<proto::CheckpointMetadata> meta;
  int64_t stored = 0, full = 0;
  int64_t previous_full = -1;
  int steady = 0;
  ASSERT_TRUE(WaitUntil(
      [&] {
        meta = NewestCheckpoint(job_dir);
        if (!meta) return false;
        SharedStateSizes sizes = SharedStateSizesOf(*meta);
        stored = sizes.stored;
        full = sizes.full;
        // The same full size three checkpoints running: the data is all in.
        steady = full > 0 && full == previous_full ? steady + 1 : 0;
        previous_full = full;
        return steady >= 3 && stored * 10 < full;
      },
      60s, 300ms))
      << "newest checkpoint " << (meta ? meta->checkpoint_id() : -1) << " stored " << stored
      << " of " << full << " bytes";

  // Shared files: exactly those the retained checkpoint names (superseded SST files are gone).
  std::set<std::string> named;
  for (const auto& h : meta->handles())
    named.insert(h.shared_files().begin(), h.shared_files().end());
  EXPECT_TRUE(WaitUntil([&] { return SharedFilesIn(job_dir) == named; }, 10s))
      << SharedFilesIn(job_dir).size() << " shared files, " << named.size() << " named";

  // The gate opens: the job ends with exact sums.
  ASSERT_TRUE(WriteFile(gate, ""));
  SLUICE_ASSERT_OK(cluster.WaitForState(job, proto::JOB_FINISHED, 60s).status());
  EXPECT_TRUE(SequenceOutputIsCorrect(out, kCount, kKeys));
  SLUICE_EXPECT_OK(cluster.Stop());
}

}  // namespace
}  // namespace sluice::itest
