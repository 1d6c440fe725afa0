#include "jobmanager/scheduler.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace sluice {
namespace {

using ::testing::HasSubstr;

// source (p=2) --rebalance--> map (p=3) --forward--> sink (p=3)
proto::JobGraph ThreeVertices() {
  proto::JobGraph g;
  g.set_name("three");
  g.set_max_parallelism(128);
  int parallelism[] = {2, 3, 3};
  for (int i = 0; i < 3; ++i) {
    auto* v = g.add_vertices();
    v->set_id(i);
    v->set_name("v" + std::to_string(i));
    v->set_parallelism(parallelism[i]);
    v->add_node_ids(i);
  }
  auto* e0 = g.add_edges();
  e0->set_source_vertex(0);
  e0->set_target_vertex(1);
  e0->set_partitioner(proto::PARTITIONER_REBALANCE);
  auto* e1 = g.add_edges();
  e1->set_source_vertex(1);
  e1->set_target_vertex(2);
  e1->set_partitioner(proto::PARTITIONER_FORWARD);
  return g;
}

TEST(SchedulerTest, ValidatesGraphsNamingWhatIsWrong) {
  proto::JobGraph g = ThreeVertices();
  EXPECT_TRUE(Scheduler::ValidateGraph(g).ok());
  proto::JobGraph bad = g;
  bad.mutable_edges(1)->set_partitioner(static_cast<proto::Partitioner>(42));
  EXPECT_THAT(Scheduler::ValidateGraph(bad).message(), HasSubstr("unknown partitioner (42)"));
  bad = g;
  bad.mutable_vertices(2)->set_parallelism(2);
  EXPECT_THAT(Scheduler::ValidateGraph(bad).message(), HasSubstr("forward edge"));
  bad = g;
  bad.mutable_vertices(1)->set_parallelism(200);
  EXPECT_THAT(Scheduler::ValidateGraph(bad).message(),
              HasSubstr("'v1' has parallelism 200 above max"));
  EXPECT_EQ(Scheduler::ValidateGraph(proto::JobGraph()).code(), absl::StatusCode::kInvalidArgument);
}

TEST(SchedulerTest, SharesSlotsAndWiresChannelsToTheirProducers) {
  proto::JobGraph g = ThreeVertices();
  Scheduler::JobSpec spec;
  spec.job_id = "job";
  spec.graph = &g;
  spec.attempt = 2;
  spec.config = {{"k", "v"}};
  std::vector<std::string> slots = {"a", "b", "a"};
  auto deployments =
      Scheduler::BuildDeployments(spec, slots, [](const std::string& tm) { return tm + ":1"; });
  ASSERT_EQ(deployments.size(), 8u);  // 2 + 3 + 3 subtasks
  // Subtask i of every vertex runs in slot i.
  for (const auto& d : deployments) EXPECT_EQ(d.tm_id, slots[d.tdd.task().subtask()]);
  // map subtask 1 (in b) reads every source subtask over the rebalance edge, remotely.
  const auto& map1 = deployments[3].tdd;
  ASSERT_EQ(map1.task().vertex_id(), 1);
  ASSERT_EQ(map1.task().subtask(), 1);
  ASSERT_EQ(map1.inputs_size(), 1);
  ASSERT_EQ(map1.inputs(0).channels_size(), 2);
  EXPECT_EQ(map1.inputs(0).channels(0).partition_id(), "job.e0.s0.a2");
  EXPECT_EQ(map1.inputs(0).channels(1).producer_address(), "b:1");
  EXPECT_FALSE(map1.inputs(0).channels(0).local());
  EXPECT_TRUE(map1.inputs(0).channels(1).local());
  EXPECT_EQ(map1.inputs(0).channels(0).subpartition(), 1);
  ASSERT_EQ(map1.outputs_size(), 1);
  EXPECT_EQ(map1.outputs(0).num_subpartitions(), 3);
  EXPECT_EQ(map1.config().at("k"), "v");
  EXPECT_TRUE(map1.checkpoint_dir().empty());
  // The forward edge gives sink subtask 2 its own map subtask only.
  const auto& sink2 = deployments[7].tdd;
  ASSERT_EQ(sink2.inputs(0).channels_size(), 1);
  EXPECT_EQ(sink2.inputs(0).channels(0).partition_id(), "job.e1.s2.a2");
  EXPECT_TRUE(sink2.inputs(0).channels(0).local());
}

TEST(SchedulerTest, GivesEachVertexItsRestoreHandles) {
  proto::JobGraph g = ThreeVertices();
  proto::CheckpointMetadata meta;  // without operator ids: restored by node id
  meta.set_checkpoint_id(7);
  for (int v = 0; v < 3; ++v) {
    meta.add_vertex_parallelism(v + 1);
    meta.add_vertex_nodes(std::to_string(v));
  }
  auto* h = meta.add_handles();
  h->set_vertex_id(1);
  h->set_file("chk-7/v1-s0");
  Scheduler::JobSpec spec;
  spec.job_id = "job";
  spec.graph = &g;
  spec.checkpoint_dir = "/ckpt/job";
  spec.exactly_once = false;
  spec.restore = &meta;
  spec.restore_dir = "/old/job";
  auto deployments =
      Scheduler::BuildDeployments(spec, {"a", "a", "a"}, [](const std::string&) { return "a:1"; });
  for (const auto& d : deployments) {
    EXPECT_EQ(d.tdd.restore_checkpoint_id(), 7);
    EXPECT_EQ(d.tdd.restore_dir(), "/old/job");
    const int v = d.tdd.task().vertex_id();
    ASSERT_EQ(d.tdd.restore_groups_size(), 1);
    const proto::RestoreGroup& group = d.tdd.restore_groups(0);
    EXPECT_EQ(group.vertex_id(), v);
    EXPECT_EQ(group.parallelism(), v + 1);
    EXPECT_EQ(group.handles_size(), v == 1 ? 1 : 0);
    ASSERT_EQ(group.node_ids_size(), 1);
    EXPECT_EQ(group.node_ids().at(v), v);
    EXPECT_EQ(d.tdd.checkpoint_dir(), "/ckpt/job");
    EXPECT_FALSE(d.tdd.exactly_once());
  }
}

// A checkpoint of source -> (map -> sink) at parallelism 2 restored into a job that added a
// filter and runs (source -> filter -> map) and (sink) at parallelism 3: each vertex reads the
// old vertices that held its operators, with their node ids mapped.
TEST(SchedulerTest, RestoreGroupsFollowTheOperatorsIntoTheirNewVertices) {
  proto::CheckpointMetadata meta;
  meta.set_checkpoint_id(3);
  const std::vector<std::vector<std::pair<int, std::string>>> old_vertices = {
      {{0, "src"}}, {{1, "map"}, {2, "sink"}}};
  for (size_t w = 0; w < old_vertices.size(); ++w) {
    meta.add_vertex_parallelism(2);
    auto* ops = meta.add_vertex_operators();
    for (const auto& [node, id] : old_vertices[w]) {
      ops->add_node_ids(node);
      ops->add_operator_ids(id);
      ops->add_names(id);
    }
    for (int s = 0; s < 2; ++s) {
      auto* h = meta.add_handles();
      h->set_vertex_id(static_cast<int>(w));
      h->set_subtask(s);
      h->set_file("chk-3/v" + std::to_string(w) + "-s" + std::to_string(s));
    }
  }
  proto::JobGraph g;
  g.set_name("changed");
  g.set_max_parallelism(128);
  const std::vector<std::vector<std::pair<int, std::string>>> new_vertices = {
      {{0, "src"}, {1, "a-new-filter"}, {2, "map"}}, {{3, "sink"}}};
  for (size_t v = 0; v < new_vertices.size(); ++v) {
    auto* vx = g.add_vertices();
    vx->set_id(static_cast<int>(v));
    vx->set_parallelism(3);
    for (const auto& [node, id] : new_vertices[v]) {
      vx->add_node_ids(node);
      vx->add_operator_ids(id);
    }
  }
  auto* e = g.add_edges();
  e->set_source_vertex(0);
  e->set_target_vertex(1);
  e->set_partitioner(proto::PARTITIONER_FORWARD);
  ASSERT_TRUE(Scheduler::ValidateGraph(g).ok());
  Scheduler::JobSpec spec;
  spec.job_id = "job";
  spec.graph = &g;
  spec.restore = &meta;
  spec.restore_dir = "/old/job";
  auto deployments =
      Scheduler::BuildDeployments(spec, {"a", "a", "a"}, [](const std::string&) { return "a:1"; });
  ASSERT_EQ(deployments.size(), 6u);
  for (const auto& d : deployments) {
    const auto& groups = d.tdd.restore_groups();
    if (d.tdd.task().vertex_id() == 0) {
      // source and map, from old vertices 0 and 1.
      ASSERT_EQ(groups.size(), 2);
      EXPECT_EQ(groups[0].vertex_id(), 0);
      EXPECT_EQ(groups[0].node_ids().at(0), 0);
      EXPECT_EQ(groups[1].vertex_id(), 1);
      ASSERT_EQ(groups[1].node_ids_size(), 1);
      EXPECT_EQ(groups[1].node_ids().at(1), 2);
    } else {
      // The sink alone, from old vertex 1.
      ASSERT_EQ(groups.size(), 1);
      EXPECT_EQ(groups[0].vertex_id(), 1);
      ASSERT_EQ(groups[0].node_ids_size(), 1);
      EXPECT_EQ(groups[0].node_ids().at(2), 3);
    }
    for (const auto& group : groups) {
      EXPECT_EQ(group.parallelism(), 2);
      EXPECT_EQ(group.handles_size(), 2);
      for (const auto& h : group.handles()) EXPECT_EQ(h.vertex_id(), group.vertex_id());
    }
  }
}

TEST(SchedulerTest, OperatorIdsMustBeWholeAndUnique) {
  proto::JobGraph g = ThreeVertices();
  for (int v = 0; v < 3; ++v) g.mutable_vertices(v)->add_operator_ids("op" + std::to_string(v));
  EXPECT_TRUE(Scheduler::ValidateGraph(g).ok());
  proto::JobGraph repeated = g;
  repeated.mutable_vertices(2)->set_operator_ids(0, "op0");
  EXPECT_THAT(Scheduler::ValidateGraph(repeated).message(),
              HasSubstr("repeated operator id 'op0'"));
  proto::JobGraph partial = g;
  partial.mutable_vertices(1)->clear_operator_ids();
  EXPECT_THAT(Scheduler::ValidateGraph(partial).message(),
              HasSubstr("vertex 'v1' has 1 operators but 0 operator ids"));
}

}  // namespace
}  // namespace sluice
