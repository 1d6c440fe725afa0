// Event time inside operator chains: timestamps, watermarks, timers and side outputs, with the
// test playing the runtime (TaskRuntime) and the network (RecordWriter).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <memory>
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
using testing_support::TestRuntime;
template <class T>
using CollectSink = testing_support::CollectingSink<T>;

struct Ev {
  int64_t ts = 0;
  std::string key;
  SLUICE_FIELDS(ts, key)
};
constexpr auto* TimestampedBuffer = &testing_support::TimestampedBuffer<Ev>;

// One channel; keeps records (with the timestamp written before each when `timestamped`),
// watermarks and idleness changes in the order they were sent.
class EventWriter final : public internal::RecordWriter {
 public:
  int num_channels() const override { return 1; }
  std::string& buffer(int) override { return open_; }
  void commit(int) override {}
  void emit_watermark(int64_t watermark) override {
    Flush();
    events_.push_back("wm " + std::to_string(watermark));
  }
  void emit_watermark_status(bool idle) override {
    Flush();
    events_.push_back(idle ? "idle" : "active");
  }
  void Flush() {
    if (open_.empty()) return;
    buffers_.push_back(open_);
    open_.clear();
  }
  // Every record as "ts:key" (timestamped) from the buffers sent so far.
  std::vector<std::string> TimestampedRecords() {
    Flush();
    std::vector<std::string> out;
    for (const std::string& b : buffers_) {
      DataInput in(b);
      while (!in.at_end()) {
        int64_t ts;
        Serializer<int64_t>::read(in, ts);
        Ev e;
        Serializer<Ev>::read(in, e);
        out.push_back(std::to_string(ts) + ":" + e.key + "@" + std::to_string(e.ts));
      }
    }
    return out;
  }
  std::vector<std::string> buffers() {
    Flush();
    return buffers_;
  }
  const std::vector<std::string>& events() const { return events_; }

 private:
  std::string open_;
  std::vector<std::string> buffers_;
  std::vector<std::string> events_;
};

WatermarkStrategy<Ev> BoundedBy(int64_t ms) {
  return WatermarkStrategy<Ev>::for_bounded_out_of_orderness(std::chrono::milliseconds(ms))
      .with_timestamp_assigner([](const Ev& e, int64_t) { return e.ts; });
}

// ---------------------------------------------------------------------------------------------
// Timestamps and watermarks.

TEST(EventTimeTest, AssignerStampsRecordsAndEmitsPeriodicWatermarksThenTheMaximum) {
  StreamExecutionEnvironment env;
  auto stamped = env.from_elements(Ev{100, "a"}, Ev{130, "b"}, Ev{90, "a"})
                     .assign_timestamps_and_watermarks(BoundedBy(10));
  stamped.key_by([](const Ev& e) { return e.key; }).process([] {
    struct Nop final : KeyedProcessFunction<std::string, Ev, int> {
      void process_element(const Ev&, Context&, Collector<int>&) override {}
    };
    return Nop();
  }());
  TestRuntime rt;
  rt.SetProcessingTime(1000);
  EventWriter w;
  auto task = env.build_chain({0, 1}, {{1, 2, 0, internal::Partitioner::kHash, &w}}, rt);
  task->initialize_state(nullptr);
  task->open();
  EXPECT_EQ(rt.callback_time(), 1000 + 200) << "the default pipeline.auto-watermark-interval";
  task->run_source();
  EXPECT_THAT(w.TimestampedRecords(), ElementsAre("100:a@100", "130:b@130", "90:a@90"));
  EXPECT_THAT(w.events(), IsEmpty()) << "no watermark before the interval has passed";

  rt.SetProcessingTime(1200);
  task->on_processing_time(rt.TakeCallback());
  EXPECT_THAT(w.events(), ElementsAre("wm 119"));  // 130 - 10 - 1
  EXPECT_EQ(rt.callback_time(), 1400) << "asks again for the next interval";
  rt.SetProcessingTime(1400);
  task->on_processing_time(rt.TakeCallback());
  EXPECT_THAT(w.events(), ElementsAre("wm 119")) << "a watermark that does not advance is not sent";

  task->process_watermark(kMaxWatermark);  // the runtime's signal that the source has ended
  EXPECT_THAT(w.events(), ElementsAre("wm 119", "wm " + std::to_string(kMaxWatermark)));
}

