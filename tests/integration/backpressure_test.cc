// Back-pressure: a fast source feeding a slow sink across the network must be slowed down by the
// credits of its channels, not buffer without bound. The TaskManagers' memory stays bounded while
// the source could produce gigabytes.
#include <algorithm>
#include <iostream>
#include <thread>

#include "integration/harness.h"

namespace sluice::itest {
namespace {

using namespace std::chrono_literals;

// What a TaskManager may hold: without back-pressure it would buffer gigabytes. AddressSanitizer
// adds its shadow memory and keeps freed blocks in a quarantine of up to 256 MB, so a sanitized
// TaskManager starts near the plain bound already (158 MB seen when that build was at -O1).
#if defined(__SANITIZE_ADDRESS__)
constexpr int64_t kRssBound = 450ll << 20;
#else
constexpr int64_t kRssBound = 150ll << 20;
#endif

TEST(BackPressureTest, SlowSinkKeepsTaskManagerMemoryBounded) {
  // One slot per TaskManager: at parallelism 2 each TaskManager runs one source and one sink, and
  // the hash partitioning sends half of the records to the other TaskManager.
  TestCluster cluster(2, 1);
  SLUICE_ASSERT_OK(cluster.Start());
  std::string job;
  SLUICE_ASSIGN_OR_FAIL(job, cluster.SubmitDetached(TestJobLibrary("sequence_job"), {"-p", "2"},
                                                    {"--sleep-us", "200", "--keys", "1000"}));
  proto::JobStatus status;
  SLUICE_ASSIGN_OR_FAIL(status, cluster.WaitForAllTasksRunning(job, 20s));
  for (const auto& t : status.tasks()) EXPECT_FALSE(t.tm_id().empty());

  std::vector<int64_t> peak(2, 0), first(2, 0);
  int samples = 0;
  auto end = std::chrono::steady_clock::now() + 5s;
  while (std::chrono::steady_clock::now() < end) {
    for (int i = 0; i < 2; ++i) {
      auto st = ReadProcStatus(cluster.tm_pid(i));
      ASSERT_TRUE(st.has_value()) << "TaskManager " << i << " is gone";
      if (samples == 0) first[i] = st->rss_bytes;
      peak[i] = std::max(peak[i], st->rss_bytes);
      ASSERT_LT(st->rss_bytes, kRssBound)
          << "TaskManager " << i << " RSS " << (st->rss_bytes >> 20) << " MB after " << samples
          << " samples: back-pressure does not hold";
    }
    ++samples;
    std::this_thread::sleep_for(250ms);
  }
  std::cout << "TaskManager RSS over " << samples << " samples: first " << (first[0] >> 20) << "/"
            << (first[1] >> 20) << " MB, peak " << (peak[0] >> 20) << "/" << (peak[1] >> 20)
            << " MB\n";
  EXPECT_GE(samples, 15);

  // The job ran all along (a failed job would also hold no memory).
  SLUICE_ASSIGN_OR_FAIL(status, cluster.client().GetJob(job));
  ASSERT_EQ(status.state(), proto::JOB_RUNNING) << status.failure();
  for (const auto& t : status.tasks()) EXPECT_EQ(t.state(), proto::TASK_RUNNING) << t.DebugString();

  CommandResult cancel = cluster.Cli({"cancel", job});
  ASSERT_EQ(cancel.exit_code, 0) << cancel.Describe();
  SLUICE_EXPECT_OK(cluster.WaitForState(job, proto::JOB_CANCELED, 10s).status());
  SLUICE_EXPECT_OK(cluster.Stop());
}

}  // namespace
}  // namespace sluice::itest
