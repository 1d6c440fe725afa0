// Figure 6 of sluice-bench: the per-core cost of event-time window aggregation; see
// window_bench.h.
#include "window_bench.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "bench_util.h"
#include "sluice/internal/heap_backend.h"
#include "sluice/sluice.h"
#include "workload.h"

namespace sluice::bench {
namespace {

// The figure's windows.
constexpr int64_t kSizeMs = 10'000;
constexpr int64_t kSlideMs = 1'000;
constexpr int64_t kPanes = kSizeMs / kSlideMs;
static_assert(kSizeMs % kSlideMs == 0, "the loop keeps panes of one slide");
// The loop's ring of panes per key. A slot is reused kRing panes later; with the watermark at
// most one slide behind the newest record, a pane's last window has fired by then.
constexpr int64_t kRing = 16;
static_assert(kRing >= kPanes + 2 && (kRing & (kRing - 1)) == 0);
// The size of a network buffer: taskmanager.memory.segment-size's default.
constexpr size_t kBufferBytes = 32 * 1024;

// ---------------------------------------------------------------------------------------------
// The records, the aggregate and the workload.

struct WinRecord {
  int64_t time_ms = 0;
  int64_t key = 0;
  double value = 0;
  SLUICE_FIELDS(time_ms, key, value)
};

// A window's (or pane's) count and sum; the key is kept to check the results.
struct CountSumAcc {
  int64_t key = -1;
  int64_t count = 0;
  double sum = 0;
  SLUICE_FIELDS(key, count, sum)
};

struct CountSum {
  using accumulator_type = CountSumAcc;
  using result_type = CountSumAcc;
  CountSumAcc create_accumulator() const { return {}; }
  void add(const WinRecord& r, CountSumAcc& acc) const {
    acc.key = r.key;
    ++acc.count;
    acc.sum += r.value;
  }
  CountSumAcc get_result(const CountSumAcc& acc) const { return acc; }
  CountSumAcc merge(CountSumAcc a, const CountSumAcc& b) const {
    if (a.count == 0) a.key = b.key;
    a.count += b.count;
    a.sum += b.sum;
    return a;
  }
};

// Record i: event time i / events_per_second (ms, steadily increasing from 0), a pseudo-random
// key of `keys`, the value i % 100 (whole numbers, so that every sum is exact in a double and
// results compare exactly whatever the order of additions).
struct Workload {
  int64_t keys;
  int64_t events_per_second;
  int64_t watermark_interval_ms;

  WinRecord At(int64_t i) const {
    return WinRecord{
        i * 1000 / events_per_second,
        static_cast<int64_t>(SplitMix64(static_cast<uint64_t>(i)) % static_cast<uint64_t>(keys)),
        static_cast<double>(i % 100)};
  }
  // The first record whose time is >= t_ms.
  int64_t FirstAt(int64_t t_ms) const { return (t_ms * events_per_second + 999) / 1000; }
  // Calls chunk(from, to) for the records of each watermark interval of [0, n), in order.
  template <class F>
  void ForEachChunk(int64_t n, F chunk) const {
    int64_t from = 0;
    for (int64_t t = watermark_interval_ms; from < n; t += watermark_interval_ms) {
      int64_t to = std::min(n, FirstAt(t));
      if (to > from) chunk(from, to);
      from = to;
    }
  }
  // The watermark after the records [0, to): the highest timestamp - 1.
  int64_t WatermarkAfter(int64_t to) const { return At(to - 1).time_ms - 1; }
};

// What the windows emitted: the number of results, their counts and sums, and an
// order-independent checksum of (key, count, sum).
struct Totals {
  int64_t results = 0;
  int64_t count = 0;
  double sum = 0;
  uint64_t checksum = 0;
  void Add(const CountSumAcc& a) {
    ++results;
    count += a.count;
    sum += a.sum;
    checksum +=
        SplitMix64(static_cast<uint64_t>(a.key) * 0x100000001b3ULL ^
                   SplitMix64(static_cast<uint64_t>(a.count)) ^ std::bit_cast<uint64_t>(a.sum));
  }
  bool operator==(const Totals&) const = default;
};

struct TotalsSink final : SinkFunction<CountSumAcc> {
  std::shared_ptr<Totals> totals = std::make_shared<Totals>();
  void invoke(const CountSumAcc& a) override { totals->Add(a); }
};

// ---------------------------------------------------------------------------------------------
// The runtime's side, as the TaskManager offers it to a window task: subtask 0 of 1, 128 key
// groups (pipeline.max-parallelism's default), no mail, no processing-time callbacks needed.

class BenchRuntime final : public internal::TaskRuntime {
 public:
  BenchRuntime() {
    info_.job_id = "bench-windows";
    info_.job_name = "windows";
    info_.task_name = "window -> sink";
    info_.max_parallelism = kMaxParallelism;
  }
  const TaskInfo& info() const override { return info_; }
  bool cancelled() const override { return false; }
  void print_line(std::string_view) override {}
  void flush_outputs() override {}
  const std::atomic<bool>& mail_flag() const override { return mail_; }
  void process_mail() override {}
  void post_mail(int, std::function<void()>) override {}
  void yield_to_mail(int, int64_t) override {}
  int64_t current_processing_time() const override { return 0; }
  void request_processing_time_callback(int64_t) override {}
  std::unique_ptr<internal::KeyedStateBackend> create_keyed_state_backend(
      int, const KeyGroupRange& range) override {
    return std::make_unique<internal::HeapKeyedStateBackend>(range);
  }