TEST(EventTimeTest, IdlenessMarksTheOutputIdleUntilTheNextRecord) {
  StreamExecutionEnvironment env;
  struct Later final : SourceFunction<Ev> {
    void run(SourceContext& ctx) override { ctx.collect(Ev{5, "x"}); }
  };
  env.add_source(Later())
      .assign_timestamps_and_watermarks(BoundedBy(0).with_idleness(std::chrono::milliseconds(500)))
      .print();
  TestRuntime rt;
  rt.SetProcessingTime(0);
  EventWriter w;
  auto task = env.build_chain({0, 1}, {{1, 2, 0, internal::Partitioner::kForward, &w}}, rt);
  task->initialize_state(nullptr);
  task->open();
  for (int64_t now : {200, 400, 600, 800}) {
    rt.SetProcessingTime(now);
    task->on_processing_time(rt.TakeCallback());
  }
  EXPECT_THAT(w.events(), ElementsAre("idle")) << "500 ms without a record";
  task->run_source();  // one record: active again
  rt.SetProcessingTime(1000);
  task->on_processing_time(rt.TakeCallback());
  EXPECT_THAT(w.events(), ElementsAre("idle", "active", "wm 4"));
}

// ---------------------------------------------------------------------------------------------
// Timers.

// Registers an event-time timer at ts + 10 per record (twice, to show they are de-duplicated),
// deletes the timer of records whose key is "del", and reports each firing.
struct TimerFn final : KeyedProcessFunction<std::string, Ev, std::string> {
  void process_element(const Ev& e, Context& ctx, Collector<std::string>& out) override {
    if (ctx.timestamp() != e.ts) out.collect("wrong timestamp");
    ctx.timer_service().register_event_time_timer(e.ts + 10);
    ctx.timer_service().register_event_time_timer(e.ts + 10);
    if (e.key == "del") ctx.timer_service().delete_event_time_timer(e.ts + 10);
  }
  void on_timer(int64_t time, OnTimerContext& ctx, Collector<std::string>& out) override {
    out.collect(ctx.current_key() + "@" + std::to_string(time) +
                " ts=" + std::to_string(ctx.timestamp()) +
                (ctx.time_domain() == TimeDomain::kEventTime ? " event" : " processing") +
                " wm=" + std::to_string(ctx.timer_service().current_watermark()));
  }
};

// Node 0: the source (unused), 1: keyed process with `fn`, 2: sink.
template <class F>
std::shared_ptr<std::vector<std::string>> KeyedTimerJob(StreamExecutionEnvironment& env, F fn) {
  CollectSink<std::string> sink;
  env.from_elements(Ev{0, ""})
      .assign_timestamps_and_watermarks(BoundedBy(0))
      .key_by([](const Ev& e) { return e.key; })
      .process(std::move(fn))
      .add_sink(sink);
  return sink.values;
}

TEST(EventTimeTest, EventTimeTimersFireInTimeOrderOncePerKeyAndTime) {
  StreamExecutionEnvironment env;
  auto out = KeyedTimerJob(env, TimerFn());
  TestRuntime rt;
  auto task = env.build_chain({2, 3}, {}, rt);
  task->initialize_state(nullptr);
  task->open();
  task->process_buffer(
      0, TimestampedBuffer({{30, "b"}, {10, "a"}, {30, "a"}, {10, "del"}, {10, "a"}, {50, "c"}}));
  task->process_watermark(19);
  EXPECT_THAT(*out, IsEmpty()) << "the timer at 20 is not due at 19";
  task->process_watermark(40);
  // Time order; timers of one time fire in key-group order.
  ASSERT_EQ(out->size(), 3u);
  EXPECT_EQ((*out)[0], "a@20 ts=20 event wm=40");
  EXPECT_THAT(std::vector<std::string>(out->begin() + 1, out->end()),
              ::testing::UnorderedElementsAre("a@40 ts=40 event wm=40", "b@40 ts=40 event wm=40"));
  out->clear();
  task->process_watermark(kMaxWatermark);
  EXPECT_THAT(*out, ElementsAre("c@60 ts=60 event wm=" + std::to_string(kMaxWatermark)));
}

