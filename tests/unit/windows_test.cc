// Windows (sluice/windows.h) inside operator chains, with the test playing the runtime: every
// result is compared with an answer computed here by a plain loop over the input.
#include "sluice/windows.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <iterator>
#include <map>
#include <memory>
#include <random>
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
using ::testing::UnorderedElementsAreArray;
using testing_support::TestRuntime;
template <class T>
using CollectSink = testing_support::CollectingSink<T>;
using ms = std::chrono::milliseconds;

struct Ev {
  int64_t ts = 0;
  std::string key;
  int64_t v = 0;
  SLUICE_FIELDS(ts, key, v)
};
constexpr auto* TimestampedBuffer = &testing_support::TimestampedBuffer<Ev>;

// The sum and count of a window's values.
struct Agg {
  std::string key;
  int64_t sum = 0;
  int64_t count = 0;
  SLUICE_FIELDS(key, sum, count)
};

struct SumAgg {
  using accumulator_type = Agg;
  using result_type = Agg;
  Agg create_accumulator() { return {}; }
  void add(const Ev& e, Agg& acc) {
    acc.key = e.key;
    acc.sum += e.v;
    ++acc.count;
  }
  Agg get_result(const Agg& acc) { return acc; }
  Agg merge(Agg a, const Agg& b) {
    if (a.key.empty()) a.key = b.key;
    a.sum += b.sum;
    a.count += b.count;
    return a;
  }
};

Ev SumReduce(const Ev& a, const Ev& b) { return Ev{0, a.key, a.v + b.v}; }

std::string Describe(const Ev& e) { return e.key + "=" + std::to_string(e.v); }
std::string Describe(const Agg& a) {
  return a.key + "=" + std::to_string(a.sum) + "/" + std::to_string(a.count);
}
std::string Describe(const std::string& s) { return s; }

// The answer for one window as the tests expect it: "key=sum[/count]@max_timestamp".
std::string Expect(const std::string& key, int64_t sum, int64_t count, int64_t window_end,
                   bool with_count = true) {
  return key + "=" + std::to_string(sum) + (with_count ? "/" + std::to_string(count) : "") + "@" +
         std::to_string(window_end - 1);
}

// Sums every element of the window, and checks what the context says about it.
struct SumProcess final : ProcessWindowFunction<Ev, std::string, std::string, TimeWindow> {
  // `event_time`: the elements' timestamps (ts) lie in the window.
  explicit SumProcess(bool event_time = true) : event_time(event_time) {}
  bool event_time;
  void process(const std::string& key, Context& ctx, const std::vector<Ev>& elements,
               Collector<std::string>& out) override {
    int64_t sum = 0;
    for (const Ev& e : elements) {
      if (e.key != key) out.collect("wrong key");
      if (event_time && (e.ts < ctx.window().start || e.ts >= ctx.window().end)) {
        out.collect("outside its window");
      }
      sum += e.v;
    }
    out.collect(key + "=" + std::to_string(sum) + "/" + std::to_string(elements.size()));
  }
};

// Describes each record with the timestamp it carries: "description@timestamp".
template <class R>
struct Stamp final : ProcessFunction<R, std::string> {
  void process_element(const R& v, typename ProcessFunction<R, std::string>::Context& ctx,
                       Collector<std::string>& out) override {
    out.collect(Describe(v) + "@" + std::to_string(ctx.timestamp()));
  }
};

// A watermark after every record: the highest timestamp so far - bound - 1.
struct EveryEventWatermarks final : WatermarkGenerator<Ev> {
  explicit EveryEventWatermarks(int64_t bound) : bound(bound) {}
  void on_event(const Ev&, int64_t ts, WatermarkOutput& out) override {
    max = std::max(max, ts);
    out.emit_watermark(max - bound - 1);
  }
  void on_periodic_emit(WatermarkOutput&) override {}
  int64_t bound;
  int64_t max = kMinWatermark;
};

WatermarkStrategy<Ev> PerEvent(int64_t bound) {
  return WatermarkStrategy<Ev>::for_generator(
             [bound] { return std::make_unique<EveryEventWatermarks>(bound); })
      .with_timestamp_assigner([](const Ev& e, int64_t) { return e.ts; });
}

KeyedStream<Ev, std::string (*)(const Ev&)> Keyed(DataStream<Ev> s) {
  return s.key_by(+[](const Ev& e) { return e.key; });
}

// A job: node 0 the source of `input`, 1 timestamps with watermarks after every record (trailing
// by `bound`), 2 the window that `make(keyed_stream)` adds, then "description@timestamp" of each
// result into the returned sink. `make` adds exactly one node.
template <class Make>
std::shared_ptr<std::vector<std::string>> WindowJob(StreamExecutionEnvironment& env,
                                                    std::vector<Ev> input, int64_t bound,
                                                    Make make) {
  auto windowed = make(Keyed(
      env.from_collection(std::move(input)).assign_timestamps_and_watermarks(PerEvent(bound))));
  using R = typename decltype(windowed)::value_type;
  CollectSink<std::string> sink;
  windowed.process(Stamp<R>()).add_sink(sink);
  return sink.values;
}

// Runs the whole job in one chain to the end of its input; returns the late records dropped.
int64_t RunWholeJob(const StreamExecutionEnvironment& env) {
  TestRuntime rt;
  std::vector<int> chain;
  for (int i = 0; i < static_cast<int>(env.nodes().size()); ++i) chain.push_back(i);
  auto task = env.build_chain(chain, {}, rt);
  task->initialize_state(nullptr);
  task->open();
  task->run_source();
  task->process_watermark(kMaxWatermark);
  task->end_input();
  task->close();
  return task->num_late_records_dropped();
}

