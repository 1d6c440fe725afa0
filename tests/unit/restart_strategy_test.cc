#include "jobmanager/restart_strategy.h"

#include <gtest/gtest.h>

namespace sluice {
namespace {

using Millis = RestartStrategy::Millis;
using Clock = RestartStrategy::Clock;

Configuration Conf(std::initializer_list<std::pair<std::string, std::string>> kv) {
  Configuration c;
  for (const auto& [k, v] : kv) EXPECT_TRUE(c.Set(k, v).ok()) << k;
  return c;
}

TEST(RestartStrategyTest, DefaultsFollowCheckpointingAsFlinkDoes) {
  Clock::time_point t0;
  auto without = RestartStrategy::Create(Configuration(), /*checkpointing=*/false);
  EXPECT_FALSE(without->OnFailure(t0));
  EXPECT_EQ(without->Describe(), "restart-strategy.type is none");
  auto with = RestartStrategy::Create(Configuration(), /*checkpointing=*/true);
  EXPECT_EQ(with->Describe(), "exponential-delay");
  EXPECT_TRUE(with->OnFailure(t0));
}

TEST(RestartStrategyTest, FixedDelayAllowsItsAttemptsThenFails) {
  auto s = RestartStrategy::Create(Conf({{"restart-strategy.type", "fixed-delay"},
                                         {"restart-strategy.fixed-delay.attempts", "2"},
                                         {"restart-strategy.fixed-delay.delay", "250 ms"}}),
                                   false);
  Clock::time_point t0;
  EXPECT_EQ(s->OnFailure(t0), Millis(250));
  EXPECT_EQ(s->OnFailure(t0 + Millis(1)), Millis(250));
  EXPECT_FALSE(s->OnFailure(t0 + Millis(2)));
  EXPECT_EQ(s->Describe(), "fixed-delay allows 2 restarts");
}

TEST(RestartStrategyTest, ExponentialDelayGrowsToItsMaximumAndResetsAfterQuiet) {
  ExponentialDelayRestartStrategy::Options o;
  o.initial = Millis(100);
  o.max = Millis(350);
  o.multiplier = 2;
  o.jitter = 0;
  o.reset_after = Millis(10000);
  ExponentialDelayRestartStrategy s(o, /*seed=*/1);
  Clock::time_point t;
  EXPECT_EQ(s.OnFailure(t), Millis(100));
  EXPECT_EQ(s.OnFailure(t += Millis(1)), Millis(200));
  EXPECT_EQ(s.OnFailure(t += Millis(1)), Millis(350));
  EXPECT_EQ(s.OnFailure(t += Millis(1)), Millis(350));
  // A quiet spell of reset_after brings the delay back to the start.
  EXPECT_EQ(s.OnFailure(t += Millis(10000)), Millis(100));
}

TEST(RestartStrategyTest, ExponentialDelayJitterStaysWithinItsFraction) {
  ExponentialDelayRestartStrategy::Options o;
  o.initial = Millis(1000);
  o.max = Millis(1000);
  o.jitter = 0.1;
  ExponentialDelayRestartStrategy s(o, /*seed=*/7);
  Clock::time_point t;
  bool varied = false;
  for (int i = 0; i < 100; ++i) {
    auto d = s.OnFailure(t += Millis(1));
    ASSERT_TRUE(d);
    EXPECT_GE(d->count(), 900);
    EXPECT_LE(d->count(), 1100);
    varied |= d->count() != 1000;
  }
  EXPECT_TRUE(varied);
}

TEST(RestartStrategyTest, FailureRateCountsOnlyFailuresWithinTheInterval) {
  FailureRateRestartStrategy s(/*max_failures=*/2, /*interval=*/Millis(1000), /*delay=*/Millis(5));
  Clock::time_point t;
  EXPECT_EQ(s.OnFailure(t), Millis(5));
  EXPECT_EQ(s.OnFailure(t + Millis(100)), Millis(5));
  EXPECT_FALSE(s.OnFailure(t + Millis(200)));  // a third within one second
  FailureRateRestartStrategy spaced(2, Millis(1000), Millis(5));
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(spaced.OnFailure(t + Millis(600 * i))) << i;
  EXPECT_EQ(s.Describe(), "failure-rate allows 2 failures per 1000 ms");
}

}  // namespace
}  // namespace sluice
