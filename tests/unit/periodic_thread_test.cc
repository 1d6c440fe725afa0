#include "common/periodic_thread.h"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"

namespace sluice {
namespace {

TEST(PeriodicThreadTest, RunsEveryPeriodUntilStopped) {
  std::atomic<int> runs{0};
  PeriodicThread t("test", absl::Milliseconds(5), [&] { runs++; });
  while (runs < 3) absl::SleepFor(absl::Milliseconds(1));
  t.Stop();
  int after = runs;
  absl::SleepFor(absl::Milliseconds(30));
  EXPECT_EQ(runs, after);
  EXPECT_TRUE(t.stopping());
}

TEST(PeriodicThreadTest, WakeRunsTheBodyBeforeThePeriod) {
  absl::Notification ran;
  PeriodicThread t("test", absl::Hours(1), [&] {
    if (!ran.HasBeenNotified()) ran.Notify();
  });
  t.Wake();
  EXPECT_TRUE(ran.WaitForNotificationWithTimeout(absl::Seconds(30)));
}

TEST(PeriodicThreadTest, FirstRunAtOnceDoesNotWaitForThePeriod) {
  absl::Notification ran;
  PeriodicThread t(
      "test", absl::Hours(1),
      [&] {
        if (!ran.HasBeenNotified()) ran.Notify();
      },
      PeriodicThread::FirstRun::kAtOnce);
  EXPECT_TRUE(ran.WaitForNotificationWithTimeout(absl::Seconds(30)));
}

TEST(PeriodicThreadTest, StopFromAFirstRunAtOnceDoesNotJoinItself) {
  std::atomic<int> runs{0};
  absl::Notification stopped;
  std::unique_ptr<PeriodicThread> t;
  absl::Mutex mu;  // orders the test's write of `t` before the body's read
  mu.Lock();
  t = std::make_unique<PeriodicThread>(
      "test", absl::Milliseconds(1),
      [&] {
        runs++;
        PeriodicThread* self;
        {
          absl::MutexLock lock(&mu);
          self = t.get();
        }
        self->Stop();
        stopped.Notify();
      },
      PeriodicThread::FirstRun::kAtOnce);
  mu.Unlock();
  EXPECT_TRUE(stopped.WaitForNotificationWithTimeout(absl::Seconds(30)));
  absl::SleepFor(absl::Milliseconds(20));
  EXPECT_EQ(runs, 1);
  t.reset();
}

TEST(PeriodicThreadTest, StopFromTheBodyDoesNotJoinItself) {
  std::atomic<int> runs{0};
  PeriodicThread* self = nullptr;
  absl::Notification stopped;
  PeriodicThread t("test", absl::Hours(1), [&] {
    runs++;
    self->Stop();
    stopped.Notify();
  });
  self = &t;
  t.Wake();
  t.Wake();  // a second wake while stopping runs nothing more
  EXPECT_TRUE(stopped.WaitForNotificationWithTimeout(absl::Seconds(30)));
  absl::SleepFor(absl::Milliseconds(20));
  EXPECT_EQ(runs, 1);
}

TEST(PeriodicThreadTest, StopIsIdempotent) {
  PeriodicThread t("test", absl::Milliseconds(1), [] {});
  t.Stop();
  t.Stop();
}

}  // namespace
}  // namespace sluice
