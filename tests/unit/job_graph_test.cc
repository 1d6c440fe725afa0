// BuildJobGraph: parallelism and partitioners resolved, operators chained into vertices, network
// edges between them; and the JSON form `sluice info` prints.
#include "common/job_graph.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "sluice/sluice.h"

namespace sluice {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

int64_t Twice(int64_t v) { return 2 * v; }

// The node ids of each vertex, in vertex order.
std::vector<std::vector<int>> Chains(const proto::JobGraph& g) {
  std::vector<std::vector<int>> out;
  for (const auto& v : g.vertices()) out.emplace_back(v.node_ids().begin(), v.node_ids().end());
  return out;
}

struct EdgeView {
  int source_vertex, source_node, target_vertex, target_node, target_input;
  std::string partitioner;
  bool operator==(const EdgeView&) const = default;
};
std::ostream& operator<<(std::ostream& os, const EdgeView& e) {
  return os << "{" << e.source_vertex << "/" << e.source_node << " -> " << e.target_vertex << "/"
            << e.target_node << " input " << e.target_input << " " << e.partitioner << "}";
}
std::vector<EdgeView> Edges(const proto::JobGraph& g) {
  std::vector<EdgeView> out;
  for (const auto& e : g.edges()) {
    out.push_back({e.source_vertex(), e.source_node(), e.target_vertex(), e.target_node(),
                   e.target_input(),
                   internal::partitioner_name(PartitionerFromProto(e.partitioner()))});
  }
  return out;
}

proto::JobGraph Build(const StreamExecutionEnvironment& env, int default_p = 1, int max_p = 128) {
  JobGraphOptions opts;
  opts.default_parallelism = default_p;
  opts.max_parallelism = max_p;
  auto g = BuildJobGraph(env, opts);
  EXPECT_TRUE(g.ok()) << g.status();
  return g.ok() ? *g : proto::JobGraph();
}

TEST(JobGraphTest, ForwardEdgesOfEqualParallelismChainIntoOneVertex) {
  StreamExecutionEnvironment env;
  env.generate_sequence(1, 10).map(Twice).filter([](int64_t v) { return v > 4; }).print();
  proto::JobGraph g = Build(env, 3);
  ASSERT_EQ(g.vertices_size(), 1);
  EXPECT_THAT(Chains(g), ElementsAre(ElementsAre(0, 1, 2, 3)));
  EXPECT_EQ(g.vertices(0).name(),
            "Source: Sequence Source -> Map -> Filter -> Sink: Print to Std. Out");
  EXPECT_EQ(g.vertices(0).parallelism(), 3);
  EXPECT_TRUE(g.vertices(0).is_source());
  EXPECT_EQ(g.edges_size(), 0);
  EXPECT_EQ(g.name(), "Sluice Job");
  EXPECT_EQ(g.max_parallelism(), 128);
  EXPECT_EQ(g.abi_stamp(), SLUICE_ABI_STAMP);
}

TEST(JobGraphTest, KeyByBreaksTheChainWithAHashEdge) {
  StreamExecutionEnvironment env;
  env.set_job_name("keyed");
  env.generate_sequence(1, 10)
      .map([](int64_t v) { return std::make_pair(v % 3, v); })
      .key_by([](const std::pair<int64_t, int64_t>& p) { return p.first; })
      .sum<1>()
      .map([](const std::pair<int64_t, int64_t>& p) { return p.second; })
      .print();
  proto::JobGraph g = Build(env, 2);
  EXPECT_EQ(g.name(), "keyed");
  EXPECT_THAT(Chains(g), ElementsAre(ElementsAre(0, 1), ElementsAre(2, 3, 4)));
  EXPECT_EQ(g.vertices(1).name(), "Keyed Aggregation -> Map -> Sink: Print to Std. Out");
  EXPECT_FALSE(g.vertices(1).is_source());
  EXPECT_THAT(Edges(g), ElementsAre(EdgeView{0, 1, 1, 2, 0, "hash"}));
}

TEST(JobGraphTest, DisableChainingIsolatesTheOperator) {
  StreamExecutionEnvironment env;
  env.generate_sequence(1, 10)
      .map(Twice)
      .disable_chaining()
      .filter([](int64_t) { return true; })
      .print();
  proto::JobGraph g = Build(env);
  EXPECT_THAT(Chains(g), ElementsAre(ElementsAre(0), ElementsAre(1), ElementsAre(2, 3)));
  EXPECT_THAT(Edges(g),
              ElementsAre(EdgeView{0, 0, 1, 1, 0, "forward"}, EdgeView{1, 1, 2, 2, 0, "forward"}));
}

TEST(JobGraphTest, DisableChainingOnASink) {
  StreamExecutionEnvironment env;
  env.generate_sequence(1, 10).map(Twice).print().disable_chaining();
  proto::JobGraph g = Build(env);
  EXPECT_THAT(Chains(g), ElementsAre(ElementsAre(0, 1), ElementsAre(2)));
  EXPECT_THAT(Edges(g), ElementsAre(EdgeView{0, 1, 1, 2, 0, "forward"}));
}

TEST(JobGraphTest, DifferentParallelismGivesARebalanceEdgeByDefault) {
  StreamExecutionEnvironment env;
  env.generate_sequence(1, 10)
      .set_parallelism(2)
      .map(Twice)
      .set_parallelism(3)
      .print()
      .set_parallelism(3);
  proto::JobGraph g = Build(env);
  EXPECT_THAT(Chains(g), ElementsAre(ElementsAre(0), ElementsAre(1, 2)));
  EXPECT_EQ(g.vertices(0).parallelism(), 2);
  EXPECT_EQ(g.vertices(1).parallelism(), 3);
  EXPECT_THAT(Edges(g), ElementsAre(EdgeView{0, 0, 1, 1, 0, "rebalance"}));
  EXPECT_EQ(SlotsNeeded(g), 3);
}

TEST(JobGraphTest, ExplicitForwardWithUnequalParallelismIsAnErrorNamingBothOperators) {
  StreamExecutionEnvironment env;
  auto src = env.generate_sequence(1, 10);
  src.name("numbers").set_parallelism(2);
  src.forward().map(Twice).name("doubler").set_parallelism(3);
  auto g = BuildJobGraph(env, JobGraphOptions{});
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(g.status().message(), HasSubstr("'numbers'"));
  EXPECT_THAT(g.status().message(), HasSubstr("'doubler'"));
  EXPECT_THAT(g.status().message(), HasSubstr("forward"));
}

TEST(JobGraphTest, ExplicitForwardWithEqualParallelismChains) {
  StreamExecutionEnvironment env;
  env.generate_sequence(1, 10).forward().map(Twice).print();
  EXPECT_THAT(Chains(Build(env, 4)), ElementsAre(ElementsAre(0, 1, 2)));
}

TEST(JobGraphTest, ExplicitPartitionersNameTheirEdges) {
  StreamExecutionEnvironment env;
  auto src = env.generate_sequence(1, 100);
  src.set_parallelism(2);
  src.rescale().map(Twice).set_parallelism(4).print().set_parallelism(4);
  src.broadcast().map(Twice).set_parallelism(2).print().set_parallelism(2);
  src.rebalance().map(Twice).set_parallelism(2).print().set_parallelism(2);  // equal, not chained
  src.partition_custom([](int64_t k, int n) { return static_cast<int>(k % n); },
                       [](int64_t v) { return v; })
      .map(Twice)
      .set_parallelism(3)
      .print()
      .set_parallelism(3);
  proto::JobGraph g = Build(env);
  // The source chains with none of these consumers: none is a forward edge.
  EXPECT_THAT(Chains(g), ElementsAre(ElementsAre(0), ElementsAre(1, 2), ElementsAre(3, 4),
                                     ElementsAre(5, 6), ElementsAre(7, 8)));
  EXPECT_THAT(Edges(g),
              ElementsAre(EdgeView{0, 0, 1, 1, 0, "rescale"}, EdgeView{0, 0, 2, 3, 0, "broadcast"},
                          EdgeView{0, 0, 3, 5, 0, "rebalance"}, EdgeView{0, 0, 4, 7, 0, "custom"}));
  for (const auto& e : g.edges()) {
    EXPECT_EQ(PartitionerToProto(PartitionerFromProto(e.partitioner())), e.partitioner());
  }
}

TEST(JobGraphTest, UnionGivesAVertexWithTwoInputEdges) {
  StreamExecutionEnvironment env;
  auto a = env.generate_sequence(1, 10);
  auto b = env.generate_sequence(100, 110).map(Twice);
  a.union_(b).map(Twice).print();
  proto::JobGraph g = Build(env);
  // Nodes: 0 source a, 1 source b, 2 map b, 3 union map, 4 sink.
  EXPECT_THAT(Chains(g), ElementsAre(ElementsAre(0), ElementsAre(1, 2), ElementsAre(3, 4)));
  EXPECT_THAT(Edges(g),
              ElementsAre(EdgeView{0, 0, 2, 3, 0, "forward"}, EdgeView{1, 2, 2, 3, 1, "forward"}));
  ASSERT_EQ(env.nodes()[3]->inputs.size(), 2u);
}

TEST(JobGraphTest, UnionOfThreeStreamsKeepsInputOrder) {
  StreamExecutionEnvironment env;
  auto a = env.generate_sequence(1, 2);
  auto b = env.generate_sequence(3, 4);
  auto c = env.generate_sequence(5, 6);
  a.union_(b, c).rebalance().print();
  proto::JobGraph g = Build(env);
  EXPECT_THAT(Edges(g), ElementsAre(EdgeView{0, 0, 3, 3, 0, "rebalance"},
                                    EdgeView{1, 1, 3, 3, 1, "rebalance"},
                                    EdgeView{2, 2, 3, 3, 2, "rebalance"}));
}

TEST(JobGraphTest, ANodeChainsEveryForwardConsumerAndTheChainForks) {
  StreamExecutionEnvironment env;
  auto src = env.generate_sequence(1, 10);
  src.map(Twice).name("twice").print();                                        // nodes 1, 2
  src.filter([](int64_t v) { return v % 2 == 0; }).name("even").print();       // nodes 3, 4
  src.map(Twice).name("apart").disable_chaining().print().name("apart sink");  // nodes 5, 6
  proto::JobGraph g = Build(env, 2);
  // Each node after the one it reads; the last map chains to nothing, nor its sink to it.
  EXPECT_THAT(Chains(g), ElementsAre(ElementsAre(0, 1, 2, 3, 4), ElementsAre(5), ElementsAre(6)));
  EXPECT_EQ(g.vertices(0).name(), absl::StrCat(env.nodes()[0]->name,
                                               " -> (twice -> Sink: Print to Std. Out, even -> "
                                               "Sink: Print to Std. Out)"));
  EXPECT_EQ(g.vertices(1).name(), "apart");
  EXPECT_THAT(Edges(g),
              ElementsAre(EdgeView{0, 0, 1, 5, 0, "forward"}, EdgeView{1, 5, 2, 6, 0, "forward"}));
}

TEST(JobGraphTest, OnlyConsumersOverAForwardEdgeAreChained) {
  StreamExecutionEnvironment env;
  auto src = env.generate_sequence(1, 10);
  src.key_by([](int64_t v) { return v % 2; }).sum().print();  // nodes 1, 2: hash, not chainable
  src.map(Twice).print();                                     // nodes 3, 4: chained to the source
  proto::JobGraph g = Build(env);
  EXPECT_THAT(Chains(g), ElementsAre(ElementsAre(0, 3, 4), ElementsAre(1, 2)));
  EXPECT_THAT(Edges(g), ElementsAre(EdgeView{0, 0, 1, 1, 0, "hash"}));
}

TEST(JobGraphTest, NonParallelSourcesGetParallelismOne) {
  StreamExecutionEnvironment env;
  env.set_parallelism(4);
  env.from_elements(std::string("a"), std::string("b"))
      .map([](const std::string& s) { return s + s; })
      .print();
  proto::JobGraph g = Build(env);
  EXPECT_THAT(Chains(g), ElementsAre(ElementsAre(0), ElementsAre(1, 2)));
  EXPECT_EQ(g.vertices(0).parallelism(), 1);
  EXPECT_EQ(g.vertices(1).parallelism(), 4);
  EXPECT_THAT(Edges(g), ElementsAre(EdgeView{0, 0, 1, 1, 0, "rebalance"}));
  EXPECT_EQ(env.nodes()[0]->name, "Source: Collection Source");
}

TEST(JobGraphTest, NonParallelSourcesRefuseAParallelism) {
  StreamExecutionEnvironment env;
  auto s = env.from_elements(1, 2, 3);
  EXPECT_THROW(s.set_parallelism(2), std::invalid_argument);
  EXPECT_NO_THROW(s.set_parallelism(1));
  EXPECT_THROW(env.generate_sequence(1, 2).set_parallelism(0), std::invalid_argument);
  EXPECT_THROW(env.generate_sequence(5, 4), std::invalid_argument);
}

// A rescale must leave a non-parallel operator (and the chain that holds it) at 1.
TEST(JobGraphTest, VerticesThatCannotRunInParallelHaveMaxParallelismOne) {
  StreamExecutionEnvironment env;
  env.from_elements(1, 2, 3).map(Twice).print();  // at 1: the map chains to the source
  env.from_elements(4, 5).map(Twice).set_parallelism(2).print();  // source, map, print apart
  proto::JobGraph g = Build(env);
  ASSERT_EQ(g.vertices_size(), 4);
  EXPECT_EQ(g.vertices(0).node_ids_size(), 3);
  EXPECT_EQ(g.vertices(0).max_parallelism(), 1);
  EXPECT_EQ(g.vertices(1).max_parallelism(), 1);
  EXPECT_EQ(g.vertices(2).max_parallelism(), 0) << "0: the graph's";
  EXPECT_EQ(g.vertices(3).max_parallelism(), 0);
}

TEST(JobGraphTest, ParallelismAboveMaxParallelismIsAnErrorNamingTheOperator) {
  StreamExecutionEnvironment env;
  env.generate_sequence(1, 10).map(Twice).name("wide map").set_parallelism(200).print();
  auto g = BuildJobGraph(env, JobGraphOptions{});
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(g.status().message(), HasSubstr("'wide map'"));
  EXPECT_THAT(g.status().message(), HasSubstr("200"));
  EXPECT_THAT(g.status().message(), HasSubstr("128"));

  // The job's own max parallelism raises the limit.
  env.set_max_parallelism(256);
  auto ok = BuildJobGraph(env, JobGraphOptions{});
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->max_parallelism(), 256);
}

