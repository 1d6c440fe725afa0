// Windows (TimeWindow, GlobalWindow), triggers, window assigners and window functions: what a
// job names in keyed.window(...) and window_all(...). The windowed streams are in sluice/windows.h.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <numeric>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "sluice/functions.h"
#include "sluice/serializer.h"
#include "sluice/state.h"

namespace sluice {

// ---------------------------------------------------------------------------------------------
// Windows.

// The time interval [start, end).
struct TimeWindow {
  int64_t start = 0;
  int64_t end = 0;

  // The last timestamp that belongs to the window.
  int64_t max_timestamp() const { return end - 1; }
  // True if the windows overlap or touch (Flink's rule for merging sessions).
  bool intersects(const TimeWindow& o) const { return start <= o.end && end >= o.start; }
  // The smallest window that contains both.
  TimeWindow cover(const TimeWindow& o) const {
    return TimeWindow{std::min(start, o.start), std::max(end, o.end)};
  }
  friend bool operator==(const TimeWindow&, const TimeWindow&) = default;
  friend auto operator<=>(const TimeWindow&, const TimeWindow&) = default;
  SLUICE_FIELDS(start, end)
};

// The one window of GlobalWindows: all of time.
struct GlobalWindow {
  int64_t max_timestamp() const { return kMaxWatermark; }
  friend bool operator==(const GlobalWindow&, const GlobalWindow&) = default;
  friend auto operator<=>(const GlobalWindow&, const GlobalWindow&) = default;
};

template <>
struct Serializer<GlobalWindow> {
  static void write(DataOutput&, const GlobalWindow&) {}
  static void read(DataInput&, GlobalWindow&) {}
};

namespace internal {

inline int64_t floor_mod(int64_t a, int64_t m) {
  int64_t r = a % m;
  return r < 0 ? r + m : r;
}
// The largest t' <= t with t' = offset (mod step).
inline int64_t align_down(int64_t t, int64_t offset, int64_t step) {
  return t - floor_mod(t - offset, step);
}
// The smallest t' >= t with t' = offset (mod step).
inline int64_t align_up(int64_t t, int64_t offset, int64_t step) {
  return t + floor_mod(offset - t, step);
}
inline int64_t saturating_add(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r)) return b > 0 ? kMaxWatermark : kMinWatermark;
  return r;
}

}  // namespace internal

// ---------------------------------------------------------------------------------------------
// Triggers.

enum class TriggerResult { kContinue, kFire, kPurge, kFireAndPurge };

inline bool trigger_fires(TriggerResult r) {
  return r == TriggerResult::kFire || r == TriggerResult::kFireAndPurge;
}
inline bool trigger_purges(TriggerResult r) {
  return r == TriggerResult::kPurge || r == TriggerResult::kFireAndPurge;
}

// What a trigger sees of the window operator: time, and the timers of the current key and
// window (a timer calls the trigger's on_event_time / on_processing_time with that window).
class TriggerContext {
 public:
  virtual ~TriggerContext() = default;
  virtual int64_t current_watermark() const = 0;
  virtual int64_t current_processing_time() const = 0;
  virtual void register_event_time_timer(int64_t time) = 0;
  virtual void register_processing_time_timer(int64_t time) = 0;
  virtual void delete_event_time_timer(int64_t time) = 0;
  virtual void delete_processing_time_timer(int64_t time) = 0;
};

// A trigger is a class with these const methods, as templates over the window type W or for one
// window type (see EventTimeTrigger):
//   TriggerResult on_element(int64_t timestamp, const W& w, int64_t& count, TriggerContext& ctx);
//   TriggerResult on_event_time(int64_t time, const W& w, TriggerContext& ctx);
//   TriggerResult on_processing_time(int64_t time, const W& w, TriggerContext& ctx);
//   bool can_merge();                                  // usable with session windows
//   void on_merge(const W& merged, TriggerContext& ctx);
//   void clear(const W& w, TriggerContext& ctx);       // delete the timers it registered
// `count` is the number of elements the window received since the trigger last set it to 0
// (the operator adds them up when windows merge). Triggers are shared by the subtasks and must
// keep no mutable state of their own.

