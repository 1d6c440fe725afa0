// The autoscaler (job.autoscaler.*) on real daemons, with the autoscale job (tests/jobs/
// autoscale_job.cc): a paced source whose rate the test sets through a file, a cheap map and a
// keyed count that takes a fixed time per record. When the rate rises past what one Slow Count
// subtask takes, the autoscaler rescales that vertex, and only that one, to the parallelism the
// rate needs; when the rate falls it scales it back down; when the cluster has too few slots it
// runs the configured request command and rescales once a TaskManager has joined. Each run ends
// with every key counted exactly once.
#include <gmock/gmock.h>
#include <httplib.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "integration/harness.h"
#include "integration/rescale_helpers.h"

namespace sluice::itest {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using nlohmann::json;
using ::testing::HasSubstr;

constexpr int64_t kKeys = 20;
constexpr int64_t kCostUs = 2000;  // Slow Count: 500 records/s per subtask at the most
constexpr int kSource = 0, kFastMap = 1, kSlowCount = 2;

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream(path + ".tmp") << text << "\n";
  fs::rename(path + ".tmp", path);
}

ClusterOptions Options(int task_managers, int slots, std::vector<std::string> more = {}) {
  ClusterOptions o;
  o.task_managers = task_managers;
  o.slots_per_task_manager = slots;
  o.extra_config = {"metrics.fetcher.update-interval=500ms"};
  o.extra_config.insert(o.extra_config.end(), more.begin(), more.end());
  return o;
}

// The autoscaled job's flags: checkpoints, and the autoscaler deciding from 3 s of samples,
// 2 s after each (re)deployment, for Flink's default target utilization (0.7 +- 0.3).
std::vector<std::string> AutoscaledRunFlags(const std::string& checkpoint_dir) {
  return CheckpointedRunFlags(
      checkpoint_dir, 1,
      {"-D", "job.autoscaler.enabled=true", "-D", "job.autoscaler.stabilization.interval=2s", "-D",
       "job.autoscaler.metrics.window=3s"});
}

struct Files {
  std::string rate, stop, output;
  std::vector<std::string> Args() const {
    return {"--keys", absl::StrCat(kKeys), "--rate-file",         rate,       "--stop-file",
            stop,     "--cost-us",         absl::StrCat(kCostUs), "--output", output};
  }
};

Files MakeFiles(const std::string& dir, int rate) {
  Files f{dir + "/rate", dir + "/stop", dir + "/out"};
  WriteFile(f.rate, absl::StrCat(rate));
  return f;
}

// The autoscale job with AutoscaledRunFlags, detached: its id.
absl::StatusOr<std::string> SubmitAutoscaled(TestCluster& cluster, const Files& f) {
  return cluster.SubmitDetached(TestJobLibrary("autoscale_job"),
                                AutoscaledRunFlags(cluster.dir() + "/cp"), f.Args());
}

// Until `pred` holds for the job's parallelism (by vertex id) with every task running.
absl::StatusOr<proto::JobStatus> WaitForParallelism(
    TestCluster& cluster, const std::string& job,
    const std::function<bool(const std::vector<int>&)>& pred, std::chrono::milliseconds timeout) {
  return cluster.WaitUntilOrEnd(
      job,
      [&](const proto::JobStatus& s) { return AllTasksRunning(s) && pred(VertexParallelismOf(s)); },
      timeout);
}

absl::StatusOr<proto::JobStatus> StopAndWait(TestCluster& cluster, const Files& f,
                                             const std::string& job) {
  WriteFile(f.stop, "stop");
  return cluster.WaitForJob(
      job, [](const proto::JobStatus& s) { return IsTerminalJobState(s.state()); }, 60s);
}

