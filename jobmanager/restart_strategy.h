// Failover: the restart strategies (restart-strategy.*, with Flink's meanings and defaults).
// At each failure of a job the job's strategy decides whether it restarts, and after what delay;
// the Dispatcher then cancels the job's tasks and redeploys all of them (Flink's full-restart
// failover). One strategy object per job; it keeps the failure history it needs.
//
// Threads: not thread-safe; the Dispatcher calls it under its lock.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <random>
#include <string>

#include "common/config.h"

namespace sluice {

class RestartStrategy {
 public:
  using Clock = std::chrono::steady_clock;
  using Millis = std::chrono::milliseconds;

  // The strategy that restart-strategy.type names; when it is unset, exponential-delay with
  // checkpointing and none without, as Flink.
  static std::unique_ptr<RestartStrategy> Create(const Configuration& conf, bool checkpointing);

  virtual ~RestartStrategy() = default;
  // A failure happened at `now`: the delay before restarting, or nothing when the job must fail
  // for good.
  virtual std::optional<Millis> OnFailure(Clock::time_point now) = 0;
  // Why the strategy stopped allowing restarts, for the job's failure cause.
  virtual std::string Describe() const = 0;
};

// restart-strategy.type: none. Every failure is final.
class NoRestartStrategy final : public RestartStrategy {
 public:
  std::optional<Millis> OnFailure(Clock::time_point) override { return std::nullopt; }
  std::string Describe() const override { return "restart-strategy.type is none"; }
};

// fixed-delay: `attempts` restarts in the job's life, each after `delay`.
class FixedDelayRestartStrategy final : public RestartStrategy {
 public:
  FixedDelayRestartStrategy(int64_t attempts, Millis delay) : attempts_(attempts), delay_(delay) {}
  std::optional<Millis> OnFailure(Clock::time_point now) override;
  std::string Describe() const override;

 private:
  const int64_t attempts_;
  const Millis delay_;
  int64_t failures_ = 0;
};

// exponential-delay: restarts without limit; the delay starts at `initial`, is multiplied by
// `multiplier` at each failure up to `max`, varies by +-`jitter` (a fraction), and falls back to
// `initial` after `reset_after` without failures.
class ExponentialDelayRestartStrategy final : public RestartStrategy {
 public:
  struct Options {
    Millis initial{1000};         // Default: 1 s
    Millis max{60000};            // Default: 1 min
    double multiplier = 1.5;      // Default: 1.5
    double jitter = 0.1;          // Default: 0.1
    Millis reset_after{3600000};  // Default: 1 h
  };
  explicit ExponentialDelayRestartStrategy(const Options& options,
                                           uint64_t seed = std::random_device{}());
  std::optional<Millis> OnFailure(Clock::time_point now) override;
  std::string Describe() const override { return "exponential-delay"; }

 private:
  const Options options_;
  Millis current_;
  std::optional<Clock::time_point> last_failure_;
  std::mt19937_64 rng_;
};

// failure-rate: restarts after `delay` while at most `max_failures` failures fall within any
// `interval`.
class FailureRateRestartStrategy final : public RestartStrategy {
 public:
  FailureRateRestartStrategy(int64_t max_failures, Millis interval, Millis delay)
      : max_failures_(max_failures), interval_(interval), delay_(delay) {}
  std::optional<Millis> OnFailure(Clock::time_point now) override;
  std::string Describe() const override;

 private:
  const int64_t max_failures_;
  const Millis interval_, delay_;
  std::deque<Clock::time_point> failure_times_;
};

}  // namespace sluice
