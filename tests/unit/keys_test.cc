// Keys: the stable key hash, key groups and their owners, and the pointwise connection pattern.
#include "sluice/keys.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace sluice {
namespace {

// KeyHash must give the same value in every process and build: records are routed by it, and
// keyed state will be too. These values were computed once from the current functions; a change
// here means a change of hash function, which reroutes every key.
TEST(KeyHashTest, IntegerHashesArePinned) {
  EXPECT_EQ(KeyHash<int64_t>{}(0), 0x0ULL);
  EXPECT_EQ(KeyHash<int64_t>{}(1), 0xb456bcfc34c2cb2cULL);
  EXPECT_EQ(KeyHash<int64_t>{}(42), 0x810879608e4259ccULL);
  EXPECT_EQ(KeyHash<int64_t>{}(-1), 0x64b5720b4b825f21ULL);
}

TEST(KeyHashTest, StringHashesArePinned) {
  EXPECT_EQ(KeyHash<std::string>{}(""), 0xefd01f60ba992926ULL);
  EXPECT_EQ(KeyHash<std::string>{}("hello"), 0xe9c562c0fdb23244ULL);
  EXPECT_EQ(KeyHash<std::string>{}("sluice"), 0xbc994db9d32abd3cULL);
}

TEST(KeyHashTest, OtherTypesHashTheirSerializedBytesAndArePinned) {
  EXPECT_EQ((KeyHash<std::pair<std::string, int32_t>>{}({"a", 1})), 0xd733fc808c8c0feULL);
  EXPECT_EQ(KeyHash<double>{}(1.5), 0x8917082983728293ULL);
  EXPECT_EQ((KeyHash<std::pair<std::string, int32_t>>{}({"a", 1})),
            hash_bytes(serialize(std::pair<std::string, int32_t>{"a", 1})));
}

TEST(KeyHashTest, IntegersOfDifferentWidthsAgreeOnTheSameValue) {
  // A key selector returning int32 and one returning int64 route a key the same way.
  EXPECT_EQ(KeyHash<int32_t>{}(42), KeyHash<int64_t>{}(42));
  EXPECT_EQ(KeyHash<int32_t>{}(-1), KeyHash<int64_t>{}(-1));
  EXPECT_EQ(KeyHash<uint16_t>{}(7), KeyHash<int64_t>{}(7));
}

TEST(KeyHashTest, StringHashIsAFunctionOfItsBytes) {
  std::string a("a\0b", 3), b("a\0c", 3);
  EXPECT_NE(KeyHash<std::string>{}(a), KeyHash<std::string>{}(b));
  EXPECT_NE(KeyHash<std::string>{}("ab"), KeyHash<std::string>{}("ba"));
  EXPECT_EQ(KeyHash<std::string>{}(std::string("same")), hash_bytes("same"));
}

TEST(KeyHashTest, KeysSpreadOverKeyGroups) {
  // 10000 distinct string keys over 128 key groups: every group is used and none gets more than
  // twice its share (a weak check that the hash is not degenerate).
  std::vector<int> counts(128);
  for (int i = 0; i < 10000; ++i) {
    ++counts[key_group_for_hash(KeyHash<std::string>{}("key-" + std::to_string(i)), 128)];
  }
  for (int kg = 0; kg < 128; ++kg) {
    EXPECT_GT(counts[kg], 0) << kg;
    EXPECT_LT(counts[kg], 2 * 10000 / 128) << kg;
  }
  std::vector<int> int_counts(128);
  for (int64_t i = 0; i < 10000; ++i) ++int_counts[key_group_for_hash(KeyHash<int64_t>{}(i), 128)];
  for (int kg = 0; kg < 128; ++kg) EXPECT_GT(int_counts[kg], 0) << kg;
}

TEST(KeyGroupTest, KeyGroupForHashIsInRange) {
  for (int max_p : {1, 2, 7, 128, 1000, 32768}) {
    for (uint64_t h : {0ULL, 1ULL, 127ULL, 128ULL, 0x7fffffffffffffffULL, 0x8000000000000000ULL,
                       0xffffffffffffffffULL, 0xb456bcfc34c2cb2cULL}) {
      int kg = key_group_for_hash(h, max_p);
      EXPECT_GE(kg, 0) << h << " " << max_p;
      EXPECT_LT(kg, max_p) << h << " " << max_p;
      EXPECT_EQ(static_cast<uint64_t>(kg), h % static_cast<uint64_t>(max_p));
    }
  }
  // The top bit of the hash must not make the key group negative.
  EXPECT_EQ(key_group_for_hash(0xffffffffffffffffULL, 128), 127);
}

// Checks, for one (max_parallelism, parallelism), that key_group_range and subtask_for_key_group
// are inverse and that the ranges tile [0, max_parallelism) in subtask order.
void CheckKeyGroupAssignment(int max_p, int p) {
  SCOPED_TRACE("max_parallelism=" + std::to_string(max_p) + " parallelism=" + std::to_string(p));
  std::vector<int> owner(max_p, -1);
  int next = 0;
  for (int s = 0; s < p; ++s) {
    KeyGroupRange r = key_group_range(s, max_p, p);
    ASSERT_EQ(r.first, next) << "subtask " << s << " range does not start where the last ended";
    ASSERT_GE(r.size(), 0);
    if (p <= max_p) {
      ASSERT_GE(r.size(), 1) << "subtask " << s << " owns no key group";
    }
    for (int kg = r.first; kg <= r.last; ++kg) {
      ASSERT_GE(kg, 0);
      ASSERT_LT(kg, max_p);
      ASSERT_EQ(owner[kg], -1) << "key group " << kg << " owned twice";
      owner[kg] = s;
      ASSERT_EQ(subtask_for_key_group(kg, max_p, p), s) << "key group " << kg;
    }
    next = r.last + 1;
  }
  ASSERT_EQ(next, max_p) << "the ranges do not cover every key group";
  for (int kg = 0; kg < max_p; ++kg) {
    int s = subtask_for_key_group(kg, max_p, p);
    ASSERT_GE(s, 0);
    ASSERT_LT(s, p);
    ASSERT_EQ(owner[kg], s) << "key group " << kg;
    KeyGroupRange r = key_group_range(s, max_p, p);
    ASSERT_GE(kg, r.first);
    ASSERT_LE(kg, r.last);
  }
}

TEST(KeyGroupTest, RangeAndOwnerAreInverseForTheDefaultMaxParallelism) {
  for (int p = 1; p <= kDefaultMaxParallelism; ++p) {
    CheckKeyGroupAssignment(kDefaultMaxParallelism, p);
    if (HasFatalFailure()) return;
  }
}

TEST(KeyGroupTest, RangeAndOwnerAreInverseForManyShapes) {
  for (int max_p : {1, 2, 3, 5, 7, 10, 16, 17, 100, 127, 129, 256, 1000}) {
    for (int p = 1; p <= max_p && p <= 64; ++p) {
      CheckKeyGroupAssignment(max_p, p);
      if (HasFatalFailure()) return;
    }
  }
  // Large values must not overflow in the products.
  CheckKeyGroupAssignment(32768, 3);
  CheckKeyGroupAssignment(32768, 1000);
  CheckKeyGroupAssignment(1 << 20, 777);
}

TEST(KeyGroupTest, EveryKeyGroupHasExactlyOneOwnerEvenAboveMaxParallelism) {
  // Parallelism above the number of key groups leaves some subtasks idle but still gives every
  // key group one owner.
  for (auto [max_p, p] : std::vector<std::pair<int, int>>{{4, 8}, {3, 10}, {1, 5}, {128, 200}}) {
    CheckKeyGroupAssignment(max_p, p);
    if (HasFatalFailure()) return;
  }
}

TEST(KeyGroupTest, RangesAreBalanced) {
  for (int p = 1; p <= 128; ++p) {
    int lo = 1 << 30, hi = 0;
    for (int s = 0; s < p; ++s) {
      int n = key_group_range(s, 128, p).size();
      lo = std::min(lo, n);
      hi = std::max(hi, n);
    }
    EXPECT_LE(hi - lo, 1) << "parallelism " << p;
  }
}

TEST(KeyGroupTest, KnownAssignments) {
  // Flink's formula: subtask = key_group * parallelism / max_parallelism.
  EXPECT_EQ(subtask_for_key_group(0, 128, 3), 0);
  EXPECT_EQ(subtask_for_key_group(42, 128, 3), 0);
  EXPECT_EQ(subtask_for_key_group(43, 128, 3), 1);
  EXPECT_EQ(subtask_for_key_group(127, 128, 3), 2);
  KeyGroupRange r = key_group_range(1, 128, 3);
  EXPECT_EQ(r.first, 43);
  EXPECT_EQ(r.last, 85);
  EXPECT_EQ(r.size(), 43);
}

// For every (producers, consumers), producer j feeds consumer i exactly when consumer i reads
// from producer j, every subtask is connected, and the ranges stay in bounds.
TEST(PointwiseTest, ConsumersAndProducersAreConsistent) {
  for (int up = 1; up <= 12; ++up) {
    for (int down = 1; down <= 12; ++down) {
      SCOPED_TRACE("producers=" + std::to_string(up) + " consumers=" + std::to_string(down));
      std::vector<std::set<int>> feeds(up), reads(down);
      for (int j = 0; j < up; ++j) {
        SubtaskRange r = pointwise_consumers(j, up, down);
        ASSERT_GE(r.begin, 0);
        ASSERT_LE(r.end, down);
        ASSERT_LT(r.begin, r.end) << "producer " << j << " feeds nobody";
        if (up >= down) {
          EXPECT_EQ(r.end - r.begin, 1) << "producer " << j;
        }
        for (int i = r.begin; i < r.end; ++i) feeds[j].insert(i);
      }
      for (int i = 0; i < down; ++i) {
        SubtaskRange r = pointwise_producers(i, up, down);
        ASSERT_GE(r.begin, 0);
        ASSERT_LE(r.end, up);
        ASSERT_LT(r.begin, r.end) << "consumer " << i << " reads from nobody";
        if (up <= down) {
          EXPECT_EQ(r.end - r.begin, 1) << "consumer " << i;
        }
        for (int j = r.begin; j < r.end; ++j) reads[i].insert(j);
      }
      for (int j = 0; j < up; ++j) {
        for (int i = 0; i < down; ++i) {
          EXPECT_EQ(feeds[j].count(i), reads[i].count(j)) << "producer " << j << ", consumer " << i;
        }
      }
      // Every consumer is fed by somebody (so no subtask waits forever for input).
      std::set<int> fed;
      for (const auto& f : feeds) fed.insert(f.begin(), f.end());
      EXPECT_EQ(fed.size(), static_cast<size_t>(down));
    }
  }
}

TEST(PointwiseTest, EqualParallelismIsOneToOne) {
  for (int p = 1; p <= 12; ++p) {
    for (int i = 0; i < p; ++i) {
      EXPECT_EQ(pointwise_consumers(i, p, p).begin, i);
      EXPECT_EQ(pointwise_consumers(i, p, p).end, i + 1);
      EXPECT_EQ(pointwise_producers(i, p, p).begin, i);
      EXPECT_EQ(pointwise_producers(i, p, p).end, i + 1);
    }
  }
}

TEST(PointwiseTest, KnownShapes) {
  // 2 producers, 4 consumers: producer 0 feeds 0 and 1, producer 1 feeds 2 and 3.
  EXPECT_EQ(pointwise_consumers(0, 2, 4).begin, 0);
  EXPECT_EQ(pointwise_consumers(0, 2, 4).end, 2);
  EXPECT_EQ(pointwise_consumers(1, 2, 4).begin, 2);
  EXPECT_EQ(pointwise_consumers(1, 2, 4).end, 4);
  // 4 producers, 2 consumers: consumer 1 reads from 2 and 3.
  EXPECT_EQ(pointwise_producers(1, 4, 2).begin, 2);
  EXPECT_EQ(pointwise_producers(1, 4, 2).end, 4);
  EXPECT_EQ(pointwise_consumers(3, 4, 2).begin, 1);
}

}  // namespace
}  // namespace sluice
