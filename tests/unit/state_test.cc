// Keyed state on every backend (heap; RocksDB with full and with incremental snapshots): each
// kind per key, keys and key groups kept apart, clear(), time-to-live on a controlled clock, the
// errors for misuse, and snapshot and restore (lazy per state, TTL timestamps kept, states never
// declared again written back unchanged, rescaling). Operator list state: snapshot, restore and
// misuse.
#include "sluice/state.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>

#include "common/state_redistribution.h"
#include "sluice/keys.h"
#include "sluice/serializer.h"
#include "test_backends.h"

namespace sluice {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// A backend for key groups [10, 13] with a clock the test moves, on each backend kind.
class StateTest : public ::testing::TestWithParam<testing_support::BackendKind> {
 protected:
  StateTest() : maker_(GetParam()), owner_(MakeBackend()), store_(*owner_) {}
  std::unique_ptr<internal::KeyedStateBackend> MakeBackend() {
    return maker_.Make(KeyGroupRange{10, 13}, [this] { return now_; });
  }
  // A completed snapshot of `b` for the next checkpoint id.
  internal::OperatorSnapshot Snap(internal::KeyedStateBackend& b) {
    return maker_.Snapshot(b, ++checkpoint_id_);
  }
  // Whether snapshots hold canonical key groups (the heap's, and RocksDB's full ones).
  bool canonical() const { return !maker_.incremental(); }
  static void SetKey(internal::KeyedStateBackend& b, const std::string& key, int key_group = 11) {
    b.set_current_key(serialize(key), key_group);
  }
  void SetKey(const std::string& key, int key_group = 11) { SetKey(store_, key, key_group); }
  int64_t now_ = 1000;
  int64_t checkpoint_id_ = 0;
  testing_support::BackendMaker maker_;
  std::unique_ptr<internal::KeyedStateBackend> owner_;
  internal::KeyedStateBackend& store_;
};
INSTANTIATE_TEST_SUITE_P(Backends, StateTest, ::testing::ValuesIn(testing_support::AllBackends()),
                         testing_support::BackendParamName());

TEST_P(StateTest, ValueStatePerKeyWithDefaultAndClear) {
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

TEST_P(StateTest, EqualKeyBytesInOtherKeyGroupsAreOtherEntries) {
  auto& v = store_.get<ValueState<std::string>>(ValueStateDescriptor<std::string>("v"));
  SetKey("k", 10);
  v.update("ten");
  SetKey("k", 13);
  v.update("thirteen");
  SetKey("k", 10);
  EXPECT_EQ(v.value(), "ten");
  EXPECT_EQ(v.size(), 2u);
}

TEST_P(StateTest, ListState) {
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

TEST_P(StateTest, MapState) {
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

TEST_P(StateTest, ReducingAndAggregatingState) {
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

TEST_P(StateTest, TtlExpiresEntriesNotWrittenForTheTtl) {
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

TEST_P(StateTest, TtlWithUpdateOnReadRenewsOnEveryAccess) {
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

TEST_P(StateTest, SameNameGivesTheSameStateAndAnotherTypeIsAnError) {
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

TEST_P(StateTest, UseWithoutACurrentKeyOrOutsideTheRangeIsAnError) {
  auto& v = store_.get<ValueState<int>>(ValueStateDescriptor<int>("v"));
  // Every kind of access, each twice: a table that remembers its last lookup must not skip the
  // checks the second time.
  const std::vector<std::function<void()>> accesses = {
      [&] { v.update(1); }, [&] { (void)v.value(); }, [&] { (void)v.has_value(); },
      [&] { v.clear(); }};
  for (int round = 0; round < 2; ++round) {
    for (const auto& access : accesses) {
      try {
        access();  // no key set yet
        FAIL() << "no error";
      } catch (const std::logic_error& e) {
        EXPECT_THAT(e.what(), HasSubstr("no current key"));
      }
    }
  }
  SetKey("a", 11);
  v.update(7);
  SetKey("b", 14);
  for (int round = 0; round < 2; ++round) {
    for (const auto& access : accesses) {
      try {
        access();
        FAIL() << "no error";
      } catch (const std::logic_error& e) {
        EXPECT_THAT(e.what(), HasSubstr("key group 14"));
      }
    }
  }
  SetKey("a", 11);
  EXPECT_EQ(v.value(), 7) << "the failed accesses changed another key's entry";
  store_.clear_current_key();
  EXPECT_THROW((void)v.value(), std::logic_error);
}

// ---------------------------------------------------------------------------------------------
// Snapshot and restore.

using Avg = AggregatingStateDescriptor<double, std::pair<double, int>, double>;
Avg AvgDescriptor() {
  return Avg(
      "avg", [] { return std::pair<double, int>(0, 0); },
      [](std::pair<double, int>& acc, const double& v) {
        acc.first += v;
        acc.second += 1;
      },
      [](const std::pair<double, int>& acc) { return acc.first / acc.second; });
}
ReducingStateDescriptor<int> MaxDescriptor() {
  return ReducingStateDescriptor<int>("max",
                                      [](const int& a, const int& b) { return std::max(a, b); });
}

TEST_P(StateTest, SnapshotAndRestoreEveryStateKind) {
  auto& v = store_.get<ValueState<std::string>>(ValueStateDescriptor<std::string>("v"));
  auto& l = store_.get<ListState<int>>(ListStateDescriptor<int>("l"));
  auto& m = store_.get<MapState<std::string, int>>(MapStateDescriptor<std::string, int>("m"));
  auto& r = store_.get<ReducingState<int>>(MaxDescriptor());
  auto& a = store_.get<AggregatingState<double, std::pair<double, int>, double>>(AvgDescriptor());
  SetKey("a", 10);
  v.update("alpha");
  l.add_all({1, 2, 3});
  m.put("x", 1);
  r.add(5);
  a.add(2);
  a.add(4);
  SetKey("b", 13);
  v.update("beta");
  m.put("y", 2);
  m.put("z", 3);
  SetKey("c", 12);
  l.add(7);
  l.clear();  // nothing left for c

  internal::OperatorSnapshot snap = Snap(store_);
  EXPECT_THAT(snap.lists, IsEmpty());
  if (canonical()) {
    std::vector<int> groups;
    for (const auto& [kg, bytes] : snap.key_groups) groups.push_back(kg);
    EXPECT_THAT(groups, ElementsAre(10, 13)) << "a key group without entries is left out";
  } else {
    ASSERT_EQ(snap.native.size(), 1u);
    EXPECT_EQ(snap.native[0].first_key_group, 10);
    EXPECT_EQ(snap.native[0].last_key_group, 13);
  }

  auto restored_owner = MakeBackend();
  internal::KeyedStateBackend& restored = *restored_owner;
  restored.restore(snap);
  auto& v2 = restored.get<ValueState<std::string>>(ValueStateDescriptor<std::string>("v"));
  auto& l2 = restored.get<ListState<int>>(ListStateDescriptor<int>("l"));
  auto& m2 = restored.get<MapState<std::string, int>>(MapStateDescriptor<std::string, int>("m"));
  auto& r2 = restored.get<ReducingState<int>>(MaxDescriptor());
  auto& a2 =
      restored.get<AggregatingState<double, std::pair<double, int>, double>>(AvgDescriptor());
  SetKey(restored, "a", 10);
  EXPECT_EQ(v2.value(), "alpha");
  EXPECT_THAT(l2.get(), ElementsAre(1, 2, 3));
  EXPECT_EQ(m2.entries(), (std::map<std::string, int>{{"x", 1}}));
  EXPECT_EQ(r2.get(), 5);
  EXPECT_DOUBLE_EQ(*a2.get(), 3.0);
  a2.add(9);  // the accumulator came back, not only its result
  EXPECT_DOUBLE_EQ(*a2.get(), 5.0);
  SetKey(restored, "b", 13);
  EXPECT_EQ(v2.value(), "beta");
  EXPECT_THAT(l2.get(), IsEmpty());
  EXPECT_EQ(m2.entries(), (std::map<std::string, int>{{"y", 2}, {"z", 3}}));
  SetKey(restored, "c", 12);
  EXPECT_FALSE(v2.has_value());
  EXPECT_THAT(l2.get(), IsEmpty());
  EXPECT_EQ(l2.size(), 1u);
  EXPECT_EQ(v2.size(), 2u);

  // The restored backend snapshots the same key groups, of the same sizes (entries within a
  // group may come in another order).
  internal::OperatorSnapshot again = Snap(restored);
  if (!canonical()) return;
  ASSERT_EQ(again.key_groups.size(), snap.key_groups.size());
  for (const auto& [kg, bytes] : snap.key_groups) {
    EXPECT_EQ(again.key_groups.at(kg).size(), bytes.size()) << kg;
  }
}

TEST_P(StateTest, RestoreKeepsTtlTimestamps) {
  ValueStateDescriptor<int> d("v");
  d.ttl = StateTtlConfig{std::chrono::milliseconds(100)};
  auto& v = store_.get<ValueState<int>>(d);
  SetKey("a");
  v.update(1);  // written at 1000: expires at 1100
  now_ = 1050;
  SetKey("b");
  v.update(2);  // expires at 1150
  internal::OperatorSnapshot snap = Snap(store_);

  auto restored_owner = MakeBackend();
  internal::KeyedStateBackend& restored = *restored_owner;
  restored.restore(snap);
  auto& v2 = restored.get<ValueState<int>>(d);
  now_ = 1099;
  SetKey(restored, "a");
  EXPECT_EQ(v2.value(), 1);
  now_ = 1100;
  EXPECT_FALSE(v2.has_value()) << "the restore renewed the entry's time-to-live";
  SetKey(restored, "b");
  EXPECT_EQ(v2.value(), 2);
  now_ = 1150;
  EXPECT_FALSE(v2.has_value());
}

TEST_P(StateTest, ExpiredEntriesAreLeftOutOfSnapshots) {
  ValueStateDescriptor<int> d("v");
  d.ttl = StateTtlConfig{std::chrono::milliseconds(100)};
  auto& v = store_.get<ValueState<int>>(d);
  SetKey("a", 10);
  v.update(1);
  now_ += 100;
  SetKey("b", 11);
  v.update(2);
  internal::OperatorSnapshot snap = Snap(store_);
  if (canonical()) {
    EXPECT_EQ(snap.key_groups.count(10), 0u);
    EXPECT_EQ(snap.key_groups.count(11), 1u);
  }
  // Restored, the expired entry stays absent.
  auto restored_owner = MakeBackend();
  restored_owner->restore(snap);
  auto& v2 = restored_owner->get<ValueState<int>>(d);
  SetKey(*restored_owner, "a", 10);
  EXPECT_FALSE(v2.has_value());
  SetKey(*restored_owner, "b", 11);
  EXPECT_EQ(v2.value(), 2);
}

// A snapshot is the state as of its synchronous part: what the task writes while the deferred
// part runs (values overwritten in place at the same size or smaller, grown, removed, new keys)
// is not in it. RocksDB overwrites an entry of its write buffer in place, so this holds only
// because the buffer is switched before the snapshot is taken.
TEST_P(StateTest, WritesAfterTheSynchronousPartAreNotInTheSnapshot) {
  auto& v = store_.get<ValueState<std::string>>(ValueStateDescriptor<std::string>("v"));
  auto& c = store_.get<ValueState<int64_t>>(ValueStateDescriptor<int64_t>("count"));
  constexpr int kKeys = 200;
  auto key = [](int i) { return "k" + std::to_string(i); };
  for (int i = 0; i < kKeys; ++i) {
    SetKey(key(i), 10 + i % 4);
    v.update("before-" + std::to_string(i));
    c.update(i);
  }
  internal::OperatorSnapshot snap;
  store_.snapshot(snap, ++checkpoint_id_);
  for (int i = 0; i < kKeys; ++i) {
    SetKey(key(i), 10 + i % 4);
    switch (i % 4) {
      case 0:
        v.update("after!-" + std::to_string(i));  // the same size
        break;
      case 1:
        v.update("a");  // smaller
        break;
      case 2:
        v.update(std::string(100, 'z'));  // larger
        break;
      case 3:
        v.clear();
        break;
    }
    c.update(-1);
  }
  SetKey("new", 12);
  v.update("new");
  maker_.Complete(snap, checkpoint_id_);

  auto restored_owner = MakeBackend();
  internal::KeyedStateBackend& restored = *restored_owner;
  restored.restore(snap);
  auto& v2 = restored.get<ValueState<std::string>>(ValueStateDescriptor<std::string>("v"));
  auto& c2 = restored.get<ValueState<int64_t>>(ValueStateDescriptor<int64_t>("count"));
  for (int i = 0; i < kKeys; ++i) {
    SetKey(restored, key(i), 10 + i % 4);
    ASSERT_EQ(v2.value(), "before-" + std::to_string(i)) << key(i);
    ASSERT_EQ(c2.value(), i) << key(i);
  }
  SetKey(restored, "new", 12);
  EXPECT_FALSE(v2.has_value());
}

// A key used record after record (RocksDB keeps its value as an object and writes it back
// later): its last change is in the next snapshot and in every count and scan, and a change
// after the snapshot is not.
TEST_P(StateTest, TheLastChangeOfAKeyUsedRecordAfterRecordIsInTheSnapshot) {
  auto& c = store_.get<ValueState<int64_t>>(ValueStateDescriptor<int64_t>("count"));
  auto& l = store_.get<ListState<int>>(ListStateDescriptor<int>("list"));
  std::vector<int> want_list;
  for (int i = 0; i < 1000; ++i) {
    SetKey("hot", 11);  // a new current key for every record, the same key
    c.update(c.value() + 1);
    l.add(i);
    want_list.push_back(i);
    if (i % 100 == 0) {
      SetKey("k" + std::to_string(i), 10 + i % 4);
      c.update(i);
    }
  }
  EXPECT_EQ(c.size(), 11u);
  std::vector<std::string> keys;
  store_.for_each_key([&](const std::string& k) { keys.push_back(deserialize<std::string>(k)); });
  EXPECT_EQ(keys.size(), 11u);
  internal::OperatorSnapshot snap;
  store_.snapshot(snap, ++checkpoint_id_);
  SetKey("hot", 11);
  c.update(-5);
  l.add(-5);
  SetKey("k0", 10);
  c.clear();
  maker_.Complete(snap, checkpoint_id_);

  auto restored_owner = MakeBackend();
  restored_owner->restore(snap);
  auto& c2 = restored_owner->get<ValueState<int64_t>>(ValueStateDescriptor<int64_t>("count"));
  auto& l2 = restored_owner->get<ListState<int>>(ListStateDescriptor<int>("list"));
  SetKey(*restored_owner, "hot", 11);
  EXPECT_EQ(c2.value(), 1000);
  EXPECT_EQ(l2.get(), want_list);
  for (int i = 0; i < 1000; i += 100) {
    SetKey(*restored_owner, "k" + std::to_string(i), 10 + i % 4);
    EXPECT_EQ(c2.value(), i);
  }
  EXPECT_EQ(c2.size(), 11u);
}

// RocksDB names a column family "default" itself; a state of that name (or of the name its
// column family would otherwise get) is a state like any other, in snapshots too.
TEST_P(StateTest, StatesNamedLikeRocksDbsDefaultFamilyAreKept) {
  const std::vector<std::string> names = {"default", std::string("\x01") + "default", "a"};
  for (size_t i = 0; i < names.size(); ++i) {
    SetKey("k", 10);
    store_.get<ValueState<int>>(ValueStateDescriptor<int>(names[i])).update(static_cast<int>(i));
  }
  internal::OperatorSnapshot snap = Snap(store_);
  auto restored_owner = MakeBackend();
  restored_owner->restore(snap);
  for (size_t i = 0; i < names.size(); ++i) {
    auto& v = restored_owner->get<ValueState<int>>(ValueStateDescriptor<int>(names[i]));
    SetKey(*restored_owner, "k", 10);
    ASSERT_TRUE(v.has_value()) << names[i];
    EXPECT_EQ(v.value(), static_cast<int>(i)) << names[i];
  }
}

TEST_P(StateTest, StatesNotDeclaredAgainAreWrittenBackUnchanged) {
  auto& kept = store_.get<ValueState<int>>(ValueStateDescriptor<int>("kept"));
  auto& dropped =
      store_.get<MapState<int, std::string>>(MapStateDescriptor<int, std::string>("old"));
  SetKey("a", 10);
  kept.update(1);
  dropped.put(1, "one");
  SetKey("b", 12);
  dropped.put(2, "two");
  internal::OperatorSnapshot first = Snap(store_);

  // A new version of the function declares only "kept"; "old" travels along untouched.
  auto second_owner = MakeBackend();
  internal::KeyedStateBackend& second = *second_owner;
  second.restore(first);
  auto& kept2 = second.get<ValueState<int>>(ValueStateDescriptor<int>("kept"));
  EXPECT_EQ(second.num_states(), 1u);
  SetKey(second, "a", 10);
  kept2.update(10);
  internal::OperatorSnapshot snap2 = Snap(second);
  if (canonical()) {
    EXPECT_EQ(snap2.key_groups.at(12), first.key_groups.at(12)) << "only 'old' lives in group 12";
  }

  auto third_owner = MakeBackend();
  internal::KeyedStateBackend& third = *third_owner;
  third.restore(snap2);
  auto& old3 = third.get<MapState<int, std::string>>(MapStateDescriptor<int, std::string>("old"));
  auto& kept3 = third.get<ValueState<int>>(ValueStateDescriptor<int>("kept"));
  SetKey(third, "a", 10);
  EXPECT_EQ(kept3.value(), 10);
  EXPECT_EQ(old3.get(1), "one");
  SetKey(third, "b", 12);
  EXPECT_EQ(old3.get(2), "two");
  EXPECT_FALSE(kept3.has_value());
}

TEST_P(StateTest, RestoreAfterDeclarationFillsTheDeclaredState) {
  auto& v = store_.get<ValueState<int>>(ValueStateDescriptor<int>("v"));
  SetKey("a");
  v.update(3);
  internal::OperatorSnapshot snap = Snap(store_);
  auto other_owner = MakeBackend();
  internal::KeyedStateBackend& other = *other_owner;
  auto& v2 = other.get<ValueState<int>>(ValueStateDescriptor<int>("v"));
  other.restore(snap);
  SetKey(other, "a");
  EXPECT_EQ(v2.value(), 3);
}

TEST_P(StateTest, RestoreRejectsKeyGroupsOutsideTheRangeAndMalformedBytes) {
  internal::OperatorSnapshot outside;
  outside.key_groups[14] = "x";
  try {
    store_.restore(outside);
    FAIL() << "no error";
  } catch (const std::invalid_argument& e) {
    EXPECT_THAT(e.what(), HasSubstr("key group 14"));
    EXPECT_THAT(e.what(), HasSubstr("[10, 13]"));
  }

  // A value that does not deserialize as the declared type names the state.
  auto& v = store_.get<ValueState<std::string>>(ValueStateDescriptor<std::string>("s"));
  SetKey("a");
  v.update("a long string value");
  internal::OperatorSnapshot snap = Snap(store_);
  auto other_owner = MakeBackend();
  internal::KeyedStateBackend& other = *other_owner;
  other.restore(snap);
  try {
    other.get<ValueState<int>>(ValueStateDescriptor<int>("s"));
    FAIL() << "no error";
  } catch (const SerializationError& e) {
    EXPECT_THAT(e.what(), HasSubstr("'s'"));
  }

  if (!canonical()) return;
  internal::OperatorSnapshot cut = snap;
  cut.key_groups.begin()->second.resize(cut.key_groups.begin()->second.size() - 3);
  auto third_owner = MakeBackend();
  internal::KeyedStateBackend& third = *third_owner;
  EXPECT_THROW(third.restore(cut), SerializationError);
}

TEST_P(StateTest, ForEachKeyVisitsEveryKeyWithStateOnceInKeyGroupOrder) {
  auto& v = store_.get<ValueState<int>>(ValueStateDescriptor<int>("v"));
  auto& l = store_.get<ListState<int>>(ListStateDescriptor<int>("l"));
  SetKey("d", 13);
  v.update(4);
  SetKey("b", 11);
  v.update(2);
  l.add(2);  // in two states: visited once
  SetKey("a", 10);
  l.add(1);
  SetKey("c", 11);
  v.update(3);
  v.clear();  // no state left: not visited

  std::vector<std::pair<int, std::string>> seen;
  store_.for_each_key([&](const std::string& key) {
    std::string k = deserialize<std::string>(key);
    seen.emplace_back(store_.key_context().key_group, k);
    v.update(v.value() * 10);  // state accesses refer to the visited key
  });
  EXPECT_THAT(
      seen, ElementsAre(std::pair<int, std::string>{10, "a"}, std::pair<int, std::string>{11, "b"},
                        std::pair<int, std::string>{13, "d"}));
  EXPECT_EQ(store_.key_context().key_group, -1) << "no current key afterwards";
  SetKey("b", 11);
  EXPECT_EQ(v.value(), 20);
  SetKey("d", 13);
  EXPECT_EQ(v.value(), 40);
}

// 128 key groups: the snapshots of 2 subtasks, narrowed to 3 as the runtime narrows them, give
// every key to exactly one new subtask, with its value.
class StateRescaleTest : public ::testing::TestWithParam<testing_support::BackendKind> {};
INSTANTIATE_TEST_SUITE_P(Backends, StateRescaleTest,
                         ::testing::ValuesIn(testing_support::AllBackends()),
                         testing_support::BackendParamName());

// Two subtasks' state `name` restored into three.
void KeyGroupsOfTwoSubtasksRestoreIntoThree(testing_support::BackendKind kind,
                                            const std::string& name) {
  constexpr int kMaxParallelism = 128;
  testing_support::BackendMaker maker(kind);
  auto key_group = [](const std::string& k) {
    return key_group_for_hash(KeyHash<std::string>{}(k), kMaxParallelism);
  };
  std::vector<std::vector<internal::OperatorSnapshot>> by_subtask;
  for (int i = 0; i < 2; ++i) {
    auto b = maker.Make(key_group_range(i, kMaxParallelism, 2));
    auto& v = b->get<ValueState<int>>(ValueStateDescriptor<int>(name));
    for (int n = 0; n < 1000; ++n) {
      std::string k = "key-" + std::to_string(n);
      int kg = key_group(k);
      if (subtask_for_key_group(kg, kMaxParallelism, 2) != i) continue;
      b->set_current_key(serialize(k), kg);
      v.update(n);
    }
    by_subtask.push_back({maker.Snapshot(*b, 1)});
  }
  std::map<std::string, int> found;
  for (int j = 0; j < 3; ++j) {
    std::vector<internal::OperatorSnapshot> mine =
        NarrowSnapshots(by_subtask, j, 3, kMaxParallelism);
    ASSERT_EQ(mine.size(), 1u);
    auto b = maker.Make(key_group_range(j, kMaxParallelism, 3));
    b->restore(mine[0]);
    auto& v = b->get<ValueState<int>>(ValueStateDescriptor<int>(name));
    b->for_each_key([&](const std::string& key) {
      std::string k = deserialize<std::string>(key);
      EXPECT_EQ(subtask_for_key_group(key_group(k), kMaxParallelism, 3), j) << k;
      EXPECT_TRUE(found.emplace(k, v.value()).second) << k << " restored twice";
    });
  }
  ASSERT_EQ(found.size(), 1000u);
  for (int n = 0; n < 1000; ++n) EXPECT_EQ(found.at("key-" + std::to_string(n)), n);
}

// Also for a state named as RocksDB's default column family, whose family is named otherwise
// (a restore at another parallelism maps the families of the old instances back to states).
TEST_P(StateRescaleTest, KeyGroupsOfTwoSubtasksRestoreIntoThree) {
  for (const std::string name : {"v", "default"}) {
    SCOPED_TRACE(name);
    KeyGroupsOfTwoSubtasksRestoreIntoThree(GetParam(), name);
  }
}

// ---------------------------------------------------------------------------------------------
// Operator state.

TEST(OperatorStateTest, ListsSnapshotElementByElementAndRestore) {
  internal::OperatorStateStore store;
  auto& l = store.get_list_state(ListStateDescriptor<std::string>("names"));
  auto& offsets = store.get_list_state(ListStateDescriptor<int64_t>("offsets"));
  auto& empty = store.get_list_state(ListStateDescriptor<int>("empty"));
  l.add("x");
  l.add("y");
  offsets.update({7, 8, 9});
  offsets.add(10);
  empty.add(1);
  empty.clear();
  EXPECT_EQ(&l, &store.get_list_state(ListStateDescriptor<std::string>("names")));

  internal::OperatorSnapshot snap;
  store.snapshot(snap);
  EXPECT_TRUE(snap.key_groups.empty());
  ASSERT_EQ(snap.lists.size(), 2u) << "empty lists are left out";
  EXPECT_THAT(snap.lists.at("names"),
              ElementsAre(serialize(std::string("x")), serialize(std::string("y"))));
  EXPECT_EQ(snap.lists.at("offsets").size(), 4u);

  internal::OperatorStateStore restored;
  restored.restore(snap);
  EXPECT_THAT(restored.get_list_state(ListStateDescriptor<int64_t>("offsets")).get(),
              ElementsAre(7, 8, 9, 10));
  // "names" is not declared again: written back as it was.
  internal::OperatorSnapshot again;
  restored.snapshot(again);
  EXPECT_EQ(again.lists, snap.lists);
  EXPECT_THAT(restored.get_list_state(ListStateDescriptor<std::string>("names")).get(),
              ElementsAre("x", "y"));
}

TEST(OperatorStateTest, UnionListsKeepTheirDistributionThroughSnapshotAndRestore) {
  internal::OperatorStateStore store;
  auto& offsets = store.get_list_state(ListStateDescriptor<int64_t>("offsets"),
                                       internal::ListDistribution::kUnion);
  offsets.update({1, 2});
  store.get_list_state(ListStateDescriptor<int64_t>("split")).add(3);
  internal::OperatorSnapshot snap;
  store.snapshot(snap);
  EXPECT_EQ(snap.distribution.size(), 1u) << "split lists are the default, not stored";
  EXPECT_EQ(snap.distribution.at("offsets"), internal::ListDistribution::kUnion);

  internal::OperatorStateStore restored;
  restored.restore(snap);
  // Not declared again: written back with its distribution.
  internal::OperatorSnapshot again;
  restored.snapshot(again);
  EXPECT_EQ(again.distribution, snap.distribution);
  try {
    restored.get_list_state(ListStateDescriptor<int64_t>("offsets"));
    FAIL() << "a union list declared as a split one";
  } catch (const std::invalid_argument& e) {
    EXPECT_THAT(e.what(), HasSubstr("'offsets'"));
  }
  EXPECT_THAT(restored
                  .get_list_state(ListStateDescriptor<int64_t>("offsets"),
                                  internal::ListDistribution::kUnion)
                  .get(),
              ElementsAre(1, 2));
}

TEST(OperatorStateTest, MisuseIsAnError) {
  internal::OperatorStateStore store;
  store.get_list_state(ListStateDescriptor<int>("l"));
  EXPECT_THROW(store.get_list_state(ListStateDescriptor<std::string>("l")), std::invalid_argument);
  ListStateDescriptor<int> ttl("t");
  ttl.ttl = StateTtlConfig{std::chrono::milliseconds(5)};
  try {
    store.get_list_state(ttl);
    FAIL() << "no error";
  } catch (const std::invalid_argument& e) {
    EXPECT_THAT(e.what(), HasSubstr("'t'"));
  }
  internal::OperatorSnapshot bad;
  bad.lists["n"] = {"\x01"};  // one byte is no int64
  internal::OperatorStateStore restored;
  restored.restore(bad);
  try {
    restored.get_list_state(ListStateDescriptor<int64_t>("n"));
    FAIL() << "no error";
  } catch (const SerializationError& e) {
    EXPECT_THAT(e.what(), HasSubstr("'n'"));
  }
}

}  // namespace
}  // namespace sluice
