// Several jobs on one cluster: each holds its own slots, both run to a correct result, and a job
// that needs more slots than are free is refused until the slots are given back.
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "integration/harness.h"

namespace sluice::itest {
namespace {

using namespace std::chrono_literals;

TEST(MultiJobTest, TwoJobsRunAtOnceEachInItsOwnSlots) {
  TestCluster cluster(2, 2);
  SLUICE_ASSERT_OK(cluster.Start());
  const std::string gate_a = cluster.dir() + "/gate-a", gate_b = cluster.dir() + "/gate-b";
  const std::string out_a = cluster.dir() + "/out-a", out_b = cluster.dir() + "/out-b";
  const std::string lib = TestJobLibrary("gated_sequence_job");

  std::string job_a, job_b;
  SLUICE_ASSIGN_OR_FAIL(
      job_a, cluster.SubmitDetached(lib, {"-p", "2"},
                                    {"--count", "300000", "--keys", "37", "--output", out_a,
                                     "--gate", gate_a, "--gate-timeout-s", "60"}));
  SLUICE_ASSIGN_OR_FAIL(
      job_b, cluster.SubmitDetached(lib, {"-p", "2"},
                                    {"--count", "200000", "--keys", "1000", "--output", out_b,
                                     "--gate", gate_b, "--gate-timeout-s", "60"}));
  ASSERT_NE(job_a, job_b);
  proto::JobStatus a, b;
  SLUICE_ASSIGN_OR_FAIL(a, cluster.WaitForAllTasksRunning(job_a, 20s));
  SLUICE_ASSIGN_OR_FAIL(b, cluster.WaitForAllTasksRunning(job_b, 20s));

  // Both RUNNING at once, all four slots taken, two per job.
  CommandResult list = cluster.Cli({"list"});
  ASSERT_EQ(list.exit_code, 0) << list.Describe();
  for (const auto& id : {job_a, job_b}) {
    size_t at = list.out.find(id);
    ASSERT_NE(at, std::string::npos) << list.Describe();
    EXPECT_NE(list.out.substr(at, list.out.find('\n', at) - at).find("RUNNING"), std::string::npos)
        << list.Describe();
  }
  auto ov = cluster.client().Overview();
  ASSERT_TRUE(ov.ok()) << ov.status();
  EXPECT_EQ(ov->total_slots(), 4);
  EXPECT_EQ(ov->free_slots(), 0) << ov->DebugString();
  EXPECT_EQ(a.parallelism(), 2);
  EXPECT_EQ(b.parallelism(), 2);

  // B ends first while A keeps running; then A.
  ASSERT_TRUE(WriteFile(gate_b, ""));
  SLUICE_ASSIGN_OR_FAIL(b, cluster.WaitForState(job_b, proto::JOB_FINISHED, 60s));
  SLUICE_ASSIGN_OR_FAIL(a, cluster.client().GetJob(job_a));
  EXPECT_EQ(a.state(), proto::JOB_RUNNING);
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto o = cluster.client().Overview();
        return o.ok() && o->free_slots() == 2;
      },
      10s))
      << "B's slots were not given back";
  ASSERT_TRUE(WriteFile(gate_a, ""));
  SLUICE_ASSIGN_OR_FAIL(a, cluster.WaitForState(job_a, proto::JOB_FINISHED, 60s));

  EXPECT_TRUE(SequenceOutputIsCorrect(out_a, 300000, 37));
  EXPECT_TRUE(SequenceOutputIsCorrect(out_b, 200000, 1000));
  EXPECT_TRUE(WaitUntil(
      [&] {
        auto o = cluster.client().Overview();
        return o.ok() && o->free_slots() == 4;
      },
      10s))
      << "the slots were not given back";
  SLUICE_EXPECT_OK(cluster.Stop());
}