 private:
  TaskInfo info_;
  std::atomic<bool> mail_{false};
};

// Serializes records as the producer of a timestamped key_by edge writes them (the timestamp,
// then the record), cut into network buffers of at most kBufferBytes.
class BufferMaker {
 public:
  // The buffers of the records [from, to); valid until the next call.
  std::span<const std::string> Make(const Workload& w, int64_t from, int64_t to) {
    size_t used = 0;
    auto next = [&]() -> std::string& {
      if (used == buffers_.size()) buffers_.emplace_back().reserve(kBufferBytes);
      std::string& b = buffers_[used++];
      b.clear();
      return b;
    };
    std::string* b = &next();
    for (int64_t i = from; i < to; ++i) {
      WinRecord r = w.At(i);
      record_.clear();
      DataOutput out(record_);
      Serializer<int64_t>::write(out, r.time_ms);
      Serializer<WinRecord>::write(out, r);
      if (b->size() + record_.size() > kBufferBytes && !b->empty()) b = &next();
      b->append(record_);
    }
    return {buffers_.data(), b->empty() ? used - 1 : used};
  }

 private:
  std::vector<std::string> buffers_;
  std::string record_;
};

// One run of one variant: records, and the wall and CPU seconds of the timed part.
struct Sample {
  int64_t records = 0;
  double wall_s = 0;
  double cpu_s = 0;
  Totals totals;
  double cpu_rate() const { return cpu_s > 0 ? static_cast<double>(records) / cpu_s : 0; }
  double wall_rate() const { return wall_s > 0 ? static_cast<double>(records) / wall_s : 0; }
};

// ---------------------------------------------------------------------------------------------
// Sluice: a job source -> timestamps/watermarks -> key_by -> window -> sink, of which the
// window task's chain {window, sink} is built and driven.

class WindowJob {
 public:
  template <class Assigner>
  static std::unique_ptr<WindowJob> Create(Assigner assigner) {
    std::unique_ptr<WindowJob> job(new WindowJob());
    TotalsSink sink;
    job->totals_ = sink.totals;
    job->env_.from_collection(std::vector<WinRecord>{})
        .assign_timestamps_and_watermarks(
            WatermarkStrategy<WinRecord>::for_monotonous_timestamps().with_timestamp_assigner(
                [](const WinRecord& r, int64_t) { return r.time_ms; }))
        .key_by([](const WinRecord& r) { return r.key; })
        .window(assigner)
        .aggregate(CountSum())
        .add_sink(sink);
    return job;
  }