TEST(JobGraphTest, DefaultParallelismAboveMaxParallelismIsAnError) {
  StreamExecutionEnvironment env;
  env.generate_sequence(1, 10).print();
  JobGraphOptions opts;
  opts.default_parallelism = 8;
  opts.max_parallelism = 4;
  auto g = BuildJobGraph(env, opts);
  EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument);
  opts.default_parallelism = 0;
  opts.max_parallelism = 128;
  EXPECT_EQ(BuildJobGraph(env, opts).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(JobGraphTest, EnvironmentParallelismOverridesTheDefaultAndOperatorsOverrideBoth) {
  StreamExecutionEnvironment env;
  env.generate_sequence(1, 10).map(Twice).print();
  EXPECT_EQ(Build(env, 2).vertices(0).parallelism(), 2);
  env.set_parallelism(5);
  EXPECT_EQ(Build(env, 2).vertices(0).parallelism(), 5);

  StreamExecutionEnvironment env2;
  env2.set_parallelism(5);
  env2.generate_sequence(1, 10).set_parallelism(7).map(Twice).print();
  proto::JobGraph g = Build(env2, 2);
  ASSERT_EQ(g.vertices_size(), 2);
  EXPECT_EQ(g.vertices(0).parallelism(), 7);
  EXPECT_EQ(g.vertices(1).parallelism(), 5);
}

TEST(JobGraphTest, SlotsNeededIsTheWidestVertex) {
  StreamExecutionEnvironment env;
  env.generate_sequence(1, 10)
      .set_parallelism(2)
      .rebalance()
      .map(Twice)
      .set_parallelism(6)
      .rebalance()
      .map(Twice)
      .set_parallelism(3)
      .print()
      .set_parallelism(3);
  proto::JobGraph g = Build(env);
  EXPECT_EQ(g.vertices_size(), 3);
  EXPECT_EQ(SlotsNeeded(g), 6);
  EXPECT_EQ(SlotsNeeded(proto::JobGraph()), 0);
}

TEST(JobGraphTest, PartitionersOnTheWire) {
  for (internal::Partitioner p :
       {internal::Partitioner::kForward, internal::Partitioner::kRebalance,
        internal::Partitioner::kRescale, internal::Partitioner::kHash,
        internal::Partitioner::kBroadcast, internal::Partitioner::kCustom}) {
    EXPECT_NE(PartitionerToProto(p), proto::PARTITIONER_UNSPECIFIED)
        << internal::partitioner_name(p);
    EXPECT_EQ(PartitionerFromProto(PartitionerToProto(p)), p) << internal::partitioner_name(p);
  }
  EXPECT_EQ(PartitionerFromProto(static_cast<proto::Partitioner>(99)),
            internal::Partitioner::kDefault);
  EXPECT_EQ(PartitionerFromProto(proto::PARTITIONER_UNSPECIFIED), internal::Partitioner::kDefault);
}

TEST(JobGraphTest, JsonHasTheVerticesAndEdges) {
  StreamExecutionEnvironment env;
  env.set_job_name("json \"job\"");
  env.generate_sequence(1, 10)
      .set_parallelism(2)
      .map([](int64_t v) { return std::make_pair(std::to_string(v % 3), v); })
      .set_parallelism(2)
      .key_by([](const std::pair<std::string, int64_t>& p) { return p.first; })
      .sum<1>()
      .set_parallelism(3)
      .print()
      .name("out")
      .set_parallelism(3);
  proto::JobGraph g = Build(env);
  std::string text = JobGraphToJson(g, env);
  nlohmann::json j = nlohmann::json::parse(text);  // throws on malformed JSON
  EXPECT_EQ(j["name"], "json \"job\"");
  EXPECT_EQ(j["max_parallelism"], 128);
  EXPECT_EQ(j["slots_needed"], 3);
  ASSERT_EQ(j["vertices"].size(), 2u);
  const auto& v0 = j["vertices"][0];
  EXPECT_EQ(v0["id"], 0);
  EXPECT_EQ(v0["parallelism"], 2);
  EXPECT_EQ(v0["source"], true);
  EXPECT_EQ(v0["name"], "Source: Sequence Source -> Map");
  ASSERT_EQ(v0["chain"].size(), 2u);
  EXPECT_EQ(v0["chain"][0]["id"], 0);
  EXPECT_EQ(v0["chain"][0]["kind"], "source");
  EXPECT_EQ(v0["chain"][1]["id"], 1);
  EXPECT_EQ(v0["chain"][1]["name"], "Map");
  EXPECT_EQ(v0["chain"][1]["kind"], "map");
  const auto& v1 = j["vertices"][1];
  EXPECT_EQ(v1["parallelism"], 3);
  EXPECT_EQ(v1["source"], false);
  ASSERT_EQ(v1["chain"].size(), 2u);
  EXPECT_EQ(v1["chain"][0]["kind"], "reduce");
  EXPECT_EQ(v1["chain"][0]["name"], "Keyed Aggregation");
  EXPECT_EQ(v1["chain"][1]["kind"], "sink");
  EXPECT_EQ(v1["chain"][1]["name"], "out");
  ASSERT_EQ(j["edges"].size(), 1u);
  const auto& e = j["edges"][0];
  EXPECT_EQ(e["source"], 0);
  EXPECT_EQ(e["target"], 1);
  EXPECT_EQ(e["source_operator"], 1);
  EXPECT_EQ(e["target_operator"], 2);
  EXPECT_EQ(e["partitioner"], "hash");
}

}  // namespace
}  // namespace sluice