TEST(MultiJobTest, SequenceJobAndWordCountRunSideBySide) {
  TestCluster cluster(2, 2);
  SLUICE_ASSERT_OK(cluster.Start());
  // A long sequence job in two slots, and a word count in the other two, run synchronously.
  const std::string gate = cluster.dir() + "/gate", seq_out = cluster.dir() + "/seq-out";
  std::string seq;
  SLUICE_ASSIGN_OR_FAIL(
      seq, cluster.SubmitDetached(TestJobLibrary("gated_sequence_job"), {"-p", "2"},
                                  {"--count", "100000", "--keys", "10", "--output", seq_out,
                                   "--gate", gate, "--gate-timeout-s", "60"}));
  SLUICE_ASSERT_OK(cluster.WaitForAllTasksRunning(seq, 20s).status());

  std::string text;
  for (int i = 0; i < 20000; ++i) text += absl::StrCat("alpha beta\tw", i % 100, " gamma\r\n");
  const std::string input = cluster.dir() + "/words.txt", wc_out = cluster.dir() + "/wc-out";
  ASSERT_TRUE(WriteFile(input, text));
  CommandResult r = cluster.Cli(
      {"run", "-p", "2", ExampleLibrary("wordcount"), "--", "--input", input, "--output", wc_out},
      90s);
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  std::map<std::string, int64_t> counts;
  for (const auto& [file, lines] : ReadPartFiles(wc_out)) {
    for (const auto& line : lines) {
      size_t comma = line.rfind(',');
      ASSERT_NE(comma, std::string::npos) << line;
      auto& c = counts[line.substr(0, comma)];
      c = std::max(c, static_cast<int64_t>(std::stoll(line.substr(comma + 1))));
    }
  }
  std::map<std::string, int64_t> expected = {{"alpha", 20000}, {"beta", 20000}, {"gamma", 20000}};
  for (int i = 0; i < 100; ++i) expected[absl::StrCat("w", i)] = 200;
  EXPECT_EQ(counts, expected);

  proto::JobStatus s;
  SLUICE_ASSIGN_OR_FAIL(s, cluster.client().GetJob(seq));
  EXPECT_EQ(s.state(), proto::JOB_RUNNING) << "the sequence job should still hold its slots";
  ASSERT_TRUE(WriteFile(gate, ""));
  SLUICE_ASSERT_OK(cluster.WaitForState(seq, proto::JOB_FINISHED, 60s).status());
  EXPECT_TRUE(SequenceOutputIsCorrect(seq_out, 100000, 10));
  SLUICE_EXPECT_OK(cluster.Stop());
}

TEST(MultiJobTest, JobNeedingMoreSlotsThanFreeIsRefusedUntilSlotsAreFreed) {
  TestCluster cluster(2, 2);
  SLUICE_ASSERT_OK(cluster.Start());
  const std::string seq = TestJobLibrary("sequence_job");
  std::string running;
  SLUICE_ASSIGN_OR_FAIL(running, cluster.SubmitDetached(seq, {"-p", "2"}, {"--sleep-us", "50"}));
  SLUICE_ASSERT_OK(cluster.WaitForAllTasksRunning(running, 20s).status());

  // 3 slots fit the cluster (4) but not what is free (2): the JobManager refuses.
  CommandResult r = cluster.Cli({"run", "-p", "3", seq, "--", "--count", "1000"}, 60s);
  EXPECT_NE(r.exit_code, 0) << r.Describe();
  EXPECT_NE(r.err.find("needs 3 task slots but only 2 of 4 are free"), std::string::npos)
      << r.Describe();
  EXPECT_EQ(r.out.find("submitted"), std::string::npos) << r.Describe();
  auto jobs = cluster.client().ListJobs(/*include_terminated=*/true);
  ASSERT_TRUE(jobs.ok()) << jobs.status();
  EXPECT_EQ(jobs->size(), 1u) << "a refused job must leave no trace";

  // The running job is untouched, and a job that fits the free slots still runs.
  proto::JobStatus s;
  SLUICE_ASSIGN_OR_FAIL(s, cluster.client().GetJob(running));
  EXPECT_EQ(s.state(), proto::JOB_RUNNING);
  EXPECT_TRUE(cluster.RunsASmallJob(2));

  CommandResult cancel = cluster.Cli({"cancel", running});
  ASSERT_EQ(cancel.exit_code, 0) << cancel.Describe();
  SLUICE_ASSERT_OK(cluster.WaitForState(running, proto::JOB_CANCELED, 10s).status());
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto o = cluster.client().Overview();
        return o.ok() && o->free_slots() == 4;
      },
      10s))
      << "the cancelled job's slots were not given back";
  // Now the whole cluster is free: a job of parallelism 4 runs.
  EXPECT_TRUE(cluster.RunsASmallJob(4));
  SLUICE_EXPECT_OK(cluster.Stop());
}

}  // namespace
}  // namespace sluice::itest
