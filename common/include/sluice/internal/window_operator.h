// The window operator: assigns records to windows, keeps their contents or accumulators in keyed
// state, fires them on their triggers' timers and emits the results (see sluice/windows.h for the
// API), and the element types of windowed co-group and join.
#pragma once

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "sluice/functions.h"
#include "sluice/internal/keyed_operators.h"
#include "sluice/internal/timers.h"
#include "sluice/serializer.h"
#include "sluice/state.h"
#include "sluice/window_assigners.h"

namespace sluice::internal {

// A window operator's per-key contents: windows (or panes) and their slots, kept sorted by
// window in one vector. A key has few windows at a time, and records mostly go to the latest
// one, so a flat map beats a tree: no node per window, lookups from the back, contiguous merges.
// Windows leave from the front (the oldest end first): erasing a prefix moves a start position,
// and the vector is compacted only when it would otherwise grow. Serialized as std::map<W, S>
// is (a count, then the sorted (window, slot) pairs).
template <class W, class S>
class WindowMap {
 public:
  using value_type = std::pair<W, S>;
  using iterator = typename std::vector<value_type>::iterator;
  using const_iterator = typename std::vector<value_type>::const_iterator;

  bool empty() const { return head_ == v_.size(); }
  size_t size() const { return v_.size() - head_; }
  iterator begin() { return v_.begin() + static_cast<ptrdiff_t>(head_); }
  iterator end() { return v_.end(); }
  const_iterator begin() const { return v_.begin() + static_cast<ptrdiff_t>(head_); }
  const_iterator end() const { return v_.end(); }
  auto rbegin() { return v_.rbegin(); }
  auto rbegin() const { return v_.rbegin(); }

  // The first entry whose window is not below `w`; searched from the back (recent windows).
  iterator lower_bound(const W& w) { return v_.begin() + static_cast<ptrdiff_t>(lower_index(w)); }
  const_iterator lower_bound(const W& w) const {
    return v_.begin() + static_cast<ptrdiff_t>(lower_index(w));
  }
  iterator find(const W& w) {
    auto it = lower_bound(w);
    return it != v_.end() && it->first == w ? it : v_.end();
  }
  std::pair<iterator, bool> try_emplace(const W& w) { return emplace(w, S{}); }
  std::pair<iterator, bool> emplace(const W& w, S s) {
    size_t i = lower_index(w);
    if (i < v_.size() && v_[i].first == w) return {v_.begin() + static_cast<ptrdiff_t>(i), false};
    if (head_ > 0 && v_.size() == v_.capacity()) {
      i -= head_;
      compact();
    }
    return {v_.emplace(v_.begin() + static_cast<ptrdiff_t>(i), w, std::move(s)), true};
  }
  iterator erase(iterator it) { return erase(it, it + 1); }
  iterator erase(iterator first, iterator last) {
    if (first == last) return first;
    if (first != begin()) return v_.erase(first, last);
    if (last == end()) {
      v_.clear();
      head_ = 0;
      return v_.end();
    }
    for (auto it = first; it != last; ++it) it->second = S{};  // frees what a slot holds
    head_ += static_cast<size_t>(last - first);
    return last;
  }

  // Starts loading the entries into the cache (the first kPrefetchBytes of them).
  void prefetch() const {
    constexpr size_t kPrefetchBytes = 1024;
    const char* p = reinterpret_cast<const char*>(v_.data() + head_);
    const char* end = reinterpret_cast<const char*>(v_.data() + v_.size());
    if (end - p > static_cast<ptrdiff_t>(kPrefetchBytes)) end = p + kPrefetchBytes;
    for (; p < end; p += 64) __builtin_prefetch(p);
  }

  // The entries, in order (compacted first).
  std::vector<value_type>& entries() {
    compact();
    return v_;
  }

