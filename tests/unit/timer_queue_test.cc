// The timer queue of keyed operators: order (time, key group, key, namespace) whatever the order
// of registration, one timer per (key, namespace, time), removal, the entries of a key group
// written and read back, and a random mix of operations checked against an ordered set.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "sluice/timers.h"

namespace sluice {
namespace {

using Timer = std::tuple<int64_t, int, std::string, std::string>;  // time, key group, key, ns

// Key groups [10, 13].
KeyContext Range() {
  KeyContext ctx;
  ctx.first_key_group = 10;
  ctx.num_key_groups = 4;
  return ctx;
}

Timer Pop(TimerQueue& q) {
  InternalTimer t = q.pop();
  return {t.time, t.key_group, t.key, t.ns};
}

std::vector<Timer> PopAll(TimerQueue& q) {
  std::vector<Timer> out;
  while (!q.empty()) {
    int64_t next = q.next_time();
    out.push_back(Pop(q));
    EXPECT_EQ(std::get<0>(out.back()), next) << "next_time() is the time pop() returns";
  }
  return out;
}

TEST(TimerQueueTest, PopsInTimeThenKeyGroupThenKeyOrderWhateverTheRegistrationOrder) {
  KeyContext ctx = Range();
  TimerQueue q(ctx);
  EXPECT_TRUE(q.empty());
  EXPECT_TRUE(q.add(30, 11, "b", ""));
  EXPECT_TRUE(q.add(10, 12, "a", ""));
  EXPECT_TRUE(q.add(30, 11, "a", "w2"));
  EXPECT_TRUE(q.add(30, 10, "z", ""));
  EXPECT_TRUE(q.add(20, 11, "c", ""));
  EXPECT_TRUE(q.add(30, 11, "a", "w1"));
  EXPECT_TRUE(q.add(5, 11, "d", ""));  // before every timer of its group
  EXPECT_EQ(q.size(), 7u);
  EXPECT_EQ(q.next_time(), 5);
  EXPECT_THAT(PopAll(q), ::testing::ElementsAre(Timer{5, 11, "d", ""}, Timer{10, 12, "a", ""},
                                                Timer{20, 11, "c", ""}, Timer{30, 10, "z", ""},
                                                Timer{30, 11, "a", "w1"}, Timer{30, 11, "a", "w2"},
                                                Timer{30, 11, "b", ""}));
  EXPECT_EQ(q.size(), 0u);
}

TEST(TimerQueueTest, KeepsOneTimerPerKeyNamespaceAndTime) {
  KeyContext ctx = Range();
  TimerQueue q(ctx);
  EXPECT_TRUE(q.add(10, 11, "a", ""));
  EXPECT_TRUE(q.add(20, 11, "a", ""));
  EXPECT_FALSE(q.add(10, 11, "a", "")) << "the first of the group";
  EXPECT_FALSE(q.add(20, 11, "a", "")) << "the last of the group";
  EXPECT_TRUE(q.add(10, 11, "a", "w"));
  EXPECT_TRUE(q.add(10, 12, "a", ""));
  EXPECT_EQ(q.size(), 4u);
  EXPECT_THAT(PopAll(q), ::testing::ElementsAre(Timer{10, 11, "a", ""}, Timer{10, 11, "a", "w"},
                                                Timer{10, 12, "a", ""}, Timer{20, 11, "a", ""}));
  EXPECT_TRUE(q.add(10, 11, "a", "")) << "a fired timer can be registered again";
}

TEST(TimerQueueTest, RemovesTimersAnywhereAndMovesTheHeadOn) {
  KeyContext ctx = Range();
  TimerQueue q(ctx);
  for (int64_t t : {10, 20, 30, 40}) ASSERT_TRUE(q.add(t, 13, "k", ""));
  ASSERT_TRUE(q.add(15, 10, "k", ""));
  EXPECT_FALSE(q.remove(25, 13, "k", ""));
  EXPECT_FALSE(q.remove(20, 13, "other", ""));
  EXPECT_TRUE(q.remove(10, 13, "k", "")) << "the group's first";
  EXPECT_EQ(q.next_time(), 15);
  EXPECT_TRUE(q.remove(30, 13, "k", "")) << "in the middle";
  EXPECT_TRUE(q.remove(15, 10, "k", "")) << "the only one of its group";
  EXPECT_EQ(q.next_time(), 20);
  EXPECT_EQ(q.size(), 2u);
  EXPECT_THAT(PopAll(q), ::testing::ElementsAre(Timer{20, 13, "k", ""}, Timer{40, 13, "k", ""}));
}

TEST(TimerQueueTest, FiresAChainOfTimersThatEachRegisterTheNext) {
  // Every key's timer registers the next one a second later as it fires: the pattern of
  // windows, which the queue serves by appending.
  KeyContext ctx = Range();
  TimerQueue q(ctx);
  for (int k = 0; k < 50; ++k) ASSERT_TRUE(q.add(999, 10 + k % 4, std::to_string(k), ""));
  std::vector<int64_t> times;
  while (!q.empty() && q.next_time() < 100'000) {
    InternalTimer t = q.pop();
    times.push_back(t.time);
    ASSERT_TRUE(q.add(t.time + 1000, t.key_group, t.key, t.ns));
  }
  EXPECT_EQ(times.size(), 50u * 100);
  EXPECT_TRUE(std::is_sorted(times.begin(), times.end()));
  EXPECT_EQ(q.size(), 50u);
}

TEST(TimerQueueTest, WritesAndReadsTheTimersOfAKeyGroup) {
  KeyContext ctx = Range();
  TimerQueue q(ctx);
  q.add(-5, 11, "a", "ns");
  q.add(7, 11, "b", "");
  q.add(3, 12, "c", "");
  q.add(-10, 11, "x", "");
  Pop(q);  // (-10, 11, "x") has fired: not written
  std::string bytes;
  EXPECT_EQ(q.write_entries(11, bytes), 2u);
  std::string none;
  EXPECT_EQ(q.write_entries(10, none), 0u);

  TimerQueue restored(ctx);
  DataInput in(bytes);
  restored.read_entries(11, in, 2);
  EXPECT_THAT(PopAll(restored),
              ::testing::ElementsAre(Timer{-5, 11, "a", "ns"}, Timer{7, 11, "b", ""}));
}

TEST(TimerQueueTest, RejectsKeyGroupsOutsideItsRange) {
  KeyContext ctx = Range();
  TimerQueue q(ctx);
  EXPECT_THROW(q.add(1, 9, "a", ""), std::invalid_argument);
  EXPECT_THROW(q.add(1, 14, "a", ""), std::invalid_argument);
  EXPECT_THROW(q.remove(1, 14, "a", ""), std::invalid_argument);
  EXPECT_TRUE(q.empty());
}

TEST(TimerQueueTest, AgreesWithAnOrderedSetOnRandomOperations) {
  KeyContext ctx = Range();
  TimerQueue q(ctx);
  std::set<Timer> expected;
  std::mt19937_64 rng(42);
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<uint64_t>(n)); };
  int64_t base = 0;  // times mostly rise, as watermarks do
  for (int step = 0; step < 200'000; ++step) {
    int op = pick(10);
    Timer t{base + pick(50) - 10, 10 + pick(4), std::string(1, static_cast<char>('a' + pick(20))),
            pick(4) == 0 ? "w" : ""};
    const auto& [time, kg, key, ns] = t;
    if (op < 5) {
      ASSERT_EQ(q.add(time, kg, key, ns), expected.insert(t).second) << "step " << step;
    } else if (op < 7) {
      ASSERT_EQ(q.remove(time, kg, key, ns), expected.erase(t) == 1) << "step " << step;
    } else if (!expected.empty()) {
      // The earliest time, then the smallest key group of that time, and so on.
      ASSERT_EQ(q.next_time(), std::get<0>(*expected.begin())) << "step " << step;
      ASSERT_EQ(Pop(q), *expected.begin()) << "step " << step;
      expected.erase(expected.begin());
      base += pick(3);
    }
    ASSERT_EQ(q.size(), expected.size());
  }
  EXPECT_THAT(PopAll(q), ::testing::ElementsAreArray(expected));
}

}  // namespace
}  // namespace sluice