// Fires once the watermark passes the window's end, and again for every late element within
// the allowed lateness. The default of event-time assigners.
struct EventTimeTrigger {
  static EventTimeTrigger create() { return {}; }
  template <class W>
  TriggerResult on_element(int64_t, const W& w, int64_t&, TriggerContext& ctx) const {
    if (w.max_timestamp() <= ctx.current_watermark()) return TriggerResult::kFire;
    ctx.register_event_time_timer(w.max_timestamp());
    return TriggerResult::kContinue;
  }
  template <class W>
  TriggerResult on_event_time(int64_t time, const W& w, TriggerContext&) const {
    return time == w.max_timestamp() ? TriggerResult::kFire : TriggerResult::kContinue;
  }
  template <class W>
  TriggerResult on_processing_time(int64_t, const W&, TriggerContext&) const {
    return TriggerResult::kContinue;
  }
  bool can_merge() const { return true; }
  template <class W>
  void on_merge(const W& w, TriggerContext& ctx) const {
    if (w.max_timestamp() > ctx.current_watermark())
      ctx.register_event_time_timer(w.max_timestamp());
  }
  template <class W>
  void clear(const W& w, TriggerContext& ctx) const {
    ctx.delete_event_time_timer(w.max_timestamp());
  }
};

// Fires when processing time reaches the window's end. The default of processing-time assigners.
struct ProcessingTimeTrigger {
  static ProcessingTimeTrigger create() { return {}; }
  template <class W>
  TriggerResult on_element(int64_t, const W& w, int64_t&, TriggerContext& ctx) const {
    ctx.register_processing_time_timer(w.max_timestamp());
    return TriggerResult::kContinue;
  }
  template <class W>
  TriggerResult on_event_time(int64_t, const W&, TriggerContext&) const {
    return TriggerResult::kContinue;
  }
  template <class W>
  TriggerResult on_processing_time(int64_t time, const W& w, TriggerContext&) const {
    return time == w.max_timestamp() ? TriggerResult::kFire : TriggerResult::kContinue;
  }
  bool can_merge() const { return true; }
  template <class W>
  void on_merge(const W& w, TriggerContext& ctx) const {
    if (w.max_timestamp() > ctx.current_processing_time()) {
      ctx.register_processing_time_timer(w.max_timestamp());
    }
  }
  template <class W>
  void clear(const W& w, TriggerContext& ctx) const {
    ctx.delete_processing_time_timer(w.max_timestamp());
  }
};

// The parts of a trigger that uses no timers and keeps nothing of its own.
struct TimerlessTrigger {
  template <class W>
  TriggerResult on_event_time(int64_t, const W&, TriggerContext&) const {
    return TriggerResult::kContinue;
  }
  template <class W>
  TriggerResult on_processing_time(int64_t, const W&, TriggerContext&) const {
    return TriggerResult::kContinue;
  }
  bool can_merge() const { return true; }
  template <class W>
  void on_merge(const W&, TriggerContext&) const {}
  template <class W>
  void clear(const W&, TriggerContext&) const {}
};

// Never fires. The default of GlobalWindows.
struct NeverTrigger : TimerlessTrigger {
  template <class W>
  TriggerResult on_element(int64_t, const W&, int64_t&, TriggerContext&) const {
    return TriggerResult::kContinue;
  }
};

// Fires each time the window has received `n` more elements (Flink's CountTrigger: it does not
// purge; wrap it in PurgingTrigger::of for count windows that start over after each firing).
class CountTrigger : public TimerlessTrigger {
 public:
  static CountTrigger of(int64_t n) {
    if (n < 1) throw std::invalid_argument("CountTrigger needs a count of at least 1");
    return CountTrigger(n);
  }
  template <class W>
  TriggerResult on_element(int64_t, const W&, int64_t& count, TriggerContext&) const {
    if (count < n_) return TriggerResult::kContinue;
    count = 0;
    return TriggerResult::kFire;
  }

 private:
  explicit CountTrigger(int64_t n) : n_(n) {}
  int64_t n_;
};

// Turns every firing of `inner` into a firing that also purges the window's contents.
template <class Tr>
class PurgingTriggerOf {
 public:
  explicit PurgingTriggerOf(Tr inner) : inner_(std::move(inner)) {}
  template <class W>
  TriggerResult on_element(int64_t ts, const W& w, int64_t& count, TriggerContext& ctx) const {
    return purge(inner_.on_element(ts, w, count, ctx));
  }
  template <class W>
  TriggerResult on_event_time(int64_t time, const W& w, TriggerContext& ctx) const {
    return purge(inner_.on_event_time(time, w, ctx));
  }
  template <class W>
  TriggerResult on_processing_time(int64_t time, const W& w, TriggerContext& ctx) const {
    return purge(inner_.on_processing_time(time, w, ctx));
  }
  bool can_merge() const { return inner_.can_merge(); }
  template <class W>
  void on_merge(const W& w, TriggerContext& ctx) const {
    inner_.on_merge(w, ctx);
  }
  template <class W>
  void clear(const W& w, TriggerContext& ctx) const {
    inner_.clear(w, ctx);
  }

