#include "jobmanager/restart_strategy.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace sluice {

std::unique_ptr<RestartStrategy> RestartStrategy::Create(const Configuration& conf,
                                                         bool checkpointing) {
  std::string type = conf.GetChoice("restart-strategy.type");
  if (type.empty()) type = checkpointing ? "EXPONENTIAL_DELAY" : "NONE";
  if (type == "FIXED_DELAY") {
    return std::make_unique<FixedDelayRestartStrategy>(
        conf.GetInt("restart-strategy.fixed-delay.attempts"),
        Millis(conf.GetDurationMs("restart-strategy.fixed-delay.delay")));
  }
  if (type == "EXPONENTIAL_DELAY") {
    ExponentialDelayRestartStrategy::Options o;
    o.initial = Millis(conf.GetDurationMs("restart-strategy.exponential-delay.initial-backoff"));
    o.max = Millis(conf.GetDurationMs("restart-strategy.exponential-delay.max-backoff"));
    o.multiplier = conf.GetDouble("restart-strategy.exponential-delay.backoff-multiplier");
    o.jitter = conf.GetDouble("restart-strategy.exponential-delay.jitter-factor");
    o.reset_after =
        Millis(conf.GetDurationMs("restart-strategy.exponential-delay.reset-backoff-threshold"));
    return std::make_unique<ExponentialDelayRestartStrategy>(o);
  }
  if (type == "FAILURE_RATE") {
    return std::make_unique<FailureRateRestartStrategy>(
        conf.GetInt("restart-strategy.failure-rate.max-failures-per-interval"),
        Millis(conf.GetDurationMs("restart-strategy.failure-rate.failure-rate-interval")),
        Millis(conf.GetDurationMs("restart-strategy.failure-rate.delay")));
  }
  return std::make_unique<NoRestartStrategy>();
}

std::optional<RestartStrategy::Millis> FixedDelayRestartStrategy::OnFailure(Clock::time_point) {
  if (++failures_ > attempts_) return std::nullopt;
  return delay_;
}

std::string FixedDelayRestartStrategy::Describe() const {
  return absl::StrCat("fixed-delay allows ", attempts_, " restarts");
}

ExponentialDelayRestartStrategy::ExponentialDelayRestartStrategy(const Options& options,
                                                                 uint64_t seed)
    : options_(options), current_(options.initial), rng_(seed) {}

std::optional<RestartStrategy::Millis> ExponentialDelayRestartStrategy::OnFailure(
    Clock::time_point now) {
  if (last_failure_ && now - *last_failure_ >= options_.reset_after) current_ = options_.initial;
  last_failure_ = now;
  Millis d = current_;
  current_ =
      std::min(options_.max, Millis(static_cast<int64_t>(current_.count() * options_.multiplier)));
  if (options_.jitter > 0 && d.count() > 0) {
    std::uniform_real_distribution<double> u(-options_.jitter, options_.jitter);
    d = Millis(std::max<int64_t>(0, static_cast<int64_t>(d.count() * (1 + u(rng_)))));
  }
  return d;
}

std::optional<RestartStrategy::Millis> FailureRateRestartStrategy::OnFailure(
    Clock::time_point now) {
  failure_times_.push_back(now);
  while (!failure_times_.empty() && now - failure_times_.front() > interval_)
    failure_times_.pop_front();
  if (static_cast<int64_t>(failure_times_.size()) > max_failures_) return std::nullopt;
  return delay_;
}

std::string FailureRateRestartStrategy::Describe() const {
  return absl::StrCat("failure-rate allows ", max_failures_, " failures per ", interval_.count(),
                      " ms");
}

}  // namespace sluice