 private:
  void compact() {
    if (head_ == 0) return;
    v_.erase(v_.begin(), v_.begin() + static_cast<ptrdiff_t>(head_));
    head_ = 0;
  }
  size_t lower_index(const W& w) const {
    size_t i = v_.size();
    while (i > head_ && !(v_[i - 1].first < w)) --i;
    return i;
  }
  std::vector<value_type> v_;  // v_[head_..] are the entries; v_[..head_] were erased
  size_t head_ = 0;
};

// For HeapStateTable::prefetch: the map's entries, not only the map.
template <class W, class S>
void prefetch_value(const WindowMap<W, S>& m) {
  __builtin_prefetch(&m);
  m.prefetch();
}

// A pane's contents: its accumulator only (a pane is never empty and no trigger counts its
// elements), serialized as a window's slot (accumulator, element count, empty flag) with count
// 0 and empty false, so that window state has one format whichever the operator keeps.
template <class ACC>
struct PaneSlot {
  ACC acc{};
};
}  // namespace sluice::internal

namespace sluice {

template <class ACC>
struct Serializer<internal::PaneSlot<ACC>> {
  static void write(DataOutput& out, const internal::PaneSlot<ACC>& s) {
    Serializer<ACC>::write(out, s.acc);
    Serializer<int64_t>::write(out, 0);
    Serializer<bool>::write(out, false);
  }
  static void read(DataInput& in, internal::PaneSlot<ACC>& s) {
    Serializer<ACC>::read(in, s.acc);
    int64_t count;
    Serializer<int64_t>::read(in, count);
    bool empty;
    Serializer<bool>::read(in, empty);
  }
};

template <class W, class S>
struct Serializer<internal::WindowMap<W, S>> {
  using Entries = std::vector<std::pair<W, S>>;
  static void write(DataOutput& out, const internal::WindowMap<W, S>& m) {
    out.write_varint(m.size());
    for (const auto& e : m) Serializer<std::pair<W, S>>::write(out, e);
  }
  static void read(DataInput& in, internal::WindowMap<W, S>& m) {
    Entries& e = m.entries();
    Serializer<Entries>::read(in, e);
    std::stable_sort(e.begin(), e.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    e.erase(std::unique(e.begin(), e.end(),
                        [](const auto& a, const auto& b) { return a.first == b.first; }),
            e.end());
  }
};

}  // namespace sluice

namespace sluice::internal {

// What a window keeps (acc_type) and how it becomes output. kIncremental: contents can be kept
// per pane and merged.
template <class T, class F>
struct ReducePolicy {
  using acc_type = std::optional<T>;
  using result_type = T;
  using output_type = T;
  static constexpr bool kIncremental = true;
  F f;
  acc_type create() const { return std::nullopt; }
  void add(acc_type& acc, T&& v) {
    if (acc) {
      *acc = f(static_cast<const T&>(*acc), static_cast<const T&>(v));
    } else {
      acc = std::move(v);
    }
  }
  acc_type merge(acc_type a, const acc_type& b) {
    if (!b) return a;
    if (!a) return b;
    return acc_type(f(static_cast<const T&>(*a), static_cast<const T&>(*b)));
  }
  std::optional<T> result(const acc_type& acc) { return acc; }
  template <class K, class W>
  void emit(const K&, const acc_type& acc, WindowContext<W>&, Collector<T>& out) {
    if (acc) out.collect(*acc);
  }
};

template <class T, class AGG>
struct AggregatePolicy {
  using acc_type = typename AGG::accumulator_type;
  using result_type = typename AGG::result_type;
  using output_type = result_type;
  static constexpr bool kIncremental = true;
  AGG agg;
  acc_type create() { return agg.create_accumulator(); }
  void add(acc_type& acc, T&& v) { agg.add(static_cast<const T&>(v), acc); }
  acc_type merge(acc_type a, const acc_type& b) { return agg.merge(std::move(a), b); }
  std::optional<result_type> result(const acc_type& acc) { return agg.get_result(acc); }
  template <class K, class W>
  void emit(const K&, const acc_type& acc, WindowContext<W>&, Collector<output_type>& out) {
    out.emit(agg.get_result(acc));
  }
};

// An incremental policy whose result is handed to a ProcessWindowFunction.
template <class Inner, class F>
struct WindowFunctionPolicy {
  using acc_type = typename Inner::acc_type;
  using output_type = typename F::output_type;
  static constexpr bool kIncremental = true;
  Inner inner;
  F fn;
  acc_type create() { return inner.create(); }
  template <class T>
  void add(acc_type& acc, T&& v) {
    inner.add(acc, std::forward<T>(v));
  }
  acc_type merge(acc_type a, const acc_type& b) { return inner.merge(std::move(a), b); }
  template <class K, class W>
  void emit(const K& key, const acc_type& acc, WindowContext<W>& ctx, Collector<output_type>& out) {
    auto r = inner.result(acc);
    if (!r) return;
    std::vector<typename Inner::result_type> one;
    one.push_back(std::move(*r));
    fn.process(key, ctx, one, out);
  }
};

// Keeps every element; the function sees them all.
template <class T, class F>
struct ProcessPolicy {
  using acc_type = std::vector<T>;
  using output_type = typename F::output_type;
  static constexpr bool kIncremental = false;
  F fn;
  acc_type create() const { return {}; }
  void add(acc_type& acc, T&& v) { acc.push_back(std::move(v)); }
  acc_type merge(acc_type a, const acc_type& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
  }
  template <class K, class W>
  void emit(const K& key, const acc_type& acc, WindowContext<W>& ctx, Collector<output_type>& out) {
    if (!acc.empty()) fn.process(key, ctx, acc, out);
  }
};

// A ProcessAllWindowFunction used where a keyed one is expected (window_all's constant key).
template <class F>
struct AllWindowFunctionAdapter {
  using output_type = typename F::output_type;
  F fn;
  template <class K, class W, class IN>
  void process(const K&, WindowContext<W>& ctx, const std::vector<IN>& elements,
               Collector<output_type>& out) {
    fn.process(ctx, elements, out);
  }
};

// The key of window_all: one for every record.
struct ConstantKey {
  template <class T>
  int operator()(const T&) const {
    return 0;
  }
};

// What a windowed stream was configured with, for its operator.
template <class T, class W>
struct WindowSettings {
  int64_t allowed_lateness = 0;
  std::optional<OutputTag<T>> late_tag;
  std::shared_ptr<const WindowTrigger<W>> trigger;  // null: the assigner's default
};

// ---------------------------------------------------------------------------------------------
// The window operator.

template <class T, class K, class KS, class A, class P>
class WindowOperator final : public KeyedOneInputOperator<T, K> {
 public:
  using W = typename A::window_type;
  using ACC = typename P::acc_type;
  using OUT = typename P::output_type;