 private:
  static TriggerResult purge(TriggerResult r) {
    return trigger_fires(r) ? TriggerResult::kFireAndPurge : r;
  }
  Tr inner_;
};

struct PurgingTrigger {
  template <class Tr>
  static PurgingTriggerOf<Tr> of(Tr inner) {
    return PurgingTriggerOf<Tr>(std::move(inner));
  }
};

// The window operator's view of a trigger of any type, for windows of type W.
template <class W>
class WindowTrigger {
 public:
  virtual ~WindowTrigger() = default;
  virtual TriggerResult on_element(int64_t ts, const W& w, int64_t& count,
                                   TriggerContext& ctx) const = 0;
  virtual TriggerResult on_event_time(int64_t time, const W& w, TriggerContext& ctx) const = 0;
  virtual TriggerResult on_processing_time(int64_t time, const W& w, TriggerContext& ctx) const = 0;
  virtual bool can_merge() const = 0;
  virtual void on_merge(const W& w, TriggerContext& ctx) const = 0;
  virtual void clear(const W& w, TriggerContext& ctx) const = 0;
};

template <class W, class Tr>
class TriggerAdapter final : public WindowTrigger<W> {
 public:
  explicit TriggerAdapter(Tr t) : t_(std::move(t)) {}
  TriggerResult on_element(int64_t ts, const W& w, int64_t& count,
                           TriggerContext& ctx) const override {
    return t_.on_element(ts, w, count, ctx);
  }
  TriggerResult on_event_time(int64_t time, const W& w, TriggerContext& ctx) const override {
    return t_.on_event_time(time, w, ctx);
  }
  TriggerResult on_processing_time(int64_t time, const W& w, TriggerContext& ctx) const override {
    return t_.on_processing_time(time, w, ctx);
  }
  bool can_merge() const override { return t_.can_merge(); }
  void on_merge(const W& w, TriggerContext& ctx) const override { t_.on_merge(w, ctx); }
  void clear(const W& w, TriggerContext& ctx) const override { t_.clear(w, ctx); }

 private:
  Tr t_;
};

// ---------------------------------------------------------------------------------------------
// Window assigners. Each has window_type, default_trigger, kEventTime (its time is the record's
// timestamp, else processing time), kMerging (session windows) and assign(time, windows).

namespace internal {

// Windows of `size` starting every `slide` ms at offset + k * slide; tumbling when slide == size.
template <bool EventTime>
class AlignedWindows {
 public:
  using window_type = TimeWindow;
  using default_trigger = std::conditional_t<EventTime, EventTimeTrigger, ProcessingTimeTrigger>;
  static constexpr bool kEventTime = EventTime;
  static constexpr bool kMerging = false;
  static constexpr bool kAligned = true;

  // The windows that contain `t`, latest first.
  void assign(int64_t t, std::vector<TimeWindow>& out) const {
    out.clear();
    for (int64_t s = align_down(t, offset_, slide_); s > t - size_; s -= slide_) {
      out.push_back(TimeWindow{s, s + size_});
    }
  }
  int64_t size() const { return size_; }
  int64_t slide() const { return slide_; }
  int64_t offset() const { return offset_; }

 protected:
  AlignedWindows(int64_t size, int64_t slide, int64_t offset)
      : size_(size), slide_(slide), offset_(offset) {
    if (size <= 0 || slide <= 0) {
      throw std::invalid_argument("window size and slide must be positive");
    }
    if (offset <= -slide || offset >= slide) {
      throw std::invalid_argument("window offset must be smaller than the slide (or size)");
    }
  }

 private:
  int64_t size_;
  int64_t slide_;
  int64_t offset_;
};

// One window [t, t + gap) per record; windows that overlap or touch merge.
template <bool EventTime>
class SessionWindows {
 public:
  using window_type = TimeWindow;
  using default_trigger = std::conditional_t<EventTime, EventTimeTrigger, ProcessingTimeTrigger>;
  static constexpr bool kEventTime = EventTime;
  static constexpr bool kMerging = true;
  static constexpr bool kAligned = false;

  void assign(int64_t t, std::vector<TimeWindow>& out) const {
    out.clear();
    out.push_back(TimeWindow{t, t + gap_});
  }
  int64_t gap() const { return gap_; }

