// Event time: where records get their timestamps and how watermarks are generated.
//
//   auto events = env.add_source(sluice::files::TextFileSource(path))
//       .map(parse)
//       .assign_timestamps_and_watermarks(
//           sluice::WatermarkStrategy<Event>::for_bounded_out_of_orderness(std::chrono::seconds(5))
//               .with_timestamp_assigner([](const Event& e, int64_t) { return e.time_ms; })
//               .with_idleness(std::chrono::seconds(30)));
//
// The strategy's timestamp assigner sets each record's timestamp; its watermark generator sees
// every record (on_event) and is asked every pipeline.auto-watermark-interval (on_periodic_emit)
// to emit a watermark: a promise that no record with a timestamp at or before it follows. With
// idleness, a subtask that has seen no record for that long (processing time) marks itself idle,
// so that it does not hold back the watermark of the tasks downstream; its next record makes it
// active again.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>

#include "sluice/core.h"

namespace sluice {

// Where a watermark generator emits.
class WatermarkOutput {
 public:
  virtual ~WatermarkOutput() = default;
  // Watermarks that do not advance are ignored.
  virtual void emit_watermark(int64_t watermark) = 0;
  virtual void mark_idle() = 0;
  virtual void mark_active() = 0;
};

template <class T>
class WatermarkGenerator {
 public:
  virtual ~WatermarkGenerator() = default;
  virtual void on_event(const T& event, int64_t timestamp, WatermarkOutput& out) = 0;
  virtual void on_periodic_emit(WatermarkOutput& out) = 0;
};

// Watermark = the highest timestamp seen - the bound - 1: records up to `bound` late are on time.
template <class T>
class BoundedOutOfOrdernessWatermarks final : public WatermarkGenerator<T> {
 public:
  explicit BoundedOutOfOrdernessWatermarks(std::chrono::milliseconds bound)
      : bound_(bound.count()) {
    if (bound_ < 0) throw std::invalid_argument("the out-of-orderness bound must not be negative");
  }
  void on_event(const T&, int64_t timestamp, WatermarkOutput&) override {
    max_timestamp_ = std::max(max_timestamp_, timestamp);
  }
  void on_periodic_emit(WatermarkOutput& out) override {
    if (max_timestamp_ != kMinWatermark) out.emit_watermark(max_timestamp_ - bound_ - 1);
  }

 private:
  int64_t bound_;
  int64_t max_timestamp_ = kMinWatermark;
};

template <class T>
class NoWatermarks final : public WatermarkGenerator<T> {
 public:
  void on_event(const T&, int64_t, WatermarkOutput&) override {}
  void on_periodic_emit(WatermarkOutput&) override {}
};

// Wraps a generator: after `timeout` of processing time without a record, marks the output idle.
template <class T>
class WatermarksWithIdleness final : public WatermarkGenerator<T> {
 public:
  WatermarksWithIdleness(std::unique_ptr<WatermarkGenerator<T>> inner,
                         std::chrono::milliseconds timeout, std::function<int64_t()> clock)
      : inner_(std::move(inner)), timeout_(timeout.count()), clock_(std::move(clock)) {}
  void on_event(const T& event, int64_t timestamp, WatermarkOutput& out) override {
    last_event_ms_ = clock_();
    if (idle_) {
      idle_ = false;
      out.mark_active();
    }
    inner_->on_event(event, timestamp, out);
  }
  void on_periodic_emit(WatermarkOutput& out) override {
    int64_t now = clock_();
    if (last_event_ms_ == 0) last_event_ms_ = now;  // the clock starts with the first call
    if (!idle_ && now - last_event_ms_ >= timeout_) {
      idle_ = true;
      out.mark_idle();
    }
    if (!idle_) inner_->on_periodic_emit(out);
  }

 private:
  std::unique_ptr<WatermarkGenerator<T>> inner_;
  int64_t timeout_;
  std::function<int64_t()> clock_;
  int64_t last_event_ms_ = 0;
  bool idle_ = false;
};

// How a stream gets timestamps and watermarks (Flink's WatermarkStrategy).
template <class T>
class WatermarkStrategy {
 public:
  using GeneratorFactory = std::function<std::unique_ptr<WatermarkGenerator<T>>()>;
  // f(const T& record, int64_t previous_timestamp) -> the record's timestamp in ms.
  using TimestampAssigner = std::function<int64_t(const T&, int64_t)>;

  // Watermarks trail the highest timestamp seen by `bound`.
  static WatermarkStrategy for_bounded_out_of_orderness(std::chrono::milliseconds bound) {
    return WatermarkStrategy(
        [bound] { return std::make_unique<BoundedOutOfOrdernessWatermarks<T>>(bound); });
  }
  // Timestamps never decrease: the watermark is the highest timestamp seen - 1.
  static WatermarkStrategy for_monotonous_timestamps() {
    return for_bounded_out_of_orderness(std::chrono::milliseconds(0));
  }
  // Timestamps only (records keep the timestamp the assigner gives them), no watermarks.
  static WatermarkStrategy no_watermarks() {
    return WatermarkStrategy([] { return std::make_unique<NoWatermarks<T>>(); });
  }
  // A user generator: `factory()` returns a std::unique_ptr<WatermarkGenerator<T>>, one per
  // subtask.
  template <class F>
  static WatermarkStrategy for_generator(F factory) {
    return WatermarkStrategy(GeneratorFactory(std::move(factory)));
  }

  WatermarkStrategy with_timestamp_assigner(TimestampAssigner assigner) const {
    WatermarkStrategy s = *this;
    s.assigner_ = std::move(assigner);
    return s;
  }
  WatermarkStrategy with_idleness(std::chrono::milliseconds timeout) const {
    if (timeout.count() <= 0) throw std::invalid_argument("the idleness timeout must be positive");
    WatermarkStrategy s = *this;
    s.idleness_ = timeout;
    return s;
  }

  // For the runtime: one generator for one subtask.
  std::unique_ptr<WatermarkGenerator<T>> create_generator(std::function<int64_t()> clock) const {
    std::unique_ptr<WatermarkGenerator<T>> g = factory_();
    if (idleness_.count() > 0) {
      g = std::make_unique<WatermarksWithIdleness<T>>(std::move(g), idleness_, std::move(clock));
    }
    return g;
  }
  // The timestamp of `v`, whose timestamp so far is `previous` (kNoTimestamp if none).
  int64_t timestamp(const T& v, int64_t previous) const {
    return assigner_ ? assigner_(v, previous) : previous;
  }

 private:
  explicit WatermarkStrategy(GeneratorFactory f) : factory_(std::move(f)) {}
  GeneratorFactory factory_;
  TimestampAssigner assigner_;
  std::chrono::milliseconds idleness_{0};
};

}  // namespace sluice