// One channel that keeps what was written to it.
class BufferWriter final : public internal::RecordWriter {
 public:
  int num_channels() const override { return 1; }
  std::string& buffer(int) override { return buf_; }
  void commit(int) override {}
  void emit_watermark(int64_t) override {}
  void emit_watermark_status(bool) override {}
  // The timestamped Ev records written so far, as "ts:key=v".
  std::vector<std::string> Records() const {
    std::vector<std::string> out;
    DataInput in(buf_);
    while (!in.at_end()) {
      int64_t ts;
      Serializer<int64_t>::read(in, ts);
      Ev e;
      Serializer<Ev>::read(in, e);
      out.push_back(std::to_string(ts) + ":" + Describe(e));
    }
    return out;
  }

 private:
  std::string buf_;
};

// The windows [s, s + size) with s = k * slide that contain ts (ts >= 0), by a plain search.
std::vector<int64_t> WindowStarts(int64_t ts, int64_t size, int64_t slide) {
  std::vector<int64_t> starts;
  for (int64_t s = -(size / slide + 1) * slide; s <= ts; s += slide) {
    if (ts < s + size) starts.push_back(s);
  }
  return starts;
}

// What event-time sliding windows must emit for `input` fed in order with a watermark of
// max(ts) - bound - 1 before each record, then the final watermark: each window fires when the
// watermark passes its end, and again for each later element within the allowed lateness.
struct Simulated {
  std::vector<std::string> results;
  int64_t late = 0;
};
Simulated SimulateSliding(const std::vector<Ev>& input, int64_t size, int64_t slide,
                          int64_t lateness, int64_t bound) {
  Simulated r;
  std::map<std::pair<std::string, int64_t>, std::pair<int64_t, int64_t>> contents;  // sum, count
  auto fire_up_to = [&](int64_t from, int64_t to) {  // windows ending in (from, to]
    for (const auto& [ks, sc] : contents) {
      int64_t max = ks.second + size - 1;
      if (max > from && max <= to)
        r.results.push_back(Expect(ks.first, sc.first, sc.second, max + 1));
    }
  };
  int64_t wm = kMinWatermark;
  int64_t max_ts = kMinWatermark;
  for (const Ev& e : input) {
    max_ts = std::max(max_ts, e.ts);
    if (max_ts - bound - 1 > wm) {
      fire_up_to(wm, max_ts - bound - 1);
      wm = max_ts - bound - 1;
    }
    bool accepted = false;
    for (int64_t s : WindowStarts(e.ts, size, slide)) {
      if (s + size - 1 + lateness <= wm) continue;
      accepted = true;
      auto& sc = contents[{e.key, s}];
      sc.first += e.v;
      sc.second += 1;
      if (s + size - 1 <= wm) r.results.push_back(Expect(e.key, sc.first, sc.second, s + size));
    }
    if (!accepted && e.ts + lateness <= wm) ++r.late;
  }
  fire_up_to(wm, kMaxWatermark);
  return r;
}

std::vector<Ev> RandomInput(uint32_t seed, int n, int64_t step, int64_t jitter, int keys) {
  std::mt19937 rng(seed);
  std::vector<Ev> input;
  for (int i = 0; i < n; ++i) {
    int64_t ts = i * step + static_cast<int64_t>(rng() % static_cast<uint32_t>(jitter + 1));
    input.push_back(Ev{ts, "k" + std::to_string(rng() % static_cast<uint32_t>(keys)),
                       1 + static_cast<int64_t>(rng() % 100)});
  }
  return input;
}

std::vector<std::string> Sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

// Equal as multisets; otherwise lists what is missing and what is extra.
void ExpectSameResults(const std::vector<std::string>& got, const std::vector<std::string>& want) {
  std::vector<std::string> g = Sorted(got), w = Sorted(want), missing, extra;
  std::set_difference(w.begin(), w.end(), g.begin(), g.end(), std::back_inserter(missing));
  std::set_difference(g.begin(), g.end(), w.begin(), w.end(), std::back_inserter(extra));
  EXPECT_THAT(missing, IsEmpty()) << "results missing";
  EXPECT_THAT(extra, IsEmpty()) << "results not expected";
}

// ---------------------------------------------------------------------------------------------
// The per-key map of windows.

// Random inserts, lookups and erasures (mostly of the oldest windows, as firing does) agree with
// an std::map, and the map serializes as that std::map does.
TEST(WindowsTest, WindowMapAgreesWithAnOrderedMap) {
  using Map = internal::WindowMap<TimeWindow, std::string>;
  auto SameEntry = [](const auto& a, const auto& b) {
    return a.first == b.first && a.second == b.second;
  };
  Map m;
  std::map<TimeWindow, std::string> expected;
  std::mt19937_64 rng(7);
  int64_t base = 0;  // windows mostly move forward
  for (int step = 0; step < 20'000; ++step) {
    SCOPED_TRACE(step);
    TimeWindow w{base + static_cast<int64_t>(rng() % 12) - 3, 0};
    w.end = w.start + 10;
    switch (rng() % 6) {
      case 0:
      case 1: {
        auto [it, created] = m.emplace(w, std::to_string(step));
        ASSERT_EQ(created, expected.emplace(w, std::to_string(step)).second);
        ASSERT_EQ(it->second, expected.at(w));
        break;
      }
      case 2: {
        auto it = m.find(w);
        auto e = expected.find(w);
        ASSERT_EQ(it == m.end(), e == expected.end());
        if (e != expected.end()) {
          m.erase(it);
          expected.erase(e);
        }
        break;
      }
      default: {
        // The windows before w, as a firing removes them.
        auto it = m.lower_bound(w);
        m.erase(m.begin(), it);
        expected.erase(expected.begin(), expected.lower_bound(w));
        base += static_cast<int64_t>(rng() % 3);
        break;
      }
    }
    ASSERT_EQ(m.size(), expected.size());
    ASSERT_EQ(m.empty(), expected.empty());
    ASSERT_TRUE(std::equal(m.begin(), m.end(), expected.begin(), expected.end(), SameEntry));
    if (!m.empty()) {
      ASSERT_EQ(m.rbegin()->first, expected.rbegin()->first);
    }
  }
  ASSERT_FALSE(m.empty());
  EXPECT_EQ(serialize(m), serialize(expected));
  Map back = deserialize<Map>(serialize(expected));
  EXPECT_TRUE(std::equal(back.begin(), back.end(), expected.begin(), expected.end(), SameEntry));
}

