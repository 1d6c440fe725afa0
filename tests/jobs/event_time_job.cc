// Test job: event time across the network, with a source subtask that stays idle.
//   --events N        events 0..N-1 from source subtask 0: timestamp i ms, key "k<i % keys>"
//   --keys K          (default 5)
//   --window-ms W     tumbling event-time windows of W ms per key, counted (default 1000)
//   --idleness-ms I   the watermark strategy's idleness timeout (0: none; default 300)
//   --pace N          subtask 0 sleeps 1 ms after every N events (default 0: no pause)
//   --release FILE    every source subtask stays (without records) until FILE exists
//   --output DIR      `key,window_end,count` lines, written and flushed one by one to DIR/part-<s>
#include <sluice/sluice.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>

namespace {

struct Event {
  int64_t ts = 0;
  std::string key;
  SLUICE_FIELDS(ts, key)
};

class Events final : public sluice::SourceFunction<Event> {
 public:
  Events(int64_t n, int64_t keys, int64_t pace, std::string release)
      : n_(n), keys_(keys), pace_(pace), release_(std::move(release)) {}
  void open(sluice::RuntimeContext& ctx) override { subtask_ = ctx.index_of_this_subtask(); }
  void run(SourceContext& ctx) override {
    if (subtask_ == 0) {
      for (int64_t i = 0; i < n_ && is_running(); ++i) {
        ctx.collect(Event{i, "k" + std::to_string(i % keys_)});
        if (pace_ > 0 && (i + 1) % pace_ == 0) {
          ctx.flush();
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
      }
    }
    while (is_running() && !release_.empty() && !std::filesystem::exists(release_)) {
      ctx.flush();  // takes mail: periodic watermarks and idleness go on while waiting
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

 private:
  int64_t n_, keys_, pace_;
  std::string release_;
  int subtask_ = 0;
};

// Counts a window's events.
struct CountEvents {
  using accumulator_type = int64_t;
  using result_type = int64_t;
  int64_t create_accumulator() const { return 0; }
  void add(const Event&, int64_t& n) const { ++n; }
  int64_t get_result(const int64_t& n) const { return n; }
  int64_t merge(int64_t a, const int64_t& b) const { return a + b; }
};

// `key,window_end,count`.
class Describe final
    : public sluice::ProcessWindowFunction<int64_t, std::string, std::string, sluice::TimeWindow> {
 public:
  void process(const std::string& key, Context& ctx, const std::vector<int64_t>& counts,
               sluice::Collector<std::string>& out) override {
    for (int64_t n : counts)
      out.collect(key + "," + std::to_string(ctx.window().end) + "," + std::to_string(n));
  }
};

// Appends each line to DIR/part-<subtask> and flushes it at once, so a test sees results as
// they are produced.
class FlushingFileSink final : public sluice::SinkFunction<std::string> {
 public:
  explicit FlushingFileSink(std::string dir) : dir_(std::move(dir)) {}
  void open(sluice::RuntimeContext& ctx) override {
    std::filesystem::create_directories(dir_);
    std::string path = dir_ + "/part-" + std::to_string(ctx.index_of_this_subtask());
    file_ = std::fopen(path.c_str(), "a");
    if (!file_) throw std::runtime_error("cannot open " + path);
  }
  void invoke(const std::string& line) override {
    std::fprintf(file_, "%s\n", line.c_str());
    std::fflush(file_);
  }
  void close() override {
    if (file_) std::fclose(file_);
    file_ = nullptr;
  }

 private:
  std::string dir_;
  std::FILE* file_ = nullptr;
};

}  // namespace

SLUICE_JOB(env, args) {
  env.set_job_name("Event Time");
  int64_t idleness = args.get_int("idleness-ms", 300);
  auto strategy =
      sluice::WatermarkStrategy<Event>::for_monotonous_timestamps().with_timestamp_assigner(
          [](const Event& e, int64_t) { return e.ts; });
  if (idleness > 0) strategy = strategy.with_idleness(std::chrono::milliseconds(idleness));
  env.add_source(Events(args.get_int("events", 10000), args.get_int("keys", 5),
                        args.get_int("pace", 0), args.get("release", "")),
                 "Events")
      .assign_timestamps_and_watermarks(strategy)
      .key_by([](const Event& e) { return e.key; })
      .window(sluice::TumblingEventTimeWindows::of(
          std::chrono::milliseconds(args.get_int("window-ms", 1000))))
      .aggregate(CountEvents(), Describe())
      .add_sink(FlushingFileSink(args.get("output")), "Flushing File Sink");
}