TEST(EventTimeTest, ProcessingTimeTimersFireWhenTheClockReachesThem) {
  struct ProcFn final : KeyedProcessFunction<std::string, Ev, std::string> {
    void process_element(const Ev& e, Context& ctx, Collector<std::string>&) override {
      ctx.timer_service().register_processing_time_timer(
          ctx.timer_service().current_processing_time() + e.ts);
    }
    void on_timer(int64_t time, OnTimerContext& ctx, Collector<std::string>& out) override {
      out.collect(ctx.current_key() + "@" + std::to_string(time) +
                  (ctx.time_domain() == TimeDomain::kProcessingTime ? " processing" : " event") +
                  (ctx.timestamp() == kNoTimestamp ? " no-ts" : " ts"));
    }
  };
  StreamExecutionEnvironment env;
  auto out = KeyedTimerJob(env, ProcFn());
  TestRuntime rt;
  rt.SetProcessingTime(1000);
  auto task = env.build_chain({2, 3}, {}, rt);
  task->initialize_state(nullptr);
  task->open();
  task->process_buffer(0, TimestampedBuffer({{500, "a"}, {100, "b"}, {300, "a"}}));
  EXPECT_EQ(rt.callback_time(), 1100);
  rt.SetProcessingTime(1350);
  task->on_processing_time(rt.TakeCallback() + 250);
  EXPECT_THAT(*out, ElementsAre("b@1100 processing no-ts", "a@1300 processing no-ts"));
  EXPECT_EQ(rt.callback_time(), 1500) << "asks again for the next timer";
  task->process_watermark(kMaxWatermark);
  EXPECT_EQ(out->size(), 2u) << "watermarks do not fire processing-time timers";
}

TEST(EventTimeTest, TimersAreStoredInCheckpointsAndRestoredAtAnyParallelism) {
  struct Both final : KeyedProcessFunction<std::string, Ev, std::string> {
    void process_element(const Ev& e, Context& ctx, Collector<std::string>&) override {
      ctx.timer_service().register_event_time_timer(e.ts);
      ctx.timer_service().register_processing_time_timer(5000 + e.ts);
    }
    void on_timer(int64_t time, OnTimerContext& ctx, Collector<std::string>& out) override {
      out.collect(ctx.current_key() + "@" + std::to_string(time) +
                  (ctx.time_domain() == TimeDomain::kEventTime ? "e" : "p"));
    }
  };
  std::vector<Ev> input;
  for (int i = 0; i < 40; ++i) input.push_back(Ev{i * 10, "k" + std::to_string(i % 8)});

  // The undisturbed run's answer, over one subtask.
  std::vector<std::string> expected_event, expected_processing;
  for (const Ev& e : input) expected_event.push_back(e.key + "@" + std::to_string(e.ts) + "e");
  for (const Ev& e : input)
    expected_processing.push_back(e.key + "@" + std::to_string(5000 + e.ts) + "p");

  std::vector<internal::OperatorSnapshot> snaps;
  {
    StreamExecutionEnvironment env;
    auto out = KeyedTimerJob(env, Both());
    TestRuntime rt;
    rt.SetProcessingTime(0);
    auto task = env.build_chain({2, 3}, {}, rt);
    task->initialize_state(nullptr);
    task->open();
    task->process_buffer(0, TimestampedBuffer(input));
    task->process_watermark(99);  // fires the timers up to 90
    ASSERT_EQ(out->size(), 10u);
    snaps = task->snapshot_state(1);
    backend_of_environment.maker().Complete(snaps, 1);
    for (int i = 0; i < 10; ++i) expected_event.erase(expected_event.begin());
  }
  // Restored at parallelism 2: each subtask fires exactly the timers of its own keys.
  std::vector<std::string> got_event, got_processing;
  for (int subtask = 0; subtask < 2; ++subtask) {
    StreamExecutionEnvironment env;
    auto out = KeyedTimerJob(env, Both());
    TestRuntime rt(subtask, 2);
    rt.SetProcessingTime(5200);  // the processing-time timers up to 5200 are overdue
    auto task = env.build_chain({2, 3}, {}, rt);
    std::vector<internal::OperatorSnapshot> mine = NarrowSnapshots({snaps}, subtask, 2, 128);
    task->initialize_state(&mine);
    task->open();
    ASSERT_NE(rt.callback_time(), kNoTimestamp) << "overdue timers ask for a callback at once";
    EXPECT_LE(rt.callback_time(), 5200);
    rt.TakeCallback();
    task->on_processing_time(5200);
    rt.SetProcessingTime(1 << 20);
    task->on_processing_time(1 << 20);
    for (const std::string& s : *out) got_processing.push_back(s);
    out->clear();
    task->process_watermark(kMaxWatermark);
    for (const std::string& s : *out) got_event.push_back(s);
  }
  EXPECT_THAT(got_event, ::testing::UnorderedElementsAreArray(expected_event));
  EXPECT_THAT(got_processing, ::testing::UnorderedElementsAreArray(expected_processing));
}