// A pane keeps only its accumulator but serializes as a window's slot (accumulator, element
// count 0, not empty), so that window state has one format.
TEST(WindowsTest, PaneSlotSerializesAsAWindowSlot) {
  internal::PaneSlot<Agg> pane{Agg{"k", 7, 3}};
  EXPECT_EQ(serialize(pane), serialize(std::make_tuple(Agg{"k", 7, 3}, int64_t{0}, false)));
  auto back = deserialize<internal::PaneSlot<Agg>>(
      serialize(std::make_tuple(Agg{"k", 9, 2}, int64_t{5}, true)));
  EXPECT_EQ(Describe(back.acc), "k=9/2");
}

// ---------------------------------------------------------------------------------------------
// Tumbling and sliding event-time windows.

TEST(WindowsTest, TumblingReduceOfOutOfOrderInput) {
  std::vector<Ev> input = {{12, "a", 1},  {3, "a", 2},  {7, "b", 4},   {25, "a", 8},
                           {18, "b", 16}, {9, "a", 32}, {21, "b", 64}, {10, "a", 128}};
  StreamExecutionEnvironment env;
  auto out = WindowJob(env, input, 20, [](auto keyed) {
    return keyed.window(TumblingEventTimeWindows::of(ms(10))).reduce(SumReduce);
  });
  EXPECT_EQ(RunWholeJob(env), 0);
  std::map<std::pair<std::string, int64_t>, int64_t> sums;
  for (const Ev& e : input) sums[{e.key, e.ts / 10 * 10}] += e.v;
  std::vector<std::string> expected;
  for (const auto& [w, sum] : sums)
    expected.push_back(Expect(w.first, sum, 0, w.second + 10, false));
  EXPECT_THAT(*out, UnorderedElementsAreArray(expected));
}

TEST(WindowsTest, TumblingWindowsWithAnOffset) {
  std::vector<Ev> input = {{2, "a", 1}, {3, "a", 2}, {4, "a", 4}, {13, "a", 8}, {14, "a", 16}};
  StreamExecutionEnvironment env;
  auto out = WindowJob(env, input, 100, [](auto keyed) {
    return keyed.window(TumblingEventTimeWindows::of(ms(10), ms(3))).aggregate(SumAgg());
  });
  RunWholeJob(env);
  // Windows [-7, 3), [3, 13), [13, 23).
  EXPECT_THAT(*out, UnorderedElementsAreArray(
                        {Expect("a", 1, 1, 3), Expect("a", 6, 2, 13), Expect("a", 24, 2, 23)}));
}

TEST(WindowsTest, SlidingAggregateOfOutOfOrderInput) {
  std::vector<Ev> input = RandomInput(7, 300, 5, 40, 3);
  StreamExecutionEnvironment env;
  auto out = WindowJob(env, input, 50, [](auto keyed) {
    return keyed.window(SlidingEventTimeWindows::of(ms(100), ms(20))).aggregate(SumAgg());
  });
  EXPECT_EQ(RunWholeJob(env), 0);
  std::map<std::pair<std::string, int64_t>, std::pair<int64_t, int64_t>> windows;
  for (const Ev& e : input) {
    for (int64_t s = e.ts / 20 * 20; s > e.ts - 100; s -= 20) {
      auto& w = windows[{e.key, s}];
      w.first += e.v;
      ++w.second;
    }
  }
  std::vector<std::string> expected;
  for (const auto& [w, sc] : windows)
    expected.push_back(Expect(w.first, sc.first, sc.second, w.second + 100));
  EXPECT_THAT(*out, UnorderedElementsAreArray(expected));
}

// The incremental functions (kept per pane), process() and an explicit trigger (both kept per
// window) against the plain simulation, on random input with late records.
TEST(WindowsTest, SlidingPanesMatchAPerWindowComputationOnRandomInput) {
  struct Shape {
    int64_t size, slide, lateness;
  };
  std::vector<Ev> input = RandomInput(42, 1500, 7, 250, 5);
  const int64_t bound = 120;
  bool any_late = false;
  for (Shape sh : std::vector<Shape>{{100, 100, 0},
                                     {100, 20, 0},
                                     {100, 30, 0},
                                     {100, 30, 45},
                                     {30, 50, 20},
                                     {1000, 100, 150},
                                     {60, 60, 200}}) {
    SCOPED_TRACE(std::to_string(sh.size) + "/" + std::to_string(sh.slide) + " lateness " +
                 std::to_string(sh.lateness));
    Simulated expected = SimulateSliding(input, sh.size, sh.slide, sh.lateness, bound);
    any_late = any_late || expected.late > 0;
    auto window = [sh](auto keyed) {
      auto w = keyed.window(SlidingEventTimeWindows::of(ms(sh.size), ms(sh.slide)));
      w.allowed_lateness(ms(sh.lateness));
      return w;
    };
    for (int variant = 0; variant < 4; ++variant) {
      SCOPED_TRACE(variant);
      StreamExecutionEnvironment env;
      std::shared_ptr<std::vector<std::string>> out;
      switch (variant) {
        case 0:
          out = WindowJob(env, input, bound, [&](auto k) { return window(k).aggregate(SumAgg()); });
          break;
        case 1:
          out =
              WindowJob(env, input, bound, [&](auto k) { return window(k).process(SumProcess()); });
          break;
        case 2:
          out = WindowJob(env, input, bound, [&](auto k) {
            return window(k).trigger(EventTimeTrigger::create()).aggregate(SumAgg());
          });
          break;
        case 3:
          out = WindowJob(env, input, bound, [&](auto k) {
            return window(k)
                .reduce([](const Ev& a, const Ev& b) {
                  return Ev{a.ts + b.ts, a.key, a.v + b.v};
                })
                .map([](const Ev& e) {
                  return Agg{e.key, e.v, 0};
                });
          });
          break;
      }
      if (variant == 3) {
        // reduce() gives no count: compare without it.
        std::vector<std::string> no_count;
        for (const std::string& s : expected.results) {
          size_t slash = s.find('/');
          no_count.push_back(s.substr(0, slash) + "/0" + s.substr(s.find('@')));
        }
        int64_t late = RunWholeJob(env);
        EXPECT_EQ(late, expected.late);
        ExpectSameResults(*out, no_count);
      } else {
        EXPECT_EQ(RunWholeJob(env), expected.late);
        ExpectSameResults(*out, expected.results);
      }
    }
  }
  EXPECT_TRUE(any_late) << "the input has late records";
}

