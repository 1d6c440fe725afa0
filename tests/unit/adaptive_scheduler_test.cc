// AdaptiveScheduler's arithmetic: requirements, the checks of a rescale, fitting bounds to
// slots (forward groups at one parallelism), Flink's min-parallelism-increase, and the
// settings from the configuration with Flink's defaults (and reactive mode's).
#include "jobmanager/adaptive_scheduler.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace sluice {
namespace {

using ::testing::HasSubstr;
using P = VertexParallelism;

// source (p=1, cannot run in parallel) --rebalance--> map (p=4) --forward--> sink (p=4)
//   --hash--> counter (p=2)
proto::JobGraph Graph() {
  proto::JobGraph g;
  g.set_name("g");
  g.set_max_parallelism(16);
  const char* names[] = {"Source", "Map", "Sink", "Counter"};
  int parallelism[] = {1, 4, 4, 2};
  for (int i = 0; i < 4; ++i) {
    auto* v = g.add_vertices();
    v->set_id(i);
    v->set_name(names[i]);
    v->set_parallelism(parallelism[i]);
    v->add_node_ids(i);
  }
  g.mutable_vertices(0)->set_max_parallelism(1);
  proto::Partitioner partitioners[] = {proto::PARTITIONER_REBALANCE, proto::PARTITIONER_FORWARD,
                                       proto::PARTITIONER_HASH};
  for (int i = 0; i < 3; ++i) {
    auto* e = g.add_edges();
    e->set_source_vertex(i);
    e->set_target_vertex(i + 1);
    e->set_partitioner(partitioners[i]);
  }
  return g;
}

TEST(AdaptiveSchedulerTest, MaxParallelismIsOneForWhatCannotRunInParallel) {
  proto::JobGraph g = Graph();
  EXPECT_EQ(AdaptiveScheduler::MaxParallelism(g, 0), 1);
  EXPECT_EQ(AdaptiveScheduler::MaxParallelism(g, 1), 16);
  EXPECT_EQ(AdaptiveScheduler::Current(g), (P{1, 4, 4, 2}));
  EXPECT_EQ(AdaptiveScheduler::SlotsNeeded(AdaptiveScheduler::Current(g)), 4);
}

TEST(AdaptiveSchedulerTest, RequirementsFromTheGraphOrTheMaxParallelismInReactiveMode) {
  proto::JobGraph g = Graph();
  ResourceRequirements r = AdaptiveScheduler::InitialRequirements(g, /*reactive=*/false);
  ASSERT_EQ(r.size(), 4u);
  EXPECT_EQ(r[1], (ParallelismBounds{1, 4}));
  EXPECT_EQ(r[3], (ParallelismBounds{1, 2}));
  ResourceRequirements reactive = AdaptiveScheduler::InitialRequirements(g, /*reactive=*/true);
  EXPECT_EQ(reactive[0], (ParallelismBounds{1, 1}));
  EXPECT_EQ(reactive[1], (ParallelismBounds{1, 16}));
  EXPECT_EQ(reactive[3], (ParallelismBounds{1, 16}));
  EXPECT_TRUE(AdaptiveScheduler::CheckRequirements(g, r).ok());
  EXPECT_TRUE(AdaptiveScheduler::CheckRequirements(g, reactive).ok());
}

TEST(AdaptiveSchedulerTest, RequirementsThatCannotHoldAreRefusedByName) {
  proto::JobGraph g = Graph();
  ResourceRequirements r = AdaptiveScheduler::InitialRequirements(g, false);
  auto check = [&](ResourceRequirements bad) {
    absl::Status s = AdaptiveScheduler::CheckRequirements(g, bad);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    return std::string(s.message());
  };
  ResourceRequirements bad = r;
  bad[3] = {0, 2};
  EXPECT_THAT(check(bad), HasSubstr("the lower bound of vertex 3 'Counter' is 0"));
  bad = r;
  bad[3] = {3, 2};
  EXPECT_THAT(check(bad), HasSubstr("upper bound of vertex 3 'Counter' (2) is below its lower"));
  bad = r;
  bad[0] = {1, 2};
  EXPECT_THAT(check(bad),
              HasSubstr("upper bound 2 of vertex 0 'Source' is above its max parallelism 1 (it "
                        "cannot run in parallel)"));
  bad = r;
  bad[1] = {1, 2};
  bad[2] = {3, 4};
  EXPECT_THAT(check(bad),
              HasSubstr("the forward edge from 'Map' to 'Sink' needs equal "
                        "parallelism at both ends, but their bounds [1, 2] and [3, 4]"));
  bad.pop_back();
  EXPECT_THAT(check(bad), HasSubstr("the job has 4 vertices but requirements for 3"));
}

TEST(AdaptiveSchedulerTest, ARescaleMustKeepForwardEdgesEqualAndStayWithinTheMaximum) {
  proto::JobGraph g = Graph();
  EXPECT_TRUE(AdaptiveScheduler::CheckParallelism(g, P{1, 8, 8, 3}).ok());
  absl::Status s = AdaptiveScheduler::CheckParallelism(g, P{1, 8, 4, 2});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("the forward edge from 'Map' (parallelism 8) to 'Sink' "
                                     "(parallelism 4) needs equal parallelism at both ends"));
  EXPECT_THAT(AdaptiveScheduler::CheckParallelism(g, P{2, 4, 4, 2}).message(),
              HasSubstr("parallelism 2 of vertex 0 'Source' is above its max parallelism 1"));
  EXPECT_THAT(AdaptiveScheduler::CheckParallelism(g, P{1, 4, 4, 17}).message(),
              HasSubstr("parallelism 17 of vertex 3 'Counter' is above its max parallelism 16 "
                        "(pipeline.max-parallelism)"));
  EXPECT_THAT(AdaptiveScheduler::CheckParallelism(g, P{1, 4, 4, 0}).message(),
              HasSubstr("parallelism 0 of vertex 3 'Counter': it must be at least 1"));
}

