// Operator ids: structural ids that stay when a job grows downstream or by new branches and
// ignore names, parallelism and chaining, but change when what lies upstream of an operator
// changes; uids that replace them; duplicate ids refused naming both operators.
#include "common/operator_ids.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "common/job_graph.h"
#include "sluice/sluice.h"

namespace sluice {
namespace {

using ::testing::HasSubstr;
using ::testing::SizeIs;

std::vector<std::string> Structural(const StreamExecutionEnvironment& env) {
  return StructuralOperatorIds(env.nodes());
}

std::vector<std::string> Ids(const StreamExecutionEnvironment& env) {
  auto ids = OperatorIds(env.nodes());
  EXPECT_TRUE(ids.ok()) << ids.status();
  return ids.ok() ? *ids : std::vector<std::string>{};
}

// source -> map -> key_by -> sum -> print, the base program the tests vary. Options change what
// must not matter (names, parallelism, chaining) or add to it.
struct Variant {
  bool names = false;
  bool parallelism = false;
  bool no_chaining = false;
  bool filter_before_map = false;  // an operator inserted upstream of map
  bool rebalance_instead_of_key_by = false;
};

void Base(StreamExecutionEnvironment& env, const Variant& v = {}) {
  auto src = env.generate_sequence(1, 100);
  if (v.names) src.name("Numbers");
  if (v.parallelism) src.set_parallelism(3);
  DataStream<int64_t> in = src;
  if (v.filter_before_map) in = in.filter([](int64_t n) { return n > 0; });
  auto mapped = in.map([](int64_t n) { return std::pair<int64_t, int64_t>(n % 7, n); });
  if (v.names) mapped.name("Pairs");
  if (v.no_chaining) mapped.disable_chaining();
  if (v.parallelism) mapped.set_parallelism(2);
  DataStream<std::pair<int64_t, int64_t>> summed =
      v.rebalance_instead_of_key_by
          ? mapped.rebalance().map([](std::pair<int64_t, int64_t> p) { return p; })
          : mapped.key_by([](const std::pair<int64_t, int64_t>& p) { return p.first; }).sum<1>();
  if (v.parallelism) summed.set_parallelism(4);
  auto sink = summed.print();
  if (v.names) sink.name("Out");
  if (v.no_chaining) sink.disable_chaining();
}

TEST(OperatorIdsTest, StructuralIdsAreThirtyTwoHexDigitsTheSameOnEveryBuildOfTheProgram) {
  StreamExecutionEnvironment a, b;
  Base(a);
  Base(b);
  std::vector<std::string> ids = Structural(a);
  ASSERT_THAT(ids, SizeIs(4));
  EXPECT_EQ(ids, Structural(b));
  for (const std::string& id : ids) {
    EXPECT_EQ(id.size(), 32u);
    EXPECT_EQ(id.find_first_not_of("0123456789abcdef"), std::string::npos) << id;
  }
  // Checkpoints store these ids: a change of the rule (or of a kind's name) would leave the
  // checkpoints of jobs without uids unrestorable. The first source of a job is always the
  // SHA-256 of "20:sluice-operator-id/1;9:6:source;;1:0;" (tag, signature, ordinal), cut to
  // 32 hex digits:
  EXPECT_EQ(ids[0], "9b2f87493bdadb8cae7136a94f148c75");
}

TEST(OperatorIdsTest, NamesParallelismAndChainingDoNotChangeThem) {
  StreamExecutionEnvironment base;
  Base(base);
  for (Variant v :
       {Variant{.names = true}, Variant{.parallelism = true}, Variant{.no_chaining = true}}) {
    StreamExecutionEnvironment env;
    Base(env, v);
    EXPECT_EQ(Structural(env), Structural(base)) << v.names << v.parallelism << v.no_chaining;
  }
}

TEST(OperatorIdsTest, OperatorsAddedDownstreamOrAsNewBranchesLeaveTheOthersAlone) {
  StreamExecutionEnvironment base;
  Base(base);
  const std::vector<std::string> before = Structural(base);

  // Downstream: a map after the sum, with its own sink (the sum's print stays first).
  StreamExecutionEnvironment downstream;
  {
    auto src = downstream.generate_sequence(1, 100);
    auto summed = src.map([](int64_t n) { return std::pair<int64_t, int64_t>(n % 7, n); })
                      .key_by([](const std::pair<int64_t, int64_t>& p) { return p.first; })
                      .sum<1>();
    summed.print();
    summed.map([](std::pair<int64_t, int64_t> p) { return p.second; }).print();
  }
  std::vector<std::string> after = Structural(downstream);
  ASSERT_THAT(after, SizeIs(6));
  EXPECT_EQ(std::vector<std::string>(after.begin(), after.begin() + 4), before);

  // A new branch built first in the program: a filter on the source, and a second source.
  StreamExecutionEnvironment branches;
  {
    auto src = branches.generate_sequence(1, 100);
    src.filter([](int64_t n) { return n % 2 == 0; }).print();
    src.map([](int64_t n) { return std::pair<int64_t, int64_t>(n % 7, n); })
        .key_by([](const std::pair<int64_t, int64_t>& p) { return p.first; })
        .sum<1>()
        .print();
    branches.generate_sequence(5, 6).print();
  }
  after = Structural(branches);
  ASSERT_THAT(after, SizeIs(8));
  EXPECT_EQ(after[0], before[0]);  // the source
  EXPECT_EQ(after[3], before[1]);  // the map: the filter is of another kind
  EXPECT_EQ(after[4], before[2]);  // the sum
  EXPECT_EQ(after[5], before[3]);  // its print: the filter's print has other inputs
}

TEST(OperatorIdsTest, TheyChangeWithWhatLiesUpstream) {
  StreamExecutionEnvironment base;
  Base(base);
  const std::vector<std::string> before = Structural(base);

  StreamExecutionEnvironment inserted;
  Base(inserted, Variant{.filter_before_map = true});
  std::vector<std::string> after = Structural(inserted);
  ASSERT_THAT(after, SizeIs(5));
  EXPECT_EQ(after[0], before[0]) << "the source is upstream of the change";
  for (int i = 1; i < 4; ++i) EXPECT_NE(after[i + 1], before[i]) << "operator " << i;

  // Keyed or not is part of an input.
  StreamExecutionEnvironment rebalanced;
  Base(rebalanced, Variant{.rebalance_instead_of_key_by = true});
  after = Structural(rebalanced);
  EXPECT_EQ(after[1], before[1]);
  EXPECT_NE(after[2], before[2]);
}

TEST(OperatorIdsTest, IdenticalSiblingsAndSourcesAreToldApartByTheirOrder) {
  StreamExecutionEnvironment env;
  auto a = env.generate_sequence(1, 10);
  auto b = env.generate_sequence(1, 10);
  auto m1 = a.map([](int64_t n) { return n; });
  auto m2 = a.map([](int64_t n) { return n; });
  auto mb = b.map([](int64_t n) { return n; });
  std::vector<std::string> ids = Structural(env);
  ASSERT_THAT(ids, SizeIs(5));
  std::set<std::string> distinct(ids.begin(), ids.end());
  EXPECT_EQ(distinct.size(), 5u);
  (void)m1;
  (void)m2;
  (void)mb;
}

TEST(OperatorIdsTest, AUidReplacesTheOperatorsIdAndNoOtherOne) {
  StreamExecutionEnvironment plain, with_uid;
  Base(plain);
  Base(with_uid);
  internal::set_uid(*with_uid.nodes()[1], "pairs");
  std::vector<std::string> ids = Ids(with_uid);
  std::vector<std::string> expected = Structural(plain);
  expected[1] = "pairs";
  EXPECT_EQ(ids, expected);
  EXPECT_EQ(Structural(with_uid), Structural(plain));
}

TEST(OperatorIdsTest, RepeatedIdsAreRefusedNamingBothOperators) {
  StreamExecutionEnvironment env;
  auto src = env.generate_sequence(1, 10).uid("numbers");
  src.map([](int64_t n) { return n; }).name("Doubler").uid("numbers");
  auto ids = OperatorIds(env.nodes());
  ASSERT_FALSE(ids.ok());
  EXPECT_EQ(ids.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(ids.status().message(),
              HasSubstr("operators 'Source: Sequence Source' and 'Doubler' have the same uid "
                        "'numbers'"));
  JobGraphOptions opts;
  EXPECT_THAT(BuildJobGraph(env, opts).status().message(), HasSubstr("a uid must be unique"));

  // A uid equal to another operator's structural id.
  StreamExecutionEnvironment env2;
  auto s2 = env2.generate_sequence(1, 10);
  auto m2 = s2.map([](int64_t n) { return n; }).name("Copy");
  m2.uid(Structural(env2)[0]);
  auto ids2 = OperatorIds(env2.nodes());
  ASSERT_FALSE(ids2.ok());
  EXPECT_THAT(ids2.status().message(),
              HasSubstr("the uid of one is the structural id of the other"));

  EXPECT_THROW(env2.generate_sequence(1, 2).uid(""), std::invalid_argument);
  EXPECT_THAT(OperatorIds(env.nodes()).status().message(), HasSubstr("'Doubler'"));
}

TEST(OperatorIdsTest, TheJobGraphCarriesThemAndSluiceInfoShowsThem) {
  StreamExecutionEnvironment env;
  Base(env);
  internal::set_uid(*env.nodes()[2], "sum");
  JobGraphOptions opts;
  auto g = BuildJobGraph(env, opts);
  ASSERT_TRUE(g.ok()) << g.status();
  std::vector<std::string> ids = Ids(env);
  for (const auto& v : g->vertices()) {
    ASSERT_EQ(v.operator_ids_size(), v.node_ids_size());
    for (int k = 0; k < v.node_ids_size(); ++k) {
      EXPECT_EQ(v.operator_ids(k), ids[static_cast<size_t>(v.node_ids(k))]);
    }
  }
  nlohmann::json j = nlohmann::json::parse(JobGraphToJson(*g, env));
  bool found = false;
  for (const auto& v : j["vertices"]) {
    for (const auto& op : v["chain"]) {
      EXPECT_EQ(op["operator_id"], ids[op["id"].get<size_t>()]);
      if (op.contains("uid")) {
        EXPECT_EQ(op["uid"], "sum");
        found = true;
      }
    }
  }
  EXPECT_TRUE(found) << j.dump();
}

}  // namespace
}  // namespace sluice