// ---------------------------------------------------------------------------------------------
// Late data, driven record by record: node 2 is the window.

struct LateCase {
  StreamExecutionEnvironment env;
  std::shared_ptr<std::vector<std::string>> out;
  std::unique_ptr<internal::ChainTask> task;
  TestRuntime rt;
  BufferWriter side;
};

// Tumbling windows of 10 ms: fed, then the watermark passes [0, 10), then a late record.
template <class Make>
void RunLateScenario(LateCase& c, Make make, bool with_side_output) {
  c.out = WindowJob(c.env, {}, 0, make);
  // Nodes 2 window, 3 and 4 its side output (when used), then the result's stamp and sink.
  std::vector<internal::OutputBinding> outputs;
  std::vector<int> chain = {2, 3, 4};
  if (with_side_output) {
    outputs.push_back({2, 3, 0, internal::Partitioner::kForward, &c.side});
    chain = {2, 5, 6};
  }
  c.task = c.env.build_chain(chain, outputs, c.rt);
  c.task->initialize_state(nullptr);
  c.task->open();
  c.task->process_buffer(0,
                         TimestampedBuffer({{1, "a", 1}, {8, "a", 2}, {3, "b", 4}, {12, "a", 64}}));
  c.task->process_watermark(9);
}
// The window operator (node 2) keeps no entries: on the heap it snapshots nothing at all; an
// embedded store's snapshot always has files, but no key groups when completed in full.
void ExpectNoWindowState(std::vector<internal::OperatorSnapshot> snaps) {
  backend_of_environment.maker().Complete(snaps, 1);
  for (const internal::OperatorSnapshot& s : snaps) {
    if (s.node_id != 2) continue;
    EXPECT_NE(backend_of_environment.maker().kind(), testing_support::BackendKind::kHeap);
    EXPECT_TRUE(s.key_groups.empty());
  }
}

template <class Make>
void ExpectLateDataBehaviour(Make make, bool sums_only) {
  auto r = [sums_only](const std::string& key, int64_t sum, int64_t count, int64_t end) {
    return Expect(key, sum, count, end, !sums_only);
  };
  {
    SCOPED_TRACE("no allowed lateness: dropped and counted");
    LateCase c;
    RunLateScenario(
        c, [&](auto k) { return make(k.window(TumblingEventTimeWindows::of(ms(10)))); }, false);
    EXPECT_THAT(*c.out, UnorderedElementsAreArray({r("a", 3, 2, 10), r("b", 4, 1, 10)}));
    c.task->process_buffer(0, TimestampedBuffer({{5, "a", 8}, {9, "b", 16}}));
    EXPECT_EQ(c.task->num_late_records_dropped(), 2);
    c.task->process_watermark(kMaxWatermark);
    EXPECT_EQ(c.out->size(), 3u);
    EXPECT_EQ(c.out->back(), r("a", 64, 1, 20));
  }
  {
    SCOPED_TRACE("allowed lateness: fires again until the lateness has passed");
    LateCase c;
    RunLateScenario(
        c,
        [&](auto k) {
          auto w = k.window(TumblingEventTimeWindows::of(ms(10)));
          w.allowed_lateness(ms(5));
          return make(w);
        },
        false);
    c.out->clear();
    c.task->process_buffer(0, TimestampedBuffer({{5, "a", 8}}));
    EXPECT_THAT(*c.out, ElementsAre(r("a", 11, 3, 10))) << "the late record fires its window again";
    c.task->process_watermark(13);
    c.task->process_buffer(0, TimestampedBuffer({{0, "b", 16}}));
    EXPECT_THAT(*c.out, ElementsAre(r("a", 11, 3, 10), r("b", 20, 2, 10)));
    c.task->process_watermark(14);  // 9 + 5: the windows [0, 10) are gone
    c.task->process_buffer(0, TimestampedBuffer({{6, "a", 32}}));
    EXPECT_EQ(c.out->size(), 2u);
    EXPECT_EQ(c.task->num_late_records_dropped(), 1);
    c.task->process_watermark(kMaxWatermark);
    EXPECT_EQ(c.out->back(), r("a", 64, 1, 20));
    // Nothing is left in state: the window operator stores nothing.
    ExpectNoWindowState(c.task->snapshot_state(1));
  }
  {
    SCOPED_TRACE("late records to the side output");
    LateCase c;
    OutputTag<Ev> late("late");
    RunLateScenario(
        c,
        [&](auto k) {
          auto w = k.window(TumblingEventTimeWindows::of(ms(10)));
          w.side_output_late_data(late);
          auto result = make(w);
          result.get_side_output(late).print();  // nodes 3, 4
          return result;
        },
        true);
    c.task->process_buffer(0, TimestampedBuffer({{5, "a", 8}, {15, "a", 16}}));
    EXPECT_THAT(c.side.Records(), ElementsAre("5:a=8")) << "with its own timestamp";
    EXPECT_EQ(c.task->num_late_records_dropped(), 0);
    c.task->process_watermark(kMaxWatermark);
    EXPECT_EQ(c.out->back(), r("a", 80, 2, 20));
  }
}

