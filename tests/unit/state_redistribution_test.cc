// State redistribution: snapshots narrowed to the subtasks of a new parallelism
// (NarrowSnapshots), and the state of a changed job's operators gathered from the vertices of
// the checkpoint that held them, with node ids mapped (AssignSnapshots).
#include "common/state_redistribution.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "sluice/internal/heap_backend.h"
#include "sluice/keys.h"
#include "sluice/serializer.h"
#include "sluice/state.h"

namespace sluice {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

// ---------------------------------------------------------------------------------------------
// NarrowSnapshots.

TEST(NarrowSnapshotsTest, KeyGroupsOfTwoSubtasksGoToTheirOwnersAmongThree) {
  constexpr int kMaxParallelism = 128;
  auto key_group = [](int64_t k) {
    return key_group_for_hash(KeyHash<int64_t>{}(k), kMaxParallelism);
  };
  std::vector<std::vector<internal::OperatorSnapshot>> by_subtask;
  for (int i = 0; i < 2; ++i) {
    internal::HeapKeyedStateBackend b(key_group_range(i, kMaxParallelism, 2));
    auto& v = b.get<ValueState<int64_t>>(ValueStateDescriptor<int64_t>("v"));
    for (int64_t k = 0; k < 500; ++k) {
      if (subtask_for_key_group(key_group(k), kMaxParallelism, 2) != i) continue;
      b.set_current_key(serialize(k), key_group(k));
      v.update(k * 2);
    }
    internal::OperatorSnapshot s;
    s.node_id = 4;
    b.snapshot(s);
    by_subtask.push_back({s});
  }
  std::map<int64_t, int64_t> found;
  for (int j = 0; j < 3; ++j) {
    std::vector<internal::OperatorSnapshot> mine =
        NarrowSnapshots(by_subtask, j, 3, kMaxParallelism);
    ASSERT_EQ(mine.size(), 1u);
    EXPECT_EQ(mine[0].node_id, 4);
    KeyGroupRange range = key_group_range(j, kMaxParallelism, 3);
    for (const auto& [kg, bytes] : mine[0].key_groups) {
      EXPECT_GE(kg, range.first);
      EXPECT_LE(kg, range.last);
    }
    internal::HeapKeyedStateBackend b(range);
    b.restore(mine[0]);
    auto& v = b.get<ValueState<int64_t>>(ValueStateDescriptor<int64_t>("v"));
    b.for_each_key([&](const std::string& key) {
      int64_t k = deserialize<int64_t>(key);
      EXPECT_TRUE(found.emplace(k, v.value()).second) << k << " in two subtasks";
    });
  }
  ASSERT_EQ(found.size(), 500u);
  for (const auto& [k, v] : found) EXPECT_EQ(v, k * 2);
}

// A native snapshot (a store's files) goes to every new subtask whose key groups it overlaps.
TEST(NarrowSnapshotsTest, NativeSnapshotsGoToEverySubtaskTheyOverlap) {
  std::vector<std::vector<internal::OperatorSnapshot>> by_subtask(2);
  for (int i = 0; i < 2; ++i) {
    internal::OperatorSnapshot s;
    s.node_id = 2;
    internal::NativeSnapshot n;
    n.backend = "rocksdb";
    n.first_key_group = i * 64;
    n.last_key_group = i * 64 + 63;
    n.files.push_back({"1.sst", "shared/" + std::to_string(i), 1, true});
    s.native.push_back(n);
    by_subtask[i].push_back(s);
  }
  auto firsts = [&](int j) {
    std::vector<int> out;
    // Held here: a range-for over a member of the temporary would read it after its end.
    std::vector<internal::OperatorSnapshot> narrowed = NarrowSnapshots(by_subtask, j, 3, 128);
    for (const auto& n : narrowed.at(0).native) {
      out.push_back(n.first_key_group);
    }
    return out;
  };
  EXPECT_THAT(firsts(0), ElementsAre(0));      // [0, 42]
  EXPECT_THAT(firsts(1), ElementsAre(0, 64));  // [43, 85]
  EXPECT_THAT(firsts(2), ElementsAre(64));     // [86, 127]
}

// Operator snapshots of node 1 with list "l" holding `n[i]` elements "<i>.<e>" at old subtask i.
std::vector<std::vector<internal::OperatorSnapshot>> ListSnapshots(const std::vector<int>& n) {
  std::vector<std::vector<internal::OperatorSnapshot>> by_subtask;
  for (size_t i = 0; i < n.size(); ++i) {
    internal::OperatorSnapshot s;
    s.node_id = 1;
    for (int e = 0; e < n[i]; ++e) s.lists["l"].push_back(absl::StrCat(i, ".", e));
    s.lists["other"] = {absl::StrCat("o", i)};
    by_subtask.push_back({s});
  }
  return by_subtask;
}

TEST(NarrowSnapshotsTest, OperatorListsFromTwoSubtasksSpreadOverThree) {
  auto by_subtask = ListSnapshots({3, 2});
  std::vector<std::vector<std::string>> parts;
  std::vector<std::string> others;
  for (int j = 0; j < 3; ++j) {
    std::vector<internal::OperatorSnapshot> mine = NarrowSnapshots(by_subtask, j, 3, 128);
    ASSERT_EQ(mine.size(), 1u) << j;
    EXPECT_THAT(mine[0].key_groups, IsEmpty());
    parts.push_back(mine[0].lists.count("l") ? mine[0].lists.at("l") : std::vector<std::string>{});
    if (mine[0].lists.count("other")) {
      for (const auto& o : mine[0].lists.at("other")) others.push_back(o);
    }
  }
  // Concatenated in old-subtask order, split into contiguous near-equal parts.
  EXPECT_THAT(parts[0], ElementsAre("0.0"));
  EXPECT_THAT(parts[1], ElementsAre("0.1", "0.2"));
  EXPECT_THAT(parts[2], ElementsAre("1.0", "1.1"));
  EXPECT_THAT(others, ElementsAre("o0", "o1"));
}

TEST(NarrowSnapshotsTest, OperatorListsFromThreeSubtasksIntoOne) {
  auto by_subtask = ListSnapshots({2, 0, 3});
  std::vector<internal::OperatorSnapshot> mine = NarrowSnapshots(by_subtask, 0, 1, 128);
  ASSERT_EQ(mine.size(), 1u);
  EXPECT_THAT(mine[0].lists.at("l"), ElementsAre("0.0", "0.1", "2.0", "2.1", "2.2"));
  EXPECT_THAT(mine[0].lists.at("other"), ElementsAre("o0", "o1", "o2"));
}

TEST(NarrowSnapshotsTest, SameParallelismKeepsEachSubtasksListsAndDropsEmptySnapshots) {
  auto by_subtask = ListSnapshots({1, 4});
  internal::OperatorSnapshot keyed;
  keyed.node_id = 2;
  keyed.key_groups[0] = "kg0";  // owned by subtask 0 of 2
  by_subtask[1].push_back(keyed);
  std::vector<internal::OperatorSnapshot> s0 = NarrowSnapshots(by_subtask, 0, 2, 128);
  std::vector<internal::OperatorSnapshot> s1 = NarrowSnapshots(by_subtask, 1, 2, 128);
  ASSERT_EQ(s0.size(), 2u);
  EXPECT_EQ(s0[0].lists, by_subtask[0][0].lists);
  EXPECT_EQ(s0[1].node_id, 2);
  EXPECT_EQ(s0[1].key_groups.at(0), "kg0");
  ASSERT_EQ(s1.size(), 1u) << "node 2 has nothing for subtask 1";
  EXPECT_EQ(s1[0].lists, by_subtask[1][0].lists);
}

// A union list goes whole to every new subtask; a broadcast list as one old subtask's copy.
std::vector<std::vector<internal::OperatorSnapshot>> ModeSnapshots(int old_parallelism) {
  std::vector<std::vector<internal::OperatorSnapshot>> by_subtask;
  for (int i = 0; i < old_parallelism; ++i) {
    internal::OperatorSnapshot s;
    s.node_id = 1;
    s.lists["offsets"] = {absl::StrCat("p", i)};
    s.distribution["offsets"] = internal::ListDistribution::kUnion;
    s.lists["rules"] = {absl::StrCat("r", i, ".a"), absl::StrCat("r", i, ".b")};
    s.distribution["rules"] = internal::ListDistribution::kBroadcast;
    by_subtask.push_back({s});
  }
  return by_subtask;
}

TEST(NarrowSnapshotsTest, UnionListsGoWholeToEverySubtaskAtAnyParallelism) {
  for (int old_p : {1, 2, 3}) {
    for (int new_p : {1, 2, 3}) {
      auto by_subtask = ModeSnapshots(old_p);
      std::vector<std::string> all;
      for (int i = 0; i < old_p; ++i) all.push_back(absl::StrCat("p", i));
      for (int j = 0; j < new_p; ++j) {
        std::vector<internal::OperatorSnapshot> mine = NarrowSnapshots(by_subtask, j, new_p, 128);
        ASSERT_EQ(mine.size(), 1u);
        EXPECT_EQ(mine[0].lists.at("offsets"), all) << old_p << "->" << new_p << " subtask " << j;
        EXPECT_EQ(mine[0].distribution.at("offsets"), internal::ListDistribution::kUnion);
      }
    }
  }
}

TEST(NarrowSnapshotsTest, BroadcastListsGiveEverySubtaskOneOldSubtasksCopy) {
  for (int old_p : {1, 2, 3}) {
    for (int new_p : {1, 2, 3}) {
      auto by_subtask = ModeSnapshots(old_p);
      for (int j = 0; j < new_p; ++j) {
        std::vector<internal::OperatorSnapshot> mine = NarrowSnapshots(by_subtask, j, new_p, 128);
        ASSERT_EQ(mine.size(), 1u);
        int from = j % old_p;
        EXPECT_THAT(mine[0].lists.at("rules"),
                    ElementsAre(absl::StrCat("r", from, ".a"), absl::StrCat("r", from, ".b")))
            << old_p << "->" << new_p << " subtask " << j;
        EXPECT_EQ(mine[0].distribution.at("rules"), internal::ListDistribution::kBroadcast);
      }
    }
  }
}

TEST(NarrowSnapshotsTest, ABroadcastListMissingAtItsOldSubtaskIsTakenFromAnother) {
  auto by_subtask = ModeSnapshots(2);
  by_subtask[1][0].lists.erase("rules");  // an empty list is not stored
  std::vector<internal::OperatorSnapshot> mine = NarrowSnapshots(by_subtask, 1, 2, 128);
  ASSERT_EQ(mine.size(), 1u);
  EXPECT_THAT(mine[0].lists.at("rules"), ElementsAre("r0.a", "r0.b"));
}

// ---------------------------------------------------------------------------------------------
// AssignSnapshots.

// Keyed snapshots of node `node` written by `parallelism` subtasks, value 10 * k for keys
// 0..keys-1, each in its owner's snapshot.
std::vector<std::vector<internal::OperatorSnapshot>> KeyedSnapshots(int node, int parallelism,
                                                                    int64_t keys) {
  std::vector<std::vector<internal::OperatorSnapshot>> by_subtask;
  for (int i = 0; i < parallelism; ++i) {
    internal::HeapKeyedStateBackend b(key_group_range(i, 128, parallelism));
    auto& v = b.get<ValueState<int64_t>>(ValueStateDescriptor<int64_t>("v"));
    for (int64_t k = 0; k < keys; ++k) {
      int kg = key_group_for_hash(KeyHash<int64_t>{}(k), 128);
      if (subtask_for_key_group(kg, 128, parallelism) != i) continue;
      b.set_current_key(serialize(k), kg);
      v.update(10 * k);
    }
    internal::OperatorSnapshot s;
    s.node_id = node;
    b.snapshot(s);
    by_subtask.push_back({s});
  }
  return by_subtask;
}

// The keys and values of node `node`'s keyed state in `snapshots`, restored into a heap backend
// of `range`.
std::map<int64_t, int64_t> KeyedValues(const std::vector<internal::OperatorSnapshot>& snapshots,
                                       int node, KeyGroupRange range) {
  std::map<int64_t, int64_t> out;
  for (const auto& s : snapshots) {
    if (s.node_id != node) continue;
    internal::HeapKeyedStateBackend b(range);
    b.restore(s);
    auto& v = b.get<ValueState<int64_t>>(ValueStateDescriptor<int64_t>("v"));
    b.for_each_key([&](const std::string& key) { out[deserialize<int64_t>(key)] = v.value(); });
  }
  return out;
}

TEST(AssignSnapshotsTest, TheIdentityMapIsNarrowing) {
  auto by_subtask = ListSnapshots({3, 2});
  auto keyed = KeyedSnapshots(2, 2, 50);
  for (size_t i = 0; i < by_subtask.size(); ++i) by_subtask[i].push_back(keyed[i][0]);
  for (int j = 0; j < 3; ++j) {
    std::vector<internal::OperatorSnapshot> narrowed = NarrowSnapshots(by_subtask, j, 3, 128);
    std::vector<internal::OperatorSnapshot> assigned =
        AssignSnapshots({SnapshotGroup{by_subtask, {{1, 1}, {2, 2}}}}, j, 3, 128);
    ASSERT_EQ(assigned.size(), narrowed.size()) << j;
    for (size_t i = 0; i < narrowed.size(); ++i) {
      EXPECT_EQ(assigned[i].node_id, narrowed[i].node_id);
      EXPECT_EQ(assigned[i].lists, narrowed[i].lists);
      EXPECT_EQ(assigned[i].key_groups, narrowed[i].key_groups);
    }
  }
}

// Old vertex A (parallelism 2) held a list operator (node 1) and a keyed one (node 2); old vertex
// B (parallelism 1) a keyed one (node 3) and one with state the job dropped (node 4). The job
// now has them as nodes 7 (from 2), 5 (from 3) and 6 (from 1), at parallelism 3.
TEST(AssignSnapshotsTest, OperatorsOfSeveralOldVerticesGetTheirStateUnderTheirNewIds) {
  auto a = ListSnapshots({3, 2});
  auto a_keyed = KeyedSnapshots(2, 2, 200);
  for (int i = 0; i < 2; ++i) a[i].push_back(a_keyed[i][0]);
  auto b = KeyedSnapshots(3, 1, 300);
  internal::OperatorSnapshot dropped;
  dropped.node_id = 4;
  dropped.lists["gone"] = {"x"};
  b[0].push_back(dropped);

  std::map<int64_t, int64_t> from_a, from_b;
  std::vector<std::string> list;
  for (int j = 0; j < 3; ++j) {
    std::vector<internal::OperatorSnapshot> mine = AssignSnapshots(
        {SnapshotGroup{a, {{1, 6}, {2, 7}}}, SnapshotGroup{b, {{3, 5}}}}, j, 3, 128);
    for (const auto& s : mine) {
      EXPECT_THAT(s.node_id, ::testing::AnyOf(5, 6, 7)) << "subtask " << j;
      EXPECT_FALSE(s.lists.count("gone")) << "the dropped operator's state reached subtask " << j;
    }
    KeyGroupRange range = key_group_range(j, 128, 3);
    for (const auto& [k, v] : KeyedValues(mine, 7, range)) {
      EXPECT_TRUE(from_a.emplace(k, v).second) << "key " << k << " in two subtasks";
    }
    for (const auto& [k, v] : KeyedValues(mine, 5, range)) {
      EXPECT_TRUE(from_b.emplace(k, v).second) << "key " << k << " in two subtasks";
    }
    for (const auto& s : mine) {
      if (s.node_id != 6) continue;
      for (const auto& e : s.lists.at("l")) list.push_back(e);
    }
  }
  ASSERT_EQ(from_a.size(), 200u);
  ASSERT_EQ(from_b.size(), 300u);
  for (const auto& [k, v] : from_a) EXPECT_EQ(v, 10 * k);
  for (const auto& [k, v] : from_b) EXPECT_EQ(v, 10 * k);
  // The list of two old subtasks, split over three in old-subtask order.
  EXPECT_THAT(list, ElementsAre("0.0", "0.1", "0.2", "1.0", "1.1"));
}

TEST(AssignSnapshotsTest, AGroupWithoutMappedOperatorsGivesNothing) {
  EXPECT_THAT(AssignSnapshots({SnapshotGroup{ListSnapshots({2, 2}), {}}}, 0, 1, 128), IsEmpty());
}

}  // namespace
}  // namespace sluice
