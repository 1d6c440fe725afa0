#include "common/metrics/metrics.h"

#include <algorithm>
#include <cmath>

namespace sluice::metrics {

Meter::Meter(std::function<int64_t()> count, int timespan_s)
    : count_(std::move(count)), timespan_s_(std::max(1, timespan_s)) {}

void Meter::Update(std::chrono::steady_clock::time_point at) {
  const int64_t now = count_();
  absl::MutexLock lock(&mu_);
  samples_.emplace_back(at, now);
  while (samples_.size() > static_cast<size_t>(timespan_s_) + 1) samples_.pop_front();
  // A count that went back (a new attempt) restarts the window.
  if (samples_.size() >= 2 && samples_.back().second < samples_[samples_.size() - 2].second) {
    samples_.erase(samples_.begin(), samples_.end() - 1);
  }
  const double seconds =
      std::chrono::duration<double>(samples_.back().first - samples_.front().first).count();
  rate_.store(seconds > 0
                  ? static_cast<double>(samples_.back().second - samples_.front().second) / seconds
                  : 0,
              std::memory_order_relaxed);
}

void Histogram::Update(double value) {
  absl::MutexLock lock(&mu_);
  values_.push_back(value);
  if (values_.size() > window_) values_.pop_front();
  ++count_;
  sum_ += value;
}

HistogramStatistics Histogram::Statistics() const {
  std::vector<double> v;
  HistogramStatistics s;
  {
    absl::MutexLock lock(&mu_);
    v.assign(values_.begin(), values_.end());
    s.count = count_;
    s.sum = sum_;
  }
  static constexpr double kQuantiles[] = {0.5, 0.75, 0.95, 0.98, 0.99, 0.999};
  if (v.empty()) {
    for (double q : kQuantiles) s.quantiles.emplace_back(q, 0);
    return s;
  }
  std::sort(v.begin(), v.end());
  s.min = v.front();
  s.max = v.back();
  double sum = 0;
  for (double x : v) sum += x;
  s.mean = sum / static_cast<double>(v.size());
  double sq = 0;
  for (double x : v) sq += (x - s.mean) * (x - s.mean);
  s.stddev = v.size() > 1 ? std::sqrt(sq / static_cast<double>(v.size() - 1)) : 0;
  for (double q : kQuantiles) {
    // Nearest rank.
    size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(v.size())));
    s.quantiles.emplace_back(q, v[std::clamp<size_t>(rank, 1, v.size()) - 1]);
  }
  return s;
}

}  // namespace sluice::metrics