TEST(AdaptiveSchedulerTest, TheWholeJobAtNLeavesWhatCannotRunInParallelAtOne) {
  proto::JobGraph g = Graph();
  EXPECT_EQ(*AdaptiveScheduler::WholeJob(g, 3), (P{1, 3, 3, 3}));
  // A forward edge from a vertex that cannot run in parallel holds its consumer at 1 too.
  proto::JobGraph tied = g;
  tied.mutable_edges(0)->set_partitioner(proto::PARTITIONER_FORWARD);
  EXPECT_EQ(*AdaptiveScheduler::WholeJob(tied, 3), (P{1, 1, 1, 3}));
  EXPECT_THAT(AdaptiveScheduler::WholeJob(g, 17).status().message(),
              HasSubstr("parallelism 17 is above the job's max parallelism 16"));
  EXPECT_THAT(AdaptiveScheduler::WholeJob(g, 0).status().message(),
              HasSubstr("parallelism must be at least 1, got 0"));
}

TEST(AdaptiveSchedulerTest, FitsTheBoundsToTheSlots) {
  proto::JobGraph g = Graph();
  ResourceRequirements r = AdaptiveScheduler::InitialRequirements(g, false);
  EXPECT_EQ(*AdaptiveScheduler::Fit(g, r, 10), (P{1, 4, 4, 2}));
  EXPECT_EQ(*AdaptiveScheduler::Fit(g, r, 3), (P{1, 3, 3, 2}));
  EXPECT_EQ(*AdaptiveScheduler::Fit(g, r, 1), (P{1, 1, 1, 1}));
  EXPECT_FALSE(AdaptiveScheduler::Fit(g, r, 0));
  EXPECT_EQ(AdaptiveScheduler::SlotsForLowerBounds(g, r), 1);
  EXPECT_EQ(AdaptiveScheduler::SlotsForUpperBounds(g, r), 4);
  // A forward group takes its lowest upper bound; a lower bound the slots cannot meet: none.
  r[1] = {1, 4};
  r[2] = {2, 3};
  EXPECT_EQ(*AdaptiveScheduler::Fit(g, r, 10), (P{1, 3, 3, 2}));
  EXPECT_FALSE(AdaptiveScheduler::Fit(g, r, 1));
  EXPECT_EQ(AdaptiveScheduler::SlotsForLowerBounds(g, r), 2);
  EXPECT_EQ(AdaptiveScheduler::SlotsForUpperBounds(g, r), 3);
}