TEST(WindowsTest, LateDataWithPanes) {
  ExpectLateDataBehaviour([](auto w) { return w.aggregate(SumAgg()); }, false);
}

TEST(WindowsTest, LateDataWithReduce) {
  ExpectLateDataBehaviour([](auto w) { return w.reduce(SumReduce); }, true);
}

TEST(WindowsTest, LateDataWithProcess) {
  ExpectLateDataBehaviour([](auto w) { return w.process(SumProcess()); }, false);
}

TEST(WindowsTest, LateDataWithAnExplicitTrigger) {
  ExpectLateDataBehaviour(
      [](auto w) { return w.trigger(EventTimeTrigger::create()).aggregate(SumAgg()); }, false);
}

TEST(WindowsTest, RecordWithoutTimestampIsAnOperatorError) {
  StreamExecutionEnvironment env;
  CollectSink<Ev> sink;
  Keyed(env.from_elements(Ev{1, "a", 1}))
      .window(TumblingEventTimeWindows::of(ms(10)))
      .reduce(SumReduce)
      .add_sink(sink);
  TestRuntime rt;
  auto task = env.build_chain({0, 1, 2}, {}, rt);
  task->initialize_state(nullptr);
  task->open();
  try {
    task->run_source();
    ADD_FAILURE() << "no error";
  } catch (const OperatorError& e) {
    EXPECT_EQ(e.operator_name(), "Window(Reduce)");
    EXPECT_THAT(e.what(), ::testing::HasSubstr("assign_timestamps_and_watermarks"));
  }
}

// ---------------------------------------------------------------------------------------------
// Session windows.

TEST(WindowsTest, SessionsMergeIncludingABridgingRecord) {
  for (int variant = 0; variant < 3; ++variant) {
    SCOPED_TRACE(variant);
    LateCase c;
    c.out = WindowJob(c.env, {}, 0, [variant](auto k) {
      auto w = k.window(EventTimeSessionWindows::with_gap(ms(10)));
      if (variant == 0) return w.aggregate(SumAgg()).map([](const Agg& a) { return Describe(a); });
      if (variant == 1) return w.process(SumProcess()).map([](const std::string& v) { return v; });
      return w.reduce(SumReduce).map([](const Ev& e) { return Describe(e); });
    });
    c.task = c.env.build_chain({2, 3, 4, 5}, {}, c.rt);
    c.task->initialize_state(nullptr);
    c.task->open();
    // a: [0, 15) and [28, 38); b: [100, 110).
    c.task->process_buffer(
        0, TimestampedBuffer({{5, "a", 1}, {0, "a", 2}, {28, "a", 4}, {100, "b", 8}}));
    c.task->process_buffer(0, TimestampedBuffer({{12, "a", 16}}));  // a: [0, 22)
    c.task->process_watermark(20);
    EXPECT_THAT(*c.out, IsEmpty());
    c.task->process_buffer(0, TimestampedBuffer({{20, "a", 32}}));  // bridges: [0, 38)
    c.task->process_watermark(37);
    std::string a = variant == 2 ? "a=55@37" : "a=55/5@37";
    EXPECT_THAT(*c.out, ElementsAre(a)) << "the session timer of [0, 22) was deleted";
    c.task->process_watermark(kMaxWatermark);
    EXPECT_THAT(*c.out, ElementsAre(a, variant == 2 ? "b=8@109" : "b=8/1@109"));
    ExpectNoWindowState(c.task->snapshot_state(1));
  }
}

TEST(WindowsTest, SessionsMatchAPlainComputationOnRandomInput) {
  const int64_t gap = 30;
  std::vector<Ev> input = RandomInput(3, 800, 4, 60, 4);
  std::map<std::string, std::vector<Ev>> by_key;
  for (const Ev& e : input) by_key[e.key].push_back(e);
  std::vector<std::string> expected;
  for (auto& [key, evs] : by_key) {
    std::sort(evs.begin(), evs.end(), [](const Ev& x, const Ev& y) { return x.ts < y.ts; });
    int64_t sum = 0, count = 0;
    for (size_t i = 0; i < evs.size(); ++i) {
      sum += evs[i].v;
      ++count;
      // Windows [ts, ts + gap) that touch merge.
      if (i + 1 == evs.size() || evs[i + 1].ts > evs[i].ts + gap) {
        expected.push_back(Expect(key, sum, count, evs[i].ts + gap));
        sum = count = 0;
      }
    }
  }
  for (int variant = 0; variant < 2; ++variant) {
    StreamExecutionEnvironment env;
    auto out = WindowJob(env, input, 100, [variant, gap](auto k) {
      auto w = k.window(EventTimeSessionWindows::with_gap(ms(gap)));
      if (variant == 0) return w.aggregate(SumAgg()).map([](const Agg& a) { return Describe(a); });
      return w.process(SumProcess()).map([](const std::string& v) { return v; });
    });
    EXPECT_EQ(RunWholeJob(env), 0);
    SCOPED_TRACE(variant);
    ExpectSameResults(*out, expected);
  }
}