  WindowOperator(std::string name, KS ks, A assigner, P policy, WindowSettings<T, W> settings,
                 Collector<OUT>* out)
      : KeyedOneInputOperator<T, K>(std::move(name)),
        ks_(std::move(ks)),
        assigner_(std::move(assigner)),
        policy_(std::move(policy)),
        lateness_(A::kEventTime ? settings.allowed_lateness : 0),
        late_tag_(std::move(settings.late_tag)),
        trigger_(std::move(settings.trigger)),
        out_(out) {
    if constexpr (A::kAligned) {
      panes_ = !trigger_ && P::kIncremental;
      size_ = assigner_.size();
      slide_ = assigner_.slide();
      offset_ = assigner_.offset();
      pane_ = std::gcd(size_, slide_);
    }
    if (!trigger_) {
      trigger_ = std::make_shared<TriggerAdapter<W, typename A::default_trigger>>(
          typename A::default_trigger{});
    }
    tctx_.op = this;
    wctx_.op = this;
  }

  void open(TaskRuntime& rt) override {
    rt_ = &rt;
    this->create_timer_service(rt);
    // One state either way: panes and windows have the same serialized form.
    if (panes_) {
      panes_table_ = &this->backend_->template table<Panes>("window-contents", std::nullopt);
    } else {
      contents_ = &this->backend_->template table<Contents>("window-contents", std::nullopt);
    }
    this->timers_->start();
  }
  // Windows that fire on a record emit with their own timestamps; the record's is restored
  // afterwards for the consumers of the same record after this one.
  void emit(T&& v) override {
    this->count_in();
    int64_t record_ts = this->element_timestamp();
    SLUICE_USER_CALL(this->name_, {
      key_ = ks_(static_cast<const T&>(v));
      this->set_current_key(key_);
      int64_t ts = A::kEventTime ? record_ts : rt_->current_processing_time();
      if (A::kEventTime && ts == kNoTimestamp) {
        throw std::logic_error(
            "an event-time window got a record without a timestamp: call "
            "assign_timestamps_and_watermarks before the window");
      }
      if constexpr (A::kAligned) {
        if (panes_) {
          add_to_pane(ts, std::move(v));
          this->set_element_timestamp(record_ts);
          return;
        }
      }
      if constexpr (A::kMerging) {
        add_merging(ts, std::move(v));
      } else {
        add_to_windows(ts, std::move(v));
      }
      this->set_element_timestamp(record_ts);
    });
  }
  // Both keep the chain's record timestamp as they found it: a watermark can arrive while an
  // operator before this one is in the middle of passing a record on.
  void process_watermark(int64_t watermark) override {
    int64_t ts = this->element_timestamp();
    auto fire = [this](const InternalTimer& t) { on_timer(t, true); };
    SLUICE_USER_CALL(this->name_, {
      if (panes_) {
        // While a timer fires, the panes of the next timer's key are loaded.
        this->timers_->advance_watermark(watermark, fire,
                                         [this](int key_group, std::string_view key) {
                                           panes_table_->prefetch(key_group, key);
                                         });
      } else {
        this->timers_->advance_watermark(watermark, fire);
      }
    });
    this->set_element_timestamp(ts);
    this->output_watermark(watermark);
  }
  void on_processing_time(int64_t now) override {
    int64_t ts = this->element_timestamp();
    SLUICE_USER_CALL(this->name_, this->timers_->advance_processing_time(
                                      now, [this](const InternalTimer& t) { on_timer(t, false); }));
    this->set_element_timestamp(ts);
  }
  SideOutputs* side_outputs() override { return &side_; }
  int64_t num_late_records_dropped() const override { return late_dropped_; }

