#include "jobmanager/autoscaler.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace sluice {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;
using Clock = JobAutoscaler::Clock;
using std::chrono::seconds;

// source (0) -> slow map (1) -> sink (2), each its own vertex over a hash or rebalance edge.
class AutoscalerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    graph_.set_max_parallelism(128);
    for (int v = 0; v < 3; ++v) {
      auto* vx = graph_.add_vertices();
      vx->set_id(v);
      vx->set_name(v == 0 ? "Source" : v == 1 ? "Slow Map" : "Sink");
      vx->set_parallelism(1);
      vx->set_is_source(v == 0);
    }
    for (int v = 0; v < 2; ++v) {
      auto* e = graph_.add_edges();
      e->set_source_vertex(v);
      e->set_target_vertex(v + 1);
      e->set_partitioner(proto::PARTITIONER_REBALANCE);
    }
    settings_.enabled = true;
    settings_.stabilization = seconds(2);
    settings_.metrics_window = seconds(5);
  }

  // A pipeline whose source wants `rate` records/s and whose slow map (at its current
  // parallelism p) takes at most `capacity_per_subtask` each: what the subtasks would measure.
  std::map<int, VertexSample> Measure(double rate, double capacity_per_subtask) const {
    const int p = graph_.vertices(1).parallelism();
    const double capacity = capacity_per_subtask * p;
    const double through = std::min(rate, capacity);
    std::map<int, VertexSample> m;
    // The source is back-pressured for the share of its time it cannot emit.
    m[0] = {100, 1000.0 * (1.0 - through / rate), 0, through};
    m[1] = {1000.0 * through / capacity, 0, through, through};
    m[2] = {1000.0 * through / 1e6, 0, through, 0};
    return m;
  }
  // Feeds 1 s samples from `from` for `secs` seconds; returns the time after the last.
  Clock::time_point Feed(JobAutoscaler& a, Clock::time_point from, int secs, double rate,
                         double capacity) {
    for (int i = 0; i < secs; ++i) a.AddSample(from + seconds(i), Measure(rate, capacity));
    return from + seconds(secs);
  }

  proto::JobGraph graph_;
  AutoscalerSettings settings_;
  Clock::time_point t0_ = Clock::now();
};

TEST_F(AutoscalerTest, ScalesOnlyTheThrottledVertexToWhatTheRateNeeds) {
  JobAutoscaler a(settings_, t0_);
  // Stabilizing, then too few samples: nothing.
  auto t = Feed(a, t0_, 2, 3000, 1000);
  EXPECT_FALSE(a.Evaluate(graph_, t));
  t = Feed(a, t, 3, 3000, 1000);
  EXPECT_FALSE(a.Evaluate(graph_, t)) << "less than a window of samples";
  t = Feed(a, t, 3, 3000, 1000);
  auto d = a.Evaluate(graph_, t);
  ASSERT_TRUE(d);
  // 1000 of 3000 records/s get through the slow map; the source is back-pressured two thirds of
  // the time, counted as a half: a target of 2000, at 1000 per subtask and a target utilization
  // of 0.7, ceil(2000 / 700) = 3.
  EXPECT_THAT(d->parallelism, ElementsAre(Pair(1, 3)));
  EXPECT_THAT(d->Describe(graph_), HasSubstr("vertex 1 (Slow Map): 1 -> 3"));
  EXPECT_NEAR(d->vertices[1].target_rate, 2000, 1);
  EXPECT_NEAR(d->vertices[1].true_rate, 1000, 1);
  EXPECT_NEAR(d->vertices[1].utilization, 2.0, 0.01);
}

TEST_F(AutoscalerTest, ABottleneckBehindAFullyBackPressuredSourceGrowsStepByStep) {
  JobAutoscaler a(settings_, t0_);
  // 6000 records/s wanted: 1 -> 3 (2000 records/s judged from 1000), then 3 -> 9 (6000 judged
  // from 3000), where 6000 of 9000 is a utilization of 0.67, within the boundary.
  auto t = Feed(a, t0_ + seconds(2), 6, 6000, 1000);
  std::vector<int> steps;
  for (int round = 0; round < 5; ++round) {
    auto d = a.Evaluate(graph_, t);
    if (!d) break;
    ASSERT_THAT(d->parallelism, ElementsAre(Pair(1, ::testing::_)));
    steps.push_back(d->parallelism.at(1));
    graph_.mutable_vertices(1)->set_parallelism(steps.back());
    a.OnRedeployed(t);
    t = Feed(a, t + seconds(2), 6, 6000, 1000);
  }
  EXPECT_THAT(steps, ElementsAre(3, 9));
  EXPECT_NEAR(a.last_evaluation()[1].utilization, 6000.0 / 9000, 0.01);
}