// A window that fires on a record leaves the record's timestamp to the consumers after it.
TEST(WindowsTest, FiringOnARecordKeepsItsTimestampForOtherConsumers) {
  StreamExecutionEnvironment env;
  CollectSink<std::string> sink;
  auto stamped = env.from_elements(Ev{5, "a", 1}, Ev{7, "a", 2})
                     .assign_timestamps_and_watermarks(PerEvent(100));  // nodes 0, 1
  Keyed(stamped)
      .window(GlobalWindows::create())
      .trigger(CountTrigger::of(1))
      .aggregate(SumAgg())  // node 2
      .process(Stamp<Agg>())
      .add_sink(sink);  // nodes 3, 4
  stamped.print();      // node 5, over the network
  TestRuntime rt;
  BufferWriter w;
  auto task =
      env.build_chain({0, 1, 2, 3, 4}, {{1, 5, 0, internal::Partitioner::kForward, &w}}, rt);
  task->initialize_state(nullptr);
  task->open();
  task->run_source();
  std::string end = "@" + std::to_string(kMaxWatermark);
  EXPECT_THAT(*sink.values, ElementsAre("a=1/1" + end, "a=3/2" + end));
  EXPECT_THAT(w.Records(), ElementsAre("5:a=1", "7:a=2"));
}

// A user trigger for time windows: fires on every record, and purges when the watermark passes
// the window's end.
struct EveryRecordTrigger {
  TriggerResult on_element(int64_t, const TimeWindow& w, int64_t&, TriggerContext& ctx) const {
    ctx.register_event_time_timer(w.max_timestamp());
    return TriggerResult::kFire;
  }
  TriggerResult on_event_time(int64_t time, const TimeWindow& w, TriggerContext&) const {
    return time == w.max_timestamp() ? TriggerResult::kPurge : TriggerResult::kContinue;
  }
  TriggerResult on_processing_time(int64_t, const TimeWindow&, TriggerContext&) const {
    return TriggerResult::kContinue;
  }
  bool can_merge() const { return false; }
  void on_merge(const TimeWindow&, TriggerContext&) const {}
  void clear(const TimeWindow& w, TriggerContext& ctx) const {
    ctx.delete_event_time_timer(w.max_timestamp());
  }
};

TEST(WindowsTest, UserTrigger) {
  std::vector<Ev> input = {{1, "a", 1}, {2, "a", 2}, {11, "a", 4}, {3, "b", 8}, {4, "a", 16}};
  StreamExecutionEnvironment env;
  auto out = WindowJob(env, input, 100, [](auto k) {
    return k.window(TumblingEventTimeWindows::of(ms(10)))
        .trigger(EveryRecordTrigger())
        .aggregate(SumAgg());
  });
  RunWholeJob(env);
  EXPECT_THAT(*out, ElementsAre("a=1/1@9", "a=3/2@9", "a=4/1@19", "b=8/1@9", "a=19/3@9"));
  EXPECT_THROW(Keyed(env.from_elements(Ev{}))
                   .window(EventTimeSessionWindows::with_gap(ms(5)))
                   .trigger(EveryRecordTrigger()),
               std::invalid_argument)
      << "session windows need a trigger that can merge";
}

// ---------------------------------------------------------------------------------------------
// Global windows with count triggers.

TEST(WindowsTest, GlobalWindowsWithCountTriggers) {
  std::vector<Ev> input;
  for (int i = 0; i < 20; ++i) input.push_back(Ev{i, i % 3 == 0 ? "x" : "y", i});
  // Purging: every 4 records of a key are summed, leftovers never fire.
  std::vector<std::string> purging, cumulative;
  std::map<std::string, std::pair<int64_t, int64_t>> run, total;
  for (const Ev& e : input) {
    auto& r = run[e.key];
    r.first += e.v;
    if (++r.second == 4) {
      purging.push_back(e.key + "=" + std::to_string(r.first) + "/4@" +
                        std::to_string(kMaxWatermark));
      r = {0, 0};
    }
    auto& t = total[e.key];
    t.first += e.v;
    if (++t.second % 4 == 0) {
      cumulative.push_back(e.key + "=" + std::to_string(t.first) + "/" + std::to_string(t.second) +
                           "@" + std::to_string(kMaxWatermark));
    }
  }
  {
    StreamExecutionEnvironment env;
    auto out = WindowJob(env, input, 0, [](auto k) {
      return k.window(GlobalWindows::create())
          .trigger(PurgingTrigger::of(CountTrigger::of(4)))
          .aggregate(SumAgg());
    });
    RunWholeJob(env);
    EXPECT_EQ(*out, purging);
  }
  {
    StreamExecutionEnvironment env;
    auto out = WindowJob(env, input, 0, [](auto k) {
      return k.window(GlobalWindows::create()).trigger(CountTrigger::of(4)).aggregate(SumAgg());
    });
    RunWholeJob(env);
    EXPECT_EQ(*out, cumulative);
  }
  {
    StreamExecutionEnvironment env;
    auto out = WindowJob(env, input, 0, [](auto k) {
      return k.window(GlobalWindows::create()).aggregate(SumAgg());
    });
    RunWholeJob(env);
    EXPECT_THAT(*out, IsEmpty()) << "global windows never fire without a trigger";
  }
}

// ---------------------------------------------------------------------------------------------
// Processing time.