// ---------------------------------------------------------------------------------------------
// Side outputs.

struct SplitOdd final : ProcessFunction<int64_t, int64_t> {
  explicit SplitOdd(OutputTag<std::string> tag) : tag(std::move(tag)) {}
  void process_element(const int64_t& v, Context& ctx, Collector<int64_t>& out) override {
    if (v % 2 == 0) {
      out.collect(v);
    } else {
      ctx.output(tag, "odd " + std::to_string(v));
    }
  }
  OutputTag<std::string> tag;
};

TEST(EventTimeTest, SideOutputChainedBehindItsOperator) {
  OutputTag<std::string> odd("odd");
  StreamExecutionEnvironment env;
  CollectSink<std::string> side;
  CollectSink<int64_t> main;
  auto evens = env.generate_sequence(1, 6).process(SplitOdd(odd));  // nodes 0, 1
  evens.get_side_output(odd).add_sink(side);                        // nodes 2, 3
  evens.add_sink(main);                                             // node 4
  TestRuntime rt;
  EventWriter w;  // the main output leaves the chain
  auto task = env.build_chain({0, 1, 2, 3}, {{1, 4, 0, internal::Partitioner::kForward, &w}}, rt);
  task->initialize_state(nullptr);
  task->open();
  task->run_source();
  EXPECT_THAT(*side.values, ElementsAre("odd 1", "odd 3", "odd 5"));
  EXPECT_EQ(w.buffers().size(), 1u) << "the even numbers went to the main output";
}

TEST(EventTimeTest, SideOutputOverTheNetworkAndUnconsumedTagsAreDropped) {
  OutputTag<std::string> odd("odd");
  OutputTag<std::string> unused("unused");
  StreamExecutionEnvironment env;
  CollectSink<std::string> side;
  CollectSink<int64_t> main;
  auto evens = env.generate_sequence(1, 6).process(SplitOdd(odd));  // nodes 0, 1
  evens.add_sink(main);                                             // node 2: chained
  evens.get_side_output(odd).add_sink(side);                        // nodes 3, 4
  TestRuntime rt;
  EventWriter w;
  auto task = env.build_chain({0, 1, 2}, {{1, 3, 0, internal::Partitioner::kForward, &w}}, rt);
  task->initialize_state(nullptr);
  task->open();
  task->run_source();
  EXPECT_THAT(*main.values, ElementsAre(2, 4, 6));

  TestRuntime rt2;
  auto consumer = env.build_chain({3, 4}, {}, rt2);
  consumer->initialize_state(nullptr);
  consumer->open();
  for (const std::string& b : w.buffers()) consumer->process_buffer(0, b);
  EXPECT_THAT(*side.values, ElementsAre("odd 1", "odd 3", "odd 5"));
}

TEST(EventTimeTest, SideOutputOfAnOperatorWithoutOneIsAnError) {
  OutputTag<int64_t> tag("t");
  StreamExecutionEnvironment env;
  auto m = env.generate_sequence(1, 2).map([](int64_t v) { return v; });
  m.get_side_output(tag).print();
  TestRuntime rt;
  try {
    env.build_chain({0, 1, 2, 3}, {}, rt);
    ADD_FAILURE() << "built";
  } catch (const std::invalid_argument& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr("has no side outputs"));
  }
}

// ---------------------------------------------------------------------------------------------
// Connected streams.

template <class T>
std::string PlainBuffer(const std::vector<T>& records) {
  std::string b;
  DataOutput out(b);
  for (const T& r : records) Serializer<T>::write(out, r);
  return b;
}

using Order = std::pair<std::string, int64_t>;  // key, amount
using Rate = std::pair<std::string, int64_t>;   // key, rate