TEST(AutoscalingTest, ScalesTheThrottledVertexUpWithTheRateAndDownWhenItFalls) {
  TestCluster cluster(Options(1, 4));
  SLUICE_ASSERT_OK(cluster.Start());
  Files f = MakeFiles(cluster.dir(), 150);
  std::string job;
  SLUICE_ASSIGN_OR_FAIL(job, SubmitAutoscaled(cluster, f));
  SLUICE_ASSIGN_OR_FAIL(proto::JobStatus st, cluster.WaitForAllTasksRunning(job, 30s));
  ASSERT_EQ(VertexParallelismOf(st), (std::vector<int>{1, 1, 1}));
  EXPECT_THAT(cluster.JobManagerLog(), HasSubstr(absl::StrCat("job ", job, ": autoscaler on")));

  // 900 records/s: Slow Count needs ceil(900 / (500 * 0.7)) = 3 subtasks.
  WriteFile(f.rate, "900");
  SLUICE_ASSIGN_OR_FAIL(st,
                        WaitForParallelism(
                            cluster, job, [](const auto& p) { return p[kSlowCount] >= 3; }, 90s));
  EXPECT_EQ(st.state(), proto::JOB_RUNNING) << st.failure();
  EXPECT_EQ(st.graph().vertices(kSource).parallelism(), 1);
  EXPECT_EQ(st.graph().vertices(kFastMap).parallelism(), 1) << "only the throttled vertex scales";
  EXPECT_LE(st.graph().vertices(kSlowCount).parallelism(), 4);
  const int peak = st.graph().vertices(kSlowCount).parallelism();
  ASSERT_GT(st.autoscaler_decisions_size(), 0);
  const proto::AutoscalerDecision& up = st.autoscaler_decisions(0);
  EXPECT_THAT(up.outcome(), HasSubstr("rescaling"));
  EXPECT_EQ(up.to_parallelism().count(kFastMap), 0u);
  EXPECT_THAT(up.description(), HasSubstr("Slow Count"));
  EXPECT_THAT(up.description(), HasSubstr("utilization above the target"));
  EXPECT_THAT(cluster.JobManagerLog(), HasSubstr(absl::StrCat("job ", job, ": autoscaler: ")));

  // The REST job view carries the decisions and the figures.
  httplib::Client http("127.0.0.1", cluster.RestPort());
  http.set_read_timeout(5);
  auto res = http.Get(("/jobs/" + job).c_str());
  ASSERT_TRUE(res && res->status == 200);
  json view = json::parse(res->body);
  ASSERT_TRUE(view["autoscaler"].is_object()) << view;
  ASSERT_FALSE(view["autoscaler"]["decisions"].empty()) << view["autoscaler"];
  EXPECT_THAT(view["autoscaler"]["decisions"][0]["outcome"].get<std::string>(),
              HasSubstr("rescaling"));
  // Each vertex's figures, once the autoscaler has evaluated the new parallelism.
  EXPECT_TRUE(WaitUntil(
      [&] {
        auto r = http.Get(("/jobs/" + job).c_str());
        if (!r || r->status != 200) return false;
        view = json::parse(r->body);
        return view["autoscaler"]["vertices"].size() == 3u;
      },
      30s))
      << view["autoscaler"];

  // 60 records/s: it scales back down (no more than the scale-down factor at a time).
  WriteFile(f.rate, "60");
  SLUICE_ASSIGN_OR_FAIL(
      st, WaitForParallelism(
              cluster, job, [&](const auto& p) { return p[kSlowCount] < peak; }, 90s));
  EXPECT_EQ(st.graph().vertices(kFastMap).parallelism(), 1);
  EXPECT_THAT(st.autoscaler_decisions(0).description(), HasSubstr("utilization below the target"));

  SLUICE_ASSIGN_OR_FAIL(st, StopAndWait(cluster, f, job));
  ASSERT_EQ(st.state(), proto::JOB_FINISHED) << st.failure();
  EXPECT_GE(st.rescales(), 2);
  EXPECT_EQ(st.restarts(), 0);
  // The source emits the keys round robin, starting again from the first after each of the
  // job's redeployments: the counts differ by at most one more than those.
  EXPECT_TRUE(SequenceCountOutputIsExact(f.output, kKeys, 1 + st.rescales() + st.restarts()));
}

