// The alerting example (examples/alerting) on a real cluster: its windows, alerts, late and
// malformed readings against an answer computed here independently, and the same answer when a
// TaskManager is killed in the middle of the job (exactly-once windows, timers and output).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "integration/harness.h"

namespace sluice::itest {
namespace {

using namespace std::chrono_literals;

constexpr int64_t kWindowMs = 10000;
constexpr double kThreshold = 70;

struct Reading {
  int64_t ts;
  std::string host, metric;
  double value;
};

struct WindowAnswer {
  double sum = 0, max = 0;
  int64_t count = 0;
};

// Readings of 3 hosts x 2 metrics every 50 ms over `seconds`, each up to 1 s off its place in
// the file (well within the job's 3 s out-of-orderness); db-1's cpu runs hot.
std::vector<Reading> MakeReadings(int seconds, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> normal(0, 100), hot(60, 100);
  std::uniform_int_distribution<int> jitter(-1000, 1000);
  std::vector<Reading> out;
  for (int64_t t = 1000; t < seconds * 1000; t += 50) {
    for (const char* host : {"web-1", "web-2", "db-1"}) {
      for (const char* metric : {"cpu", "mem"}) {
        bool is_hot = std::string(host) == "db-1" && std::string(metric) == "cpu";
        double v = std::round((is_hot ? hot(rng) : normal(rng)) * 100) / 100;
        out.push_back({t + jitter(rng), host, metric, v});
      }
    }
  }
  return out;
}

std::string ToCsv(const std::vector<Reading>& rs) {
  std::string s = "# timestamp_ms,host,metric,value\n";
  char v[32];
  for (const Reading& r : rs) {
    std::snprintf(v, sizeof v, "%.2f", r.value);
    absl::StrAppend(&s, r.ts, ",", r.host, ",", r.metric, ",", v, "\n");
  }
  return s;
}

// "end,host,metric" -> the window's answer.
std::map<std::string, WindowAnswer> Expected(const std::vector<Reading>& rs) {
  std::map<std::string, WindowAnswer> want;
  for (const Reading& r : rs) {
    int64_t end = (r.ts / kWindowMs + 1) * kWindowMs;  // timestamps are positive
    WindowAnswer& a = want[absl::StrCat(end, ",", r.host, ",", r.metric)];
    a.max = a.count == 0 ? r.value : std::max(a.max, r.value);
    a.sum += r.value;
    ++a.count;
  }
  return want;
}

// Compares the job's committed output with `want`: one window line per window with count and
// maximum exact and the average to 3 decimals, and an ALERT line exactly for the windows whose
// average is above the threshold.
::testing::AssertionResult OutputMatches(const std::string& dir,
                                         const std::map<std::string, WindowAnswer>& want) {
  std::map<std::string, std::vector<std::string>> windows;
  std::map<std::string, int> alerts;
  for (const auto& [file, lines] : ReadPartFiles(dir)) {
    for (const std::string& l : lines) {
      std::vector<std::string> f = absl::StrSplit(l, ',');
      if (f.size() == 5 && f[0] == "ALERT") {
        ++alerts[absl::StrCat(f[1], ",", f[2], ",", f[3])];
      } else if (f.size() == 6) {
        windows[absl::StrCat(f[0], ",", f[1], ",", f[2])].push_back(l);
      } else {
        return ::testing::AssertionFailure() << "unexpected line in " << file << ": " << l;
      }
    }
  }
  if (windows.size() != want.size()) {
    return ::testing::AssertionFailure()
           << windows.size() << " windows written, " << want.size() << " expected";
  }
  for (const auto& [key, a] : want) {
    auto it = windows.find(key);
    if (it == windows.end()) return ::testing::AssertionFailure() << "window " << key << " missing";
    if (it->second.size() != 1) {
      return ::testing::AssertionFailure()
             << "window " << key << " written " << it->second.size() << " times";
    }
    std::vector<std::string> f = absl::StrSplit(it->second[0], ',');
    double avg = a.sum / static_cast<double>(a.count);
    if (std::stoll(f[5]) != a.count || std::stod(f[4]) != a.max ||
        std::fabs(std::stod(f[3]) - avg) > 0.0011) {
      return ::testing::AssertionFailure() << "window " << it->second[0] << ": expected avg " << avg
                                           << " max " << a.max << " count " << a.count;
    }
    int alerted = alerts.count(key) ? alerts.at(key) : 0;
    if (std::fabs(avg - kThreshold) > 0.01 && alerted != (avg > kThreshold ? 1 : 0)) {
      return ::testing::AssertionFailure()
             << "window " << key << " with average " << avg << " has " << alerted << " alerts";
    }
  }
  return ::testing::AssertionSuccess();
}

std::vector<std::string> JobArgs(const std::string& input, const std::string& output, int rate) {
  return {"--input",
          input,
          "--output",
          output,
          "--threshold",
          absl::StrCat(kThreshold),
          "--out-of-orderness-ms",
          "3000",
          "--window-ms",
          absl::StrCat(kWindowMs),
          "--rate",
          absl::StrCat(rate)};
}

TEST(AlertingTest, WindowsAlertsLateAndMalformedReadings) {
  TestCluster cluster(1, 1);
  SLUICE_ASSERT_OK(cluster.Start());
  std::vector<Reading> readings = MakeReadings(60, 7);
  // Two readings of the first window arrive after the stream has moved on by far more than the
  // out-of-orderness: they are dropped, not counted in any window.
  std::string csv =
      ToCsv(readings) + "2000,web-1,cpu,99\n2500,db-1,cpu,1\nnot a reading\n5,web-1\n";
  const std::string input = cluster.dir() + "/readings.csv", output = cluster.dir() + "/out";
  ASSERT_TRUE(WriteFile(input, csv));

  // 7200 readings at 4000/s: about 2 s, so periodic watermarks pass before the late ones come.
  std::string job;
  SLUICE_ASSIGN_OR_FAIL(job, cluster.SubmitDetached(ExampleLibrary("alerting"), {"-p", "1"},
                                                    JobArgs(input, output, 4000)));
  proto::JobStatus st;
  SLUICE_ASSIGN_OR_FAIL(
      st, cluster.WaitForJob(
              job, [](const proto::JobStatus& s) { return IsTerminalJobState(s.state()); }, 60s));
  ASSERT_EQ(st.state(), proto::JOB_FINISHED) << st.failure();
  EXPECT_TRUE(OutputMatches(output, Expected(readings)));
  std::vector<std::string> malformed;
  for (const auto& [file, lines] : ReadPartFiles(output + "/malformed")) {
    malformed.insert(malformed.end(), lines.begin(), lines.end());
  }
  std::sort(malformed.begin(), malformed.end());
  EXPECT_EQ(malformed, (std::vector<std::string>{"5,web-1", "not a reading"}));
  EXPECT_NE(cluster.TaskManagerLog(0).find("dropped 2 late records"), std::string::npos);
}

TEST(AlertingTest, AKilledTaskManagerChangesNothingInTheOutput) {
  ClusterOptions options;
  options.task_managers = 2;
  options.slots_per_task_manager = 2;
  TestCluster cluster(options);
  SLUICE_ASSERT_OK(cluster.Start());
  std::vector<Reading> readings = MakeReadings(90, 11);
  const std::string input = cluster.dir() + "/readings.csv", output = cluster.dir() + "/out";
  ASSERT_TRUE(WriteFile(input, ToCsv(readings)));

  // 10800 readings at 1500/s per source subtask: about 4 s at parallelism 2.
  std::string job;
  SLUICE_ASSIGN_OR_FAIL(
      job, cluster.SubmitDetached(ExampleLibrary("alerting"),
                                  {"-p", "2", "-D", "execution.checkpointing.interval=300ms", "-D",
                                   "state.checkpoints.dir=" + cluster.dir() + "/checkpoints", "-D",
                                   "restart-strategy.type=fixed-delay", "-D",
                                   "restart-strategy.fixed-delay.attempts=3", "-D",
                                   "restart-strategy.fixed-delay.delay=200ms"},
                                  JobArgs(input, output, 1500)));
  // Kill a TaskManager that runs the job once a checkpoint has completed and windows have fired.
  proto::JobStatus st;
  SLUICE_ASSIGN_OR_FAIL(st, cluster.WaitUntilOrEnd(
                                job,
                                [](const proto::JobStatus& s) {
                                  return s.state() == proto::JOB_RUNNING &&
                                         s.last_checkpoint_id() >= 3;
                                },
                                30s));
  ASSERT_EQ(st.state(), proto::JOB_RUNNING) << "the job ended before the kill: " << st.failure();
  const int victim = cluster.TaskManagerIndex(st.tasks(st.tasks_size() - 1).tm_id());
  ASSERT_GE(victim, 0);
  cluster.KillTaskManager(victim);
  absl::StatusOr<int> spare = cluster.AddTaskManager();
  ASSERT_TRUE(spare.ok()) << spare.status();

  SLUICE_ASSIGN_OR_FAIL(
      st, cluster.WaitForJob(
              job, [](const proto::JobStatus& s) { return IsTerminalJobState(s.state()); }, 90s));
  ASSERT_EQ(st.state(), proto::JOB_FINISHED) << st.failure();
  EXPECT_GE(st.restarts(), 1);
  EXPECT_TRUE(OutputMatches(output, Expected(readings)));
  EXPECT_TRUE(InProgressFiles(output).empty());
}

}  // namespace
}  // namespace sluice::itest
