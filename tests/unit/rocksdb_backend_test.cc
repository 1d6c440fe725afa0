// What only the RocksDB backend does: incremental checkpoints that store only new files and
// build only on completed checkpoints, timers in RocksDB with only the earliest in memory, restores
// that name a missing file, time-to-live enforced by compaction, working directories removed with
// the backend, and a failing local disk reported with its cause. (Every state kind on RocksDB:
// state_test, windows_test, event_time_test.)
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "sluice/internal/timers.h"
#include "sluice/state.h"
#include "taskmanager/state/state_backend.h"
#include "tests/unit/test_backends.h"
#include "tests/unit/test_helpers.h"

namespace sluice {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing_support::BackendKind;
using testing_support::BackendMaker;

constexpr KeyGroupRange kRange{0, 127};

// Writes `n` keys, each with a 100-byte value tagged with `version`.
void Fill(internal::KeyedStateBackend& b, int from, int to, int version) {
  auto& v = b.get<ValueState<std::string>>(ValueStateDescriptor<std::string>("v"));
  for (int i = from; i < to; ++i) {
    std::string key = "key-" + std::to_string(i);
    b.set_current_key(serialize(key), key_group_for_hash(KeyHash<std::string>{}(key), 128));
    v.update(std::string(96, 'x') + std::to_string(version));
  }
}

uint64_t FullSize(const internal::NativeSnapshot& n) {
  uint64_t total = 0;
  for (const internal::StoreFile& f : n.files) total += f.size;
  return total;
}

TEST(RocksDbBackendTest, IncrementalCheckpointsStoreOnlyWhatChanged) {
  BackendMaker maker(BackendKind::kRocksDbIncremental);
  auto b = maker.Make(kRange);
  Fill(*b, 0, 20000, 1);
  // One file, so that no compaction in the background rewrites it between the checkpoints.
  CompactRocksDb(*b);
  internal::OperatorSnapshot first = maker.Snapshot(*b, 1);
  ASSERT_EQ(first.native.size(), 1u);
  EXPECT_EQ(first.native[0].uploaded_bytes, FullSize(first.native[0])) << "everything is new";
  b->notify_checkpoint_complete(1);

  Fill(*b, 0, 20, 2);  // 0.1% of the keys change
  internal::OperatorSnapshot second = maker.Snapshot(*b, 2);
  ASSERT_EQ(second.native.size(), 1u);
  const internal::NativeSnapshot& n = second.native[0];
  EXPECT_LT(n.uploaded_bytes * 20, FullSize(n))
      << "stored " << n.uploaded_bytes << " of " << FullSize(n) << " bytes";
  // The first checkpoint's SST files are named again, not stored again.
  int reused = 0;
  for (const internal::StoreFile& f : n.files) {
    for (const internal::StoreFile& old : first.native[0].files)
      reused += f.shared && f.path == old.path;
  }
  EXPECT_GT(reused, 0);

  // The second checkpoint restores whole.
  auto restored = maker.Make(kRange);
  restored->restore(second);
  auto& v = restored->get<ValueState<std::string>>(ValueStateDescriptor<std::string>("v"));
  for (int i : {0, 19, 20, 19999}) {
    std::string key = "key-" + std::to_string(i);
    restored->set_current_key(serialize(key), key_group_for_hash(KeyHash<std::string>{}(key), 128));
    EXPECT_EQ(v.value().back(), i < 20 ? '2' : '1') << key;
  }
}

struct TimerOf {
  int64_t time;
  int key_group;
  std::string key;
};
// `n` event-time timers, one per key "key-<i>", at 1000 + i.
std::vector<TimerOf> Timers(int n) {
  std::vector<TimerOf> out;
  for (int i = 0; i < n; ++i) {
    std::string key = "key-" + std::to_string(i);
    out.push_back({1000 + i, key_group_for_hash(KeyHash<std::string>{}(key), 128), serialize(key)});
  }
  return out;
}
internal::TimerQueue& EventTimers(internal::KeyedStateBackend& b) {
  return b.internal_table<internal::TimerQueue>("_timers/event", internal::TimerQueueFactory());
}
// Pops every timer, checking the order; returns how many there were.
size_t PopAllInOrder(internal::TimerQueue& q) {
  size_t n = 0;
  int64_t last = INT64_MIN;
  while (!q.empty()) {
    internal::InternalTimer t = q.pop();
    EXPECT_LE(last, t.time);
    last = t.time;
    ++n;
  }
  return n;
}

// Timers are RocksDB entries: memory holds only the earliest of each key group, an incremental
// checkpoint after a small change stores little, and a restore (at the same or another
// parallelism) has every timer but those removed.
TEST(RocksDbBackendTest, TimersLiveInRocksDbWithOnlyTheEarliestInMemory) {
  BackendMaker maker(BackendKind::kRocksDbIncremental);
  auto b = maker.Make(kRange);
  internal::TimerQueue& q = EventTimers(*b);
  auto* stored = dynamic_cast<internal::StoreTimerQueue*>(&q);
  ASSERT_NE(stored, nullptr) << "the RocksDB backend keeps timers in RocksDB";
  std::map<int, std::vector<TimerOf>> by_group;
  for (const TimerOf& t : Timers(50000)) {
    ASSERT_TRUE(q.add(t.time, t.key_group, t.key, {}));
    by_group[t.key_group].push_back(t);
  }
  EXPECT_LE(stored->cached(), 128 * internal::StoreTimerQueue::kDefaultCacheSize);
  internal::OperatorSnapshot first = maker.Snapshot(*b, 1);
  b->notify_checkpoint_complete(1);

  // Every timer of one key group goes.
  const auto& [gone_kg, gone] = *by_group.begin();
  for (const TimerOf& t : gone) ASSERT_TRUE(q.remove(t.time, gone_kg, t.key, {}));
  internal::OperatorSnapshot second = maker.Snapshot(*b, 2);
  ASSERT_EQ(second.native.size(), 1u);
  EXPECT_LT(second.native[0].uploaded_bytes * 10, FullSize(second.native[0]))
      << "stored " << second.native[0].uploaded_bytes << " of " << FullSize(second.native[0]);

  auto restored = maker.Make(kRange);
  restored->restore(second);
  internal::TimerQueue& r = EventTimers(*restored);
  EXPECT_EQ(r.size(), 50000 - gone.size());
  std::string entries;
  EXPECT_EQ(r.write_entries(gone_kg, entries), 0u);
  int64_t earliest = INT64_MAX;
  for (const TimerOf& t : Timers(50000)) {
    if (t.key_group != gone_kg) earliest = std::min(earliest, t.time);
  }
  EXPECT_EQ(r.next_time(), earliest);
  EXPECT_EQ(PopAllInOrder(r), 50000 - gone.size());

  size_t halves = 0;
  for (KeyGroupRange half : {KeyGroupRange{0, 63}, KeyGroupRange{64, 127}}) {
    auto part = maker.Make(half);
    part->restore(second);
    halves += PopAllInOrder(EventTimers(*part));
  }
  EXPECT_EQ(halves, 50000 - gone.size());
}

// A full checkpoint writes timers in the canonical form: the heap backend restores them, and
// RocksDB restores a heap backend's.
TEST(RocksDbBackendTest, TimersMoveBetweenTheBackends) {
  BackendMaker rocks(BackendKind::kRocksDbFull);
  BackendMaker heap(BackendKind::kHeap);
  auto from_rocks = rocks.Make(kRange);
  auto from_heap = heap.Make(kRange);
  for (const TimerOf& t : Timers(3000)) {
    for (auto* b : {from_rocks.get(), from_heap.get()}) {
      ASSERT_TRUE(EventTimers(*b).add(t.time, t.key_group, t.key, "w"));
    }
  }
  auto on_heap = heap.Make(kRange);
  on_heap->restore(rocks.Snapshot(*from_rocks, 1));
  auto in_rocks = rocks.Make(kRange);
  in_rocks->restore(heap.Snapshot(*from_heap, 1));
  for (auto* b : {on_heap.get(), in_rocks.get()}) {
    internal::TimerQueue& q = EventTimers(*b);
    ASSERT_EQ(q.size(), 3000u);
    internal::InternalTimer first = q.pop();
    EXPECT_EQ(first.time, 1000);
    EXPECT_EQ(first.key, serialize(std::string("key-0")));
    EXPECT_EQ(first.ns, "w");
  }
}

// Timers as earlier versions checkpointed them (entries with namespaces) are read into RocksDB,
// whether the timers were declared before the restore or after it.
TEST(RocksDbBackendTest, RestoresTimersInTheFormOfEarlierVersions) {
  internal::OperatorSnapshot old;
  std::string entries;
  DataOutput e(entries);
  for (int64_t time : {30, 10, 20}) testing_support::WriteOldTimerEntry(e, time, "k", "");
  DataOutput o(old.key_groups[5]);
  internal::state_internal::write_section(o, "_timers/event", 3, entries);

  BackendMaker maker(BackendKind::kRocksDbIncremental);
  for (bool declared_first : {false, true}) {
    auto b = maker.Make(kRange);
    if (declared_first) EventTimers(*b);
    b->restore(old);
    internal::TimerQueue& q = EventTimers(*b);
    ASSERT_EQ(q.size(), 3u) << "declared first: " << declared_first;
    EXPECT_EQ(q.pop().time, 10);
    EXPECT_EQ(q.pop().time, 20);
    // What the next checkpoint restores is the queue as it is now.
    auto again = maker.Make(kRange);
    again->restore(maker.Snapshot(*b, 1));
    internal::TimerQueue& r = EventTimers(*again);
    ASSERT_EQ(r.size(), 1u);
    EXPECT_EQ(r.pop().time, 30);
  }
}

// A key that serializes to no bytes (an empty tuple) is stored under the bare key-group prefix,
// where restored timer sections also go: its state survives restores from both kinds of
// checkpoint.
TEST(RocksDbBackendTest, StateOfAKeyOfNoBytesSurvivesRestores) {
  for (BackendKind kind : {BackendKind::kRocksDbFull, BackendKind::kRocksDbIncremental}) {
    BackendMaker maker(kind);
    auto b = maker.Make(kRange);
    ValueStateDescriptor<std::string> d("v");
    b->set_current_key("", 7);
    b->get<ValueState<std::string>>(d).update("for the key of no bytes");
    internal::OperatorSnapshot snap = maker.Snapshot(*b, 1);
    auto restored = maker.Make(kRange);
    restored->restore(snap);
    restored->set_current_key("", 7);
    EXPECT_EQ(restored->get<ValueState<std::string>>(d).value(), "for the key of no bytes")
        << testing_support::BackendName(kind);
  }
}

TEST(RocksDbBackendTest, OnlyCompletedCheckpointsAreBuiltOn) {
  BackendMaker maker(BackendKind::kRocksDbIncremental);
  auto b = maker.Make(kRange);
  Fill(*b, 0, 5000, 1);
  maker.Snapshot(*b, 1);
  // Checkpoint 1 never completes (its files may be removed): checkpoint 2 stores everything.
  Fill(*b, 0, 5, 2);
  internal::OperatorSnapshot second = maker.Snapshot(*b, 2);
  EXPECT_EQ(second.native[0].uploaded_bytes, FullSize(second.native[0]));
}

TEST(RocksDbBackendTest, RestoreNamesAMissingSharedFile) {
  BackendMaker maker(BackendKind::kRocksDbIncremental);
  auto b = maker.Make(kRange);
  Fill(*b, 0, 1000, 1);
  internal::OperatorSnapshot snap = maker.Snapshot(*b, 1);
  std::string missing;
  for (const internal::StoreFile& f : snap.native[0].files) {
    if (f.shared) missing = f.path;
  }
  ASSERT_FALSE(missing.empty());
  fs::remove(maker.checkpoint_dir() + "/" + missing);
  auto restored = maker.Make(kRange);
  try {
    restored->restore(snap);
    FAIL() << "no error";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr(missing));
    EXPECT_THAT(e.what(), HasSubstr("missing"));
  }
}

