// Cancelling a running job from the CLI: the job ends CANCELED within seconds and its task
// threads are gone from the TaskManagers; and an attached `sluice run -sae` that is stopped
// cancels its job.
#include <iostream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "integration/harness.h"

namespace sluice::itest {
namespace {

using namespace std::chrono_literals;

// The line of `sluice list` output that names `job_id`, or "".
std::string ListLine(const std::string& out, const std::string& job_id) {
  size_t at = out.find(job_id);
  if (at == std::string::npos) return "";
  size_t begin = out.rfind('\n', at);
  begin = begin == std::string::npos ? 0 : begin + 1;
  return out.substr(begin, out.find('\n', at) - begin);
}

std::vector<int> ThreadCounts(TestCluster& cluster) {
  std::vector<int> counts;
  for (int i = 0; i < cluster.num_task_managers(); ++i) {
    auto st = ReadProcStatus(cluster.tm_pid(i));
    counts.push_back(st ? st->threads : -1);
  }
  return counts;
}

std::string Describe(const std::vector<int>& v) {
  std::string s;
  for (int n : v) s += absl::StrCat(s.empty() ? "" : ", ", n);
  return "[" + s + "]";
}

TEST(CancelTest, CancelledJobEndsAndItsThreadsAreGone) {
  TestCluster cluster(2, 2);
  SLUICE_ASSERT_OK(cluster.Start());
  // A first job warms up what the TaskManagers create lazily (channels, thread pools); the idle
  // level is measured after it.
  ASSERT_TRUE(cluster.RunsASmallJob(4));
  std::vector<int> idle;
  // Let the finished job's threads go before measuring.
  WaitUntil(
      [&] {
        auto a = ThreadCounts(cluster);
        std::this_thread::sleep_for(300ms);
        auto b = ThreadCounts(cluster);
        idle = b;
        return a == b;
      },
      5s, 0ms);

  std::string job;
  SLUICE_ASSIGN_OR_FAIL(job,
                        cluster.SubmitDetached(TestJobLibrary("sequence_job"), {"-p", "4"}, {}));
  proto::JobStatus status;
  SLUICE_ASSIGN_OR_FAIL(status, cluster.WaitForAllTasksRunning(job, 20s));
  EXPECT_EQ(status.tasks_size(), 8);  // two vertices x 4 subtasks, 4 per TaskManager

  CommandResult list = cluster.Cli({"list"});
  ASSERT_EQ(list.exit_code, 0) << list.Describe();
  std::string line = ListLine(list.out, job);
  EXPECT_NE(line.find("RUNNING"), std::string::npos) << list.Describe();
  EXPECT_NE(line.find("Sequence"), std::string::npos) << list.Describe();

  // Each TaskManager runs its 4 tasks, one thread each at least.
  std::vector<int> busy = ThreadCounts(cluster);
  for (int i = 0; i < cluster.num_task_managers(); ++i) {
    EXPECT_GE(busy[i], idle[i] + 4) << "idle " << Describe(idle) << ", running " << Describe(busy);
  }

  auto cancel_start = std::chrono::steady_clock::now();
  CommandResult cancel = cluster.Cli({"cancel", job});
  ASSERT_EQ(cancel.exit_code, 0) << cancel.Describe();
  EXPECT_NE(cancel.out.find("Cancelled job " + job), std::string::npos) << cancel.Describe();
  SLUICE_ASSIGN_OR_FAIL(status, cluster.WaitForState(job, proto::JOB_CANCELED, 5s));
  auto took = std::chrono::steady_clock::now() - cancel_start;
  EXPECT_LT(took, 5s);
  for (const auto& t : status.tasks())
    EXPECT_EQ(t.state(), proto::TASK_CANCELED) << t.DebugString();

  // The task threads end; each TaskManager falls back to (about) its idle thread count.
  std::vector<int> after;
  bool back = WaitUntil(
      [&] {
        after = ThreadCounts(cluster);
        for (int i = 0; i < cluster.num_task_managers(); ++i) {
          if (after[i] < 0 || after[i] > idle[i] + 2) return false;
        }
        return true;
      },
      5s, 100ms);
  std::cout << "TaskManager threads: idle " << Describe(idle) << ", running " << Describe(busy)
            << ", after cancel " << Describe(after) << "\n";
  EXPECT_TRUE(back) << "idle " << Describe(idle) << ", running " << Describe(busy)
                    << ", after cancel " << Describe(after);

  // `list` no longer shows it; `list -a` shows it CANCELED; the slots are free.
  list = cluster.Cli({"list"});
  ASSERT_EQ(list.exit_code, 0) << list.Describe();
  EXPECT_EQ(list.out.find(job), std::string::npos) << list.Describe();
  list = cluster.Cli({"list", "-a"});
  ASSERT_EQ(list.exit_code, 0) << list.Describe();
  EXPECT_NE(ListLine(list.out, job).find("CANCELED"), std::string::npos) << list.Describe();
  EXPECT_TRUE(WaitUntil(
      [&] {
        auto o = cluster.client().Overview();
        return o.ok() && o->free_slots() == 4;
      },
      5s));

  // Cancelling it again is an error that says why.
  cancel = cluster.Cli({"cancel", job});
  EXPECT_NE(cancel.exit_code, 0) << cancel.Describe();
  EXPECT_NE(cancel.err.find("already CANCELED"), std::string::npos) << cancel.Describe();

  EXPECT_TRUE(cluster.IsHealthy());
  SLUICE_EXPECT_OK(cluster.Stop());
}

}  // namespace
}  // namespace sluice::itest

