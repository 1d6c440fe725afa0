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
#include <vector>

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

// Watermarks per split of a source (a Kafka partition): each split has its own generator from the
// strategy, and the source's watermark is the lowest of the splits that are not idle, so one slow
// split holds event time back and an idle one (with_idleness) does not. When every split is idle,
// so is the source. Used from the source's thread.
template <class T>
class SplitWatermarks {
 public:
  SplitWatermarks(const WatermarkStrategy<T>& strategy, std::function<int64_t()> clock)
      : strategy_(strategy), clock_(std::move(clock)) {}
  // The source now has `n` splits (new ones start without a watermark).
  void set_splits(size_t n) {
    while (splits_.size() < n) splits_.push_back({strategy_.create_generator(clock_), {}, false});
  }
  size_t num_splits() const { return splits_.size(); }
  // Split `split` has ended (a bounded partition read to its end): it holds nothing back.
  void finish_split(size_t split) { splits_[split].finished = true; }
  // The timestamp of record `v` of `split`, whose own timestamp is `previous`.
  int64_t timestamp(int split, const T& v, int64_t previous) {
    int64_t ts = strategy_.timestamp(v, previous);
    Split& s = splits_[static_cast<size_t>(split)];
    s.gen->on_event(v, ts, s.out);
    return ts;
  }
  // Asks every split's generator, then emits the combined watermark to `out`.
  void on_periodic_emit(WatermarkOutput& out) {
    bool any_active = false;
    int64_t low = kMaxWatermark;
    for (Split& s : splits_) {
      if (s.finished) continue;
      s.gen->on_periodic_emit(s.out);
      if (s.out.idle) continue;
      any_active = true;
      low = std::min(low, s.out.watermark);
    }
    if (!any_active) {
      // Every split idle or ended; a source whose splits all ended is about to end itself.
      if (!splits_.empty()) out.mark_idle();
      return;
    }
    out.mark_active();
    if (low != kMinWatermark) out.emit_watermark(low);
  }

 private:
  struct SplitOutput final : WatermarkOutput {
    void emit_watermark(int64_t w) override {
      idle = false;
      watermark = std::max(watermark, w);
    }
    void mark_idle() override { idle = true; }
    void mark_active() override { idle = false; }
    int64_t watermark = kMinWatermark;
    bool idle = false;
  };
  struct Split {
    std::unique_ptr<WatermarkGenerator<T>> gen;
    SplitOutput out;
    bool finished = false;
  };
  WatermarkStrategy<T> strategy_;
  std::function<int64_t()> clock_;
  std::vector<Split> splits_;
};

}  // namespace sluice
