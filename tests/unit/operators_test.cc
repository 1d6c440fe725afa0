// Operator chains run in-process, without a cluster: the test plays the runtime (TaskRuntime) and
// the network (RecordWriter), builds chains with env.build_chain and drives their lifecycle.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <iterator>
#include <limits>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "common/job_graph.h"
#include "common/state_redistribution.h"
#include "sluice/connectors/files.h"
#include "sluice/sluice.h"
#include "tests/unit/test_helpers.h"
#include "tests/unit/test_runtime.h"

namespace sluice {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAreArray;

// ---------------------------------------------------------------------------------------------
// Test doubles for the runtime's side of the seam.

using testing_support::ExpectOperatorError;
using testing_support::TestRuntime;

// N channels of std::string buffers; commit() moves a buffer that reached `buffer_size` bytes
// into the channel's list of sent buffers, Flush() sends the rest.
class TestWriter final : public internal::RecordWriter {
 public:
  explicit TestWriter(int channels, size_t buffer_size = 64)
      : open_(channels), sent_(channels), buffer_size_(buffer_size) {}

  int num_channels() const override { return static_cast<int>(open_.size()); }
  std::string& buffer(int channel) override { return open_.at(channel); }
  void commit(int channel) override {
    ++commits_;
    std::string& b = open_.at(channel);
    if (b.size() >= buffer_size_) Send(channel);
  }

  void Flush() {
    for (int c = 0; c < num_channels(); ++c) {
      if (!open_[c].empty()) Send(c);
    }
  }
  void emit_watermark(int64_t watermark) override {
    Flush();
    watermarks_.push_back(watermark);
  }
  void emit_watermark_status(bool idle) override {
    Flush();
    statuses_.push_back(idle);
  }
  const std::vector<std::string>& sent(int channel) const { return sent_.at(channel); }
  int commits() const { return commits_; }
  // The watermarks and idle statuses sent (on every channel), in order.
  const std::vector<int64_t>& watermarks() const { return watermarks_; }
  const std::vector<bool>& statuses() const { return statuses_; }

  // Every record sent on `channel`, in order.
  template <class T>
  std::vector<T> Records(int channel) const {
    std::vector<T> out;
    for (const std::string& b : sent_.at(channel)) {
      DataInput in(b);
      while (!in.at_end()) {
        T v{};
        Serializer<T>::read(in, v);
        out.push_back(std::move(v));
      }
    }
    return out;
  }

 private:
  void Send(int channel) {
    sent_[channel].push_back(std::move(open_[channel]));
    open_[channel].clear();
  }
  std::vector<std::string> open_;
  std::vector<std::vector<std::string>> sent_;
  size_t buffer_size_;
  int commits_ = 0;
  std::vector<int64_t> watermarks_;
  std::vector<bool> statuses_;
};

// A sink that keeps what it receives (shared between the copies the SDK makes of it) and
// records its lifecycle.
template <class T>
struct CollectSink final : SinkFunction<T> {
  struct State {
    std::vector<T> values;
    int opens = 0;
    int closes = 0;
    int subtask = -1;
    int parallelism = -1;
  };
  std::shared_ptr<State> state = std::make_shared<State>();

