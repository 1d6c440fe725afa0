// Broadcast state: a data stream (plain or keyed) connected with a broadcast stream, run in
// process with the test playing the runtime and the network. The data side reads what the
// broadcast side wrote, cannot write it, and every subtask gets the state back after a restore
// at any parallelism; the keyed variant keeps keyed state and timers besides.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "common/state_redistribution.h"
#include "sluice/sluice.h"
#include "tests/unit/test_backends.h"
#include "tests/unit/test_helpers.h"
#include "tests/unit/test_runtime.h"

namespace sluice {
namespace {

// Every TestRuntime here keeps keyed state in the backend SLUICE_TEST_BACKEND names.
testing_support::UseBackendOfEnvironment backend_of_environment;

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;
using ::testing::UnorderedElementsAreArray;
using testing_support::ExpectOperatorError;
using testing_support::TestRuntime;
template <class T>
using CollectSink = testing_support::CollectingSink<T>;

template <class T>
std::string PlainBuffer(const std::vector<T>& records) {
  std::string b;
  DataOutput out(b);
  for (const T& r : records) Serializer<T>::write(out, r);
  return b;
}

// A rule: its name and threshold; a negative threshold removes the rule.
using Rule = std::pair<std::string, int64_t>;
using Rules = MapStateDescriptor<std::string, int64_t>;

// Inputs of a connected node: 0 is the data side, 1 the broadcast side.
constexpr int kData = 0;
constexpr int kBroadcast = 1;

// ---------------------------------------------------------------------------------------------
// What each side may do with the state, checked at compile time.

template <class Ctx>
concept CanPut = requires(Ctx& ctx, const Rules& d) {
  ctx.get_broadcast_state(d).put("a", 1);
};
template <class Ctx>
concept CanRemove = requires(Ctx& ctx, const Rules& d) {
  ctx.get_broadcast_state(d).remove("a");
};
template <class Ctx>
concept CanClear = requires(Ctx& ctx, const Rules& d) {
  ctx.get_broadcast_state(d).clear();
};
template <class Ctx>
concept CanRead = requires(Ctx& ctx, const Rules& d) {
  ctx.get_broadcast_state(d).get("a");
  ctx.get_broadcast_state(d).contains("a");
  ctx.get_broadcast_state(d).entries().begin();
};

static_assert(CanRead<BroadcastReadOnlyContext> && CanRead<BroadcastContext>);
static_assert(!CanPut<BroadcastReadOnlyContext> && !CanRemove<BroadcastReadOnlyContext> &&
                  !CanClear<BroadcastReadOnlyContext>,
              "the data side's broadcast state is read only");
static_assert(CanPut<BroadcastContext> && CanRemove<BroadcastContext> &&
              CanClear<BroadcastContext>);
static_assert(CanRead<KeyedBroadcastReadOnlyContext<std::string>> &&
              CanRead<KeyedBroadcastOnTimerContext<std::string>>);
static_assert(!CanPut<KeyedBroadcastReadOnlyContext<std::string>> &&
                  !CanRemove<KeyedBroadcastReadOnlyContext<std::string>> &&
                  !CanClear<KeyedBroadcastReadOnlyContext<std::string>>,
              "the keyed data side's broadcast state is read only");
static_assert(!CanPut<KeyedBroadcastOnTimerContext<std::string>>,
              "timers see the broadcast state read only");
static_assert(CanPut<KeyedBroadcastContext<std::string>>);

// ---------------------------------------------------------------------------------------------
// Non-keyed.

// Tags each number with the rules whose threshold it reaches; the broadcast side keeps the rules
// and reports how many there are and the watermark.
struct Matcher final : BroadcastProcessFunction<int64_t, Rule, std::string> {
  void process_element(const int64_t& v, ReadOnlyContext& ctx,
                       Collector<std::string>& out) override {
    const ReadOnlyBroadcastState<std::string, int64_t>& rules = ctx.get_broadcast_state(desc);
    std::string line = std::to_string(v) + ":";
    for (const auto& [name, threshold] : rules.entries()) {
      if (v >= threshold) line += " " + name;
    }
    if (rules.contains("exact") && rules.get("exact") == v) line += " (exact)";
    out.collect(line);
  }
  void process_broadcast_element(const Rule& r, Context& ctx,
                                 Collector<std::string>& out) override {
    BroadcastState<std::string, int64_t>& rules = ctx.get_broadcast_state(desc);
    if (r.second < 0) {
      rules.remove(r.first);
    } else {
      rules.put(r.first, r.second);
    }
    out.collect("rules " + std::to_string(rules.size()) + " wm " +
                std::to_string(ctx.current_watermark()));
  }
  Rules desc{"rules"};
};

// Nodes 0 (data), 1 (rules), 2 (the broadcast function), 3 (the sink).
std::shared_ptr<std::vector<std::string>> MatcherJob(StreamExecutionEnvironment& env,
                                                     Matcher fn = Matcher()) {
  CollectSink<std::string> sink;
  auto data = env.from_elements(int64_t{0});
  auto rules = env.from_elements(Rule{"", 0}).broadcast(fn.desc);
  data.connect(rules).process(fn).add_sink(sink);
  return sink.values;
}

// A fresh chain of the function and its sink, opened from `restored` (null: a fresh start).
std::unique_ptr<internal::ChainTask> OpenChain(
    const StreamExecutionEnvironment& env, TestRuntime& rt,
    const std::vector<internal::OperatorSnapshot>* restored = nullptr) {
  auto task = env.build_chain({2, 3}, {}, rt);
  task->initialize_state(restored);
  task->open();
  return task;
}

TEST(BroadcastStateTest, TheBroadcastEdgeReachesEverySubtaskAndTheDataEdgeIsUnchanged) {
  StreamExecutionEnvironment env;
  env.set_parallelism(3);
  MatcherJob(env);
  const internal::Node& fn = *env.nodes()[2];
  EXPECT_EQ(fn.kind, "broadcast_process");
  EXPECT_EQ(fn.name, "Broadcast Process");
  ASSERT_EQ(fn.inputs.size(), 2u);
  EXPECT_EQ(fn.inputs[kData].partitioner, internal::Partitioner::kDefault);
  EXPECT_EQ(fn.inputs[kData].logical_input, 0);
  EXPECT_EQ(fn.inputs[kBroadcast].partitioner, internal::Partitioner::kBroadcast);
  EXPECT_EQ(fn.inputs[kBroadcast].logical_input, 1);
}

TEST(BroadcastStateTest, DataSideReadsWhatTheBroadcastSideWrote) {
  StreamExecutionEnvironment env;
  auto out = MatcherJob(env);
  TestRuntime rt;
  auto task = OpenChain(env, rt);
  task->process_buffer(kData, PlainBuffer<int64_t>({5}));
  task->process_watermark(7);
  task->process_buffer(kBroadcast,
                       PlainBuffer<Rule>({{"low", 1}, {"high", 100}, {"mid", 10}, {"exact", 42}}));
  task->process_buffer(kData, PlainBuffer<int64_t>({5, 42, 150}));
  task->process_buffer(kBroadcast, PlainBuffer<Rule>({{"mid", -1}, {"high", 40}}));
  task->process_buffer(kData, PlainBuffer<int64_t>({42}));
  task->end_input();
  task->close();
  EXPECT_THAT(*out,
              ElementsAre("5:", "rules 1 wm 7", "rules 2 wm 7", "rules 3 wm 7", "rules 4 wm 7",
                          "5: low", "42: exact low mid (exact)", "150: exact high low mid",
                          "rules 3 wm 7", "rules 3 wm 7", "42: exact high low (exact)"));
}

TEST(BroadcastStateTest, DescriptorsMustBeGivenToBroadcastOnceWithTheirTypes) {
  struct Reads final : BroadcastProcessFunction<int64_t, Rule, std::string> {
    void process_element(const int64_t&, ReadOnlyContext& ctx, Collector<std::string>&) override {
      if (other_types) {
        ctx.get_broadcast_state(MapStateDescriptor<std::string, std::string>("rules"));
      } else {
        ctx.get_broadcast_state(Rules("not-broadcast"));
      }
    }
    void process_broadcast_element(const Rule&, Context&, Collector<std::string>&) override {}
    bool other_types = false;
  };
  for (bool other_types : {false, true}) {
    StreamExecutionEnvironment env;
    CollectSink<std::string> sink;
    Reads fn;
    fn.other_types = other_types;
    auto data = env.from_elements(int64_t{0});
    data.connect(env.from_elements(Rule{"", 0}).broadcast(Rules("rules")))
        .process(fn, "Reads")
        .add_sink(sink);
    TestRuntime rt;
    auto task = OpenChain(env, rt);
    ExpectOperatorError([&] { task->process_buffer(kData, PlainBuffer<int64_t>({1})); }, "Reads",
                        other_types ? "other key and value types" : "pass its descriptor");
  }
  StreamExecutionEnvironment env;
  auto rules = env.from_elements(Rule{"", 0});
  EXPECT_THROW(rules.broadcast(Rules("rules"), MapStateDescriptor<int, int>("rules")),
               std::invalid_argument);
  Rules with_ttl("rules");
  with_ttl.ttl = StateTtlConfig{std::chrono::milliseconds(10)};
  EXPECT_THROW(rules.broadcast(with_ttl), std::invalid_argument);
}

TEST(BroadcastStateTest, SeveralBroadcastStatesOfOneStream) {
  struct TwoMaps final : BroadcastProcessFunction<int64_t, Rule, std::string> {
    void process_element(const int64_t& v, ReadOnlyContext& ctx,
                         Collector<std::string>& out) override {
      auto names = ctx.get_broadcast_state(by_name).entries();
      auto count = ctx.get_broadcast_state(by_threshold).get(v);
      out.collect(std::to_string(names.size()) + " names, " + std::to_string(count.value_or(0)) +
                  " at " + std::to_string(v));
    }
    void process_broadcast_element(const Rule& r, Context& ctx, Collector<std::string>&) override {
      ctx.get_broadcast_state(by_name).put(r.first, r.second);
      auto& t = ctx.get_broadcast_state(by_threshold);
      t.put(r.second, t.get(r.second).value_or(0) + 1);
    }
    Rules by_name{"by-name"};
    MapStateDescriptor<int64_t, int> by_threshold{"by-threshold"};
  };
  StreamExecutionEnvironment env;
  CollectSink<std::string> sink;
  TwoMaps fn;
  env.from_elements(int64_t{0})
      .connect(env.from_elements(Rule{"", 0}).broadcast(fn.by_name, fn.by_threshold))
      .process(fn)
      .add_sink(sink);
  TestRuntime rt;
  auto task = OpenChain(env, rt);
  task->process_buffer(kBroadcast, PlainBuffer<Rule>({{"a", 5}, {"b", 5}, {"c", 6}}));
  task->process_buffer(kData, PlainBuffer<int64_t>({5, 6, 7}));
  EXPECT_THAT(*sink.values, ElementsAre("3 names, 2 at 5", "3 names, 1 at 6", "3 names, 0 at 7"));
  std::vector<internal::OperatorSnapshot> snap = task->snapshot_state(1);
  ASSERT_EQ(snap.size(), 1u);
  EXPECT_EQ(snap[0].lists.at("by-name").size(), 3u);
  EXPECT_EQ(snap[0].lists.at("by-threshold").size(), 2u);
  EXPECT_EQ(snap[0].distribution.at("by-name"), internal::ListDistribution::kBroadcast);
  EXPECT_EQ(snap[0].distribution.at("by-threshold"), internal::ListDistribution::kBroadcast);
}

// Every subtask of parallelism 2 gets the same rules and takes a checkpoint; restored at 3, 1
// and 2 every new subtask holds the rules, and changes them independently afterwards.
TEST(BroadcastStateTest, EverySubtaskGetsTheRulesBackAtAnyParallelism) {
  std::vector<std::vector<internal::OperatorSnapshot>> by_subtask;
  for (int i = 0; i < 2; ++i) {
    StreamExecutionEnvironment env;
    auto out = MatcherJob(env);
    TestRuntime rt(i, 2);
    auto task = OpenChain(env, rt);
    task->process_buffer(kBroadcast, PlainBuffer<Rule>({{"a", 10}, {"b", 20}, {"c", 30}}));
    task->process_buffer(kBroadcast, PlainBuffer<Rule>({{"b", -1}}));
    task->process_buffer(kData, PlainBuffer<int64_t>({i * 100}));
    by_subtask.push_back(task->snapshot_state(1));
    ASSERT_EQ(by_subtask.back().size(), 1u);
    const internal::OperatorSnapshot& s = by_subtask.back()[0];
    EXPECT_EQ(s.lists.at("rules").size(), 2u) << "one element per entry";
    EXPECT_EQ(s.distribution.at("rules"), internal::ListDistribution::kBroadcast);
    task->close();  // a failure: no end of input
  }
  for (int p : {3, 1, 2}) {
    for (int j = 0; j < p; ++j) {
      SCOPED_TRACE("subtask " + std::to_string(j) + " of " + std::to_string(p));
      StreamExecutionEnvironment env;
      auto out = MatcherJob(env);
      TestRuntime rt(j, p);
      std::vector<internal::OperatorSnapshot> mine = NarrowSnapshots(by_subtask, j, p, 128);
      auto task = OpenChain(env, rt, &mine);
      task->process_buffer(kData, PlainBuffer<int64_t>({5, 25, 35}));
      task->process_buffer(kBroadcast, PlainBuffer<Rule>({{"a", -1}}));
      task->process_buffer(kData, PlainBuffer<int64_t>({35}));
      EXPECT_THAT(*out, ElementsAre("5:", "25: a", "35: a c",
                                    "rules 1 wm " + std::to_string(kMinWatermark), "35: c"));
      // Taken again, the restored state is stored as broadcast state with its changes.
      std::vector<internal::OperatorSnapshot> again = task->snapshot_state(2);
      ASSERT_EQ(again.size(), 1u);
      EXPECT_EQ(again[0].lists.at("rules").size(), 1u);
      EXPECT_EQ(again[0].distribution.at("rules"), internal::ListDistribution::kBroadcast);
    }
  }
}

TEST(BroadcastStateTest, OperatorListStateOfTheFunctionIsKeptBeside) {
  struct Counts final : BroadcastProcessFunction<int64_t, Rule, std::string> {
    void open(RuntimeContext& ctx) override {
      seen = &ctx.get_operator_list_state(ListStateDescriptor<int64_t>("seen"));
    }
    void process_element(const int64_t& v, ReadOnlyContext& ctx,
                         Collector<std::string>& out) override {
      seen->add(v);
      out.collect(std::to_string(seen->get().size()) + " seen, " +
                  std::to_string(ctx.get_broadcast_state(desc).size()) + " rules");
    }
    void process_broadcast_element(const Rule& r, Context& ctx, Collector<std::string>&) override {
      ctx.get_broadcast_state(desc).put(r.first, r.second);
    }
    Rules desc{"rules"};
    OperatorListState<int64_t>* seen = nullptr;
  };
  auto job = [](StreamExecutionEnvironment& env) {
    CollectSink<std::string> sink;
    Counts fn;
    env.from_elements(int64_t{0})
        .connect(env.from_elements(Rule{"", 0}).broadcast(fn.desc))
        .process(fn)
        .add_sink(sink);
    return sink.values;
  };
  StreamExecutionEnvironment env;
  auto out = job(env);
  TestRuntime rt;
  auto task = OpenChain(env, rt);
  task->process_buffer(kBroadcast, PlainBuffer<Rule>({{"x", 1}}));
  task->process_buffer(kData, PlainBuffer<int64_t>({1, 2}));
  std::vector<internal::OperatorSnapshot> snap = task->snapshot_state(1);
  ASSERT_EQ(snap.size(), 1u);
  EXPECT_EQ(snap[0].distribution.count("seen"), 0u) << "a split list";

  StreamExecutionEnvironment env2;
  auto out2 = job(env2);
  TestRuntime rt2;
  auto restored = OpenChain(env2, rt2, &snap);
  restored->process_buffer(kData, PlainBuffer<int64_t>({3}));
  EXPECT_THAT(*out2, ElementsAre("3 seen, 1 rules"));
}

// ---------------------------------------------------------------------------------------------
// Keyed.

using Event = std::pair<std::string, int64_t>;  // user, amount

// Per user a running total in keyed state; an alert per rule whose threshold the total reaches.
// A data record registers an event-time timer at 100, which reports the user's total and the
// number of rules. The broadcast rule "reset" clears every user's total through
// apply_to_keyed_state, and reports the users of the "big" state (amounts of 1000 and more).
struct Alerts final : KeyedBroadcastProcessFunction<std::string, Event, Rule, std::string> {
  void open(RuntimeContext& ctx) override {
    total = &ctx.get_state(total_desc);
    big = &ctx.get_state(big_desc);
  }
  void process_element(const Event& e, ReadOnlyContext& ctx, Collector<std::string>& out) override {
    if (ctx.current_key() != e.first) out.collect("wrong key");
    int64_t t = total->value() + e.second;
    total->update(t);
    if (e.second >= 1000) big->update(true);
    for (const auto& [name, threshold] : ctx.get_broadcast_state(rules).entries()) {
      if (t >= threshold) out.collect(e.first + " " + name + " at " + std::to_string(t));
    }
    ctx.timer_service().register_event_time_timer(100);
  }
  void process_broadcast_element(const Rule& r, Context& ctx,
                                 Collector<std::string>& out) override {
    if (r.first == "reset") {
      ctx.apply_to_keyed_state(big_desc, [&](const std::string& user, ValueState<bool>& s) {
        out.collect("big " + user + (s.value() ? "" : "?"));
      });
      ctx.apply_to_keyed_state(total_desc, [&](const std::string& user, ValueState<int64_t>& s) {
        out.collect("reset " + user + " from " + std::to_string(s.value()));
        s.clear();
      });
      return;
    }
    ctx.get_broadcast_state(rules).put(r.first, r.second);
  }
  void on_timer(int64_t time, OnTimerContext& ctx, Collector<std::string>& out) override {
    out.collect("timer " + ctx.current_key() + "@" + std::to_string(time) + " total " +
                std::to_string(total->value()) + " rules " +
                std::to_string(ctx.get_broadcast_state(rules).size()));
  }
  Rules rules{"rules"};
  ValueStateDescriptor<int64_t> total_desc{"total", 0};
  ValueStateDescriptor<bool> big_desc{"big", false};
  ValueState<int64_t>* total = nullptr;
  ValueState<bool>* big = nullptr;
};

// Nodes 0 (events), 1 (rules), 2 (the keyed broadcast function), 3 (the sink).
std::shared_ptr<std::vector<std::string>> AlertsJob(StreamExecutionEnvironment& env) {
  CollectSink<std::string> sink;
  Alerts fn;
  env.from_elements(Event{"", 0})
      .key_by([](const Event& e) { return e.first; })
      .connect(env.from_elements(Rule{"", 0}).broadcast(fn.rules))
      .process(fn)
      .add_sink(sink);
  return sink.values;
}

TEST(KeyedBroadcastStateTest, DataSideHasKeyedStateAndTimersAndReadsTheRules) {
  StreamExecutionEnvironment env;
  auto out = AlertsJob(env);
  EXPECT_EQ(env.nodes()[2]->name, "Keyed Broadcast Process");
  EXPECT_EQ(env.nodes()[2]->inputs[kData].partitioner, internal::Partitioner::kHash);
  EXPECT_EQ(env.nodes()[2]->inputs[kBroadcast].partitioner, internal::Partitioner::kBroadcast);
  TestRuntime rt;
  auto task = OpenChain(env, rt);
  task->process_buffer(kBroadcast, PlainBuffer<Rule>({{"over-10", 10}, {"over-100", 100}}));
  task->process_buffer(kData, PlainBuffer<Event>({{"ann", 5}, {"bob", 1000}, {"ann", 6}}));
  EXPECT_THAT(*out,
              ElementsAre("bob over-10 at 1000", "bob over-100 at 1000", "ann over-10 at 11"));
  out->clear();
  task->process_buffer(kBroadcast, PlainBuffer<Rule>({{"reset", 0}}));
  EXPECT_THAT(*out,
              UnorderedElementsAreArray({"big bob", "reset ann from 11", "reset bob from 1000"}));
  out->clear();
  task->process_buffer(kData, PlainBuffer<Event>({{"ann", 50}}));
  EXPECT_THAT(*out, ElementsAre("ann over-10 at 50"));
  out->clear();
  task->process_watermark(kMaxWatermark);
  EXPECT_THAT(*out, UnorderedElementsAre("timer ann@100 total 50 rules 2",
                                         "timer bob@100 total 0 rules 2"));
}

TEST(KeyedBroadcastStateTest, BroadcastSideHasNoCurrentKey) {
  struct Touches final : KeyedBroadcastProcessFunction<std::string, Event, Rule, std::string> {
    void open(RuntimeContext& ctx) override {
      total = &ctx.get_state(ValueStateDescriptor<int64_t>("total"));
    }
    void process_element(const Event& e, ReadOnlyContext&, Collector<std::string>&) override {
      total->update(e.second);
    }
    void process_broadcast_element(const Rule&, Context&, Collector<std::string>&) override {
      total->update(1);
    }
    ValueState<int64_t>* total = nullptr;
  };
  StreamExecutionEnvironment env;
  CollectSink<std::string> sink;
  env.from_elements(Event{"", 0})
      .key_by([](const Event& e) { return e.first; })
      .connect(env.from_elements(Rule{"", 0}).broadcast(Rules("rules")))
      .process(Touches(), "Touches")
      .add_sink(sink);
  TestRuntime rt;
  auto task = OpenChain(env, rt);
  task->process_buffer(kData, PlainBuffer<Event>({{"ann", 5}}));  // a key was current
  ExpectOperatorError(
      [&] {
        task->process_buffer(kBroadcast, PlainBuffer<Rule>({{"r", 1}}));
      },
      "Touches", "key");
}

// Rules, totals and timers of users at parallelism 2, restored at 3 and at 1: every subtask has
// the rules, each user's total and timer go on in the subtask that owns the user.
TEST(KeyedBroadcastStateTest, KeyedAndBroadcastStateRestoreAtAnyParallelism) {
  std::vector<std::string> users;
  for (int u = 0; u < 12; ++u) users.push_back("user-" + std::to_string(u));
  auto owned = [&](int subtask, int p) {
    KeyGroupRange r = key_group_range(subtask, 128, p);
    std::vector<Event> events;
    for (const std::string& u : users) {
      int kg = key_group_for_hash(KeyHash<std::string>{}(u), 128);
      if (kg >= r.first && kg <= r.last) events.push_back({u, 7});
    }
    return events;
  };
  std::vector<std::vector<internal::OperatorSnapshot>> by_subtask;
  size_t first_users = 0;
  for (int i = 0; i < 2; ++i) {
    StreamExecutionEnvironment env;
    auto out = AlertsJob(env);
    TestRuntime rt(i, 2);
    auto task = OpenChain(env, rt);
    task->process_buffer(kBroadcast, PlainBuffer<Rule>({{"over-10", 10}}));
    std::vector<Event> mine = owned(i, 2);
    first_users += mine.size();
    task->process_buffer(kData, PlainBuffer<Event>(mine));
    EXPECT_THAT(*out, IsEmpty()) << "7 is below every threshold";
    by_subtask.push_back(task->snapshot_state(1));
    backend_of_environment.maker().Complete(by_subtask.back(), 1);
    task->close();
  }
  ASSERT_EQ(first_users, users.size());
  std::vector<std::string> expected;
  for (const std::string& u : users) {
    expected.push_back(u + " over-10 at 14");
    expected.push_back("timer " + u + "@100 total 14 rules 1");
  }
  for (int p : {3, 1}) {
    SCOPED_TRACE("parallelism " + std::to_string(p));
    std::vector<std::string> got;
    for (int j = 0; j < p; ++j) {
      StreamExecutionEnvironment env;
      auto out = AlertsJob(env);
      TestRuntime rt(j, p);
      std::vector<internal::OperatorSnapshot> mine = NarrowSnapshots(by_subtask, j, p, 128);
      auto task = OpenChain(env, rt, &mine);
      task->process_buffer(kData, PlainBuffer<Event>(owned(j, p)));
      task->process_watermark(kMaxWatermark);
      got.insert(got.end(), out->begin(), out->end());
      task->close();
    }
    EXPECT_THAT(got, UnorderedElementsAreArray(expected));
  }
}

}  // namespace
}  // namespace sluice
