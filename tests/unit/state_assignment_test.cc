// State assignment: a checkpoint's operators matched to a changed job's by operator id (by node
// id for a checkpoint taken before operator ids, which must then fit the job's shape), and the
// checks that refuse a restore that would lose state unless --allowNonRestoredState.
#include "jobmanager/state_assignment.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <utility>
#include <vector>

namespace sluice {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

// One operator: node id, operator id, name.
struct Op {
  int node;
  std::string id;
  std::string name;
};

// A checkpoint of vertices of `ops` at parallelism 2, with operator ids when `with_ids`.
proto::CheckpointMetadata Checkpoint(const std::vector<std::vector<Op>>& vertices,
                                     bool with_ids = true) {
  proto::CheckpointMetadata m;
  m.set_checkpoint_id(5);
  m.set_max_parallelism(128);
  for (size_t v = 0; v < vertices.size(); ++v) {
    m.add_vertex_parallelism(2);
    std::string nodes;
    proto::VertexOperators* ops = with_ids ? m.add_vertex_operators() : nullptr;
    for (const Op& op : vertices[v]) {
      nodes += (nodes.empty() ? "" : ",") + std::to_string(op.node);
      if (!ops) continue;
      ops->add_node_ids(op.node);
      ops->add_operator_ids(op.id);
      ops->add_names(op.name);
    }
    m.add_vertex_nodes(nodes);
  }
  return m;
}

proto::JobGraph Graph(const std::vector<std::vector<Op>>& vertices, int parallelism = 2) {
  proto::JobGraph g;
  g.set_name("job");
  g.set_max_parallelism(128);
  for (size_t v = 0; v < vertices.size(); ++v) {
    auto* vx = g.add_vertices();
    vx->set_id(static_cast<int>(v));
    vx->set_parallelism(parallelism);
    for (const Op& op : vertices[v]) {
      vx->add_node_ids(op.node);
      vx->add_operator_ids(op.id);
      vx->add_node_names(op.name);
    }
  }
  return g;
}

const std::vector<std::vector<Op>> kOld = {
    {{0, "src", "Source"}}, {{1, "audit", "Audit"}}, {{2, "count", "Count"}, {3, "sink", "Sink"}}};

TEST(StateAssignmentTest, OperatorsMatchByIdWhereverTheyAreNow) {
  // A map inserted after the source (node ids shift), the audit removed, the sink unchained.
  proto::JobGraph g = Graph(
      {{{0, "src", "Source"}, {1, "4f1e", "Map"}}, {{2, "count", "Count"}}, {{3, "sink", "Sink"}}},
      3);
  proto::CheckpointMetadata c = Checkpoint(kOld);
  ASSERT_TRUE(MatchesByOperatorId(c, g));
  EXPECT_THAT(MatchOperators(c, g), ElementsAre(Pair(0, 0), Pair(2, 2), Pair(3, 3)));

  std::vector<proto::RestoreGroup> groups = RestoreGroupsOf(c, MatchOperators(c, g), g, 2);
  ASSERT_EQ(groups.size(), 1u);
  EXPECT_EQ(groups[0].vertex_id(), 2);
  EXPECT_EQ(groups[0].parallelism(), 2);
  EXPECT_EQ(groups[0].node_ids_size(), 1);
  EXPECT_EQ(groups[0].node_ids().at(3), 3);
  EXPECT_TRUE(RestoreGroupsOf(c, MatchOperators(c, g), g, 0).size() == 1);
}

TEST(StateAssignmentTest, ARemovedOperatorWithStateIsNamedUnlessItsStateMayBeDropped) {
  proto::JobGraph g = Graph({{{0, "src", "Source"}}, {{2, "count", "Count"}, {3, "sink", "Sink"}}});
  proto::CheckpointMetadata c = Checkpoint(kOld);
  ASSERT_TRUE(CheckCheckpointFits(c, g, "/chk-5").ok());
  const std::set<std::pair<int, int>> stateful = {{0, 0}, {1, 1}, {2, 2}, {3, 2}};
  absl::Status st = CheckStateFits(c, g, stateful, false, "/chk-5");
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), AllOf(HasSubstr("checkpoint /chk-5 holds state of operator 'Audit' "
                                            "(id 'audit')"),
                                  HasSubstr("--allowNonRestoredState")));
  EXPECT_TRUE(CheckStateFits(c, g, stateful, true, "/chk-5").ok());
  // Without state the audit's absence does not matter.
  EXPECT_TRUE(CheckStateFits(c, g, {{0, 0}, {2, 2}}, false, "/chk-5").ok());
}

TEST(StateAssignmentTest, TheMaxParallelismMustStay) {
  proto::JobGraph g = Graph(kOld);
  g.set_max_parallelism(64);
  absl::Status st = CheckCheckpointFits(Checkpoint(kOld), g, "/chk-5");
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("max parallelism 128 but the job has 64"));
}

TEST(StateAssignmentTest, ACheckpointWithoutOperatorIdsRestoresOnlyIntoTheSameShape) {
  proto::CheckpointMetadata c = Checkpoint(kOld, /*with_ids=*/false);
  proto::JobGraph same = Graph(kOld, 4);
  EXPECT_FALSE(MatchesByOperatorId(c, same));
  EXPECT_TRUE(CheckCheckpointFits(c, same, "/chk-5").ok());
  EXPECT_TRUE(CheckStateFits(c, same, {{1, 1}}, false, "/chk-5").ok());
  EXPECT_THAT(MatchOperators(c, same), ElementsAre(Pair(0, 0), Pair(1, 1), Pair(2, 2), Pair(3, 3)));
  proto::JobGraph unchained = Graph({kOld[0], kOld[1], {kOld[2][0]}, {kOld[2][1]}});
  absl::Status st = CheckCheckpointFits(c, unchained, "/chk-5");
  EXPECT_THAT(st.message(), HasSubstr("has 3 tasks but job 'job' has 4"));
  proto::JobGraph renumbered = Graph({kOld[0], kOld[1], {{2, "count", "Count"}, {4, "s", "S"}}});
  EXPECT_THAT(CheckCheckpointFits(c, renumbered, "/chk-5").message(),
              HasSubstr("task 2 has operators 2,3, the job 2,4"));
}

TEST(StateAssignmentTest, StateOfAnOperatorTheMetadataDoesNotListThereIsRefused) {
  proto::JobGraph g = Graph(kOld);
  EXPECT_THAT(CheckStateFits(Checkpoint(kOld), g, {{3, 1}}, true, "/chk-5").message(),
              HasSubstr("the state files of task 1 hold state of node 3"));
  proto::CheckpointMetadata twice = Checkpoint(kOld);
  twice.mutable_vertex_operators(2)->set_operator_ids(1, "audit");
  EXPECT_THAT(CheckCheckpointFits(twice, g, "/chk-5").message(),
              HasSubstr("lists operator id 'audit' twice"));
}

}  // namespace
}  // namespace sluice