// Enriches orders with the latest rate of their key; orders that arrive before any rate wait in
// keyed state until it comes. A timer at the time given by a rate reports what is still waiting.
struct Enrich final : KeyedCoProcessFunction<std::string, Order, Rate, std::string> {
  void open(RuntimeContext& ctx) override {
    rate = &ctx.get_state(ValueStateDescriptor<int64_t>("rate", -1));
    waiting = &ctx.get_list_state(ListStateDescriptor<int64_t>("waiting"));
  }
  void process_element1(const Order& o, Context& ctx, Collector<std::string>& out) override {
    if (ctx.current_key() != o.first) out.collect("wrong key");
    if (rate->value() < 0) {
      waiting->add(o.second);
    } else {
      out.collect(o.first + "=" + std::to_string(o.second * rate->value()));
    }
  }
  void process_element2(const Rate& r, Context& ctx, Collector<std::string>& out) override {
    rate->update(r.second);
    for (int64_t amount : waiting->get())
      out.collect(r.first + "=" + std::to_string(amount * r.second));
    waiting->clear();
    ctx.timer_service().register_event_time_timer(100);
  }
  void on_timer(int64_t time, OnTimerContext& ctx, Collector<std::string>& out) override {
    out.collect("timer " + ctx.current_key() + "@" + std::to_string(time) + " rate " +
                std::to_string(rate->value()));
  }
  ValueState<int64_t>* rate = nullptr;
  ListState<int64_t>* waiting = nullptr;
};

// Nodes 0, 1: sources; 2: the keyed co-process function; 3: the sink.
std::shared_ptr<std::vector<std::string>> EnrichJob(StreamExecutionEnvironment& env) {
  CollectSink<std::string> sink;
  auto orders = env.from_elements(Order{"", 0});
  auto rates = env.from_elements(Rate{"", 0});
  orders.connect(rates)
      .key_by([](const Order& o) { return o.first; }, [](const Rate& r) { return r.first; })
      .process(Enrich())
      .add_sink(sink);
  return sink.values;
}

TEST(ConnectTest, KeyedCoProcessSharesStateAndTimersBetweenItsInputs) {
  StreamExecutionEnvironment env;
  auto out = EnrichJob(env);
  TestRuntime rt;
  auto task = env.build_chain({2, 3}, {}, rt);
  task->initialize_state(nullptr);
  task->open();
  task->process_buffer(0, PlainBuffer<Order>({{"a", 1}, {"b", 2}, {"a", 3}}));
  EXPECT_THAT(*out, IsEmpty()) << "no rate yet";
  task->process_buffer(1, PlainBuffer<Rate>({{"a", 10}}));
  task->process_buffer(0, PlainBuffer<Order>({{"a", 5}, {"b", 7}}));
  EXPECT_THAT(*out, ElementsAre("a=10", "a=30", "a=50"));
  out->clear();

  // Restored from a checkpoint, "b" still waits for its rate and "a" keeps its timer.
  std::vector<internal::OperatorSnapshot> snaps = task->snapshot_state(1);
  backend_of_environment.maker().Complete(snaps, 1);
  StreamExecutionEnvironment env2;
  auto out2 = EnrichJob(env2);
  TestRuntime rt2;
  auto restored = env2.build_chain({2, 3}, {}, rt2);
  restored->initialize_state(&snaps);
  restored->open();
  restored->process_buffer(1, PlainBuffer<Rate>({{"b", 3}}));
  EXPECT_THAT(*out2, ElementsAre("b=6", "b=21"));
  restored->process_watermark(kMaxWatermark);
  EXPECT_THAT(std::vector<std::string>(out2->begin() + 2, out2->end()),
              ::testing::UnorderedElementsAre("timer a@100 rate 10", "timer b@100 rate 3"));
}

TEST(ConnectTest, CoProcessFunctionSeesBothInputsAndTheirTimestamps) {
  struct Tag final : CoProcessFunction<Ev, int64_t, std::string> {
    void process_element1(const Ev& e, Context& ctx, Collector<std::string>& out) override {
      out.collect("1:" + e.key + "@" + std::to_string(ctx.timestamp()));
    }
    void process_element2(const int64_t& v, Context& ctx, Collector<std::string>& out) override {
      out.collect("2:" + std::to_string(v) + (ctx.timestamp() == kNoTimestamp ? " no-ts" : " ts"));
    }
  };
  StreamExecutionEnvironment env;
  CollectSink<std::string> sink;
  auto events = env.from_elements(Ev{0, ""}).assign_timestamps_and_watermarks(BoundedBy(0));
  events.connect(env.generate_sequence(1, 2)).process(Tag()).add_sink(sink);  // nodes 3, 4
  TestRuntime rt;
  auto task = env.build_chain({3, 4}, {}, rt);
  task->initialize_state(nullptr);
  task->open();
  task->process_buffer(0, TimestampedBuffer({{7, "x"}}));
  task->process_buffer(1, PlainBuffer<int64_t>({5}));
  EXPECT_THAT(*sink.values, ElementsAre("1:x@7", "2:5 no-ts"));
}

