// Event time across a real cluster: watermarks travel with the records through the network, a
// task's watermark is the minimum over its inputs, and a source subtask without records marks
// itself idle so that it does not hold back the others (tests/jobs/event_time_job.cc).
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "integration/harness.h"

namespace sluice::itest {
namespace {

using namespace std::chrono_literals;

constexpr int kEvents = 10000, kKeys = 5, kWindowMs = 1000;

// Every output line, over all part files.
std::vector<std::string> OutputLines(const std::string& dir) {
  std::vector<std::string> lines;
  for (const auto& [file, ls] : ReadPartFiles(dir)) lines.insert(lines.end(), ls.begin(), ls.end());
  return lines;
}

// The lines of every window ending at or before `last_end`, as the job must write them: each key
// has kEvents / kKeys / (kEvents / kWindowMs) events per window.
std::map<std::string, std::string> Expected(int64_t last_end) {
  std::map<std::string, std::string> want;
  for (int k = 0; k < kKeys; ++k) {
    for (int64_t end = kWindowMs; end <= last_end; end += kWindowMs) {
      std::string key = absl::StrCat("k", k, ",", end);
      want[key] = absl::StrCat(key, ",", kWindowMs / kKeys);
    }
  }
  return want;
}

std::map<std::string, std::string> ByWindow(const std::vector<std::string>& lines) {
  std::map<std::string, std::string> got;
  for (const std::string& l : lines) {
    std::vector<std::string> f = absl::StrSplit(l, ',');
    got[f.size() == 3 ? f[0] + "," + f[1] : l] = l;
  }
  return got;
}

class WatermarkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SLUICE_ASSERT_OK(cluster_.Start());
    out_ = cluster_.dir() + "/out";
    release_ = cluster_.dir() + "/release";
  }

  absl::StatusOr<std::string> Submit(int64_t idleness_ms) {
    return cluster_.SubmitDetached(
        TestJobLibrary("event_time_job"), {"-p", "2"},
        {"--events", std::to_string(kEvents), "--keys", std::to_string(kKeys), "--window-ms",
         std::to_string(kWindowMs), "--idleness-ms", std::to_string(idleness_ms), "--pace", "10",
         "--release", release_, "--output", out_});
  }

  TestCluster cluster_{1, 2};
  std::string out_, release_;
};

TEST_F(WatermarkTest, AnIdleSourceSubtaskDoesNotHoldBackTheWatermark) {
  std::string job;
  SLUICE_ASSIGN_OR_FAIL(job, Submit(300));
  // Source subtask 1 has no records and waits for the release file: it goes idle while subtask 0
  // still sends events (about 1 s of them), and then waits too. Windows up to the last one close
  // while both still run.
  auto closed = Expected(kEvents - kWindowMs);
  bool fired = WaitUntil([&] { return ByWindow(OutputLines(out_)).size() >= closed.size(); }, 30s);
  ASSERT_TRUE(fired) << "windows fired: " << OutputLines(out_).size() << " of " << closed.size();
  proto::JobStatus status;
  SLUICE_ASSIGN_OR_FAIL(status, cluster_.client().GetJob(job));
  EXPECT_EQ(status.state(), proto::JOB_RUNNING)
      << "the windows must close while the sources still run";
  EXPECT_EQ(ByWindow(OutputLines(out_)), closed);

  ASSERT_TRUE(WriteFile(release_, ""));
  SLUICE_ASSIGN_OR_FAIL(status, cluster_.WaitForState(job, proto::JOB_FINISHED, 30s));
  // The end of input sends the maximum watermark: the last window fires too, each window once.
  std::vector<std::string> lines = OutputLines(out_);
  EXPECT_EQ(lines.size(), static_cast<size_t>(kEvents / kWindowMs * kKeys));
  EXPECT_EQ(ByWindow(lines), Expected(kEvents));
}

TEST_F(WatermarkTest, WithoutIdlenessASilentSubtaskHoldsBackEveryWindow) {
  std::string job;
  SLUICE_ASSIGN_OR_FAIL(job, Submit(0));
  proto::JobStatus status;
  SLUICE_ASSIGN_OR_FAIL(status, cluster_.WaitForAllTasksRunning(job, 20s));
  // Long enough for subtask 0 to send everything and several periodic watermarks.
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(OutputLines(out_).size(), 0u) << "a window fired past a subtask that sent no watermark";

  ASSERT_TRUE(WriteFile(release_, ""));
  SLUICE_ASSIGN_OR_FAIL(status, cluster_.WaitForState(job, proto::JOB_FINISHED, 30s));
  EXPECT_EQ(ByWindow(OutputLines(out_)), Expected(kEvents));
}

}  // namespace
}  // namespace sluice::itest