TEST(WindowsTest, ProcessingTimeWindowsFireWhenTheClockPassesTheirEnd) {
  // (processing time, record); the records' own timestamps do not matter.
  std::vector<std::pair<int64_t, Ev>> input;
  std::mt19937 rng(11);
  int64_t now = 1000;
  for (int i = 0; i < 200; ++i) {
    now += rng() % 13;
    input.push_back(
        {now, Ev{static_cast<int64_t>(rng() % 5000), "k" + std::to_string(rng() % 3), i}});
  }
  for (int variant = 0; variant < 4; ++variant) {
    SCOPED_TRACE(variant);
    int64_t size = 100, slide = variant == 1 ? 40 : 100, gap = 30;
    std::vector<std::string> expected;
    if (variant < 3) {
      std::map<std::pair<std::string, int64_t>, std::pair<int64_t, int64_t>> windows;
      for (const auto& [t, e] : input) {
        for (int64_t s : WindowStarts(t, size, slide)) {
          auto& w = windows[{e.key, s}];
          w.first += e.v;
          ++w.second;
        }
      }
      for (const auto& [w, sc] : windows)
        expected.push_back(Expect(w.first, sc.first, sc.second, w.second + size));
    } else {
      // Sessions: a record at least `gap` after the key's previous one starts a new session (the
      // old one has fired at previous + gap - 1).
      std::map<std::string, std::vector<std::pair<int64_t, int64_t>>> by_key;  // time, value
      for (const auto& [t, e] : input) by_key[e.key].push_back({t, e.v});
      for (const auto& [key, tv] : by_key) {
        int64_t sum = 0, count = 0;
        for (size_t i = 0; i < tv.size(); ++i) {
          sum += tv[i].second;
          ++count;
          if (i + 1 == tv.size() || tv[i + 1].first >= tv[i].first + gap) {
            expected.push_back(Expect(key, sum, count, tv[i].first + gap));
            sum = count = 0;
          }
        }
      }
    }

    LateCase c;
    c.out = WindowJob(c.env, {}, 0, [variant, size, slide, gap](auto k) {
      if (variant == 0)
        return k.window(TumblingProcessingTimeWindows::of(ms(size)))
            .aggregate(SumAgg())
            .map([](const Agg& a) { return Describe(a); });
      if (variant == 1)
        return k.window(SlidingProcessingTimeWindows::of(ms(size), ms(slide)))
            .aggregate(SumAgg())
            .map([](const Agg& a) { return Describe(a); });
      if (variant == 2)
        return k.window(TumblingProcessingTimeWindows::of(ms(size)))
            .process(SumProcess(false))
            .map([](const std::string& v) { return v; });
      return k.window(ProcessingTimeSessionWindows::with_gap(ms(gap)))
          .aggregate(SumAgg())
          .map([](const Agg& a) { return Describe(a); });
    });
    c.rt.SetProcessingTime(1000);
    c.task = c.env.build_chain({2, 3, 4, 5}, {}, c.rt);
    c.task->initialize_state(nullptr);
    c.task->open();
    // The runtime's part: the callbacks due before `t`, then the clock at `t` (records of the
    // millisecond that a window ends in come before its timer).
    auto advance = [&](int64_t t) {
      while (c.rt.callback_time() != kNoTimestamp && c.rt.callback_time() < t) {
        c.rt.SetProcessingTime(t - 1);
        c.rt.TakeCallback();
        c.task->on_processing_time(t - 1);
      }
      c.rt.SetProcessingTime(t);
    };
    size_t fired_before_last = 0;
    for (const auto& [t, e] : input) {
      advance(t);
      c.task->process_buffer(0, TimestampedBuffer({e}));
      fired_before_last = c.out->size();
    }
    EXPECT_GT(fired_before_last, 0u);
    c.task->process_watermark(kMaxWatermark);
    EXPECT_EQ(c.out->size(), fired_before_last) << "watermarks do not fire processing-time windows";
    advance(now + 1000);
    ExpectSameResults(*c.out, expected);
  }
}

// ---------------------------------------------------------------------------------------------
// Checkpoints.

// Feeds `input` in batches of 10 with the watermark max - 20 after each batch, to a chain of
// the window job (nodes 2..) of every subtask; restores from `restored` (by subtask) if given,
// and snapshots after `stop` batches (then stops) if stop >= 0.
template <class Make>
std::vector<std::string> RunCheckpointed(
    Make make, const std::vector<Ev>& input, int parallelism,
    const std::vector<std::vector<internal::OperatorSnapshot>>* restored, int start, int stop,
    std::vector<std::vector<internal::OperatorSnapshot>>* snapshots) {
  std::vector<std::string> results;
  for (int subtask = 0; subtask < parallelism; ++subtask) {
    StreamExecutionEnvironment env;
    auto out = WindowJob(env, {}, 0, make);
    TestRuntime rt(subtask, parallelism);
    std::vector<int> chain;
    for (int i = 2; i < static_cast<int>(env.nodes().size()); ++i) chain.push_back(i);
    auto task = env.build_chain(chain, {}, rt);
    std::vector<internal::OperatorSnapshot> mine;
    if (restored) mine = NarrowSnapshots(*restored, subtask, parallelism, 128);
    task->initialize_state(restored ? &mine : nullptr);
    task->open();
    int64_t max_ts = kMinWatermark;
    int64_t watermark = kMinWatermark;
    int batches = static_cast<int>((input.size() + 9) / 10);
    for (int b = 0; b < batches; ++b) {
      std::vector<Ev> mine_batch;
      for (size_t i = b * 10; i < std::min(input.size(), size_t(b * 10 + 10)); ++i) {
        max_ts = std::max(max_ts, input[i].ts);
        int kg = key_group_for_hash(KeyHash<std::string>{}(input[i].key), 128);
        if (subtask_for_key_group(kg, 128, parallelism) == subtask) mine_batch.push_back(input[i]);
      }
      if (b == stop) {
        snapshots->push_back(task->snapshot_state(1));
        backend_of_environment.maker().Complete(snapshots->back(), 1);
        break;
      }
      if (b < start) {
        watermark = max_ts - 20;
        continue;
      }
      // The watermark is not in checkpoints: upstream sends it again after a restore.
      if (b == start && restored) task->process_watermark(watermark);
      task->process_buffer(0, TimestampedBuffer(mine_batch));
      task->process_watermark(max_ts - 20);
    }
    if (stop < 0) task->process_watermark(kMaxWatermark);
    results.insert(results.end(), out->begin(), out->end());
  }
  return results;
}

template <class Make>
void ExpectExactlyOnceAcrossARestore(Make make) {
  std::vector<Ev> input = RandomInput(5, 400, 3, 15, 6);
  std::vector<std::string> whole = RunCheckpointed(make, input, 1, nullptr, 0, -1, nullptr);
  ASSERT_FALSE(whole.empty());
  for (int new_p : {1, 2}) {
    SCOPED_TRACE(new_p);
    std::vector<std::vector<internal::OperatorSnapshot>> snaps;
    std::vector<std::string> before = RunCheckpointed(make, input, 1, nullptr, 0, 17, &snaps);
    std::vector<std::string> after = RunCheckpointed(make, input, new_p, &snaps, 17, -1, nullptr);
    before.insert(before.end(), after.begin(), after.end());
    ExpectSameResults(before, whole);
  }
}

