// The timer queues of keyed operators, on the heap and in a store with a small cache: order
// (time, key group, key, namespace) whatever the order of registration, one timer per (key,
// namespace, time), removal, the entries of a key group written and read back (in either
// queue, and in the form earlier versions wrote), and a random mix of operations checked
// against an ordered set.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "sluice/internal/timers.h"
#include "tests/unit/test_helpers.h"

namespace sluice {
namespace {

using Timer = std::tuple<int64_t, int, std::string, std::string>;  // time, key group, key, ns

// Key groups [10, 13].
internal::KeyContext Range() {
  internal::KeyContext ctx;
  ctx.first_key_group = 10;
  ctx.num_key_groups = 4;
  return ctx;
}

// An ordered store in memory, as a RocksDB column family would be.
class MapStore final : public internal::KvStore {
 public:
  bool get(std::string_view key, std::string* value) override {
    ++gets;
    auto it = entries_.find(std::string(key));
    if (it == entries_.end()) return false;
    *value = it->second;
    return true;
  }
  void put(std::string_view key, std::string_view value) override {
    entries_[std::string(key)] = std::string(value);
  }
  void remove(std::string_view key) override { entries_.erase(std::string(key)); }
  void scan_range(std::string_view from, std::string_view end,
                  const std::function<bool(std::string_view, std::string_view)>& fn) override {
    ++range_scans;
    for (auto it = entries_.lower_bound(std::string(from));
         it != entries_.end() && it->first < end && fn(it->first, it->second); ++it) {
    }
  }
  bool last_key(std::string_view from, std::string_view end, std::string* key) override {
    auto it = entries_.lower_bound(std::string(end));
    if (it == entries_.begin()) return false;
    --it;
    if (it->first < from) return false;
    *key = it->first;
    return true;
  }
  size_t size() const { return entries_.size(); }
  int range_scans = 0;
  int gets = 0;

 private:
  std::map<std::string, std::string> entries_;
};

enum class QueueKind { kHeap, kStore };

// Makes the queues of one test: on the heap, or over one MapStore with a cache of two timers
// per key group, so that most timers live only in the store.
class QueueMaker {
 public:
  explicit QueueMaker(QueueKind kind) : kind_(kind) {}
  std::unique_ptr<internal::TimerQueue> Make(const internal::KeyContext& ctx) {
    if (kind_ == QueueKind::kHeap) return std::make_unique<internal::HeapTimerQueue>(ctx);
    stores_.push_back(std::make_unique<MapStore>());
    return std::make_unique<internal::StoreTimerQueue>(ctx, *stores_.back(), /*cache_size=*/2);
  }