  // Builds a fresh chain {window, sink} and feeds it the records [0, n), a watermark after each
  // watermark interval, then kMaxWatermark and the end of input, as Task::Run does. Only the
  // chain's work is timed, not the making of the buffers.
  Sample Run(const Workload& w, int64_t n, BufferMaker& maker) const {
    *totals_ = Totals{};
    BenchRuntime rt;
    Stopwatch sw;
    sw.Start();
    std::unique_ptr<internal::ChainTask> task =
        env_.build_chain({kWindowNode, kWindowNode + 1}, {}, rt);
    task->initialize_state(nullptr);
    task->open();
    sw.Stop();
    w.ForEachChunk(n, [&](int64_t from, int64_t to) {
      std::span<const std::string> buffers = maker.Make(w, from, to);
      sw.Start();
      for (const std::string& b : buffers) task->process_buffer(0, b);
      task->process_watermark(w.WatermarkAfter(to));
      sw.Stop();
    });
    sw.Start();
    task->process_watermark(kMaxWatermark);
    task->end_input();
    task->close();
    int64_t late = task->num_late_records_dropped();
    task.reset();
    sw.Stop();
    Sample s;
    s.records = n;
    s.wall_s = sw.wall_s;
    s.cpu_s = sw.cpu_s;
    s.totals = *totals_;
    if (late != 0) s.totals.results = -late;  // shows up as a mismatch
    return s;
  }

 private:
  // Nodes: 0 source, 1 timestamps/watermarks, 2 window, 3 sink.
  static constexpr int kWindowNode = 2;
  WindowJob() = default;
  StreamExecutionEnvironment env_;
  std::shared_ptr<Totals> totals_;
};

// ---------------------------------------------------------------------------------------------
// The hand-written loop: the sliding windows' results from per-key rings of 1 s panes.

struct LoopPane {
  int64_t index = INT64_MIN;  // the pane [index * slide, (index + 1) * slide)
  int64_t count = 0;
  double sum = 0;
};
struct LoopKey {
  std::array<LoopPane, kRing> ring;
};

class SlidingLoop {
 public:
  void Add(const WinRecord& r) {
    int64_t p = r.time_ms / kSlideMs;  // times are >= 0
    if (next_start_ == INT64_MIN) next_start_ = p - kPanes + 1;
    last_pane_ = std::max(last_pane_, p);
    LoopPane& s = keys_[r.key].ring[static_cast<size_t>(p & (kRing - 1))];
    if (s.index != p) s = LoopPane{p, 0, 0};
    ++s.count;
    s.sum += r.value;
  }
  // Fires every window whose last timestamp is <= `watermark` and holds a pane.
  void AdvanceWatermark(int64_t watermark, Totals& out) {
    while (next_start_ != INT64_MIN && next_start_ <= last_pane_ &&
           next_start_ * kSlideMs + kSizeMs - 1 <= watermark) {
      Fire(next_start_, out);
      ++next_start_;
    }
  }

 private:
  void Fire(int64_t start, Totals& out) {
    for (const auto& [key, k] : keys_) {
      CountSumAcc acc{key, 0, 0};
      for (int64_t p = start; p < start + kPanes; ++p) {
        const LoopPane& s = k.ring[static_cast<size_t>(p & (kRing - 1))];
        if (s.index != p) continue;
        acc.count += s.count;
        acc.sum += s.sum;
      }
      if (acc.count > 0) out.Add(acc);
    }
  }