namespace sluice::itest {
namespace {

// `sluice run` attached, as a scheduler runs it: SIGTERM with -sae cancels the job (Flink's
// --shutdownOnAttachedExit); without it the job outlives the client, as in Flink.
TEST(CancelTest, AnAttachedClientStoppedWithSaeCancelsItsJob) {
  TestCluster cluster(1, 2);
  SLUICE_ASSERT_OK(cluster.Start());
  for (const bool sae : {true, false}) {
    SCOPED_TRACE(sae ? "-sae" : "without -sae");
    const std::string out = absl::StrCat(cluster.dir(), "/cli-", sae, ".out");
    std::vector<std::string> argv{BinDir() + "/sluice", "run", "-m", cluster.jm_address()};
    if (sae) argv.push_back("-sae");
    argv.insert(argv.end(), {TestJobLibrary("sequence_job"), "--sleep-us", "1000"});
    auto cli = ChildProcess::Start(argv, out, out + ".err");
    ASSERT_TRUE(cli.ok()) << cli.status();
    std::string job;
    ASSERT_TRUE(WaitUntil(
        [&] {
          const std::string text = ReadFile(out);
          const std::string marker = "submitted with JobID ";
          size_t at = text.find(marker);
          if (at == std::string::npos || text.size() < at + marker.size() + 32) return false;
          job = text.substr(at + marker.size(), 32);
          return true;
        },
        30s))
        << ReadFile(out + ".err");
    SLUICE_ASSERT_OK(cluster.WaitForAllTasksRunning(job, 30s).status());
    (*cli)->Signal(SIGTERM);
    ASSERT_TRUE((*cli)->WaitForExit(30s));
    EXPECT_EQ((*cli)->exit_code(), 128 + SIGTERM);
    if (sae) {
      EXPECT_NE(ReadFile(out + ".err").find("cancelling job " + job), std::string::npos);
      SLUICE_EXPECT_OK(cluster.WaitForState(job, proto::JOB_CANCELED, 30s).status());
    } else {
      std::this_thread::sleep_for(500ms);
      auto st = cluster.client().GetJob(job);
      ASSERT_TRUE(st.ok()) << st.status();
      EXPECT_EQ(st->state(), proto::JOB_RUNNING);
      SLUICE_EXPECT_OK(cluster.client().Cancel(job));
      SLUICE_EXPECT_OK(cluster.WaitForState(job, proto::JOB_CANCELED, 30s).status());
    }
  }
}

}  // namespace
}  // namespace sluice::itest