  void open(RuntimeContext& ctx) override {
    ++state->opens;
    state->subtask = ctx.index_of_this_subtask();
    state->parallelism = ctx.number_of_parallel_subtasks();
  }
  void invoke(const T& v) override { state->values.push_back(v); }
  void close() override { ++state->closes; }
};

int LastNode(const StreamExecutionEnvironment& env) {
  return static_cast<int>(env.nodes().size()) - 1;
}

std::vector<int> Range(int first, int last) {
  std::vector<int> ids;
  for (int i = first; i <= last; ++i) ids.push_back(i);
  return ids;
}

// Runs a source chain through its whole lifecycle.
void RunSourceChain(const StreamExecutionEnvironment& env, const std::vector<int>& chain,
                    const std::vector<internal::OutputBinding>& outputs,
                    internal::TaskRuntime& rt) {
  auto task = env.build_chain(chain, outputs, rt);
  ASSERT_TRUE(task->is_source());
  task->initialize_state(nullptr);
  task->open();
  task->run_source();
  task->end_input();
  task->close();
}

// Opens a non-source chain and feeds it `buffers`; ending its input is left to the caller.
std::unique_ptr<internal::ChainTask> OpenAndFeed(
    const StreamExecutionEnvironment& env, const std::vector<int>& chain,
    const std::vector<internal::OutputBinding>& outputs, internal::TaskRuntime& rt,
    const std::vector<std::string>& buffers) {
  auto task = env.build_chain(chain, outputs, rt);
  EXPECT_FALSE(task->is_source());
  task->initialize_state(nullptr);
  task->open();
  for (const std::string& b : buffers) task->process_buffer(0, b);
  return task;
}

// Feeds every buffer a writer sent on `channel` to a non-source chain, then ends its input.
void RunConsumerChain(const StreamExecutionEnvironment& env, const std::vector<int>& chain,
                      const std::vector<internal::OutputBinding>& outputs,
                      internal::TaskRuntime& rt, const std::vector<std::string>& buffers) {
  auto task = OpenAndFeed(env, chain, outputs, rt, buffers);
  task->end_input();
  task->close();
}

// Runs source node 0 over a hash edge to node 1 with one consumer; the buffers it sent.
std::vector<std::string> SourceBuffersOverHash(const StreamExecutionEnvironment& env) {
  TestWriter w(1);
  TestRuntime src_rt;
  RunSourceChain(env, {0}, {{0, 1, 0, internal::Partitioner::kHash, &w}}, src_rt);
  w.Flush();
  return w.sent(0);
}

// ---------------------------------------------------------------------------------------------
// Transformations inside one chain.

TEST(OperatorsTest, MapFilterAndFlatMapInOneChain) {
  StreamExecutionEnvironment env;
  CollectSink<std::string> sink;
  env.generate_sequence(1, 8)
      .map([](int64_t v) { return v * 10; })
      .filter([](int64_t v) { return v % 20 == 0; })
      .flat_map([](const int64_t& v, Collector<std::string>& out) {
        out.collect(std::to_string(v));
        if (v > 50) out.collect("big");
      })
      .add_sink(sink);
  TestRuntime rt;
  RunSourceChain(env, Range(0, LastNode(env)), {}, rt);
  EXPECT_THAT(sink.state->values, ElementsAre("20", "40", "60", "big", "80", "big"));
  EXPECT_EQ(sink.state->opens, 1);
  EXPECT_EQ(sink.state->closes, 1);
  EXPECT_EQ(sink.state->subtask, 0);
  EXPECT_EQ(sink.state->parallelism, 1);
}

TEST(OperatorsTest, SourceFlushReachesTheRuntimeBetweenRecords) {
  // A source that waits for input calls flush() first, so what it collected goes out at once.
  struct Waiting final : SourceFunction<int64_t> {
    void run(SourceContext& ctx) override {
      ctx.collect(int64_t{1});
      ctx.flush();
      ctx.collect(int64_t{2});
      ctx.collect(int64_t{3});
      ctx.flush();
    }
  };
  StreamExecutionEnvironment env;
  env.add_source(Waiting{}).print();
  TestRuntime rt;
  RunSourceChain(env, {0, 1}, {}, rt);
  EXPECT_EQ(rt.lines(), (std::vector<std::string>{"1", "2", "3"}));
  EXPECT_EQ(rt.flushes(), (std::vector<size_t>{1, 3}));
}

TEST(OperatorsTest, FlatMapWithAnExplicitOutputType) {
  StreamExecutionEnvironment env;
  CollectSink<std::pair<std::string, int64_t>> sink;
  env.from_elements(std::string("the quick fox"), std::string(""), std::string("the end"))
      .flat_map<std::pair<std::string, int64_t>>(
          [](const std::string& line, Collector<std::pair<std::string, int64_t>>& out) {
            size_t start = 0;
            while (start < line.size()) {
              size_t end = line.find(' ', start);
              if (end == std::string::npos) end = line.size();
              out.collect({line.substr(start, end - start), 1});
              start = end + 1;
            }
          })
      .add_sink(sink);
  TestRuntime rt;
  RunSourceChain(env, Range(0, LastNode(env)), {}, rt);
  using P = std::pair<std::string, int64_t>;
  EXPECT_THAT(sink.state->values,
              ElementsAre(P{"the", 1}, P{"quick", 1}, P{"fox", 1}, P{"the", 1}, P{"end", 1}));
}

TEST(OperatorsTest, ProcessFunctionSeesItsSubtaskAndFlushesAtEndOfInput) {
  struct Summer final : ProcessFunction<int64_t, std::string> {
    int64_t total = 0;
    int subtask = -1;
    void open(RuntimeContext& ctx) override { subtask = ctx.index_of_this_subtask(); }
    void process_element(const int64_t& v, Context&, Collector<std::string>& out) override {
      total += v;
      if (v == 2) out.collect("saw 2");
    }
    void end_input(Collector<std::string>& out) override {
      out.collect("subtask " + std::to_string(subtask) + " total " + std::to_string(total));
    }
  };
  StreamExecutionEnvironment env;
  CollectSink<std::string> sink;
  env.generate_sequence(1, 10).process(Summer()).add_sink(sink);
  // Subtask 1 of 2 of the sequence 1..10 is 6..10.
  TestRuntime rt(1, 2);
  RunSourceChain(env, Range(0, LastNode(env)), {}, rt);
  EXPECT_THAT(sink.state->values, ElementsAre("subtask 1 total 40"));

  CollectSink<std::string> sink0;
  StreamExecutionEnvironment env0;
  env0.generate_sequence(1, 10).process(Summer()).add_sink(sink0);
  TestRuntime rt0(0, 2);
  RunSourceChain(env0, Range(0, LastNode(env0)), {}, rt0);
  EXPECT_THAT(sink0.state->values, ElementsAre("saw 2", "subtask 0 total 15"));
}

TEST(OperatorsTest, FanOutSendsEveryRecordToEveryChainedAndNetworkConsumer) {
  // A node with a chained consumer (the sink) and a network consumer (the map): both get all.
  StreamExecutionEnvironment env;
  CollectSink<int64_t> sink;
  auto src = env.generate_sequence(1, 5);
  src.add_sink(sink);                                               // node 1
  src.rebalance().map([](int64_t v) { return v; }).add_sink(sink);  // nodes 2, 3
  TestWriter w(1);
  TestRuntime rt;
  RunSourceChain(env, {0, 1}, {{0, 2, 0, internal::Partitioner::kRebalance, &w}}, rt);
  w.Flush();
  EXPECT_THAT(sink.state->values, ElementsAre(1, 2, 3, 4, 5));
  EXPECT_THAT(w.Records<int64_t>(0), ElementsAre(1, 2, 3, 4, 5));
}

// A chain that forks (an operator chained to two consumers, as BuildJobGraph makes it): each
// branch gets every record and every watermark, and the counts stay exact.
TEST(OperatorsTest, AChainThatForksFeedsEveryBranchRecordsAndWatermarks) {
  StreamExecutionEnvironment env;
  CollectSink<int64_t> sink;
  auto src = env.generate_sequence(1, 30).assign_timestamps_and_watermarks(  // 0, 1
      WatermarkStrategy<int64_t>::for_monotonous_timestamps().with_timestamp_assigner(
          [](const int64_t& v, int64_t) { return v * 1000; }));
  src.map([](int64_t v) { return v * 10; }).rebalance().add_sink(sink);         // 2; 3 apart
  src.filter([](int64_t v) { return v % 3 == 0; }).rebalance().add_sink(sink);  // 4; 5 apart
  proto::JobGraph g = BuildJobGraph(env, JobGraphOptions{}).value();
  ASSERT_GE(g.vertices_size(), 1);
  ASSERT_THAT(g.vertices(0).node_ids(), ElementsAre(0, 1, 2, 4));

  TestWriter w2(1), w4(1);
  TestRuntime rt;
  rt.CountRecords({0, 1, 2, 4}, 2);
  auto task = env.build_chain({0, 1, 2, 4},
                              {{2, 3, 0, internal::Partitioner::kRebalance, &w2},
                               {4, 5, 0, internal::Partitioner::kRebalance, &w4}},
                              rt);
  task->initialize_state(nullptr);
  task->open();
  task->run_source();
  task->process_watermark(kMaxWatermark);  // what the task does when its source ends
  task->end_input();
  task->close();
  // The records carry their timestamps over the network: (timestamp, value) pairs.
  std::vector<int64_t> tens, threes;
  for (int64_t v = 1; v <= 30; ++v) {
    tens.insert(tens.end(), {v * 1000, v * 10});
    if (v % 3 == 0) threes.insert(threes.end(), {v * 1000, v});
  }
  EXPECT_EQ(w2.Records<int64_t>(0), tens);
  EXPECT_EQ(w4.Records<int64_t>(0), threes);
  EXPECT_THAT(w2.watermarks(), ElementsAre(kMaxWatermark));
  EXPECT_THAT(w4.watermarks(), ElementsAre(kMaxWatermark));
  EXPECT_EQ(rt.RecordsOut(1), 30);  // counted once by the fork
  EXPECT_EQ(rt.RecordsIn(2), 30);
  EXPECT_EQ(rt.RecordsOut(2), 30);
  EXPECT_EQ(rt.RecordsIn(4), 30);
  EXPECT_EQ(rt.RecordsOut(4), 10);
  EXPECT_EQ(rt.EdgeRecords(0), 30);
  EXPECT_EQ(rt.EdgeRecords(1), 10);
}

// A branch that gives records timestamps does not give them to its sibling branches.
TEST(OperatorsTest, ATimestampAssignedInOneBranchOfAForkStaysInThatBranch) {
  struct Stamps final : ProcessFunction<int64_t, std::string> {
    void process_element(const int64_t& v, Context& ctx, Collector<std::string>& out) override {
      out.collect(std::to_string(v) + "@" + std::to_string(ctx.timestamp()));
    }
  };
  StreamExecutionEnvironment env;
  CollectSink<std::string> sink;
  auto src = env.generate_sequence(1, 3);  // 0: records without timestamps
  src.assign_timestamps_and_watermarks(    // 1, then 2 apart
         WatermarkStrategy<int64_t>::for_monotonous_timestamps().with_timestamp_assigner(
             [](const int64_t& v, int64_t) { return v * 1000; }))
      .rebalance()
      .map([](int64_t v) { return v; });
  src.process(Stamps()).add_sink(sink);  // 3, 4
  TestWriter w(1);
  TestRuntime rt;
  RunSourceChain(env, {0, 1, 3, 4}, {{1, 2, 0, internal::Partitioner::kRebalance, &w}}, rt);
  const std::string none = std::to_string(kNoTimestamp);
  EXPECT_THAT(sink.state->values, ElementsAre("1@" + none, "2@" + none, "3@" + none));
  w.Flush();
  EXPECT_THAT(w.Records<int64_t>(0), ElementsAre(1000, 1, 2000, 2, 3000, 3));
}

// ---------------------------------------------------------------------------------------------
// Record counts (metrics): each record is counted once where it is cheapest, and every operator's
// records in and out come out exact.

TEST(OperatorsTest, ChainCountsEveryOperatorsRecordsInAndOut) {
  StreamExecutionEnvironment env;
  CollectSink<std::string> sink;
  env.generate_sequence(1, 100)                                      // node 0
      .map([](int64_t v) { return v * 10; })                         // 1: one to one
      .filter([](int64_t v) { return v % 20 == 0; })                 // 2: keeps 50
      .flat_map([](const int64_t& v, Collector<std::string>& out) {  // 3: two each
        out.collect(std::to_string(v));
        out.collect("again");
      })
      .add_sink(sink);  // 4
  TestRuntime rt;
  rt.CountRecords(Range(0, 4), 0);
  RunSourceChain(env, Range(0, 4), {}, rt);
  ASSERT_EQ(sink.state->values.size(), 100u);
  EXPECT_EQ(rt.RecordsIn(0), 0);
  EXPECT_EQ(rt.RecordsOut(0), 100);
  EXPECT_EQ(rt.RecordsIn(1), 100);
  EXPECT_EQ(rt.RecordsOut(1), 100);
  EXPECT_EQ(rt.RecordsIn(2), 100);  // the map's, not counted again
  EXPECT_EQ(rt.RecordsOut(2), 50);
  EXPECT_EQ(rt.RecordsIn(3), 50);
  EXPECT_EQ(rt.RecordsOut(3), 100);
  EXPECT_EQ(rt.RecordsIn(4), 100);
  EXPECT_EQ(rt.RecordsOut(4), 0);
}

TEST(OperatorsTest, ChainCountsFanOutsAndNetworkEdges) {
  StreamExecutionEnvironment env;
  CollectSink<int64_t> sink;
  auto src = env.generate_sequence(1, 30);                          // 0
  src.add_sink(sink);                                               // 1
  src.rebalance().map([](int64_t v) { return v; }).add_sink(sink);  // 2, 3 (another task)
  src.filter([](int64_t v) { return v % 3 == 0; })                  // 4
      .rebalance()
      .map([](int64_t v) { return v; })  // 5 (another task)
      .add_sink(sink);

  // The source feeds a chained sink and a network edge: a fan-out counts its records once.
  TestWriter w1(2);
  TestRuntime rt;
  rt.CountRecords({0, 1}, 1);
  RunSourceChain(env, {0, 1}, {{0, 2, 0, internal::Partitioner::kRebalance, &w1}}, rt);
  EXPECT_EQ(rt.RecordsOut(0), 30);
  EXPECT_EQ(rt.RecordsIn(1), 30);
  EXPECT_EQ(rt.EdgeRecords(0), 30);

  // The filter's output is one network edge alone: the edge's count is its records out.
  TestWriter w2(1);
  TestRuntime rt2;
  rt2.CountRecords({0, 4}, 1);
  RunSourceChain(env, {0, 4}, {{4, 5, 0, internal::Partitioner::kRebalance, &w2}}, rt2);
  EXPECT_EQ(rt2.RecordsOut(0), 30);
  EXPECT_EQ(rt2.RecordsIn(4), 30);
  EXPECT_EQ(rt2.RecordsOut(4), 10);
  EXPECT_EQ(rt2.EdgeRecords(0), 10);
}

TEST(OperatorsTest, ChainHeadCountsPerBufferAndWhatFollowsAMapIsDerived) {
  using P = std::pair<std::string, int64_t>;
  StreamExecutionEnvironment env;
  CollectSink<P> sink;
  env.from_elements(P{"a", 1}, P{"b", 2}, P{"a", 3}, P{"c", 10}, P{"a", 4}, P{"b", 5})
      .key_by([](const P& p) { return p.first; })
      .sum<1>()                                         // 1: one to one
      .filter([](const P& p) { return p.second > 3; })  // 2
      .add_sink(sink);                                  // 3
  TestWriter w(1, /*buffer_size=*/16);
  TestRuntime src_rt;
  src_rt.CountRecords({0}, 1);
  RunSourceChain(env, {0}, {{0, 1, 0, internal::Partitioner::kHash, &w}}, src_rt);
  w.Flush();
  ASSERT_GT(w.sent(0).size(), 1u);
  EXPECT_EQ(src_rt.RecordsOut(0), 6);
  EXPECT_EQ(src_rt.EdgeRecords(0), 6);

  TestRuntime rt;
  rt.CountRecords({1, 2, 3}, 0);
  RunConsumerChain(env, {1, 2, 3}, {}, rt, w.sent(0));
  ASSERT_EQ(sink.state->values.size(), 4u);  // sums 4, 10, 8, 7
  EXPECT_EQ(rt.RecordsIn(1), 6);
  EXPECT_EQ(rt.RecordsOut(1), 6);
  EXPECT_EQ(rt.RecordsIn(2), 6);
  EXPECT_EQ(rt.RecordsOut(2), 4);
  EXPECT_EQ(rt.RecordsIn(3), 4);
}

TEST(OperatorsTest, ChainWithoutCountersCountsNothing) {
  StreamExecutionEnvironment env;
  CollectSink<int64_t> sink;
  env.generate_sequence(1, 10).map([](int64_t v) { return v; }).add_sink(sink);
  TestRuntime rt;  // metrics off: no counters lent
  RunSourceChain(env, Range(0, 2), {}, rt);
  EXPECT_EQ(sink.state->values.size(), 10u);
  EXPECT_EQ(rt.operator_counters(1), nullptr);
}

// ---------------------------------------------------------------------------------------------
// Keyed operators, fed over a (test) network edge.

TEST(OperatorsTest, KeyedSumEmitsRollingValuesPerKey) {
  using P = std::pair<std::string, int64_t>;
  StreamExecutionEnvironment env;
  CollectSink<P> sink;
  env.from_elements(P{"a", 1}, P{"b", 2}, P{"a", 3}, P{"c", 10}, P{"a", 4}, P{"b", 5})
      .key_by([](const P& p) { return p.first; })
      .sum<1>()
      .add_sink(sink);
  // Nodes: 0 source, 1 keyed sum, 2 sink. The source writes over a hash edge to one consumer.
  TestWriter w(1, /*buffer_size=*/16);  // several buffers, several records in some
  TestRuntime src_rt;
  RunSourceChain(env, {0}, {{0, 1, 0, internal::Partitioner::kHash, &w}}, src_rt);
  w.Flush();
  ASSERT_GT(w.sent(0).size(), 1u);

  TestRuntime rt;
  RunConsumerChain(env, {1, 2}, {}, rt, w.sent(0));
  EXPECT_THAT(sink.state->values,
              ElementsAre(P{"a", 1}, P{"b", 2}, P{"a", 4}, P{"c", 10}, P{"a", 8}, P{"b", 7}));
}

TEST(OperatorsTest, KeyedSumOfArithmeticRecordsAndOfStructMembers) {
  struct Reading {
    std::string sensor;
    double value = 0;
    SLUICE_FIELDS(sensor, value)
  };
  StreamExecutionEnvironment env;
  CollectSink<int64_t> ints;
  CollectSink<Reading> readings;
  env.generate_sequence(1, 6).key_by([](int64_t v) { return v % 2; }).sum().add_sink(ints);
  env.from_elements(Reading{"x", 1.5}, Reading{"y", 1}, Reading{"x", 2})
      .key_by([](const Reading& r) { return r.sensor; })
      .sum(&Reading::value)
      .add_sink(readings);
  // Run both pipelines as single chains (the key_by edge is not a network edge here).
  TestRuntime rt;
  RunSourceChain(env, {0, 1, 2}, {}, rt);
  RunSourceChain(env, {3, 4, 5}, {}, rt);
  EXPECT_THAT(ints.state->values, ElementsAre(1, 2, 4, 6, 9, 12));
  std::vector<std::string> got;
  for (const Reading& r : readings.state->values) got.push_back(to_text(r));
  EXPECT_THAT(got, ElementsAre("x,1.5", "y,1", "x,3.5"));
}

TEST(OperatorsTest, KeyedProcessFunctionEmitsAtEndOfInput) {
  struct CountPerKey final : KeyedProcessFunction<std::string, std::string, std::string> {
    std::map<std::string, int> counts;
    void process_element(const std::string& word, Context& ctx,
                         Collector<std::string>& out) override {
      if (ctx.current_key() != word.substr(0, 1)) out.collect("wrong key for " + word);
      ++counts[ctx.current_key()];
    }
    void end_input(Collector<std::string>& out) override {
      for (const auto& [k, n] : counts) out.collect(k + "=" + std::to_string(n));
    }
  };
  StreamExecutionEnvironment env;
  CollectSink<std::string> sink;
  env.from_elements(std::string("apple"), std::string("banana"), std::string("avocado"),
                    std::string("cherry"), std::string("blueberry"), std::string("apricot"))
      .key_by([](const std::string& w) { return w.substr(0, 1); })
      .process(CountPerKey())
      .add_sink(sink);

  TestRuntime rt;
  auto task = OpenAndFeed(env, {1, 2}, {}, rt, SourceBuffersOverHash(env));
  EXPECT_THAT(sink.state->values, IsEmpty()) << "emitted before the end of input";
  task->end_input();
  task->close();
  EXPECT_THAT(sink.state->values, ElementsAre("a=3", "b=2", "c=1"));
}

TEST(OperatorsTest, KeyedProcessFunctionKeepsValueStatePerKey) {
  // A running count and the last word per key in keyed state, emitted with every record.
  struct CountWithState final : KeyedProcessFunction<std::string, std::string, std::string> {
    ValueState<int64_t>* count = nullptr;
    ValueState<std::string>* last = nullptr;
    void open(RuntimeContext& ctx) override {
      count = &ctx.get_state(ValueStateDescriptor<int64_t>("count"));
      last = &ctx.get_state(ValueStateDescriptor<std::string>("last", "-"));
    }
    void process_element(const std::string& word, Context& ctx,
                         Collector<std::string>& out) override {
      count->update(count->value() + 1);
      out.collect(ctx.current_key() + ":" + std::to_string(count->value()) + " after " +
                  last->value());
      last->update(word);
    }
  };
  StreamExecutionEnvironment env;
  CollectSink<std::string> sink;
  env.from_elements(std::string("apple"), std::string("banana"), std::string("avocado"),
                    std::string("blueberry"), std::string("apricot"))
      .key_by([](const std::string& w) { return w.substr(0, 1); })
      .process(CountWithState())
      .add_sink(sink);

  TestRuntime rt;
  RunConsumerChain(env, {1, 2}, {}, rt, SourceBuffersOverHash(env));
  EXPECT_THAT(sink.state->values, ElementsAre("a:1 after -", "b:1 after -", "a:2 after apple",
                                              "b:2 after banana", "a:3 after avocado"));
}

TEST(OperatorsTest, KeyedStateAtEndOfInputIsAnErrorNamingTheOperator) {
  struct StateAtEnd final : KeyedProcessFunction<int64_t, int64_t, int64_t> {
    ValueState<int64_t>* v = nullptr;
    void open(RuntimeContext& ctx) override {
      v = &ctx.get_state(ValueStateDescriptor<int64_t>("v"));
    }
    void process_element(const int64_t& x, Context&, Collector<int64_t>&) override { v->update(x); }
    void end_input(Collector<int64_t>& out) override { out.collect(v->value()); }
  };
  StreamExecutionEnvironment env;
  env.from_elements(int64_t{1}, int64_t{2})
      .key_by([](int64_t x) { return x; })
      .process(StateAtEnd(), "Summarise")
      .add_sink(DiscardingSink<int64_t>());
  TestRuntime rt;
  auto task = OpenAndFeed(env, {1, 2}, {}, rt, SourceBuffersOverHash(env));
  ExpectOperatorError([&] { task->end_input(); }, "Summarise", "no current key");
}

TEST(OperatorsTest, KeyedStateOutsideAKeyedStreamIsAnError) {
  struct NotKeyed final : ProcessFunction<int64_t, int64_t> {
    void open(RuntimeContext& ctx) override { ctx.get_state(ValueStateDescriptor<int64_t>("v")); }
    void process_element(const int64_t&, Context&, Collector<int64_t>&) override {}
  };
  StreamExecutionEnvironment env;
  env.generate_sequence(1, 2).process(NotKeyed()).name("Plain").add_sink(DiscardingSink<int64_t>());
  TestRuntime rt;
  auto task = env.build_chain({0, 1, 2}, {}, rt);
  ExpectOperatorError([&] { task->open(); }, "Plain", "after key_by");
}

// ---------------------------------------------------------------------------------------------
// Print sink.

TEST(OperatorsTest, PrintPrefixesTheSubtaskWhenParallel) {
  StreamExecutionEnvironment env;
  env.from_elements(std::make_pair(std::string("a"), 1), std::make_pair(std::string("b"), 2))
      .print();
  TestRuntime parallel(1, 3);
  RunSourceChain(env, {0, 1}, {}, parallel);
  EXPECT_THAT(parallel.lines(), ElementsAre("2> a,1", "2> b,2"));

  TestRuntime single(0, 1);
  RunSourceChain(env, {0, 1}, {}, single);
  EXPECT_THAT(single.lines(), ElementsAre("a,1", "b,2"));
}

// ---------------------------------------------------------------------------------------------
// Partitioners: how a producer spreads records over the channels of a network edge.

TEST(OperatorsTest, HashPartitioningSendsEqualKeysToTheOwningSubtask) {
  for (int max_p : {128, 16}) {
    for (int channels : {1, 3, 4, 7}) {
      SCOPED_TRACE("max_parallelism=" + std::to_string(max_p) +
                   " channels=" + std::to_string(channels));
      std::vector<std::string> words;
      for (int i = 0; i < 500; ++i) words.push_back("key-" + std::to_string(i % 61));
      StreamExecutionEnvironment env;
      env.from_collection(words).key_by([](const std::string& s) { return s; }).sum().print();
      TestWriter w(channels);
      TestRuntime rt(0, 1, max_p);
      RunSourceChain(env, {0}, {{0, 1, 0, internal::Partitioner::kHash, &w}}, rt);
      w.Flush();
      size_t total = 0;
      std::map<std::string, int> channel_of;
      for (int c = 0; c < channels; ++c) {
        for (const std::string& key : w.Records<std::string>(c)) {
          ++total;
          int kg = key_group_for_hash(KeyHash<std::string>{}(key), max_p);
          EXPECT_EQ(c, subtask_for_key_group(kg, max_p, channels)) << key;
          auto [it, inserted] = channel_of.emplace(key, c);
          EXPECT_EQ(it->second, c) << key << " sent to two channels";
        }
      }
      EXPECT_EQ(total, words.size());
      EXPECT_EQ(channel_of.size(), 61u);
    }
  }
}

TEST(OperatorsTest, HashPartitioningOfIntegerKeys) {
  StreamExecutionEnvironment env;
  env.generate_sequence(0, 999).key_by([](int64_t v) { return v % 37; }).sum().print();
  TestWriter w(5);
  TestRuntime rt;
  RunSourceChain(env, {0}, {{0, 1, 0, internal::Partitioner::kHash, &w}}, rt);
  w.Flush();
  size_t total = 0;
  for (int c = 0; c < 5; ++c) {
    for (int64_t v : w.Records<int64_t>(c)) {
      ++total;
      int kg = key_group_for_hash(KeyHash<int64_t>{}(v % 37), 128);
      EXPECT_EQ(c, subtask_for_key_group(kg, 128, 5)) << v;
    }
  }
  EXPECT_EQ(total, 1000u);
}

TEST(OperatorsTest, RebalanceSpreadsRoundRobinStartingAtTheSubtaskIndex) {
  std::vector<int64_t> values;
  for (int64_t i = 0; i < 12; ++i) values.push_back(i);
  for (int subtask : {0, 1, 4}) {
    SCOPED_TRACE("subtask " + std::to_string(subtask));
    StreamExecutionEnvironment env;
    env.from_collection(values).rebalance().print();
    TestWriter w(3);
    TestRuntime rt(subtask, 5);
    RunSourceChain(env, {0}, {{0, 1, 0, internal::Partitioner::kRebalance, &w}}, rt);
    w.Flush();
    for (int c = 0; c < 3; ++c) {
      std::vector<int64_t> expected;
      for (int64_t v : values) {
        if ((v + subtask) % 3 == c) expected.push_back(v);
      }
      EXPECT_EQ(w.Records<int64_t>(c), expected) << "channel " << c;
    }
  }
}

TEST(OperatorsTest, BroadcastWritesEveryRecordToEveryChannel) {
  StreamExecutionEnvironment env;
  env.generate_sequence(1, 20).broadcast().print();
  TestWriter w(4, 32);
  TestRuntime rt;
  RunSourceChain(env, {0}, {{0, 1, 0, internal::Partitioner::kBroadcast, &w}}, rt);
  w.Flush();
  std::vector<int64_t> all;
  for (int64_t i = 1; i <= 20; ++i) all.push_back(i);
  for (int c = 0; c < 4; ++c) EXPECT_EQ(w.Records<int64_t>(c), all) << "channel " << c;
  EXPECT_EQ(w.commits(), 80);
}

TEST(OperatorsTest, RescaleWritesRoundRobinToThePointwiseConsumers) {
  std::vector<int64_t> values;
  for (int64_t i = 0; i < 10; ++i) values.push_back(i);
  // Producer 1 of 2 feeding 4 consumers: consumers 2 and 3.
  StreamExecutionEnvironment env;
  env.from_collection(values).rescale().print();
  TestWriter w(4);
  TestRuntime rt(1, 2);
  RunSourceChain(env, {0}, {{0, 1, 0, internal::Partitioner::kRescale, &w}}, rt);
  w.Flush();
  EXPECT_THAT(w.Records<int64_t>(0), IsEmpty());
  EXPECT_THAT(w.Records<int64_t>(1), IsEmpty());
  EXPECT_THAT(w.Records<int64_t>(2), ElementsAre(0, 2, 4, 6, 8));
  EXPECT_THAT(w.Records<int64_t>(3), ElementsAre(1, 3, 5, 7, 9));

  // Producer 3 of 4 feeding 2 consumers: consumer 1 only.
  TestWriter w2(2);
  TestRuntime rt2(3, 4);
  RunSourceChain(env, {0}, {{0, 1, 0, internal::Partitioner::kForward, &w2}}, rt2);
  w2.Flush();
  EXPECT_THAT(w2.Records<int64_t>(0), IsEmpty());
  EXPECT_EQ(w2.Records<int64_t>(1), values);
}

TEST(OperatorsTest, CustomPartitionerChoosesTheChannel) {
  StreamExecutionEnvironment env;
  env.generate_sequence(0, 9)
      .partition_custom([](int64_t key, int n) { return static_cast<int>(key % n); },
                        [](int64_t v) { return v * 3; })
      .print();
  TestWriter w(2);
  TestRuntime rt;
  RunSourceChain(env, {0}, {{0, 1, 0, internal::Partitioner::kCustom, &w}}, rt);
  w.Flush();
  EXPECT_THAT(w.Records<int64_t>(0), ElementsAre(0, 2, 4, 6, 8));
  EXPECT_THAT(w.Records<int64_t>(1), ElementsAre(1, 3, 5, 7, 9));
}

TEST(OperatorsTest, CustomPartitionerOutOfRangeIsAnOperatorError) {
  StreamExecutionEnvironment env;
  env.generate_sequence(0, 9)
      .map([](int64_t v) { return v; })
      .name("router")
      .partition_custom([](int64_t, int) { return 7; }, [](int64_t v) { return v; })
      .print();
  TestWriter w(2);
  TestRuntime rt;
  auto task = env.build_chain({0, 1}, {{1, 2, 0, internal::Partitioner::kCustom, &w}}, rt);
  task->open();
  ExpectOperatorError([&] { task->run_source(); }, "router", "channel 7 of 2");
}

// ---------------------------------------------------------------------------------------------
// Failures and cancellation.

TEST(OperatorsTest, UserExceptionBecomesAnOperatorErrorNamingTheOperator) {
  StreamExecutionEnvironment env;
  env.generate_sequence(1, 100)
      .map([](int64_t v) {
        if (v == 3) throw std::runtime_error("boom at 3");
        return v;
      })
      .name("Exploding Map")
      .print();
  TestRuntime rt;
  auto task = env.build_chain({0, 1, 2}, {}, rt);
  task->open();
  try {
    task->run_source();
    FAIL() << "no exception";
  } catch (const OperatorError& e) {
    // The map's name, not the source's that called it.
    EXPECT_EQ(e.operator_name(), "Exploding Map");
    EXPECT_THAT(e.what(), HasSubstr("'Exploding Map'"));
    EXPECT_THAT(e.what(), HasSubstr("boom at 3"));
  }
  EXPECT_THAT(rt.lines(), ElementsAre("1", "2"));
}

TEST(OperatorsTest, NonStandardExceptionsAndFilterExceptionsAreWrappedToo) {
  StreamExecutionEnvironment env;
  env.generate_sequence(1, 10)
      .filter([](int64_t v) -> bool {
        if (v == 5) throw 42;
        return true;
      })
      .name("picky")
      .print();
  TestRuntime rt;
  auto task = env.build_chain({0, 1, 2}, {}, rt);
  task->open();
  ExpectOperatorError([&] { task->run_source(); }, "picky", "unknown exception");
}

TEST(OperatorsTest, ExceptionsInAConsumerChainNameTheOperator) {
  struct FailsAtEnd final : KeyedProcessFunction<int64_t, int64_t, int64_t> {
    void process_element(const int64_t& v, Context&, Collector<int64_t>& out) override {
      out.collect(v);
    }
    void end_input(Collector<int64_t>&) override { throw std::logic_error("cannot finish"); }
  };
  StreamExecutionEnvironment env;
  env.generate_sequence(1, 4)
      .key_by([](int64_t v) { return v; })
      .process(FailsAtEnd(), "finisher")
      .print();
  TestRuntime rt;
  auto task = OpenAndFeed(env, {1, 2}, {}, rt, SourceBuffersOverHash(env));
  EXPECT_EQ(rt.lines().size(), 4u);
  ExpectOperatorError([&] { task->end_input(); }, "finisher", "cannot finish");
}

TEST(OperatorsTest, CorruptInputBufferThrowsSerializationError) {
  StreamExecutionEnvironment env;
  env.generate_sequence(1, 4).rebalance().map([](int64_t v) { return v; }).print();
  TestRuntime rt;
  auto task = env.build_chain({1, 2}, {}, rt);
  task->open();
  std::string good = serialize<int64_t>(7);
  task->process_buffer(0, good);
  EXPECT_THAT(rt.lines(), ElementsAre("7"));
  EXPECT_THROW(task->process_buffer(0, good.substr(0, 5)), SerializationError);
}

TEST(OperatorsTest, MissingInputFileIsAnOperatorErrorNamingTheSource) {
  StreamExecutionEnvironment env;
  env.add_source(sluice::files::TextFileSource("/nonexistent/sluice/input.txt")).print();
  TestRuntime rt;
  auto task = env.build_chain({0, 1}, {}, rt);
  ExpectOperatorError([&] { task->open(); }, "Source: Text File /nonexistent/sluice/input.txt",
                      "cannot open input file");
}

TEST(OperatorsTest, BuildChainRejectsUnknownNodes) {
  StreamExecutionEnvironment env;
  env.generate_sequence(1, 4).print();
  TestRuntime rt;
  EXPECT_THROW(env.build_chain({}, {}, rt), std::invalid_argument);
  EXPECT_THROW(env.build_chain({0, 5}, {}, rt), std::invalid_argument);
  EXPECT_THROW(env.build_chain({-1}, {}, rt), std::invalid_argument);
}

TEST(OperatorsTest, CancelledRuntimeStopsASourceWithTaskCancelled) {
  StreamExecutionEnvironment env;
  CollectSink<int64_t> sink;
  env.generate_sequence(1, 10'000'000).add_sink(sink);
  TestRuntime rt;
  auto task = env.build_chain({0, 1}, {}, rt);
  task->open();
  rt.Cancel();
  EXPECT_THROW(task->run_source(), TaskCancelled);
  EXPECT_LT(sink.state->values.size(), 10'000u);
}

TEST(OperatorsTest, CancelStopsAnEndlessUserSourceFromAnotherThread) {
  struct Endless final : SourceFunction<int64_t> {
    void run(SourceContext& ctx) override {
      int64_t i = 0;
      while (is_running()) ctx.collect(i++);
    }
  };
  StreamExecutionEnvironment env;
  auto count = std::make_shared<std::atomic<int64_t>>(0);
  struct Counter final : SinkFunction<int64_t> {
    std::shared_ptr<std::atomic<int64_t>> n;
    void invoke(const int64_t&) override { n->fetch_add(1); }
  };
  Counter counter;
  counter.n = count;
  env.add_source(Endless(), "endless").add_sink(counter);
  TestRuntime rt;
  auto task = env.build_chain({0, 1}, {}, rt);
  task->open();
  auto done = std::async(std::launch::async, [&] { task->run_source(); });
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (count->load() < 1000 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_GE(count->load(), 1000);
  task->cancel();
  ASSERT_EQ(done.wait_for(std::chrono::seconds(10)), std::future_status::ready)
      << "source did not stop";
  done.get();  // returned normally
  task->close();
}

// ---------------------------------------------------------------------------------------------
// Source splitting: the subtasks of a parallel source together read every record exactly once.

// Runs subtasks 0..p-1 of a source whose output is collected by its chained sink (node 1).
template <class T>
std::vector<T> RunAllSubtasks(const StreamExecutionEnvironment& env, const CollectSink<T>& sink,
                              int p) {
  sink.state->values.clear();
  for (int i = 0; i < p; ++i) {
    TestRuntime rt(i, p);
    RunSourceChain(env, {0, 1}, {}, rt);
  }
  return sink.state->values;
}

class TextFileSplitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "sluice-ops-test-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  std::string WriteFile(const std::string& contents) {
    std::string path = dir_ + "/input-" + std::to_string(files_++) + ".txt";
    std::ofstream f(path, std::ios::binary);
    f << contents;
    return path;
  }
  // Every line of the file read at parallelism 1..max_p, as a multiset, against `lines`.
  void CheckSplits(const std::string& contents, const std::vector<std::string>& lines, int max_p) {
    std::string path = WriteFile(contents);
    StreamExecutionEnvironment env;
    CollectSink<std::string> sink;
    env.add_source(sluice::files::TextFileSource(path)).add_sink(sink);
    for (int p = 1; p <= max_p; ++p) {
      SCOPED_TRACE("parallelism " + std::to_string(p));
      std::vector<std::string> got = RunAllSubtasks(env, sink, p);
      EXPECT_EQ(got.size(), lines.size());
      EXPECT_THAT(got, UnorderedElementsAreArray(lines));
    }
  }
  std::string dir_;
  int files_ = 0;
};

TEST_F(TextFileSplitTest, LinesOfVariedLengthsAreEachReadOnce) {
  std::vector<std::string> lines;
  std::string contents;
  for (int i = 0; i < 300; ++i) {
    std::string line;
    if (i % 17 == 0) {
      line = "";  // empty lines
    } else if (i % 53 == 0) {
      line = "long-" + std::to_string(i) + std::string(5000, 'x');  // spans several ranges
    } else {
      line = "line " + std::to_string(i) + " " + std::string((i * 37) % 97, 'a' + i % 26);
    }
    lines.push_back(line);
    contents += line + "\n";
  }
  CheckSplits(contents, lines, 5);
}

TEST_F(TextFileSplitTest, LastLineWithoutNewline) {
  CheckSplits("alpha\nbeta\n\ngamma delta\nepsilon",
              {"alpha", "beta", "", "gamma delta", "epsilon"}, 5);
}

TEST_F(TextFileSplitTest, TinyFilesAndMoreSubtasksThanBytes) {
  CheckSplits("a\nb\n", {"a", "b"}, 6);
  CheckSplits("x", {"x"}, 4);
  CheckSplits("\n\n\n", {"", "", ""}, 5);
  CheckSplits("", {}, 3);
}

TEST_F(TextFileSplitTest, CarriageReturnsAreKept) {
  CheckSplits("one\r\ntwo\r\n", {"one\r", "two\r"}, 3);
}

TEST_F(TextFileSplitTest, ReadsInFileOrderWithinASubtask) {
  std::vector<std::string> lines;
  std::string contents;
  for (int i = 0; i < 50; ++i) {
    lines.push_back("row " + std::to_string(i));
    contents += lines.back() + "\n";
  }
  std::string path = WriteFile(contents);
  StreamExecutionEnvironment env;
  CollectSink<std::string> sink;
  env.add_source(sluice::files::TextFileSource(path)).add_sink(sink);
  // Concatenating subtasks 0, 1, 2 in order gives the file in order.
  EXPECT_EQ(RunAllSubtasks(env, sink, 3), lines);
}

TEST_F(TextFileSplitTest, WriteAsTextWritesOnePartFilePerSubtask) {
  std::string out_dir = dir_ + "/out/nested";
  StreamExecutionEnvironment env;
  env.generate_sequence(1, 5)
      .map([](int64_t v) { return std::make_pair(std::string("n"), v); })
      .add_sink(sluice::files::TextFileSink(out_dir));
  for (int i = 0; i < 3; ++i) {
    TestRuntime rt(i, 3);
    RunSourceChain(env, {0, 1, 2}, {}, rt);
  }
  auto read = [](const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  };
  // Shares of 1..5 over 3 subtasks: {1}, {2, 3}, {4, 5}.
  EXPECT_EQ(read(out_dir + "/part-0"), "n,1\n");
  EXPECT_EQ(read(out_dir + "/part-1"), "n,2\nn,3\n");
  EXPECT_EQ(read(out_dir + "/part-2"), "n,4\nn,5\n");
}

TEST_F(TextFileSplitTest, WriteAsTextIntoAnUncreatableDirectoryIsAnOperatorError) {
  std::string file = WriteFile("not a directory");
  StreamExecutionEnvironment env;
  env.generate_sequence(1, 5).add_sink(sluice::files::TextFileSink(file + "/sub"));
  TestRuntime rt;
  auto task = env.build_chain({0, 1}, {}, rt);
  try {
    task->open();
    FAIL() << "no exception";
  } catch (const OperatorError& e) {
    EXPECT_EQ(e.operator_name(), "Sink: Text File");
    EXPECT_THAT(e.what(), HasSubstr(file + "/sub"));
  }
}

TEST(SequenceSplitTest, EveryNumberIsEmittedOnce) {
  for (auto [from, to] : std::vector<std::pair<int64_t, int64_t>>{
           {1, 100}, {0, 0}, {-7, 5}, {0, 2}, {10, 13}, {-1000000, -999001}}) {
    StreamExecutionEnvironment env;
    CollectSink<int64_t> sink;
    env.generate_sequence(from, to).add_sink(sink);
    std::vector<int64_t> expected;
    for (int64_t v = from; v <= to; ++v) expected.push_back(v);
    for (int p = 1; p <= 5; ++p) {
      SCOPED_TRACE("[" + std::to_string(from) + ", " + std::to_string(to) +
                   "] p=" + std::to_string(p));
      // In subtask order the shares are contiguous and ascending.
      EXPECT_EQ(RunAllSubtasks(env, sink, p), expected);
    }
  }
}

TEST(SequenceSplitTest, SharesDifferByAtMostOne) {
  StreamExecutionEnvironment env;
  CollectSink<int64_t> sink;
  env.generate_sequence(1, 103).add_sink(sink);
  for (int p = 1; p <= 7; ++p) {
    size_t lo = SIZE_MAX, hi = 0;
    for (int i = 0; i < p; ++i) {
      sink.state->values.clear();
      TestRuntime rt(i, p);
      RunSourceChain(env, {0, 1}, {}, rt);
      lo = std::min(lo, sink.state->values.size());
      hi = std::max(hi, sink.state->values.size());
    }
    EXPECT_LE(hi - lo, 1u) << "p=" << p;
  }
}

// generate_sequence(from, INT64_MAX): the last share's exclusive end, INT64_MAX + 1, does not fit
// an int64_t; the source keeps inclusive [next, last] ranges, so the last number is emitted.
TEST(SequenceSplitTest, SequenceEndingAtInt64MaxIsEmitted) {
  const int64_t max = std::numeric_limits<int64_t>::max();
  StreamExecutionEnvironment env;
  CollectSink<int64_t> sink;
  env.generate_sequence(max - 3, max).add_sink(sink);
  for (int p = 1; p <= 3; ++p) {
    EXPECT_THAT(RunAllSubtasks(env, sink, p), ElementsAre(max - 3, max - 2, max - 1, max)) << p;
  }
}

// ---------------------------------------------------------------------------------------------
// Checkpoints: snapshots taken inside a source's collect() through the runtime's mail, restored
// into fresh chains at the same or another parallelism.

// A sink that records what it receives and raises the runtime's mail flag once it has received
// `mail_after` records, so that the source's next collect() takes a checkpoint.
template <class T>
struct MailingSink final : SinkFunction<T> {
  struct State {
    std::vector<T> values;
    TestRuntime* rt = nullptr;
    size_t mail_after = SIZE_MAX;
  };
  std::shared_ptr<State> state = std::make_shared<State>();
  void invoke(const T& v) override {
    state->values.push_back(v);
    if (state->values.size() == state->mail_after) state->rt->RequestMail();
  }
};

// One run of a source chain (source node 0 chained to a MailingSink): everything it emitted,
// and, when a checkpoint was taken, the snapshot and what had been emitted before it.
template <class T>
struct CheckpointedRun {
  std::vector<T> all;
  std::vector<T> before;
  std::vector<internal::OperatorSnapshot> snapshot;
  bool checkpointed = false;
};

// Runs subtask `subtask` of `parallelism` from `restored` (null: a fresh start), asking for a
// checkpoint after `mail_after` records; the run goes on to the end after the checkpoint.
template <class T>
CheckpointedRun<T> RunWithCheckpoint(const StreamExecutionEnvironment& env,
                                     const MailingSink<T>& sink, int subtask, int parallelism,
                                     const std::vector<internal::OperatorSnapshot>* restored,
                                     size_t mail_after) {
  CheckpointedRun<T> run;
  TestRuntime rt(subtask, parallelism);
  sink.state->values.clear();
  sink.state->rt = &rt;
  sink.state->mail_after = mail_after;
  auto task = env.build_chain({0, 1}, {}, rt);
  rt.OnMail([&] {
    run.snapshot = task->snapshot_state(1);
    run.before = sink.state->values;
    run.checkpointed = true;
  });
  task->initialize_state(restored);
  task->open();
  if (mail_after == 0) rt.RequestMail();  // before the first record
  task->run_source();
  task->end_input();
  task->close();
  run.all = sink.state->values;
  return run;
}

// Checkpoints every subtask of a source at `old_p` after mail_after[i] records, restores the
// checkpoint at `new_p` and runs every new subtask to the end. What the old subtasks emitted
// before the checkpoint plus what the new ones emitted must be exactly `expected` (as a
// multiset): nothing lost, nothing twice.
template <class T>
void ExpectExactlyOnceAcrossRestore(const StreamExecutionEnvironment& env,
                                    const MailingSink<T>& sink, int old_p,
                                    const std::vector<size_t>& mail_after, int new_p,
                                    std::vector<T> expected) {
  SCOPED_TRACE("parallelism " + std::to_string(old_p) + " -> " + std::to_string(new_p));
  std::vector<std::vector<internal::OperatorSnapshot>> by_subtask;
  std::vector<T> got;
  for (int i = 0; i < old_p; ++i) {
    CheckpointedRun<T> run = RunWithCheckpoint(env, sink, i, old_p, nullptr, mail_after.at(i));
    ASSERT_TRUE(run.checkpointed) << "subtask " << i << " emitted only " << run.all.size();
    EXPECT_EQ(run.before.size(), mail_after.at(i));
    got.insert(got.end(), run.before.begin(), run.before.end());
    by_subtask.push_back(run.snapshot);
  }
  for (int j = 0; j < new_p; ++j) {
    std::vector<internal::OperatorSnapshot> mine = NarrowSnapshots(by_subtask, j, new_p, 128);
    CheckpointedRun<T> run = RunWithCheckpoint(env, sink, j, new_p, &mine, SIZE_MAX);
    got.insert(got.end(), run.all.begin(), run.all.end());
  }
  std::sort(got.begin(), got.end());
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(got.size(), expected.size());
  EXPECT_TRUE(got == expected) << "lost or duplicated records";
}

TEST(CheckpointTest, SequenceSourceRestoresExactlyOnceAtAnyParallelism) {
  StreamExecutionEnvironment env;
  MailingSink<int64_t> sink;
  env.generate_sequence(-20, 979).add_sink(sink);
  std::vector<int64_t> all;
  for (int64_t v = -20; v <= 979; ++v) all.push_back(v);
  // The checkpoint does not disturb the run: an uninterrupted subtask emits its whole share.
  CheckpointedRun<int64_t> whole = RunWithCheckpoint(env, sink, 0, 1, nullptr, 10);
  EXPECT_EQ(whole.all, all);
  EXPECT_EQ(whole.before, std::vector<int64_t>(all.begin(), all.begin() + 10));

  ExpectExactlyOnceAcrossRestore(env, sink, 1, {1}, 1, all);
  ExpectExactlyOnceAcrossRestore(env, sink, 2, {100, 333}, 2, all);
  ExpectExactlyOnceAcrossRestore(env, sink, 2, {100, 333}, 3, all);
  ExpectExactlyOnceAcrossRestore(env, sink, 3, {0, 5, 332}, 2, all);
  ExpectExactlyOnceAcrossRestore(env, sink, 3, {7, 8, 9}, 1, all);
}

TEST(CheckpointTest, SequenceSourceRestoredTwiceAndAtTheEnd) {
  StreamExecutionEnvironment env;
  MailingSink<int64_t> sink;
  env.generate_sequence(1, 50).add_sink(sink);
  CheckpointedRun<int64_t> first = RunWithCheckpoint(env, sink, 0, 1, nullptr, 20);
  CheckpointedRun<int64_t> second = RunWithCheckpoint(env, sink, 0, 1, &first.snapshot, 10);
  ASSERT_TRUE(second.checkpointed);
  EXPECT_EQ(second.before.front(), 21);
  CheckpointedRun<int64_t> third = RunWithCheckpoint(env, sink, 0, 1, &second.snapshot, SIZE_MAX);
  EXPECT_EQ(third.all.front(), 31);
  EXPECT_EQ(third.all.back(), 50);
  EXPECT_EQ(third.all.size(), 20u);

  // A checkpoint after the source has finished restores to a source with nothing left.
  TestRuntime rt;
  sink.state->rt = &rt;
  sink.state->mail_after = SIZE_MAX;
  auto task = env.build_chain({0, 1}, {}, rt);
  task->initialize_state(nullptr);
  task->open();
  task->run_source();
  task->end_input();
  std::vector<internal::OperatorSnapshot> done = task->snapshot_state(2);
  task->close();
  CheckpointedRun<int64_t> after = RunWithCheckpoint(env, sink, 0, 1, &done, SIZE_MAX);
  EXPECT_THAT(after.all, IsEmpty());
  // So does a restored subtask that got no part of the state (a rescale to more subtasks).
  std::vector<internal::OperatorSnapshot> nothing;
  after = RunWithCheckpoint(env, sink, 1, 2, &nothing, SIZE_MAX);
  EXPECT_THAT(after.all, IsEmpty());
}

TEST(CheckpointTest, CollectionSourceResumesAtTheRecordBeingCollected) {
  StreamExecutionEnvironment env;
  MailingSink<std::string> sink;
  std::vector<std::string> words = {"a", "b", "c", "d", "e"};
  env.from_collection(words).add_sink(sink);
  for (size_t n = 0; n < words.size(); ++n) {
    SCOPED_TRACE(n);
    CheckpointedRun<std::string> run = RunWithCheckpoint(env, sink, 0, 1, nullptr, n);
    ASSERT_TRUE(run.checkpointed);
    EXPECT_EQ(run.all, words);
    CheckpointedRun<std::string> rest = RunWithCheckpoint(env, sink, 0, 1, &run.snapshot, SIZE_MAX);
    std::vector<std::string> joined = run.before;
    joined.insert(joined.end(), rest.all.begin(), rest.all.end());
    EXPECT_EQ(joined, words);
  }
}

class TextFileCheckpointTest : public TextFileSplitTest {};

TEST_F(TextFileCheckpointTest, TextFileSourceRestoresExactlyOnceAtAnyParallelism) {
  std::vector<std::string> lines;
  std::string contents;
  for (int i = 0; i < 200; ++i) {
    std::string line = i % 13 == 0 ? "" : "line " + std::to_string(i) + std::string(i % 41, 'x');
    lines.push_back(line);
    contents += line + "\n";
  }
  contents += "last line without a newline";
  lines.push_back("last line without a newline");
  std::string path = WriteFile(contents);
  StreamExecutionEnvironment env;
  MailingSink<std::string> sink;
  env.add_source(sluice::files::TextFileSource(path)).add_sink(sink);

  CheckpointedRun<std::string> whole = RunWithCheckpoint(env, sink, 0, 1, nullptr, 50);
  EXPECT_EQ(whole.all, lines);

  ExpectExactlyOnceAcrossRestore(env, sink, 1, {50}, 1, lines);
  ExpectExactlyOnceAcrossRestore(env, sink, 2, {1, 60}, 3, lines);
  ExpectExactlyOnceAcrossRestore(env, sink, 3, {30, 2, 50}, 2, lines);
  ExpectExactlyOnceAcrossRestore(env, sink, 2, {99, 80}, 1, lines);
}

TEST(CheckpointTest, SourceFlushTakesMailBeforeFlushing) {
  struct Waiting final : SourceFunction<int64_t> {
    void run(SourceContext& ctx) override {
      ctx.flush();
      ctx.collect(int64_t{1});
      ctx.flush();
    }
  };
  StreamExecutionEnvironment env;
  env.add_source(Waiting{}).print();
  TestRuntime rt;
  auto task = env.build_chain({0, 1}, {}, rt);
  task->initialize_state(nullptr);
  task->open();
  rt.RequestMail();
  task->run_source();
  EXPECT_THAT(rt.mails(), ElementsAre(0)) << "the mail came after a flush";
  EXPECT_THAT(rt.flushes(), ElementsAre(0, 1));
  EXPECT_THAT(rt.lines(), ElementsAre("1"));
}

// A user source with its own operator state, and every hook of the functions in its chain.
struct Hooks {
  std::vector<std::string> calls;
};

TEST(CheckpointTest, FunctionsKeepOperatorStateAndHearOfCheckpoints) {
  struct CountingSource final : SourceFunction<int64_t> {
    std::shared_ptr<Hooks> hooks;
    OperatorListState<int64_t>* state = nullptr;
    int64_t next = 0;
    bool restored = false;
    void open(RuntimeContext& ctx) override {
      state = &ctx.get_operator_list_state(ListStateDescriptor<int64_t>("next"));
      restored = ctx.is_restored();
      if (restored && !state->get().empty()) next = state->get().front();
    }
    void run(SourceContext& ctx) override {
      for (; next < 10; ++next) ctx.collect(int64_t{next});
    }
    void snapshot_state(int64_t id) override {
      hooks->calls.push_back("source snapshot " + std::to_string(id));
      state->update({next});
    }
    void notify_checkpoint_complete(int64_t id) override {
      hooks->calls.push_back("source complete " + std::to_string(id));
    }
  };
  struct RunningTotal final : ProcessFunction<int64_t, int64_t> {
    std::shared_ptr<Hooks> hooks;
    OperatorListState<int64_t>* state = nullptr;
    int64_t total = 0;
    void open(RuntimeContext& ctx) override {
      state = &ctx.get_operator_list_state(ListStateDescriptor<int64_t>("total"));
      for (int64_t t : state->get()) total += t;
    }
    void process_element(const int64_t& v, Context&, Collector<int64_t>& out) override {
      total += v;
      out.collect(total);
    }
    void snapshot_state(int64_t id) override {
      hooks->calls.push_back("process snapshot " + std::to_string(id));
      state->update({total});
    }
    void notify_checkpoint_complete(int64_t id) override {
      hooks->calls.push_back("process complete " + std::to_string(id));
    }
  };
  struct Sink final : SinkFunction<int64_t> {
    std::shared_ptr<Hooks> hooks;
    std::shared_ptr<std::vector<int64_t>> out = std::make_shared<std::vector<int64_t>>();
    OperatorListState<int64_t>* staged = nullptr;
    void open(RuntimeContext& ctx) override {
      staged = &ctx.get_operator_list_state(ListStateDescriptor<int64_t>("staged"));
    }
    void invoke(const int64_t& v) override {
      out->push_back(v);
      staged->add(v);
    }
    void snapshot_state(int64_t id) override {
      hooks->calls.push_back("sink snapshot " + std::to_string(id) + " staged " +
                             std::to_string(staged->get().size()));
    }
    void notify_checkpoint_complete(int64_t id) override {
      hooks->calls.push_back("sink complete " + std::to_string(id));
      staged->clear();
    }
  };
  auto hooks = std::make_shared<Hooks>();
  CountingSource src;
  src.hooks = hooks;
  RunningTotal total;
  total.hooks = hooks;
  Sink sink;
  sink.hooks = hooks;
  StreamExecutionEnvironment env;
  env.add_source(src).process(total).add_sink(sink);

  TestRuntime rt;
  auto task = env.build_chain({0, 1, 2}, {}, rt);
  std::vector<internal::OperatorSnapshot> snap;
  // Mail before every record; the checkpoint is taken before the fifth (4 in the sequence).
  rt.OnMail([&] {
    if (sink.out->size() == 4) {
      snap = task->snapshot_state(7);
      task->notify_checkpoint_complete(7);
    }
    rt.RequestMail();
  });
  task->initialize_state(nullptr);
  task->open();
  rt.RequestMail();
  task->run_source();
  task->end_input();
  task->close();
  EXPECT_THAT(*sink.out, ElementsAre(0, 1, 3, 6, 10, 15, 21, 28, 36, 45));
  EXPECT_THAT(hooks->calls,
              ElementsAre("source snapshot 7", "process snapshot 7", "sink snapshot 7 staged 4",
                          "source complete 7", "process complete 7", "sink complete 7"));
  ASSERT_EQ(snap.size(), 3u);  // one snapshot per operator of the chain
  EXPECT_EQ(snap[2].lists.at("staged").size(), 4u);

  // Restored: the source resumes at 4, the total at 6, the sink's staged list comes back.
  Sink sink2;
  sink2.hooks = hooks;
  StreamExecutionEnvironment env2;
  env2.add_source(src).process(total).add_sink(sink2);
  TestRuntime rt2;
  auto task2 = env2.build_chain({0, 1, 2}, {}, rt2);
  task2->initialize_state(&snap);
  task2->open();
  task2->run_source();
  EXPECT_THAT(*sink2.out, ElementsAre(10, 15, 21, 28, 36, 45));
  hooks->calls.clear();
  std::vector<internal::OperatorSnapshot> again = task2->snapshot_state(8);
  EXPECT_EQ(hooks->calls.back(), "sink snapshot 8 staged 10");
  EXPECT_EQ(again.size(), 3u);
}

// Keyed sum over records split in two halves: the second half runs in fresh chains restored
// from a checkpoint taken after the first, at the same or another parallelism, and the rolling
// sums go on from where they were.
TEST(CheckpointTest, KeyedSumRestoresItsRunningSumsAtAnyParallelism) {
  using P = std::pair<std::string, int64_t>;
  std::vector<P> first, second;
  std::map<std::string, int64_t> totals;
  for (int i = 0; i < 400; ++i) {
    P p{"key-" + std::to_string(i % 23), i};
    totals[p.first] += p.second;
    (i < 250 ? first : second).push_back(p);
  }
  auto make_env = [](std::vector<P> records, CollectSink<P> sink) {
    auto env = std::make_unique<StreamExecutionEnvironment>();
    env->from_collection(std::move(records))
        .key_by([](const P& p) { return p.first; })
        .sum<1>()
        .add_sink(sink);
    return env;
  };
  // The source's records over a hash edge to `channels` consumers.
  auto shuffle = [](const StreamExecutionEnvironment& env, int channels) {
    TestWriter w(channels, 32);
    TestRuntime rt;
    RunSourceChain(env, {0}, {{0, 1, 0, internal::Partitioner::kHash, &w}}, rt);
    w.Flush();
    std::vector<std::vector<std::string>> out;
    for (int c = 0; c < channels; ++c) out.push_back(w.sent(c));
    return out;
  };
  for (auto [old_p, new_p] : std::vector<std::pair<int, int>>{{1, 1}, {2, 3}, {3, 2}, {2, 1}}) {
    SCOPED_TRACE(std::to_string(old_p) + " -> " + std::to_string(new_p));
    CollectSink<P> sink;
    auto env1 = make_env(first, sink);
    auto env2 = make_env(second, sink);
    std::vector<std::vector<internal::OperatorSnapshot>> by_subtask;
    auto in1 = shuffle(*env1, old_p);
    for (int i = 0; i < old_p; ++i) {
      TestRuntime rt(i, old_p);
      auto task = OpenAndFeed(*env1, {1, 2}, {}, rt, in1[i]);
      by_subtask.push_back(task->snapshot_state(1));
      task->close();  // a failure: no end of input
    }
    auto in2 = shuffle(*env2, new_p);
    for (int j = 0; j < new_p; ++j) {
      TestRuntime rt(j, new_p);
      std::vector<internal::OperatorSnapshot> mine = NarrowSnapshots(by_subtask, j, new_p, 128);
      auto task = env2->build_chain({1, 2}, {}, rt);
      task->initialize_state(&mine);
      task->open();
      for (const std::string& b : in2[j]) task->process_buffer(0, b);
      task->end_input();
      task->close();
    }
    // The last update of every key is its total over both halves.
    std::map<std::string, int64_t> last;
    for (const P& p : sink.state->values) last[p.first] = p.second;
    EXPECT_EQ(last, totals);
    EXPECT_EQ(sink.state->values.size(), first.size() + second.size());
  }
}

TEST(CheckpointTest, EndInputOfKeyVisitsEveryKeyWithStateOnce) {
  struct PerKey final : KeyedProcessFunction<int64_t, int64_t, std::string> {
    ValueState<int64_t>* sum = nullptr;
    void open(RuntimeContext& ctx) override {
      sum = &ctx.get_state(ValueStateDescriptor<int64_t>("sum"));
    }
    void process_element(const int64_t& v, Context&, Collector<std::string>&) override {
      sum->update(sum->value() + v);
    }
    void end_input_of_key(const int64_t& key, Collector<std::string>& out) override {
      out.collect(std::to_string(key) + "=" + std::to_string(sum->value()));
      sum->clear();
    }
    void end_input(Collector<std::string>& out) override { out.collect("end"); }
  };
  StreamExecutionEnvironment env;
  CollectSink<std::string> sink;
  env.generate_sequence(1, 100)
      .key_by([](int64_t v) { return v % 10; })
      .process(PerKey())
      .add_sink(sink);
  TestRuntime rt;
  auto task = OpenAndFeed(env, {1, 2}, {}, rt, SourceBuffersOverHash(env));
  task->end_input();
  task->close();
  std::vector<std::string> expected;
  for (int64_t k = 0; k < 10; ++k) {
    int64_t s = 0;
    for (int64_t v = 1; v <= 100; ++v) {
      if (v % 10 == k) s += v;
    }
    expected.push_back(std::to_string(k) + "=" + std::to_string(s));
  }
  ASSERT_EQ(sink.state->values.size(), 11u);
  EXPECT_EQ(sink.state->values.back(), "end");
  std::vector<std::string> per_key(sink.state->values.begin(), sink.state->values.end() - 1);
  EXPECT_THAT(per_key, UnorderedElementsAreArray(expected));
  // In key-group order.
  std::vector<int> groups;
  for (const std::string& line : per_key) {
    groups.push_back(key_group_for_hash(KeyHash<int64_t>{}(std::stoll(line)), 128));
  }
  EXPECT_TRUE(std::is_sorted(groups.begin(), groups.end()));
}

// A source chain with a keyed sum in it, checkpointed halfway and restored: the restored run
// emits exactly what the uninterrupted run emitted after the checkpoint.
TEST(CheckpointTest, SourceAndKeyedSumInOneChainResumeExactly) {
  StreamExecutionEnvironment env;
  MailingSink<int64_t> sink;
  env.generate_sequence(1, 500).key_by([](int64_t v) { return v % 7; }).sum().add_sink(sink);
  // Nodes 0 source, 1 sum, 2 sink: one chain (the key_by edge is not a network edge here).
  auto run = [&](const std::vector<internal::OperatorSnapshot>* restored, size_t mail_after,
                 std::vector<internal::OperatorSnapshot>* snapshot, size_t* before) {
    TestRuntime rt;
    sink.state->values.clear();
    sink.state->rt = &rt;
    sink.state->mail_after = mail_after;
    auto task = env.build_chain({0, 1, 2}, {}, rt);
    rt.OnMail([&] {
      *snapshot = task->snapshot_state(1);
      *before = sink.state->values.size();
    });
    task->initialize_state(restored);
    task->open();
    task->run_source();
    task->end_input();
    task->close();
    return sink.state->values;
  };
  std::vector<internal::OperatorSnapshot> snap, unused;
  size_t before = 0, unused_before = 0;
  std::vector<int64_t> whole = run(nullptr, 123, &snap, &before);
  ASSERT_EQ(before, 123u);
  std::vector<int64_t> rest = run(&snap, SIZE_MAX, &unused, &unused_before);
  EXPECT_EQ(rest, std::vector<int64_t>(whole.begin() + 123, whole.end()));
}

}  // namespace
}  // namespace sluice