 private:
  struct Slot {
    ACC acc{};
    int64_t count = 0;  // the trigger's element count
    bool empty = true;  // no element since the window was created or purged
    SLUICE_FIELDS(acc, count, empty)
  };
  // Per key: the contents of each window (not in pane mode).
  using Contents = internal::WindowMap<W, Slot>;
  // Per key in pane mode: the accumulator of each pane (see internal::PaneSlot).
  using PaneSlot = internal::PaneSlot<ACC>;
  using Panes = internal::WindowMap<W, PaneSlot>;

  struct TriggerCtx final : TriggerContext {
    WindowOperator* op = nullptr;
    std::string ns;  // the serialized window
    int64_t current_watermark() const override { return op->timers_->current_watermark(); }
    int64_t current_processing_time() const override { return op->rt_->current_processing_time(); }
    void register_event_time_timer(int64_t t) override {
      op->timers_->register_event_time_timer(t, ns);
    }
    void register_processing_time_timer(int64_t t) override {
      op->timers_->register_processing_time_timer(t, ns);
    }
    void delete_event_time_timer(int64_t t) override {
      op->timers_->delete_event_time_timer(t, ns);
    }
    void delete_processing_time_timer(int64_t t) override {
      op->timers_->delete_processing_time_timer(t, ns);
    }
  };
  struct WindowCtx final : WindowContext<W> {
    WindowOperator* op = nullptr;
    W w{};
    const W& window() const override { return w; }
    int64_t current_watermark() const override { return op->timers_->current_watermark(); }
    int64_t current_processing_time() const override { return op->rt_->current_processing_time(); }
    SideOutputs& side_outputs() override { return op->side_; }
  };