TEST(WindowsTest, SlidingPanesSurviveARestore) {
  ExpectExactlyOnceAcrossARestore([](auto k) {
    auto w = k.window(SlidingEventTimeWindows::of(ms(60), ms(20)));
    w.allowed_lateness(ms(10));
    return w.aggregate(SumAgg());
  });
}

TEST(WindowsTest, PerWindowContentsSurviveARestore) {
  ExpectExactlyOnceAcrossARestore([](auto k) {
    return k.window(SlidingEventTimeWindows::of(ms(60), ms(20))).process(SumProcess());
  });
}

TEST(WindowsTest, SessionsSurviveARestore) {
  ExpectExactlyOnceAcrossARestore([](auto k) {
    return k.window(EventTimeSessionWindows::with_gap(ms(4))).aggregate(SumAgg());
  });
}

TEST(WindowsTest, CountWindowsSurviveARestore) {
  ExpectExactlyOnceAcrossARestore([](auto k) {
    return k.window(GlobalWindows::create())
        .trigger(PurgingTrigger::of(CountTrigger::of(3)))
        .process([] {
          struct Sum final : ProcessWindowFunction<Ev, std::string, std::string, GlobalWindow> {
            void process(const std::string& key, Context&, const std::vector<Ev>& els,
                         Collector<std::string>& out) override {
              std::string s = key;
              for (const Ev& e : els) s += " " + std::to_string(e.v);
              out.collect(s);
            }
          };
          return Sum();
        }());
  });
}

// ---------------------------------------------------------------------------------------------
// Window functions and window_all.

TEST(WindowsTest, AggregateAndReduceWithAProcessWindowFunction) {
  struct DescribeAgg final : ProcessWindowFunction<Agg, std::string, std::string, TimeWindow> {
    void process(const std::string& key, Context& ctx, const std::vector<Agg>& in,
                 Collector<std::string>& out) override {
      out.collect(key + " [" + std::to_string(ctx.window().start) + "," +
                  std::to_string(ctx.window().end) + ") " + std::to_string(in.size()) + " " +
                  std::to_string(in[0].sum));
    }
  };
  struct DescribeEv final : ProcessWindowFunction<Ev, std::string, std::string, TimeWindow> {
    void process(const std::string& key, Context& ctx, const std::vector<Ev>& in,
                 Collector<std::string>& out) override {
      out.collect(key + " [" + std::to_string(ctx.window().start) + "," +
                  std::to_string(ctx.window().end) + ") " + std::to_string(in.size()) + " " +
                  std::to_string(in[0].v));
    }
  };
  std::vector<Ev> input = {{1, "a", 1}, {2, "a", 2}, {11, "a", 4}, {3, "b", 8}};
  std::vector<std::string> expected = {"a [0,10) 1 3@9", "b [0,10) 1 8@9", "a [10,20) 1 4@19"};
  {
    StreamExecutionEnvironment env;
    auto out = WindowJob(env, input, 100, [](auto k) {
      return k.window(TumblingEventTimeWindows::of(ms(10))).aggregate(SumAgg(), DescribeAgg());
    });
    RunWholeJob(env);
    EXPECT_THAT(*out, UnorderedElementsAreArray(expected));
  }
  {
    StreamExecutionEnvironment env;
    auto out = WindowJob(env, input, 100, [](auto k) {
      return k.window(TumblingEventTimeWindows::of(ms(10))).reduce(SumReduce, DescribeEv());
    });
    RunWholeJob(env);
    EXPECT_THAT(*out, UnorderedElementsAreArray(expected));
  }
}

TEST(WindowsTest, WindowAllRunsInOneSubtask) {
  struct All final : ProcessAllWindowFunction<Ev, std::string, TimeWindow> {
    void process(Context& ctx, const std::vector<Ev>& in, Collector<std::string>& out) override {
      int64_t sum = 0;
      for (const Ev& e : in) sum += e.v;
      out.collect("[" + std::to_string(ctx.window().start) + "] " + std::to_string(sum));
    }
  };
  std::vector<Ev> input = {{1, "a", 1}, {12, "b", 2}, {5, "c", 4}, {15, "a", 8}, {30, "b", 16}};
  StreamExecutionEnvironment env;
  CollectSink<std::string> sink;
  auto stamped = env.from_collection(input).assign_timestamps_and_watermarks(PerEvent(100));
  auto result = stamped.window_all(TumblingEventTimeWindows::of(ms(10))).process(All());
  result.process(Stamp<std::string>()).add_sink(sink);
  EXPECT_EQ(env.nodes()[2]->parallelism, 1);
  EXPECT_TRUE(env.nodes()[2]->fixed_parallelism);
  EXPECT_THROW(result.set_parallelism(2), std::invalid_argument);
  RunWholeJob(env);
  EXPECT_THAT(*sink.values, UnorderedElementsAreArray({"[0] 5@9", "[10] 10@19", "[30] 16@39"}));

  StreamExecutionEnvironment env2;
  CollectSink<std::string> sink2;
  env2.from_collection(input)
      .assign_timestamps_and_watermarks(PerEvent(100))
      .window_all(SlidingEventTimeWindows::of(ms(20), ms(10)))
      .aggregate(SumAgg())
      .map([](const Agg& a) { return std::to_string(a.sum) + "/" + std::to_string(a.count); })
      .add_sink(sink2);
  RunWholeJob(env2);
  EXPECT_THAT(*sink2.values, UnorderedElementsAreArray({"5/2", "15/4", "10/2", "16/1", "16/1"}));
}

}  // namespace
}  // namespace sluice
