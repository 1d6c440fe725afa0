// KeyTable, the heap backend's hash table: against std::map under random inserts and erases of
// keys of every length, short (in the slot) and long (on the heap).
#include "sluice/internal/key_table.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>
#include <vector>

namespace sluice::internal {
namespace {

using state_internal::hashed;

struct Value {
  int64_t n = 0;
  std::vector<int64_t> more;  // an entry that owns memory, moved when the table moves slots
};

std::map<std::string, int64_t> Contents(const KeyTable<Value>& t) {
  std::map<std::string, int64_t> out;
  t.for_each([&](std::string_view key, const Value& v) {
    EXPECT_TRUE(out.emplace(std::string(key), v.n).second) << "key listed twice";
    EXPECT_EQ(v.more.size(), 1u);
  });
  return out;
}

TEST(KeyTableTest, MatchesAMapUnderRandomInsertsAndErases) {
  std::mt19937_64 rng(42);
  KeyTable<Value> table;
  std::map<std::string, int64_t> want;
  // Few distinct keys, so that erases and re-inserts meet the same probe runs often.
  auto random_key = [&] {
    std::string k(rng() % 20, '\0');  // 0 to 19 bytes: both sides of the in-slot limit
    for (char& c : k) c = static_cast<char>('a' + rng() % 3);
    return k;
  };
  for (int step = 0; step < 200'000; ++step) {
    std::string k = random_key();
    switch (rng() % 3) {
      case 0: {
        Value& v = table.find_or_insert(hashed(k));
        v.n = step;
        v.more = {step};
        want[k] = step;
        break;
      }
      case 1:
        table.erase(hashed(k));
        want.erase(k);
        break;
      default: {
        Value* v = table.find(hashed(k));
        auto it = want.find(k);
        ASSERT_EQ(v != nullptr, it != want.end()) << "key '" << k << "' at step " << step;
        if (v) {
          ASSERT_EQ(v->n, it->second);
        }
      }
    }
    ASSERT_EQ(table.size(), want.size());
  }
  EXPECT_EQ(Contents(table), want);
}

TEST(KeyTableTest, GrowsAndEmptiesCompletely) {
  KeyTable<Value> table;
  std::vector<std::string> keys;
  for (int i = 0; i < 10'000; ++i)
    keys.push_back(i % 2 ? std::to_string(i) : "long key " + std::to_string(i));
  for (size_t i = 0; i < keys.size(); ++i) {
    Value& v = table.insert(hashed(keys[i]));
    v.n = static_cast<int64_t>(i);
    v.more = {1};
  }
  ASSERT_EQ(table.size(), keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    Value* v = table.find(hashed(keys[i]));
    ASSERT_NE(v, nullptr) << keys[i];
    EXPECT_EQ(v->n, static_cast<int64_t>(i));
  }
  for (const std::string& k : keys) table.erase(hashed(k));
  EXPECT_TRUE(table.empty());
  EXPECT_EQ(table.find(hashed(keys[0])), nullptr);
  table.erase(hashed("absent"));  // erasing an absent key changes nothing
  EXPECT_TRUE(Contents(table).empty());
}

TEST(KeyTableTest, EmptyKeyAndMovedTable) {
  KeyTable<Value> table;
  table.insert(hashed("")).more = {7};
  table.insert(hashed(std::string(100, 'x'))).more = {8};
  KeyTable<Value> moved(std::move(table));
  ASSERT_NE(moved.find(hashed("")), nullptr);
  EXPECT_EQ(moved.find(hashed(""))->more, std::vector<int64_t>{7});
  EXPECT_EQ(moved.find(hashed(std::string(100, 'x')))->more, std::vector<int64_t>{8});
  EXPECT_EQ(moved.size(), 2u);
}

}  // namespace
}  // namespace sluice::internal