 private:
  QueueKind kind_;
  std::vector<std::unique_ptr<MapStore>> stores_;
};

class TimerQueueTest : public ::testing::TestWithParam<QueueKind> {
 protected:
  std::unique_ptr<internal::TimerQueue> Make(const internal::KeyContext& ctx) {
    return maker_.Make(ctx);
  }
  QueueMaker maker_{GetParam()};
};

Timer Pop(internal::TimerQueue& q) {
  internal::InternalTimer t = q.pop();
  return {t.time, t.key_group, t.key, t.ns};
}

std::vector<Timer> PopAll(internal::TimerQueue& q) {
  std::vector<Timer> out;
  while (!q.empty()) {
    int64_t next = q.next_time();
    out.push_back(Pop(q));
    EXPECT_EQ(std::get<0>(out.back()), next) << "next_time() is the time pop() returns";
  }
  return out;
}

TEST_P(TimerQueueTest, PopsInTimeThenKeyGroupThenKeyOrderWhateverTheRegistrationOrder) {
  internal::KeyContext ctx = Range();
  auto owned = Make(ctx);
  internal::TimerQueue& q = *owned;
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

TEST_P(TimerQueueTest, KeepsOneTimerPerKeyNamespaceAndTime) {
  internal::KeyContext ctx = Range();
  auto owned = Make(ctx);
  internal::TimerQueue& q = *owned;
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

TEST_P(TimerQueueTest, RemovesTimersAnywhereAndMovesTheHeadOn) {
  internal::KeyContext ctx = Range();
  auto owned = Make(ctx);
  internal::TimerQueue& q = *owned;
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

TEST_P(TimerQueueTest, FiresAChainOfTimersThatEachRegisterTheNext) {
  // Every key's timer registers the next one a second later as it fires: the pattern of
  // windows, which the queue serves by appending.
  internal::KeyContext ctx = Range();
  auto owned = Make(ctx);
  internal::TimerQueue& q = *owned;
  for (int k = 0; k < 50; ++k) ASSERT_TRUE(q.add(999, 10 + k % 4, std::to_string(k), ""));
  std::vector<int64_t> times;
  while (!q.empty() && q.next_time() < 100'000) {
    internal::InternalTimer t = q.pop();
    times.push_back(t.time);
    ASSERT_TRUE(q.add(t.time + 1000, t.key_group, t.key, t.ns));
  }
  EXPECT_EQ(times.size(), 50u * 100);
  EXPECT_TRUE(std::is_sorted(times.begin(), times.end()));
  EXPECT_EQ(q.size(), 50u);
}

TEST_P(TimerQueueTest, WritesAndReadsTheTimersOfAKeyGroup) {
  internal::KeyContext ctx = Range();
  auto owned = Make(ctx);
  internal::TimerQueue& q = *owned;
  q.add(-5, 11, "a", "ns");
  q.add(7, 11, "b", "");
  q.add(3, 12, "c", "");
  q.add(-10, 11, "x", "");
  Pop(q);  // (-10, 11, "x") has fired: not written
  std::string bytes;
  EXPECT_EQ(q.write_entries(11, bytes), 2u);
  std::string none;
  EXPECT_EQ(q.write_entries(10, none), 0u);

  auto restored = Make(ctx);
  DataInput in(bytes);
  restored->read_entries(11, in, 2);
  EXPECT_THAT(PopAll(*restored),
              ::testing::ElementsAre(Timer{-5, 11, "a", "ns"}, Timer{7, 11, "b", ""}));
}

TEST_P(TimerQueueTest, RejectsKeyGroupsOutsideItsRange) {
  internal::KeyContext ctx = Range();
  auto owned = Make(ctx);
  internal::TimerQueue& q = *owned;
  EXPECT_THROW(q.add(1, 9, "a", ""), std::invalid_argument);
  EXPECT_THROW(q.add(1, 14, "a", ""), std::invalid_argument);
  EXPECT_THROW(q.remove(1, 14, "a", ""), std::invalid_argument);
  EXPECT_TRUE(q.empty());
}

TEST_P(TimerQueueTest, AgreesWithAnOrderedSetOnRandomOperations) {
  internal::KeyContext ctx = Range();
  auto owned = Make(ctx);
  internal::TimerQueue& q = *owned;
  std::set<Timer> expected;
  // Keys with zero bytes, which the store's sort keys escape, among plain ones.
  std::vector<std::string> keys = {std::string("\0", 1),
                                   std::string("\0\xff", 2),
                                   std::string("a\0", 2),
                                   std::string("a\0b", 3),
                                   "",
                                   "\xff"};
  for (char c = 'a'; c < 'a' + 14; ++c) keys.emplace_back(1, c);
  std::mt19937_64 rng(42);
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<uint64_t>(n)); };
  int64_t base = 0;  // times mostly rise, as watermarks do
  for (int step = 0; step < 200'000; ++step) {
    int op = pick(10);
    Timer t{base + pick(50) - 10, 10 + pick(4),
            keys[static_cast<size_t>(pick(static_cast<int>(keys.size())))],
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
    // A store's size() reads the store: checked now and then.
    if (GetParam() == QueueKind::kHeap || step % 1000 == 0) {
      ASSERT_EQ(q.size(), expected.size()) << "step " << step;
    }
  }
  EXPECT_THAT(PopAll(q), ::testing::ElementsAreArray(expected));
}

// A process function's timers as the previous version checkpointed them: key, namespace = the
// time (8 bytes, big-endian, sign bit flipped) then the timer's namespace.
TEST_P(TimerQueueTest, ReadsTheTimerEntriesOfEarlierVersions) {
  internal::KeyContext ctx = Range();
  auto q = Make(ctx);
  std::string bytes;
  DataOutput o(bytes);
  testing_support::WriteOldTimerEntry(o, 7, "b", "");
  testing_support::WriteOldTimerEntry(o, -5, "a", "w");
  DataInput in(bytes);
  q->read_entries(12, in, 2);
  EXPECT_THAT(PopAll(*q), ::testing::ElementsAre(Timer{-5, 12, "a", "w"}, Timer{7, 12, "b", ""}));
}

TEST_P(TimerQueueTest, NamesAMalformedEntry) {
  internal::KeyContext ctx = Range();
  auto q = Make(ctx);
  std::string bytes;
  DataOutput o(bytes);
  internal::state_internal::write_entry(o, std::string(9, 'x'), 0,
                                        {});  // a time and a key without its end
  DataInput in(bytes);
  EXPECT_THROW(q->read_entries(12, in, 1), SerializationError);
}

INSTANTIATE_TEST_SUITE_P(Queues, TimerQueueTest,
                         ::testing::Values(QueueKind::kHeap, QueueKind::kStore),
                         [](const ::testing::TestParamInfo<QueueKind>& i) {
                           return i.param == QueueKind::kHeap ? "Heap" : "Store";
                         });

// The store holds every timer and memory only the earliest few of each key group: 200,000
// timers fire in order with at most the caches in memory, and the store ends empty.
TEST(StoreTimerQueueTest, KeepsOnlyTheEarliestTimersOfEachKeyGroupInMemory) {
  internal::KeyContext ctx = Range();
  MapStore store;
  internal::StoreTimerQueue q(ctx, store, /*cache_size=*/16);
  std::mt19937_64 rng(7);
  constexpr int kTimers = 200'000;
  for (int i = 0; i < kTimers; ++i) {
    ASSERT_TRUE(q.add(static_cast<int64_t>(rng() % 1'000'000), 10 + i % 4, std::to_string(i), ""));
    ASSERT_LE(q.cached(), 4u * 16);
  }
  EXPECT_EQ(store.size(), static_cast<size_t>(kTimers));
  EXPECT_EQ(q.size(), static_cast<size_t>(kTimers));
  internal::StoreTimerQueue restored(ctx, store, 16);
  EXPECT_EQ(restored.cached(), 4u * 16) << "a queue over a filled store reads only its cache";
  int64_t last = INT64_MIN;
  int popped = 0;
  while (!q.empty()) {
    internal::InternalTimer t = q.pop();
    ASSERT_LE(last, t.time);
    last = t.time;
    ++popped;
    ASSERT_LE(q.cached(), 4u * 16);
  }
  EXPECT_EQ(popped, kTimers);
  EXPECT_EQ(store.size(), 0u);
  EXPECT_LE(store.range_scans, 4 + kTimers / 16 + 4) << "one read of the store per cache emptied";
}

// A queue made again over the same store (a restore) sees what the first one left.
TEST(StoreTimerQueueTest, ReloadsFromTheStore) {
  internal::KeyContext ctx = Range();
  MapStore store;
  internal::StoreTimerQueue q(ctx, store, 2);
  for (int64_t t = 0; t < 20; ++t) ASSERT_TRUE(q.add(t, 11, "k", ""));
  for (int i = 0; i < 5; ++i) q.pop();
  internal::StoreTimerQueue again(ctx, store, 2);
  EXPECT_EQ(again.size(), 15u);
  EXPECT_EQ(again.next_time(), 5);
  EXPECT_FALSE(again.add(19, 11, "k", "")) << "a timer only the store holds is known";
  EXPECT_TRUE(again.remove(19, 11, "k", ""));
  EXPECT_FALSE(again.remove(19, 11, "k", ""));
  EXPECT_EQ(again.size(), 14u);
}

// Timers after every timer their key group has had need no lookup in the store, also in a
// queue made again over the store; others beyond the cache are looked up.
TEST(StoreTimerQueueTest, LooksUpOnlyTimersThatMayExist) {
  internal::KeyContext ctx = Range();
  MapStore store;
  internal::StoreTimerQueue q(ctx, store, 2);
  for (int64_t t = 0; t < 1000; ++t) ASSERT_TRUE(q.add(t, 12, "k", ""));
  EXPECT_EQ(store.gets, 0) << "increasing timers are appended without lookups";
  internal::StoreTimerQueue again(ctx, store, 2);
  EXPECT_TRUE(again.add(1000, 12, "k", ""));
  EXPECT_FALSE(again.remove(2000, 12, "k", ""));
  EXPECT_EQ(store.gets, 0);
  EXPECT_FALSE(again.add(500, 12, "k", ""));
  EXPECT_TRUE(again.add(500, 12, "k", "w"));
  EXPECT_EQ(store.gets, 2);
  EXPECT_EQ(again.size(), 1002u);
}

// A timer registered again (a window's trigger asks for every element) is known to be stored and
// not looked up again, until it is removed or fired; a reload forgets what is known.
TEST(StoreTimerQueueTest, DoesNotLookUpATimerRegisteredAgain) {
  internal::KeyContext ctx = Range();
  MapStore store;
  // A table of known timers large enough that these 150 do not share a slot (with this standard
  // library's hash; the counts below would show it if they did).
  internal::StoreTimerQueue q(ctx, store, 2, size_t{1} << 20);
  for (int64_t t = 0; t < 100; ++t) ASSERT_TRUE(q.add(t, 12, "k", ""));
  // Earlier than the last timer and beyond the cache: each looked up once when new.
  for (int64_t t = 10; t < 60; ++t) ASSERT_TRUE(q.add(t, 12, "k", "w"));
  EXPECT_EQ(store.gets, 50);
  for (int round = 0; round < 3; ++round) {
    for (int64_t t = 10; t < 60; ++t) ASSERT_FALSE(q.add(t, 12, "k", "w"));
    for (int64_t t = 50; t < 100; ++t) ASSERT_FALSE(q.add(t, 12, "k", ""));
  }
  EXPECT_EQ(store.gets, 50) << "timers found or written are known";
  EXPECT_EQ(q.lookups_spared(), 300u);
  EXPECT_TRUE(q.remove(30, 12, "k", "w"));
  EXPECT_EQ(store.gets, 50) << "a known timer is removed without a lookup";
  EXPECT_FALSE(q.remove(30, 12, "k", "w"));
  EXPECT_TRUE(q.add(30, 12, "k", "w")) << "a removed timer is no longer known";
  EXPECT_EQ(q.size(), 150u);
  // Fired timers are no longer known either: registered again, they are new.
  for (int i = 0; i < 10; ++i) q.pop();  // times 0 to 9
  EXPECT_EQ(q.next_time(), 10);
  EXPECT_TRUE(q.add(5, 12, "k", ""));  // in the cache's range
  EXPECT_FALSE(q.add(5, 12, "k", ""));
  EXPECT_TRUE(q.add(4, 12, "k", ""));  // the cache is now {4, 5}
  EXPECT_TRUE(q.add(9, 12, "k", "")) << "9 was known before it fired; beyond the cache now";
  q.reload();
  int gets = store.gets;
  EXPECT_FALSE(q.add(70, 12, "k", ""));
  EXPECT_EQ(store.gets, gets + 1) << "after a reload, a timer beyond the cache is looked up";
  EXPECT_EQ(PopAll(q).size(), 143u);
  EXPECT_EQ(store.size(), 0u);
}

}  // namespace
}  // namespace sluice
