// JobArgs: the arguments a job's entry point sees.
#include "sluice/args.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

namespace sluice {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// The message of the std::invalid_argument that `f` throws; fails the test if it throws nothing.
template <class F>
std::string InvalidArgumentMessage(F f) {
  try {
    f();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  ADD_FAILURE() << "no std::invalid_argument thrown";
  return "";
}

TEST(JobArgsTest, NameValuePairsInBothSpellings) {
  JobArgs args({"--input", "/data/in.txt", "--output=/data/out", "--window=10"});
  EXPECT_TRUE(args.has("input"));
  EXPECT_EQ(args.get("input"), "/data/in.txt");
  EXPECT_EQ(args.get("output"), "/data/out");
  EXPECT_EQ(args.get_int("window", 0), 10);
  EXPECT_TRUE(args.positional().empty());
}

TEST(JobArgsTest, AbsentArgumentsGiveTheFallback) {
  JobArgs args({"--a", "1"});
  EXPECT_FALSE(args.has("b"));
  EXPECT_EQ(args.get("b"), "");
  EXPECT_EQ(args.get("b", "dflt"), "dflt");
  EXPECT_EQ(args.get_int("b", 77), 77);
  EXPECT_EQ(args.get_double("b", 2.5), 2.5);
  EXPECT_TRUE(args.get_bool("b", true));
  EXPECT_FALSE(args.get_bool("b", false));

  JobArgs none;
  EXPECT_FALSE(none.has("a"));
  EXPECT_TRUE(none.raw().empty());
}

TEST(JobArgsTest, FlagsWithoutAValueAreTrue) {
  JobArgs args({"--verbose", "--n", "3", "--dry-run"});
  EXPECT_TRUE(args.has("verbose"));
  EXPECT_EQ(args.get("verbose"), "true");
  EXPECT_TRUE(args.get_bool("verbose", false));
  EXPECT_EQ(args.get_int("n", 0), 3);
  EXPECT_TRUE(args.get_bool("dry-run", false));  // last argument
}

TEST(JobArgsTest, EqualsFormKeepsEverythingAfterTheFirstEquals) {
  JobArgs args({"--filter=a=b", "--empty="});
  EXPECT_EQ(args.get("filter"), "a=b");
  EXPECT_TRUE(args.has("empty"));
  EXPECT_EQ(args.get("empty", "x"), "");
}

TEST(JobArgsTest, PositionalArgumentsKeepTheirOrder) {
  JobArgs args({"first", "--k", "v", "second", "--", "-x", "third"});
  EXPECT_THAT(args.positional(), ElementsAre("first", "second", "--", "-x", "third"));
  EXPECT_EQ(args.get("k"), "v");
  EXPECT_THAT(args.raw(), ElementsAre("first", "--k", "v", "second", "--", "-x", "third"));
}

TEST(JobArgsTest, NegativeNumbersAreValues) {
  JobArgs args({"--offset", "-5", "--scale", "-0.25"});
  EXPECT_EQ(args.get_int("offset", 0), -5);
  EXPECT_DOUBLE_EQ(args.get_double("scale", 0), -0.25);
}

TEST(JobArgsTest, LaterValuesWin) {
  JobArgs args({"--n", "1", "--n=2"});
  EXPECT_EQ(args.get_int("n", 0), 2);
}

TEST(JobArgsTest, GetIntRejectsMalformedValuesNamingTheArgument) {
  JobArgs args(
      {"--count", "12x", "--big", "99999999999999999999", "--empty=", "--flag", "--ok", "-3"});
  std::string msg = InvalidArgumentMessage([&] { args.get_int("count", 0); });
  EXPECT_THAT(msg, HasSubstr("--count"));
  EXPECT_THAT(msg, HasSubstr("'12x'"));
  EXPECT_THAT(InvalidArgumentMessage([&] { args.get_int("big", 0); }), HasSubstr("--big"));
  EXPECT_THAT(InvalidArgumentMessage([&] { args.get_int("empty", 0); }), HasSubstr("--empty"));
  EXPECT_THAT(InvalidArgumentMessage([&] { args.get_int("flag", 0); }), HasSubstr("--flag"));
  EXPECT_EQ(args.get_int("ok", 0), -3);
}

TEST(JobArgsTest, GetDoubleAndGetBoolRejectMalformedValues) {
  JobArgs args({"--rate", "fast", "--on", "maybe", "--x", "1.5e3", "--y", "0", "--z", "false"});
  EXPECT_THAT(InvalidArgumentMessage([&] { args.get_double("rate", 0); }), HasSubstr("--rate"));
  EXPECT_THAT(InvalidArgumentMessage([&] { args.get_bool("on", false); }), HasSubstr("--on"));
  EXPECT_DOUBLE_EQ(args.get_double("x", 0), 1500.0);
  EXPECT_FALSE(args.get_bool("y", true));
  EXPECT_FALSE(args.get_bool("z", true));
}

TEST(JobArgsTest, RequiredNamesTheMissingArgument) {
  JobArgs args({"--present", "yes"});
  EXPECT_EQ(args.required("present"), "yes");
  std::string msg = InvalidArgumentMessage([&] { args.required("input"); });
  EXPECT_THAT(msg, HasSubstr("--input"));
  EXPECT_THAT(msg, HasSubstr("missing"));
}

}  // namespace
}  // namespace sluice