 protected:
  explicit SessionWindows(int64_t gap) : gap_(gap) {
    if (gap <= 0) throw std::invalid_argument("the session gap must be positive");
  }

 private:
  int64_t gap_;
};

}  // namespace internal

class TumblingEventTimeWindows final : public internal::AlignedWindows<true> {
 public:
  static TumblingEventTimeWindows of(
      std::chrono::milliseconds size,
      std::chrono::milliseconds offset = std::chrono::milliseconds(0)) {
    return TumblingEventTimeWindows(size.count(), offset.count());
  }

 private:
  TumblingEventTimeWindows(int64_t size, int64_t offset) : AlignedWindows(size, size, offset) {}
};

class TumblingProcessingTimeWindows final : public internal::AlignedWindows<false> {
 public:
  static TumblingProcessingTimeWindows of(
      std::chrono::milliseconds size,
      std::chrono::milliseconds offset = std::chrono::milliseconds(0)) {
    return TumblingProcessingTimeWindows(size.count(), offset.count());
  }

 private:
  TumblingProcessingTimeWindows(int64_t size, int64_t offset)
      : AlignedWindows(size, size, offset) {}
};

class SlidingEventTimeWindows final : public internal::AlignedWindows<true> {
 public:
  static SlidingEventTimeWindows of(
      std::chrono::milliseconds size, std::chrono::milliseconds slide,
      std::chrono::milliseconds offset = std::chrono::milliseconds(0)) {
    return SlidingEventTimeWindows(size.count(), slide.count(), offset.count());
  }

 private:
  using AlignedWindows::AlignedWindows;
};

class SlidingProcessingTimeWindows final : public internal::AlignedWindows<false> {
 public:
  static SlidingProcessingTimeWindows of(
      std::chrono::milliseconds size, std::chrono::milliseconds slide,
      std::chrono::milliseconds offset = std::chrono::milliseconds(0)) {
    return SlidingProcessingTimeWindows(size.count(), slide.count(), offset.count());
  }

 private:
  using AlignedWindows::AlignedWindows;
};

class EventTimeSessionWindows final : public internal::SessionWindows<true> {
 public:
  static EventTimeSessionWindows with_gap(std::chrono::milliseconds gap) {
    return EventTimeSessionWindows(gap.count());
  }

 private:
  using SessionWindows::SessionWindows;
};

class ProcessingTimeSessionWindows final : public internal::SessionWindows<false> {
 public:
  static ProcessingTimeSessionWindows with_gap(std::chrono::milliseconds gap) {
    return ProcessingTimeSessionWindows(gap.count());
  }

 private:
  using SessionWindows::SessionWindows;
};

// Every record in one window per key, which never fires by itself: give it a trigger, e.g.
// PurgingTrigger::of(CountTrigger::of(n)) for windows of n records.
class GlobalWindows final {
 public:
  using window_type = GlobalWindow;
  using default_trigger = NeverTrigger;
  static constexpr bool kEventTime = false;
  static constexpr bool kMerging = false;
  static constexpr bool kAligned = false;
  static GlobalWindows create() { return {}; }
  void assign(int64_t, std::vector<GlobalWindow>& out) const { out.assign(1, GlobalWindow{}); }
};

// ---------------------------------------------------------------------------------------------
// Window functions.

// What a ProcessWindowFunction sees besides the elements.
template <class W>
class WindowContext : public SideOutputContext {
 public:
  virtual const W& window() const = 0;
  virtual int64_t current_watermark() const = 0;
  virtual int64_t current_processing_time() const = 0;
};

// Evaluates a window of a keyed stream with all its elements (or, after aggregate(agg, fn) or
// reduce(f, fn), with the one pre-aggregated value). One copy per subtask.
template <class IN, class OUT, class K, class W>
class ProcessWindowFunction {
 public:
  using input_type = IN;
  using output_type = OUT;
  using key_type = K;
  using window_type = W;
  using Context = WindowContext<W>;
  virtual ~ProcessWindowFunction() = default;
  virtual void process(const K& key, Context& ctx, const std::vector<IN>& elements,
                       Collector<OUT>& out) = 0;
};

// The same for window_all: no key.
template <class IN, class OUT, class W>
class ProcessAllWindowFunction {
 public:
  using input_type = IN;
  using output_type = OUT;
  using window_type = W;
  using Context = WindowContext<W>;
  virtual ~ProcessAllWindowFunction() = default;
  virtual void process(Context& ctx, const std::vector<IN>& elements, Collector<OUT>& out) = 0;
};

}  // namespace sluice