TEST(AdaptiveSchedulerTest, ScalesUpOnlyForEnoughGainButAlwaysDown) {
  EXPECT_FALSE(AdaptiveScheduler::ShouldRescale(P{2, 2}, P{2, 2}, 1));
  EXPECT_TRUE(AdaptiveScheduler::ShouldRescale(P{2, 2}, P{2, 3}, 1));
  EXPECT_FALSE(AdaptiveScheduler::ShouldRescale(P{2, 2}, P{3, 3}, 2));
  EXPECT_TRUE(AdaptiveScheduler::ShouldRescale(P{2, 2}, P{4, 3}, 2));
  EXPECT_TRUE(AdaptiveScheduler::ShouldRescale(P{2, 2}, P{1, 2}, 5));
}

TEST(AdaptiveSchedulerTest, DescribesChangesByVertexName) {
  proto::JobGraph g = Graph();
  EXPECT_EQ(AdaptiveScheduler::DescribeChange(g, P{1, 4, 4, 2}, P{1, 2, 2, 2}),
            "'Map' 4 -> 2, 'Sink' 4 -> 2");
  EXPECT_EQ(AdaptiveScheduler::DescribeChange(g, P{1, 4, 4, 2}, P{1, 4, 4, 2}), "unchanged");
  EXPECT_EQ(AdaptiveScheduler::Describe(g, P{1, 2, 2, 3}),
            "'Source' 1, 'Map' 2, 'Sink' 2, 'Counter' 3");
}

TEST(AdaptiveSchedulerTest, SettingsFollowFlinksKeysAndReactiveDefaults) {
  Configuration conf;
  auto s = AdaptiveSchedulerSettings::FromConfig(conf);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->type, SchedulerType::kDefault);
  EXPECT_STREQ(s->name(), "default");
  EXPECT_EQ(s->resource_wait_timeout, std::chrono::milliseconds(300000));
  EXPECT_EQ(s->stabilization_timeout, std::chrono::milliseconds(10000));
  EXPECT_EQ(s->min_parallelism_increase, 1);

  ASSERT_TRUE(conf.Set("jobmanager.scheduler", "Adaptive").ok());
  ASSERT_TRUE(conf.Set("jobmanager.adaptive-scheduler.resource-wait-timeout", "-1 s").ok());
  ASSERT_TRUE(conf.Set("jobmanager.adaptive-scheduler.min-parallelism-increase", "3").ok());
  s = AdaptiveSchedulerSettings::FromConfig(conf);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->type, SchedulerType::kAdaptive);
  EXPECT_FALSE(s->resource_wait_timeout.has_value()) << "a negative duration waits forever";
  EXPECT_EQ(s->min_parallelism_increase, 3);

  Configuration reactive;
  ASSERT_TRUE(reactive.Set("scheduler-mode", "reactive").ok());
  s = AdaptiveSchedulerSettings::FromConfig(reactive);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_TRUE(s->reactive() && s->adaptive());
  EXPECT_FALSE(s->resource_wait_timeout.has_value());
  EXPECT_EQ(s->stabilization_timeout, std::chrono::milliseconds(0));
  ASSERT_TRUE(
      reactive.Set("jobmanager.adaptive-scheduler.resource-stabilization-timeout", "2 s").ok());
  EXPECT_EQ(AdaptiveSchedulerSettings::FromConfig(reactive)->stabilization_timeout,
            std::chrono::milliseconds(2000));

  Configuration bad;
  EXPECT_FALSE(bad.Set("jobmanager.scheduler", "fancy").ok());
  EXPECT_FALSE(bad.Set("scheduler-mode", "eager").ok());
  ASSERT_TRUE(bad.Set("jobmanager.adaptive-scheduler.resource-wait-timeout", "soon").ok());
  EXPECT_THAT(AdaptiveSchedulerSettings::FromConfig(bad).status().message(),
              HasSubstr("jobmanager.adaptive-scheduler.resource-wait-timeout"));
  Configuration zero;
  ASSERT_TRUE(zero.Set("jobmanager.adaptive-scheduler.min-parallelism-increase", "0").ok());
  EXPECT_THAT(AdaptiveSchedulerSettings::FromConfig(zero).status().message(),
              HasSubstr("'jobmanager.adaptive-scheduler.min-parallelism-increase' must be at "
                        "least 1, got 0"));
}

}  // namespace
}  // namespace sluice
