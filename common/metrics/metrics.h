// The kinds of metric a daemon keeps (Flink's: counters, gauges, meters and histograms).
//
// A metric is read by reporters on their own threads, so every kind is safe to read from any
// thread. Counting on a task's record path does not go through these classes: the task counts in
// internal::SingleWriterCounter fields and registers a FunctionCounter that reads them.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace sluice::metrics {

enum class MetricKind { kCounter, kGauge, kMeter, kHistogram };

class Metric {
 public:
  virtual ~Metric() = default;
  virtual MetricKind kind() const = 0;
};

// A count that only grows (in Flink's sense: it may start again at zero with a new attempt).
class Counter : public Metric {
 public:
  MetricKind kind() const final { return MetricKind::kCounter; }
  virtual int64_t Count() const = 0;
};

// A counter of its own, for counts off the record path (any thread may add).
class SimpleCounter final : public Counter {
 public:
  void Inc(int64_t n = 1) { count_.fetch_add(n, std::memory_order_relaxed); }
  int64_t Count() const override { return count_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> count_{0};
};

// A counter whose count someone else keeps. The function must own (or share ownership of) what
// it reads: it may run once more after its group is closed.
class FunctionCounter final : public Counter {
 public:
  explicit FunctionCounter(std::function<int64_t()> f) : f_(std::move(f)) {}
  int64_t Count() const override { return f_(); }

 private:
  std::function<int64_t()> f_;
};

// A value read when reported. The same ownership rule as FunctionCounter. NaN: no value now.
class Gauge final : public Metric {
 public:
  explicit Gauge(std::function<double()> f) : f_(std::move(f)) {}
  MetricKind kind() const override { return MetricKind::kGauge; }
  double Value() const { return f_(); }

 private:
  std::function<double()> f_;
};

// Events per second over the last `timespan_s` seconds, from a growing count (Flink's
// MeterView). The registry calls Update() every second; Rate() is the count's growth over the
// time the updates of the timespan span (fewer at the start), so an update that comes late (a
// loaded machine) does not inflate it.
class Meter final : public Metric {
 public:
  Meter(std::function<int64_t()> count, int timespan_s);
  MetricKind kind() const override { return MetricKind::kMeter; }
  double Rate() const { return rate_.load(std::memory_order_relaxed); }
  int64_t Count() const { return count_(); }
  // Takes a new sample of the count at `at` (the registry's view updater, once a second).
  void Update(std::chrono::steady_clock::time_point at) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  std::function<int64_t()> count_;
  const int timespan_s_;
  absl::Mutex mu_;
  // (when, count), oldest first, one a second.
  std::deque<std::pair<std::chrono::steady_clock::time_point, int64_t>> samples_
      ABSL_GUARDED_BY(mu_);
  std::atomic<double> rate_{0};
};

struct HistogramStatistics {
  int64_t count = 0;  // values ever added
  double sum = 0;     // of the values ever added (a Prometheus summary's _sum)
  double min = 0, max = 0, mean = 0, stddev = 0;
  // (quantile, value) for 0.5, 0.75, 0.95, 0.98, 0.99, 0.999 over the window.
  std::vector<std::pair<double, double>> quantiles;
};

// The distribution of the last `window` values added (Flink's DescriptiveStatisticsHistogram).
class Histogram final : public Metric {
 public:
  explicit Histogram(size_t window = 1024) : window_(window) {}
  MetricKind kind() const override { return MetricKind::kHistogram; }
  void Update(double value) ABSL_LOCKS_EXCLUDED(mu_);
  HistogramStatistics Statistics() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  const size_t window_;
  mutable absl::Mutex mu_;
  std::deque<double> values_ ABSL_GUARDED_BY(mu_);
  int64_t count_ ABSL_GUARDED_BY(mu_) = 0;
  double sum_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace sluice::metrics