  std::unordered_map<int64_t, LoopKey> keys_;
  int64_t next_start_ = INT64_MIN;  // the first pane of the next window to fire
  int64_t last_pane_ = INT64_MIN;
};

__attribute__((noinline)) Sample RunLoop(const Workload& w, int64_t n) {
  Sample s;
  Stopwatch sw;
  sw.Start();
  {
    SlidingLoop loop;
    w.ForEachChunk(n, [&](int64_t from, int64_t to) {
      for (int64_t i = from; i < to; ++i) loop.Add(w.At(i));
      loop.AdvanceWatermark(w.WatermarkAfter(to), s.totals);
    });
    loop.AdvanceWatermark(kMaxWatermark, s.totals);
  }
  sw.Stop();
  s.records = n;
  s.wall_s = sw.wall_s;
  s.cpu_s = sw.cpu_s;
  return s;
}

// ---------------------------------------------------------------------------------------------
// The figure.

std::string TotalsText(const Totals& t) {
  return absl::StrFormat("%s results, count %s, sum %.0f, checksum %016x", Count(t.results),
                         Count(t.count), t.sum, t.checksum);
}

struct Variant {
  std::string name;
  std::vector<Sample> samples;
  double cpu_rate(size_t i) const { return samples[i].cpu_rate(); }
  double median_cpu_rate() const {
    std::vector<double> v;
    for (const Sample& s : samples) v.push_back(s.cpu_rate());
    return Median(v);
  }
  double median_wall_rate() const {
    std::vector<double> v;
    for (const Sample& s : samples) v.push_back(s.wall_rate());
    return Median(v);
  }
  double median_cores() const {
    std::vector<double> v;
    for (const Sample& s : samples) v.push_back(s.wall_s > 0 ? s.cpu_s / s.wall_s : 0);
    return Median(v);
  }
  double min_cpu_rate() const {
    double m = 1e300;
    for (const Sample& s : samples) m = std::min(m, s.cpu_rate());
    return m;
  }
  double max_cpu_rate() const {
    double m = 0;
    for (const Sample& s : samples) m = std::max(m, s.cpu_rate());
    return m;
  }
};

// The median over the rounds of cost(a) / cost(b), cost being CPU seconds per record.
double MedianCostRatio(const Variant& a, const Variant& b) {
  std::vector<double> r;
  for (size_t i = 0; i < a.samples.size() && i < b.samples.size(); ++i) {
    if (a.cpu_rate(i) > 0) r.push_back(b.cpu_rate(i) / a.cpu_rate(i));
  }
  return Median(r);
}

}  // namespace

absl::Status RunWindowFigure(const WindowBenchOptions& options) {
  WindowBenchOptions o = options;
  if (o.records == 0) o.records = o.quick ? 1'000'000 : 4'000'000;
  if (o.runs == 0) o.runs = o.quick ? 1 : 5;
  if (o.records < 1 || o.keys < 1 || o.events_per_second < 1 || o.runs < 1) {
    return absl::InvalidArgumentError("figure 6: records, keys, events per second and runs > 0");
  }
  if (o.watermark_interval_ms < 1 || o.watermark_interval_ms > kSlideMs) {
    return absl::InvalidArgumentError(
        absl::StrCat("figure 6: the watermark interval must be 1..", kSlideMs, " ms"));
  }
  const Workload w{o.keys, o.events_per_second, o.watermark_interval_ms};
  const int64_t n = o.records;
  const double event_seconds = static_cast<double>(w.At(n - 1).time_ms + 1) / 1e3;

  std::printf(
      "\n6. Window aggregation cost: count and sum of a double per key in event-time windows,\n"
      "   one thread, no cluster. Input: records with steadily increasing event time, %s per\n"
      "   second of event time, %s keys drawn pseudo-randomly, value i %% 100; the watermark\n"
      "   (highest timestamp - 1, for_monotonous_timestamps) advances every %lld ms of event "
      "time.\n"
      "   Sluice: the window task of source -> timestamps/watermarks -> key_by -> window ->\n"
      "   aggregate -> sink, as a TaskManager drives it: its chain {window, sink} (build_chain),\n"
      "   process_buffer() per 32 KB buffer of timestamped records serialized as the key_by "
      "edge's\n"
      "   producer writes them, process_watermark() after each interval, then kMaxWatermark and\n"
      "   end of input. Timed: building, opening and closing the chain, deserializing, the window\n"
      "   operator, the counting sink; not the making of the buffers (the source task's work).\n"
      "   Loop: per key a ring of 1 s panes (count, sum) in an std::unordered_map; each window\n"
      "   fired as the same watermarks pass its end by summing its 10 panes; records generated\n"
      "   in place. CPU = this thread's (CLOCK_THREAD_CPUTIME_ID).\n",
      Count(o.events_per_second).c_str(), Count(o.keys).c_str(),
      static_cast<long long>(o.watermark_interval_ms));
  std::printf(
      "   %s records (%.1f s of event time) per run, %d round(s) of sliding, tumbling, loop\n"
      "   (interleaved, after one short warm-up round), medians shown.\n",
      Count(n).c_str(), event_seconds, o.runs);
  std::fflush(stdout);

  using std::chrono::milliseconds;
  std::unique_ptr<WindowJob> sliding_job =
      WindowJob::Create(SlidingEventTimeWindows::of(milliseconds(kSizeMs), milliseconds(kSlideMs)));
  std::unique_ptr<WindowJob> tumbling_job =
      WindowJob::Create(TumblingEventTimeWindows::of(milliseconds(kSizeMs)));
  BufferMaker maker;

  // Warm-up: allocator, caches, page faults.
  const int64_t warm = std::min<int64_t>(n, 20 * o.events_per_second);
  sliding_job->Run(w, warm, maker);
  tumbling_job->Run(w, warm, maker);
  RunLoop(w, warm);

  Variant sliding{"Sluice sliding 10 s / 1 s", {}};
  Variant tumbling{"Sluice tumbling 10 s", {}};
  Variant loop{"hand-written loop, sliding 10 s / 1 s", {}};
  for (int r = 0; r < o.runs; ++r) {
    sliding.samples.push_back(sliding_job->Run(w, n, maker));
    tumbling.samples.push_back(tumbling_job->Run(w, n, maker));
    loop.samples.push_back(RunLoop(w, n));
  }

  // The checks: every run of a variant gives the same totals; the sliding window's equal the
  // loop's; every record is counted once per window containing it (size / slide for sliding,
  // once for tumbling), each value as often.
  double value_sum = 0;
  for (int64_t i = 0; i < n; ++i) value_sum += static_cast<double>(i % 100);
  std::vector<std::string> problems;
  for (const Variant* v : {&sliding, &tumbling, &loop}) {
    for (const Sample& s : v->samples) {
      if (!(s.totals == v->samples.front().totals)) {
        problems.push_back(v->name + ": runs differ");
        break;
      }
    }
  }
  const Totals& st = sliding.samples.front().totals;
  const Totals& tt = tumbling.samples.front().totals;
  const Totals& lt = loop.samples.front().totals;
  if (!(st == lt)) problems.push_back("the sliding window's results differ from the loop's");
  if (st.count != kPanes * n || st.sum != static_cast<double>(kPanes) * value_sum) {
    problems.push_back("the sliding window's counts or sums are not 10 x the input's");
  }
  if (tt.count != n || tt.sum != value_sum) {
    problems.push_back("the tumbling window's counts or sums are not the input's");
  }

  std::printf("\n   %-40s %12s %6s %14s %10s %8s  %s\n", "", "records/s", "cores", "rec/s per core",
              "CPU ns/rec", "vs loop", "per core, min .. max of runs");
  const double loop_rate = loop.median_cpu_rate();
  for (const Variant* v : {&sliding, &tumbling, &loop}) {
    double rate = v->median_cpu_rate();
    std::printf("   %-40s %12s %6.2f %14s %10.1f %8.3f  %s .. %s\n", v->name.c_str(),
                Rate(v->median_wall_rate()).c_str(), v->median_cores(), Rate(rate).c_str(),
                rate > 0 ? 1e9 / rate : 0.0, loop_rate > 0 ? rate / loop_rate : 0.0,
                Rate(v->min_cpu_rate()).c_str(), Rate(v->max_cpu_rate()).c_str());
  }
  std::printf(
      "   (records/s: records / wall seconds; cores: CPU seconds / wall seconds; per core:\n"
      "    records / CPU seconds; vs loop: per-core rate / the hand-written loop's)\n");
  const double s_over_t =
      sliding.median_cpu_rate() > 0 ? tumbling.median_cpu_rate() / sliding.median_cpu_rate() : 0;
  const double s_over_t_rounds = MedianCostRatio(sliding, tumbling);
  std::printf(
      "\n   cost sliding / tumbling: %.2f (of the medians), %.2f (median of the rounds' ratios);"
      " target <= 2: %s\n",
      s_over_t, s_over_t_rounds, s_over_t <= 2.0 ? "MET" : "NOT MET");
  std::printf(
      "   cost window / loop: sliding %.2f, tumbling %.2f (of the medians); sliding %.2f,"
      " tumbling %.2f (median of the rounds' ratios)\n",
      loop_rate > 0 ? loop_rate / sliding.median_cpu_rate() : 0.0,
      loop_rate > 0 ? loop_rate / tumbling.median_cpu_rate() : 0.0, MedianCostRatio(sliding, loop),
      MedianCostRatio(tumbling, loop));
  std::printf("   results: sliding  %s\n", TotalsText(st).c_str());
  std::printf("            loop     %s\n", TotalsText(lt).c_str());
  std::printf("            tumbling %s\n", TotalsText(tt).c_str());
  if (problems.empty()) {
    std::printf(
        "   check: the sliding window and the loop emitted the same results: OK (and every\n"
        "   record counted %lld times by the sliding windows, once by the tumbling ones)\n",
        static_cast<long long>(kPanes));
  } else {
    for (const std::string& p : problems) std::printf("   check FAILED: %s\n", p.c_str());
  }
  std::fflush(stdout);
  if (!problems.empty()) {
    return absl::DataLossError(absl::StrCat("figure 6: ", problems.front()));
  }
  return absl::OkStatus();
}

}  // namespace sluice::bench
