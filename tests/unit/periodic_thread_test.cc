#include "common/periodic_thread.h"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"

namespace sluice {
namespace {

TEST(PeriodicThreadTest, RunsEveryPeriodUntilStopped) {
  std::atomic<int> runs{0};
  PeriodicThread t("test", absl::Milliseconds(5), [&] { runs++; });
  absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (runs < 3 && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(1));
  ASSERT_GE(runs, 3);
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
  EXPECT_TRUE(stopped.WaitForNotificationWithTimeout(absl::Seconds(30)));
  t.Wake();  // a loop that went on would run the body again
  absl::SleepFor(absl::Milliseconds(50));
  EXPECT_EQ(runs, 1);
}

TEST(PeriodicThreadTest, ConcurrentStopsJoinOnceAndAllReturnAfterTheThreadEnded) {
  for (int round = 0; round < 50; ++round) {
    std::atomic<bool> running{false};
    PeriodicThread t("test", absl::Microseconds(10), [&] {
      running = true;
      absl::SleepFor(absl::Microseconds(200));
      running = false;
    });
    absl::SleepFor(absl::Microseconds(50 * (round % 5)));
    std::thread other([&] { t.Stop(); });
    t.Stop();
    EXPECT_FALSE(running) << "Stop() returned while the body ran";
    other.join();
  }
}

TEST(PeriodicThreadTest, StopIsIdempotent) {
  PeriodicThread t("test", absl::Milliseconds(1), [] {});
  t.Stop();
  t.Stop();
}

}  // namespace
}  // namespace sluice