TEST(ConnectTest, WindowedJoinAndCoGroupOfTwoStreams) {
  using Click = std::pair<std::string, int64_t>;  // user, time
  using View = std::pair<std::string, int64_t>;
  std::vector<Click> clicks = {{"u1", 100}, {"u2", 200}, {"u1", 1500}, {"u1", 900}, {"u3", 300}};
  std::vector<View> views = {{"u1", 50}, {"u1", 700}, {"u2", 1200}, {"u1", 1100}};
  // Windows of 1000 ms: the answer, pair by pair and list by list.
  std::vector<std::string> want_join, want_groups;
  for (int64_t w = 0; w < 2000; w += 1000) {
    for (const std::string u : {"u1", "u2", "u3"}) {
      int nc = 0, nv = 0;
      for (const Click& c : clicks) nc += c.first == u && c.second / 1000 * 1000 == w;
      for (const View& v : views) nv += v.first == u && v.second / 1000 * 1000 == w;
      for (const Click& c : clicks) {
        for (const View& v : views) {
          if (c.first == u && v.first == u && c.second / 1000 * 1000 == w &&
              v.second / 1000 * 1000 == w) {
            want_join.push_back(u + ":" + std::to_string(c.second) + "+" +
                                std::to_string(v.second));
          }
        }
      }
      if (nc + nv > 0) {
        want_groups.push_back(u + "@" + std::to_string(w) + " " + std::to_string(nc) + "/" +
                              std::to_string(nv));
      }
    }
  }

  for (bool join : {true, false}) {
    StreamExecutionEnvironment env;
    env.set_parallelism(1);
    CollectSink<std::string> sink;
    auto stamp = [](const auto& p, int64_t) { return p.second; };
    auto c = env.from_collection(clicks).assign_timestamps_and_watermarks(
        WatermarkStrategy<Click>::for_monotonous_timestamps().with_timestamp_assigner(stamp));
    auto v = env.from_collection(views).assign_timestamps_and_watermarks(
        WatermarkStrategy<View>::for_monotonous_timestamps().with_timestamp_assigner(stamp));
    auto windows = (join ? c.join(v) : c.co_group(v))
                       .where([](const Click& x) { return x.first; })
                       .equal_to([](const View& x) { return x.first; })
                       .window(TumblingEventTimeWindows::of(std::chrono::milliseconds(1000)));
    if (join) {
      windows
          .apply([](const Click& x, const View& y) {
            return x.first + ":" + std::to_string(x.second) + "+" + std::to_string(y.second);
          })
          .add_sink(sink);
    } else {
      windows
          .apply<std::string>([](const std::vector<Click>& xs, const std::vector<View>& ys,
                                 Collector<std::string>& out) {
            std::string u = xs.empty() ? ys[0].first : xs[0].first;
            int64_t t = (xs.empty() ? ys[0].second : xs[0].second) / 1000 * 1000;
            out.collect(u + "@" + std::to_string(t) + " " + std::to_string(xs.size()) + "/" +
                        std::to_string(ys.size()));
          })
          .add_sink(sink);
    }
    // Nodes: 0 clicks, 1 stamp, 2 views, 3 stamp, 4 and 5 the tagging maps, 6 the window, 7 sink.
    TestRuntime rt;
    EventWriter w1, w2;
    auto a = env.build_chain({0, 1, 4}, {{4, 6, 0, internal::Partitioner::kHash, &w1}}, rt);
    auto b = env.build_chain({2, 3, 5}, {{5, 6, 1, internal::Partitioner::kHash, &w2}}, rt);
    auto win = env.build_chain({6, 7}, {}, rt);
    for (auto* t : {a.get(), b.get(), win.get()}) {
      t->initialize_state(nullptr);
      t->open();
    }
    a->run_source();
    b->run_source();
    for (const std::string& buf : w1.buffers()) win->process_buffer(0, buf);
    for (const std::string& buf : w2.buffers()) win->process_buffer(1, buf);
    win->process_watermark(kMaxWatermark);
    EXPECT_THAT(*sink.values, ::testing::UnorderedElementsAreArray(join ? want_join : want_groups))
        << (join ? "join" : "co_group");
  }
}

}  // namespace
}  // namespace sluice