  Contents& contents() {
    Contents* c = contents_->find_for_write();
    return c ? *c : contents_->put(Contents{});
  }
  Panes& panes() {
    Panes* c = panes_table_->find_for_write();
    return c ? *c : panes_table_->put(Panes{});
  }
  // Writes back the current key's contents, or removes them when empty.
  void store(Contents& c) {
    if (c.empty()) {
      contents_->erase();
    } else {
      contents_->modified();
    }
  }
  void store(Panes& c) {
    if (c.empty()) {
      panes_table_->erase();
    } else {
      panes_table_->modified();
    }
  }
  TriggerCtx& trigger_ctx(const W& w) {
    tctx_.ns.clear();
    DataOutput o(tctx_.ns);
    Serializer<W>::write(o, w);
    return tctx_;
  }
  int64_t watermark() const { return this->timers_->current_watermark(); }
  int64_t cleanup_time(const W& w) const {
    return A::kEventTime ? internal::saturating_add(w.max_timestamp(), lateness_)
                         : w.max_timestamp();
  }
  bool window_late(const W& w) const { return A::kEventTime && cleanup_time(w) <= watermark(); }
  bool element_late(int64_t ts) const {
    return A::kEventTime && internal::saturating_add(ts, lateness_) <= watermark();
  }
  // The timer that removes the window's state (none for a window that never ends).
  void register_cleanup_timer(const W& w) {
    int64_t t = cleanup_time(w);
    if (t == kMaxWatermark) return;
    TriggerCtx& c = trigger_ctx(w);
    if (A::kEventTime) {
      c.register_event_time_timer(t);
    } else {
      c.register_processing_time_timer(t);
    }
  }
  void delete_cleanup_timer(const W& w) {
    int64_t t = cleanup_time(w);
    if (t == kMaxWatermark) return;
    TriggerCtx& c = trigger_ctx(w);
    if (A::kEventTime) {
      c.delete_event_time_timer(t);
    } else {
      c.delete_processing_time_timer(t);
    }
  }
  void late(T&& v, int64_t ts) {
    if (late_tag_) {
      this->set_element_timestamp(ts);
      side_.emit(*late_tag_, std::move(v));
    } else {
      ++late_dropped_;
    }
  }
  void emit_window(const K& key, const W& w, const ACC& acc) {
    this->set_element_timestamp(w.max_timestamp());
    wctx_.w = w;
    policy_.emit(key, acc, wctx_, *out_);
  }
  // Adds `v` to a window's slot and asks the trigger; `new_window`: the slot was just created.
  void add_to_slot(Slot& s, const W& w, int64_t ts, T&& v, bool new_window) {
    policy_.add(s.acc, std::move(v));
    s.empty = false;
    ++s.count;
    TriggerResult r = trigger_->on_element(ts, w, s.count, trigger_ctx(w));
    fire(r, nullptr, w, s);
    if (new_window) register_cleanup_timer(w);
  }
  // The key is key_ (for an element) or the one serialized in `key_bytes` (for a timer).
  void fire(TriggerResult r, const std::string* key_bytes, const W& w, Slot& s) {
    if (trigger_fires(r) && !s.empty) {
      emit_window(key_bytes ? deserialize<K>(*key_bytes) : key_, w, s.acc);
    }
    if (trigger_purges(r)) {
      s.acc = policy_.create();
      s.empty = true;
    }
  }

