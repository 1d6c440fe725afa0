// The pieces of the alerting example (alerting.cc), in a header so that tests can use them.
#pragma once

#include <sluice/sluice.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace alerting {

// The window settings both alerting jobs take: --threshold X (required),
// --out-of-orderness-ms N (default 5000) and --window-ms N (default 60000). Throws
// std::invalid_argument naming the argument.
struct WindowSettings {
  double threshold = 0;
  int64_t out_of_orderness_ms = 5000;
  int64_t window_ms = 60000;
};
inline WindowSettings ParseWindowSettings(const sluice::JobArgs& args) {
  if (!args.has("threshold")) throw std::invalid_argument("--threshold X is required");
  WindowSettings w;
  w.threshold = args.get_double("threshold", 0);
  w.out_of_orderness_ms = args.get_int("out-of-orderness-ms", w.out_of_orderness_ms);
  w.window_ms = args.get_int("window-ms", w.window_ms);
  if (w.out_of_orderness_ms < 0) {
    throw std::invalid_argument("--out-of-orderness-ms must not be negative");
  }
  if (w.window_ms < 1) throw std::invalid_argument("--window-ms must be at least 1");
  return w;
}

// One measurement: `timestamp_ms,host,metric,value`.
struct Reading {
  int64_t timestamp_ms = 0;
  std::string host;
  std::string metric;
  double value = 0;
  SLUICE_FIELDS(timestamp_ms, host, metric, value)
};

// Parses a line; false for a malformed one (wrong field count, a number that does not parse).
inline bool ParseReading(std::string_view line, Reading& r) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  std::string_view f[4];
  for (int i = 0; i < 4; ++i) {
    size_t comma = line.find(',');
    if ((comma == std::string_view::npos) != (i == 3)) return false;
    f[i] = line.substr(0, comma);
    line = comma == std::string_view::npos ? std::string_view() : line.substr(comma + 1);
  }
  auto ts = std::from_chars(f[0].data(), f[0].data() + f[0].size(), r.timestamp_ms);
  auto v = std::from_chars(f[3].data(), f[3].data() + f[3].size(), r.value);
  if (ts.ec != std::errc() || ts.ptr != f[0].data() + f[0].size()) return false;
  if (v.ec != std::errc() || v.ptr != f[3].data() + f[3].size()) return false;
  if (f[1].empty() || f[2].empty()) return false;
  r.host.assign(f[1]);
  r.metric.assign(f[2]);
  return true;
}

// A number as the shortest text that reads back as the same double.
inline std::string FormatNumber(double d) {
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, d);
  return std::string(buf, res.ptr);
}
// An average, to 3 decimals: sums of doubles depend on the order of the additions, which the
// network does not fix, so more digits would differ between runs.
inline std::string FormatAverage(double d) {
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::fixed, 3);
  return std::string(buf, res.ptr);
}

// Lines to readings; malformed lines go to the side output `malformed`. With `per_second` > 0,
// passes at most that many lines per second on (per subtask): replays a file like a live feed.
class Parse final : public sluice::ProcessFunction<std::string, Reading> {
 public:
  Parse(sluice::OutputTag<std::string> malformed, double per_second)
      : malformed_(std::move(malformed)), per_second_(per_second) {}
  void process_element(const std::string& line, Context& ctx,
                       sluice::Collector<Reading>& out) override {
    if (per_second_ > 0) Pace();
    if (line.empty() || line[0] == '#') return;
    Reading r;
    if (ParseReading(line, r)) {
      out.collect(std::move(r));
    } else {
      ctx.output(malformed_, line);
    }
  }

 private:
  void Pace() {
    if (n_++ == 0) start_ = std::chrono::steady_clock::now();
    auto due = start_ + std::chrono::duration<double>(static_cast<double>(n_) / per_second_);
    std::this_thread::sleep_until(
        std::chrono::time_point_cast<std::chrono::steady_clock::duration>(due));
  }
  sluice::OutputTag<std::string> malformed_;
  double per_second_;
  int64_t n_ = 0;
  std::chrono::steady_clock::time_point start_;
};

// Sum, maximum and count of a window's values.
struct Stats {
  double sum = 0;
  double max = 0;
  int64_t count = 0;
  SLUICE_FIELDS(sum, max, count)
};

struct StatsAggregate {
  using accumulator_type = Stats;
  using result_type = Stats;
  Stats create_accumulator() const { return Stats{}; }
  void add(const Reading& r, Stats& s) const {
    s.max = s.count == 0 ? r.value : std::max(s.max, r.value);
    s.sum += r.value;
    ++s.count;
  }
  Stats get_result(const Stats& s) const { return s; }
  Stats merge(Stats a, const Stats& b) const {
    if (b.count == 0) return a;
    a.max = a.count == 0 ? b.max : std::max(a.max, b.max);
    a.sum += b.sum;
    a.count += b.count;
    return a;
  }
};

// The key of a reading: "host,metric".
inline std::string HostMetric(const Reading& r) { return r.host + "," + r.metric; }

// One line per window, `window_end,host,metric,avg,max,count`, and when the average is above the
// threshold a second line, `ALERT,window_end,host,metric,avg`.
class Report final
    : public sluice::ProcessWindowFunction<Stats, std::string, std::string, sluice::TimeWindow> {
 public:
  explicit Report(double threshold) : threshold_(threshold) {}
  void process(const std::string& host_metric, Context& ctx, const std::vector<Stats>& stats,
               sluice::Collector<std::string>& out) override {
    for (const Stats& s : stats) {
      double avg = s.sum / static_cast<double>(s.count);
      std::string end = std::to_string(ctx.window().end);
      out.collect(end + "," + host_metric + "," + FormatAverage(avg) + "," + FormatNumber(s.max) +
                  "," + std::to_string(s.count));
      if (avg > threshold_)
        out.collect("ALERT," + end + "," + host_metric + "," + FormatAverage(avg));
    }
  }

 private:
  double threshold_;
};

}  // namespace alerting
