// to_text: how records print.
#include "sluice/format.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <ostream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace sluice {
namespace {

struct WordCount {
  std::string word;
  int64_t count = 0;
  SLUICE_FIELDS(word, count)
};

struct Point {
  double x = 0, y = 0;
};
std::ostream& operator<<(std::ostream& os, const Point& p) {
  return os << "(" << p.x << " " << p.y << ")";
}

TEST(FormatTest, StringsAsTheyAre) {
  EXPECT_EQ(to_text(std::string("hello world")), "hello world");
  EXPECT_EQ(to_text(std::string()), "");
  EXPECT_EQ(to_text(std::string("a,b\tc")), "a,b\tc");
  EXPECT_EQ(to_text("literal"), "literal");
}

TEST(FormatTest, IntegersInDecimal) {
  EXPECT_EQ(to_text(0), "0");
  EXPECT_EQ(to_text(-42), "-42");
  EXPECT_EQ(to_text(int64_t{1234567890123}), "1234567890123");
  EXPECT_EQ(to_text(std::numeric_limits<int64_t>::min()), "-9223372036854775808");
  EXPECT_EQ(to_text(std::numeric_limits<uint64_t>::max()), "18446744073709551615");
  EXPECT_EQ(to_text(uint8_t{200}), "200");
  EXPECT_EQ(to_text(int8_t{-5}), "-5");
}

TEST(FormatTest, DoublesInShortestDefaultNotation) {
  EXPECT_EQ(to_text(1.5), "1.5");
  EXPECT_EQ(to_text(3.0), "3");
  EXPECT_EQ(to_text(-0.25), "-0.25");
  EXPECT_EQ(to_text(0.1), "0.1");
  EXPECT_EQ(to_text(1e20), "1e+20");
  EXPECT_EQ(to_text(2.5f), "2.5");
}

TEST(FormatTest, BoolsAsWords) {
  EXPECT_EQ(to_text(true), "true");
  EXPECT_EQ(to_text(false), "false");
}

TEST(FormatTest, PairsJoinedByAComma) {
  EXPECT_EQ(to_text(std::make_pair(std::string("a"), std::string("b"))), "a,b");
  EXPECT_EQ(to_text(std::make_pair(std::string("word"), int64_t{3})), "word,3");
  EXPECT_EQ(to_text(std::make_pair(true, 2.5)), "true,2.5");
}

TEST(FormatTest, TuplesJoinedByCommas) {
  EXPECT_EQ(to_text(std::make_tuple(std::string("x"), 1, 2.5, false)), "x,1,2.5,false");
  EXPECT_EQ(to_text(std::make_tuple(7)), "7");
  EXPECT_EQ(to_text(std::tuple<>()), "");
  // Nested: flattened with commas.
  EXPECT_EQ(to_text(std::make_tuple(std::make_pair(1, 2), std::string("z"))), "1,2,z");
}

TEST(FormatTest, StructsWithSluiceFieldsAsTheirFields) {
  EXPECT_EQ(to_text(WordCount{"sluice", 12}), "sluice,12");
  EXPECT_EQ(to_text(std::make_pair(WordCount{"a", 1}, 9)), "a,1,9");
}

TEST(FormatTest, VectorsInBrackets) {
  EXPECT_EQ(to_text(std::vector<int>{1, 2, 3}), "[1,2,3]");
  EXPECT_EQ(to_text(std::vector<int>{}), "[]");
  EXPECT_EQ(to_text(std::vector<std::string>{"a", "b"}), "[a,b]");
  EXPECT_EQ(to_text(std::vector<std::vector<int>>{{1}, {}, {2, 3}}), "[[1],[],[2,3]]");
  EXPECT_EQ(to_text(std::make_pair(std::string("k"), std::vector<double>{0.5})), "k,[0.5]");
}

TEST(FormatTest, TypesWithStreamOperatorUseIt) {
  EXPECT_EQ(to_text(Point{1, 2.5}), "(1 2.5)");
  EXPECT_EQ(to_text(std::vector<Point>{{0, 0}, {1, 1}}), "[(0 0),(1 1)]");
}

TEST(FormatTest, FormatToAppends) {
  std::string line = "3> ";
  format_to(line, std::make_pair(std::string("a"), 1));
  EXPECT_EQ(line, "3> a,1");
}

}  // namespace
}  // namespace sluice