TEST(RocksDbBackendTest, WorkingDirectoryIsRemovedWithTheBackend) {
  BackendMaker maker(BackendKind::kRocksDbIncremental);
  {
    auto b = maker.Make(kRange);
    Fill(*b, 0, 100, 1);
    internal::OperatorSnapshot s;
    b->snapshot(s, 1);  // its deferred part keeps the files until it is done
    b.reset();
    EXPECT_FALSE(fs::is_empty(maker.local_dir()));
    maker.Complete(s, 1);
  }
  EXPECT_TRUE(fs::is_empty(maker.local_dir()));
}

TEST(RocksDbBackendTest, CompactionDropsExpiredEntries) {
  BackendMaker maker(BackendKind::kRocksDbIncremental);
  int64_t now = 1000;
  auto b = maker.Make(kRange, [&] { return now; });
  ValueStateDescriptor<std::string> d("v");
  d.ttl = StateTtlConfig{std::chrono::milliseconds(100)};
  auto& v = b->get<ValueState<std::string>>(d);
  for (int i = 0; i < 20000; ++i) {
    std::string key = "key-" + std::to_string(i);
    b->set_current_key(serialize(key), key_group_for_hash(KeyHash<std::string>{}(key), 128));
    v.update(std::string(100, 'x'));
  }
  // One file first: a compaction that RocksDB starts on its own before the clock moves keeps
  // every entry (none has expired yet), and the one below might only wait for it.
  CompactRocksDb(*b);
  internal::OperatorSnapshot before = maker.Snapshot(*b, 1);
  now += 100;  // every entry has expired; none was read since
  CompactRocksDb(*b);
  internal::OperatorSnapshot after = maker.Snapshot(*b, 2);
  EXPECT_LT(FullSize(after.native[0]) * 10, FullSize(before.native[0]))
      << "compaction left " << FullSize(after.native[0]) << " of " << FullSize(before.native[0])
      << " bytes";
}

