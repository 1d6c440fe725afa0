#include "jobmanager/taskmanager_provider.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"

namespace sluice {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;
using Clock = TaskManagerProvider::Clock;
using std::chrono::seconds;

// The provider's commands append their arguments to a file of the test's.
class TaskManagerProviderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    calls_ = (fs::temp_directory_path() / absl::StrCat("sluice-provider-test-", getpid())).string();
    fs::remove(calls_);
    ASSERT_TRUE(conf_.Set("resourcemanager.taskmanager.request-command", "echo >>" + calls_).ok());
    ASSERT_TRUE(conf_.Set("resourcemanager.taskmanager.release-command", "echo >>" + calls_).ok());
    ASSERT_TRUE(conf_.Set("resourcemanager.taskmanager-timeout", "10 s").ok());
    ASSERT_TRUE(conf_.Set("resourcemanager.taskmanager-registration.timeout", "60 s").ok());
  }
  void TearDown() override { fs::remove(calls_); }

  // The lines the commands wrote, once `n` are there (the commands run in the background).
  std::vector<std::string> Calls(size_t n) const {
    std::vector<std::string> lines;
    for (int i = 0; i < 500; ++i) {
      lines.clear();
      std::ifstream in(calls_);
      for (std::string l; std::getline(in, l);) lines.push_back(l);
      if (lines.size() >= n) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return lines;
  }

  std::string calls_;
  Configuration conf_;
  Clock::time_point t0_ = Clock::now();
};

TEST_F(TaskManagerProviderTest, ARequestIsNotRepeatedWhileItsTaskManagersMayStillRegister) {
  TaskManagerProvider p(conf_);
  ASSERT_TRUE(p.can_request());
  EXPECT_TRUE(p.Request(2, /*registered=*/1, "test", t0_));
  EXPECT_FALSE(p.Request(2, 1, "test", t0_ + seconds(5))) << "awaiting the first";
  EXPECT_FALSE(p.Request(1, 2, "test", t0_ + seconds(6))) << "one of two registered";
  // Both registered: a new need is asked for at once.
  EXPECT_TRUE(p.Request(1, 3, "test", t0_ + seconds(7)));
  // Past the registration timeout it is asked for again, registered or not.
  EXPECT_TRUE(p.Request(1, 3, "test", t0_ + seconds(70)));
  // (The commands run in the background: in any order.)
  EXPECT_THAT(Calls(3), UnorderedElementsAre("request 2", "request 1", "request 1"));
  EXPECT_FALSE(p.Request(0, 3, "test", t0_ + seconds(200)));
}

TEST_F(TaskManagerProviderTest, ReleasesATaskManagerIdleForTheTimeoutOnce) {
  TaskManagerProvider p(conf_);
  const std::map<std::string, std::string> idle{{"tm-a", "127.0.0.1:1"}};
  EXPECT_THAT(p.ReleaseIdle(idle, t0_), IsEmpty());
  EXPECT_THAT(p.ReleaseIdle(idle, t0_ + seconds(9)), IsEmpty());
  EXPECT_THAT(p.ReleaseIdle(idle, t0_ + seconds(11)), ElementsAre("tm-a"));
  // The command left it running: it is not released again while it stays idle...
  EXPECT_THAT(p.ReleaseIdle(idle, t0_ + seconds(30)), IsEmpty());
  // ...but after it had a task and was idle for the timeout again, it is.
  EXPECT_THAT(p.ReleaseIdle({}, t0_ + seconds(31)), IsEmpty());
  EXPECT_THAT(p.ReleaseIdle(idle, t0_ + seconds(32)), IsEmpty());
  EXPECT_THAT(p.ReleaseIdle(idle, t0_ + seconds(43)), ElementsAre("tm-a"));
  EXPECT_THAT(Calls(2), ElementsAre("release tm-a 127.0.0.1:1", "release tm-a 127.0.0.1:1"));
}

TEST_F(TaskManagerProviderTest, WithoutCommandsNothingIsAskedOrReleased) {
  TaskManagerProvider p(Configuration{});
  EXPECT_FALSE(p.can_request());
  EXPECT_FALSE(p.Request(1, 0, "test", t0_));
  EXPECT_THAT(p.ReleaseIdle({{"tm-a", "x"}}, t0_ + seconds(3600)), IsEmpty());
}

}  // namespace
}  // namespace sluice