  // Windows kept one by one (custom triggers, process(), global windows).
  void add_to_windows(int64_t ts, T&& v) {
    assigner_.assign(ts, windows_);
    size_t last = windows_.size();
    for (size_t i = 0; i < windows_.size(); ++i) {
      if (!window_late(windows_[i])) last = i;
    }
    if (last == windows_.size()) {
      if (element_late(ts)) late(std::move(v), ts);
      return;
    }
    Contents& c = contents();
    for (size_t i = 0; i <= last; ++i) {
      const W& w = windows_[i];
      if (window_late(w)) continue;
      auto [it, created] = c.try_emplace(w);
      if (created) it->second.acc = policy_.create();
      add_to_slot(it->second, w, ts, i == last ? std::move(v) : T(v), created);
    }
    store(c);
  }

  // Session windows: the new window merges with the windows it overlaps or touches.
  void add_merging(int64_t ts, T&& v) {
    assigner_.assign(ts, windows_);
    W merged = windows_.front();
    Contents* existing = contents_->find_for_write();
    std::vector<W> overlapping;
    if (existing) {
      for (const auto& [w, s] : *existing) {
        if (w.intersects(merged)) overlapping.push_back(w);
      }
      for (const W& w : overlapping) merged = merged.cover(w);
    }
    if (window_late(merged)) {
      if (element_late(ts)) late(std::move(v), ts);
      return;
    }
    Contents& c = existing ? *existing : contents();
    bool new_window = !(overlapping.size() == 1 && overlapping.front() == merged);
    if (new_window) {
      Slot m;
      m.acc = policy_.create();
      for (const W& w : overlapping) {
        auto it = c.find(w);
        Slot& s = it->second;
        if (!s.empty) m.acc = policy_.merge(std::move(m.acc), s.acc);
        m.empty = m.empty && s.empty;
        m.count += s.count;
        trigger_->clear(w, trigger_ctx(w));
        delete_cleanup_timer(w);
        c.erase(it);
      }
      c.emplace(merged, std::move(m));
      if (!overlapping.empty()) trigger_->on_merge(merged, trigger_ctx(merged));
    }
    add_to_slot(c.find(merged)->second, merged, ts, std::move(v), new_window);
    store(c);
  }

