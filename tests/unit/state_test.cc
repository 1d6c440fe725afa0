// Keyed state on the heap store: each kind per key, keys and key groups kept apart, clear(),
// time-to-live on a controlled clock, and the errors for misuse.
#include "sluice/state.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "sluice/serializer.h"

namespace sluice {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// A store for key groups [10, 13] with a clock the test moves.
class StateTest : public ::testing::Test {
 protected:
  StateTest() : store_(MakeContext()) {}
  KeyContext MakeContext() {
    KeyContext kc;
    kc.first_key_group = 10;
    kc.num_key_groups = 4;
    kc.now_ms = [this] { return now_; };
    return kc;
  }
  void SetKey(const std::string& key, int key_group = 11) {
    KeyContext& kc = store_.key_context();
    kc.key = serialize(key);
    kc.key_group = key_group;
  }
  int64_t now_ = 1000;
  KeyedStateStore store_;
};

TEST_F(StateTest, ValueStatePerKeyWithDefaultAndClear) {
  auto& count = store_.get<ValueState<int64_t>>(ValueStateDescriptor<int64_t>("count", 7));
  SetKey("a");
  EXPECT_EQ(count.value(), 7);
  EXPECT_FALSE(count.has_value());
  count.update(1);
  SetKey("b");
  EXPECT_EQ(count.value(), 7);
  count.update(20);
  SetKey("a");
  EXPECT_EQ(count.value(), 1);
  count.clear();
  EXPECT_FALSE(count.has_value());
  SetKey("b");
  EXPECT_EQ(count.value(), 20);
  EXPECT_EQ(count.size(), 1u);
}

TEST_F(StateTest, EqualKeyBytesInOtherKeyGroupsAreOtherEntries) {
  auto& v = store_.get<ValueState<std::string>>(ValueStateDescriptor<std::string>("v"));
  SetKey("k", 10);
  v.update("ten");
  SetKey("k", 13);
  v.update("thirteen");
  SetKey("k", 10);
  EXPECT_EQ(v.value(), "ten");
  EXPECT_EQ(v.size(), 2u);
}

TEST_F(StateTest, ListState) {
  auto& l = store_.get<ListState<int>>(ListStateDescriptor<int>("l"));
  SetKey("a");
  EXPECT_TRUE(l.get().empty());
  l.add(1);
  l.add(2);
  l.add_all({3, 4});
  EXPECT_THAT(l.get(), ElementsAre(1, 2, 3, 4));
  SetKey("b");
  l.add(9);
  SetKey("a");
  l.update({5});
  EXPECT_THAT(l.get(), ElementsAre(5));
  l.clear();
  EXPECT_TRUE(l.get().empty());
  SetKey("b");
  EXPECT_THAT(l.get(), ElementsAre(9));
}

TEST_F(StateTest, MapState) {
  auto& m = store_.get<MapState<std::string, int>>(MapStateDescriptor<std::string, int>("m"));
  SetKey("a");
  EXPECT_TRUE(m.is_empty());
  m.put("x", 1);
  m.put("y", 2);
  m.put("x", 3);
  EXPECT_EQ(m.get("x"), 3);
  EXPECT_FALSE(m.get("z").has_value());
  EXPECT_TRUE(m.contains("y"));
  EXPECT_EQ(m.entries(), (std::map<std::string, int>{{"x", 3}, {"y", 2}}));
  SetKey("b");
  EXPECT_TRUE(m.is_empty());
  SetKey("a");
  m.remove("x");
  m.remove("y");
  EXPECT_TRUE(m.is_empty());
  EXPECT_EQ(m.size(), 0u);  // an emptied map leaves no entry behind
}

TEST_F(StateTest, ReducingAndAggregatingState) {
  auto& r = store_.get<ReducingState<int>>(ReducingStateDescriptor<int>(
      "max", [](const int& a, const int& b) { return std::max(a, b); }));
  auto& avg = store_.get<AggregatingState<double, std::pair<double, int>, double>>(
      AggregatingStateDescriptor<double, std::pair<double, int>, double>(
          "avg", [] { return std::pair<double, int>(0, 0); },
          [](std::pair<double, int>& acc, const double& v) {
            acc.first += v;
            acc.second += 1;
          },
          [](const std::pair<double, int>& acc) { return acc.first / acc.second; }));
  SetKey("a");
  EXPECT_FALSE(r.get().has_value());
  EXPECT_FALSE(avg.get().has_value());
  for (int v : {3, 9, 4}) {
    r.add(v);
    avg.add(v);
  }
  EXPECT_EQ(r.get(), 9);
  EXPECT_DOUBLE_EQ(*avg.get(), 16.0 / 3);
  SetKey("b");
  avg.add(1);
  EXPECT_DOUBLE_EQ(*avg.get(), 1.0);
  SetKey("a");
  r.clear();
  avg.clear();
  EXPECT_FALSE(r.get().has_value());
  EXPECT_FALSE(avg.get().has_value());
}

TEST_F(StateTest, TtlExpiresEntriesNotWrittenForTheTtl) {
  ValueStateDescriptor<int> d("v");
  d.ttl = StateTtlConfig{std::chrono::milliseconds(100)};
  auto& v = store_.get<ValueState<int>>(d);
  SetKey("a");
  v.update(1);
  now_ += 60;
  EXPECT_EQ(v.value(), 1);  // reading does not renew by default
  now_ += 40;
  EXPECT_FALSE(v.has_value());
  EXPECT_EQ(v.size(), 0u);  // expired entries are removed when met
  v.update(2);
  now_ += 99;
  EXPECT_EQ(v.value(), 2);
}

TEST_F(StateTest, TtlWithUpdateOnReadRenewsOnEveryAccess) {
  ListStateDescriptor<int> d("l");
  d.ttl = StateTtlConfig{std::chrono::milliseconds(100), /*update_on_read=*/true};
  auto& l = store_.get<ListState<int>>(d);
  SetKey("a");
  l.add(1);
  for (int i = 0; i < 5; ++i) {
    now_ += 80;
    EXPECT_THAT(l.get(), ElementsAre(1));
  }
  now_ += 100;
  EXPECT_TRUE(l.get().empty());
}

TEST_F(StateTest, SameNameGivesTheSameStateAndAnotherTypeIsAnError) {
  auto& a = store_.get<ValueState<int>>(ValueStateDescriptor<int>("s"));
  auto& b = store_.get<ValueState<int>>(ValueStateDescriptor<int>("s"));
  EXPECT_EQ(&a, &b);
  EXPECT_EQ(store_.num_states(), 1u);
  try {
    store_.get<ListState<int>>(ListStateDescriptor<int>("s"));
    FAIL() << "no error";
  } catch (const std::invalid_argument& e) {
    EXPECT_THAT(e.what(), HasSubstr("'s'"));
  }
}

TEST_F(StateTest, UseWithoutACurrentKeyOrOutsideTheRangeIsAnError) {
  auto& v = store_.get<ValueState<int>>(ValueStateDescriptor<int>("v"));
  try {
    v.update(1);  // no key set yet
    FAIL() << "no error";
  } catch (const std::logic_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("no current key"));
  }
  SetKey("a", 14);
  try {
    v.update(1);
    FAIL() << "no error";
  } catch (const std::logic_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("key group 14"));
  }
}

}  // namespace
}  // namespace sluice