TEST_F(AutoscalerTest, ScalesDownWhenTheRateFallsAndHoldsWithinTheBoundary) {
  graph_.mutable_vertices(1)->set_parallelism(5);
  JobAutoscaler a(settings_, t0_);
  // 3000 records/s over 5 subtasks of 1000: utilization 0.6, within 0.7 +- 0.3.
  auto t = Feed(a, t0_ + seconds(2), 6, 3000, 1000);
  EXPECT_FALSE(a.Evaluate(graph_, t));
  EXPECT_NEAR(a.last_evaluation()[1].utilization, 0.6, 0.01);
  // The rate falls to 500: utilization 0.1; ceil(500 / 700) = 1, but a scale-down removes at
  // most 60% of the subtasks: 5 -> 2.
  a.OnRedeployed(t);
  t = Feed(a, t + seconds(2), 6, 500, 1000);
  auto d = a.Evaluate(graph_, t);
  ASSERT_TRUE(d);
  EXPECT_THAT(d->parallelism, ElementsAre(Pair(1, 2)));
}

TEST_F(AutoscalerTest, BoundsAndForwardEdgesAndSources) {
  settings_.vertex_max = 3;
  // The sink reads the slow map over a forward edge: they move together.
  graph_.mutable_edges(1)->set_partitioner(proto::PARTITIONER_FORWARD);
  JobAutoscaler a(settings_, t0_);
  auto t = Feed(a, t0_ + seconds(2), 6, 3000, 1000);
  auto d = a.Evaluate(graph_, t);
  ASSERT_TRUE(d);
  EXPECT_THAT(d->parallelism, ElementsAre(Pair(1, 3), Pair(2, 3)));
  // Joined to the source by a forward edge, the slow map is held.
  graph_.mutable_edges(0)->set_partitioner(proto::PARTITIONER_FORWARD);
  JobAutoscaler b(settings_, t0_);
  t = Feed(b, t0_ + seconds(2), 6, 3000, 1000);
  EXPECT_FALSE(b.Evaluate(graph_, t));
  EXPECT_THAT(b.last_evaluation()[1].reason, HasSubstr("held"));
}

TEST_F(AutoscalerTest, AForwardGroupStaysWithinItsMembersLowestMaxParallelism) {
  // The sink cannot run in parallel beyond 2 and reads the slow map over a forward edge.
  graph_.mutable_edges(1)->set_partitioner(proto::PARTITIONER_FORWARD);
  graph_.mutable_vertices(2)->set_max_parallelism(2);
  JobAutoscaler a(settings_, t0_);
  auto t = Feed(a, t0_ + seconds(2), 6, 3000, 1000);
  auto d = a.Evaluate(graph_, t);
  ASSERT_TRUE(d);
  EXPECT_THAT(d->parallelism, ElementsAre(Pair(1, 2), Pair(2, 2)));
}

TEST_F(AutoscalerTest, ReadsFlinksKeys) {
  Configuration conf;
  ASSERT_TRUE(conf.Set("job.autoscaler.enabled", "true").ok());
  ASSERT_TRUE(conf.Set("job.autoscaler.target.utilization", "0.5").ok());
  ASSERT_TRUE(conf.Set("job.autoscaler.metrics.window", "30 s").ok());
  AutoscalerSettings s = AutoscalerSettings::FromConfig(conf);
  EXPECT_TRUE(s.enabled);
  EXPECT_DOUBLE_EQ(s.target_utilization, 0.5);
  EXPECT_EQ(s.metrics_window, seconds(30));
  EXPECT_EQ(s.stabilization, std::chrono::minutes(5));
}

}  // namespace
}  // namespace sluice