  // Panes (tumbling and sliding windows, default trigger, incremental function). The windows
  // containing pane p start at the aligned s with p.end - size <= s <= p.start.
  //
  // Event time: a key with panes has one pane timer, at the next time one of its windows ends or
  // a pane is due for removal (next_pane_time); that timer fires the window, removes the panes
  // no window needs any more and asks for the next one. A new pane asks for a timer only when it
  // is due before the key's timer (a late record's pane), which it then replaces. Processing
  // time: each new pane also asks for a timer at its first window's end.
  int64_t pane_cleanup_time(int64_t last_start) const {
    return A::kEventTime ? internal::saturating_add(last_start + size_ - 1, lateness_)
                         : last_start + size_ - 1;
  }
  // The first and last start of the windows that contain pane p.
  int64_t first_window_start(const W& p) const {
    return internal::align_up(p.end - size_, offset_, slide_);
  }
  int64_t last_window_start(const W& p) const {
    return internal::align_down(p.start, offset_, slide_);
  }
  // The end - 1 of pane p's first window that ends after `done`, or its removal time if none.
  int64_t pane_due_time(const W& p, int64_t done) const {
    int64_t s = first_window_start(p);
    if (done >= s + size_ - 1) s = internal::align_up(done - size_ + 2, offset_, slide_);
    int64_t last = last_window_start(p);
    return s <= last ? s + size_ - 1 : pane_cleanup_time(last);
  }
  // The earliest time after `done` at which a window holding panes of `c` ends or a pane of `c`
  // is due for removal; every window ending at or before `done` has fired. `c` is not empty.
  int64_t next_pane_time(const Panes& c, int64_t done) const {
    // Panes are sorted by start, and so are their windows and removal times: the first pane is
    // the first to go, and the first pane with a window ending after `done` (found by binary
    // search: with allowed lateness many panes before it may have only fired windows) has the
    // earliest window end.
    int64_t next = pane_cleanup_time(last_window_start(c.begin()->first));
    auto open = std::partition_point(c.begin(), c.end(), [&](const auto& entry) {
      return last_window_start(entry.first) + size_ - 1 <= done;
    });
    return open == c.end() ? next : std::min(next, pane_due_time(open->first, done));
  }
  void register_pane_timer(int64_t t) {
    if (A::kEventTime) {
      this->timers_->register_event_time_timer(t);
    } else {
      this->timers_->register_processing_time_timer(t);
    }
  }
  void add_to_pane(int64_t ts, T&& v) {
    using internal::align_down;
    int64_t ps = align_down(ts, offset_, pane_);
    TimeWindow p{ps, ps + pane_};
    int64_t first = first_window_start(p);
    int64_t last = last_window_start(p);
    // What has fired already: processing-time windows are never late.
    int64_t fired = A::kEventTime ? watermark() : kMinWatermark;
    if (first > last || (A::kEventTime && pane_cleanup_time(last) <= fired)) {
      if (element_late(ts)) late(std::move(v), ts);
      return;
    }
    Panes& c = panes();
    PaneSlot* slot;
    if (!c.empty() && c.rbegin()->first == p) {
      slot = &c.rbegin()->second;  // most records: the key's newest pane
    } else if (auto pos = c.find(W(p)); pos != c.end()) {
      slot = &pos->second;
    } else {
      // A new pane. Without allowed lateness, every pane has a window still to fire, so a pane
      // after all others is not due before the key's timer.
      bool had_panes = !c.empty();
      bool after_timer = had_panes && lateness_ == 0 && c.rbegin()->first < W(p);
      int64_t key_timer =
          A::kEventTime && had_panes && !after_timer ? next_pane_time(c, fired) : kMaxWatermark;
      slot = &c.try_emplace(W(p)).first->second;
      slot->acc = policy_.create();
      if (!A::kEventTime || !had_panes) {
        register_pane_timer(pane_due_time(p, fired));
      } else if (!after_timer) {
        int64_t due = pane_due_time(p, fired);
        if (due < key_timer) {
          this->timers_->delete_event_time_timer(key_timer);
          register_pane_timer(due);
        }
      }
    }
    policy_.add(slot->acc, std::move(v));
    panes_table_->modified();
    // Windows that fired already but are within their allowed lateness fire again.
    for (int64_t s = first; s <= last && s + size_ - 1 <= fired; s += slide_) {
      if (internal::saturating_add(s + size_ - 1, lateness_) > fired) {
        fire_panes(c, key_, s);
      }
    }
  }
  // Emits the window starting at `s` from the panes it covers, if it has any.
  void fire_panes(const Panes& c, const K& key, int64_t s) {
    auto it = c.lower_bound(W{s, kMinWatermark});
    if (it == c.end() || it->first.start >= s + size_) return;
    ACC acc = it->second.acc;
    for (++it; it != c.end() && it->first.start < s + size_; ++it) {
      acc = policy_.merge(std::move(acc), it->second.acc);
    }
    emit_window(key, W{s, s + size_}, acc);
  }
  // A pane timer: fires the window ending at t + 1 (if t is a window's end), removes the panes
  // that no window needs any more and asks for the key's next pane timer.
  void on_pane_timer(const InternalTimer& t) {
    Panes* c = panes_table_->find_for_write();
    if (!c) return;
    bool window_end =
        t.time != kMaxWatermark && internal::floor_mod(t.time + 1 - size_ - offset_, slide_) == 0;
    if (window_end) fire_panes(*c, deserialize<K>(t.key), t.time + 1 - size_);
    // A pane is due for removal when its last window starts at or before t + 1 - size -
    // lateness, i.e. when it starts before the first window start after that time.
    int64_t x;
    if (t.time == kMaxWatermark) {
      c->erase(c->begin(), c->end());
    } else if (!__builtin_sub_overflow(t.time + 1 - size_, lateness_, &x)) {
      int64_t bound = internal::align_down(x, offset_, slide_) + slide_;
      auto keep = c->begin();
      while (keep != c->end() && keep->first.start < bound) ++keep;
      c->erase(c->begin(), keep);
    }
    if (!c->empty()) {
      // Without allowed lateness, the first pane left belongs to the next window when it starts
      // before that window's end: no need to search.
      bool next_window =
          window_end && lateness_ == 0 && c->begin()->first.start < t.time + 1 + slide_;
      register_pane_timer(next_window ? t.time + slide_ : next_pane_time(*c, t.time));
    }
    store(*c);
  }