// A local disk that refuses writes (here: a file size limit) fails the state access with the
// cause and the directory, rather than losing the write.
TEST(RocksDbBackendTest, AFailingLocalDiskFailsWithItsCause) {
  BackendMaker maker(BackendKind::kRocksDbIncremental);
  auto b = maker.Make(kRange);
  auto& v = b->get<ValueState<std::string>>(ValueStateDescriptor<std::string>("v"));
  struct rlimit old_limit;
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  auto old_handler = signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = old_limit;
  small.rlim_cur = 256 << 10;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  std::string error;
  try {
    for (int i = 0; i < 200000 && error.empty(); ++i) {
      std::string key = "key-" + std::to_string(i);
      b->set_current_key(serialize(key), key_group_for_hash(KeyHash<std::string>{}(key), 128));
      v.update(std::string(200, 'x'));
      if (i % 5000 == 4999) {
        internal::OperatorSnapshot s;
        b->snapshot(s, i);  // flushes: writes SST files
      }
    }
  } catch (const std::runtime_error& e) {
    error = e.what();
  }
  setrlimit(RLIMIT_FSIZE, &old_limit);
  signal(SIGXFSZ, old_handler);
  EXPECT_THAT(error, HasSubstr(maker.local_dir()));
  EXPECT_THAT(error, HasSubstr("File too large"));
}

}  // namespace
}  // namespace sluice