TEST(AutoscalingTest, AsksForTaskManagersWhenSlotsRunOutAndRescalesOnceOneJoins) {
  // One TaskManager of 2 slots; the request command notes its arguments in a file.
  const std::string requests =
      fs::temp_directory_path() / absl::StrCat("sluice-requests-", getpid());
  fs::remove(requests);
  TestCluster cluster(Options(
      1, 2, {absl::StrCat("resourcemanager.taskmanager.request-command=echo >>", requests)}));
  SLUICE_ASSERT_OK(cluster.Start());
  Files f = MakeFiles(cluster.dir(), 150);
  std::string job;
  SLUICE_ASSIGN_OR_FAIL(job, SubmitAutoscaled(cluster, f));
  SLUICE_ASSERT_OK(cluster.WaitForAllTasksRunning(job, 30s).status());
  // 1400 records/s needs 4 Slow Count subtasks, so 4 slots (tasks share slots): 2 are there.
  // The autoscaler takes those and asks for TaskManagers; each request is answered here.
  WriteFile(f.rate, "1400");
  int answered = 0;  // request lines answered
  auto answer_requests = [&]() -> absl::Status {
    std::ifstream in(requests);
    std::vector<std::string> lines;
    for (std::string l; std::getline(in, l);) lines.push_back(l);
    for (; answered < static_cast<int>(lines.size()); ++answered) {
      int count = 0;
      const std::string& l = lines[answered];
      if (l.rfind("request ", 0) != 0 || !absl::SimpleAtoi(l.substr(8), &count) || count < 1 ||
          count > 4) {
        return absl::InternalError("unexpected request command line '" + l + "'");
      }
      for (int i = 0; i < count; ++i) RETURN_IF_ERROR(cluster.AddTaskManager().status());
    }
    return absl::OkStatus();
  };
  absl::Status answering = absl::OkStatus();
  SLUICE_ASSIGN_OR_FAIL(proto::JobStatus st, cluster.WaitUntilOrEnd(
                                                 job,
                                                 [&](const proto::JobStatus& s) {
                                                   if (answering.ok())
                                                     answering = answer_requests();
                                                   return AllTasksRunning(s) &&
                                                          VertexParallelismOf(s)[kSlowCount] >= 3;
                                                 },
                                                 120s));
  SLUICE_ASSERT_OK(answering);
  EXPECT_GE(answered, 1) << "the request command was not run";
  EXPECT_GE(cluster.num_task_managers(), 2);
  EXPECT_EQ(st.graph().vertices(kFastMap).parallelism(), 1);
  // The first decision found 2 slots: it rescaled to 2 and asked for the rest.
  bool partial = false;
  for (const auto& d : st.autoscaler_decisions()) {
    if (d.outcome().find("rescaling to what the task slots allow") != std::string::npos &&
        d.outcome().find("asked for") != std::string::npos) {
      partial = true;
    }
  }
  EXPECT_TRUE(partial) << st.DebugString();
  // Once the TaskManagers asked for were there, the rest of that decision started at once (not
  // after another stabilization interval and window, when they could have been released idle).
  bool rest = false;
  for (const auto& d : st.autoscaler_decisions()) {
    rest |= d.outcome().find("the task slots being there") != std::string::npos;
  }
  EXPECT_TRUE(rest) << st.DebugString();
  SLUICE_ASSIGN_OR_FAIL(st, StopAndWait(cluster, f, job));
  ASSERT_EQ(st.state(), proto::JOB_FINISHED) << st.failure();
  // The source emits the keys round robin, starting again from the first after each of the
  // job's redeployments: the counts differ by at most one more than those.
  EXPECT_TRUE(SequenceCountOutputIsExact(f.output, kKeys, 1 + st.rescales() + st.restarts()));
  fs::remove(requests);
}

}  // namespace
}  // namespace sluice::itest