  void on_timer(const InternalTimer& t, bool event_time) {
    if (event_time) {
      this->set_element_timestamp(t.time);
    } else {
      this->set_element_timestamp(kNoTimestamp);
    }
    if constexpr (A::kAligned) {
      if (panes_) {
        on_pane_timer(t);
        return;
      }
    }
    Contents* c = contents_->find_for_write();
    if (!c) return;
    W w = deserialize<W>(t.ns);
    auto it = c->find(w);
    if (it == c->end()) return;
    TriggerCtx& tc = trigger_ctx(w);
    TriggerResult r = event_time ? trigger_->on_event_time(t.time, w, tc)
                                 : trigger_->on_processing_time(t.time, w, tc);
    fire(r, &t.key, w, it->second);
    if (event_time == A::kEventTime && t.time == cleanup_time(w)) {
      trigger_->clear(w, trigger_ctx(w));
      c->erase(it);
    }
    store(*c);
  }

  KS ks_;
  A assigner_;
  P policy_;
  int64_t lateness_;
  std::optional<OutputTag<T>> late_tag_;
  std::shared_ptr<const WindowTrigger<W>> trigger_;
  Collector<OUT>* out_;
  TaskRuntime* rt_ = nullptr;
  StateTable<Contents>* contents_ = nullptr;  // windows kept one by one
  StateTable<Panes>* panes_table_ = nullptr;  // or panes
  bool panes_ = false;
  int64_t size_ = 0, slide_ = 0, offset_ = 0, pane_ = 0;
  K key_{};
  std::vector<W> windows_;
  TriggerCtx tctx_;
  WindowCtx wctx_;
  SideOutputs side_;
  int64_t late_dropped_ = 0;
};

// An element of either input.
template <class T1, class T2>
struct Tagged {
  int8_t side = 0;  // 0: first input, 1: second
  T1 first{};
  T2 second{};
  SLUICE_FIELDS(side, first, second)
};

template <class T1, class T2, class KS1, class KS2>
struct TaggedKey {
  KS1 ks1;
  KS2 ks2;
  auto operator()(const Tagged<T1, T2>& t) const {
    return t.side == 0 ? ks1(t.first) : ks2(t.second);
  }
};

// Splits a window's elements by input for f(const std::vector<T1>&, const std::vector<T2>&,
// Collector<OUT>&).
template <class T1, class T2, class OUT, class K, class W, class F>
class CoGroupWindowFunction final : public ProcessWindowFunction<Tagged<T1, T2>, OUT, K, W> {
 public:
  explicit CoGroupWindowFunction(F f) : f_(std::move(f)) {}
  void process(const K&, typename ProcessWindowFunction<Tagged<T1, T2>, OUT, K, W>::Context&,
               const std::vector<Tagged<T1, T2>>& elements, Collector<OUT>& out) override {
    first_.clear();
    second_.clear();
    for (const auto& e : elements) {
      if (e.side == 0) {
        first_.push_back(e.first);
      } else {
        second_.push_back(e.second);
      }
    }
    f_(static_cast<const std::vector<T1>&>(first_), static_cast<const std::vector<T2>&>(second_),
       out);
  }

 private:
  F f_;
  std::vector<T1> first_;
  std::vector<T2> second_;
};

}  // namespace sluice::internal
