// The timers of a keyed operator: event-time and processing-time, per key and namespace.
//
// A keyed operator (a keyed process function, a window) keeps its timers in an
// InternalTimerService. Timers live in two TimerQueues, one per time domain, each partitioned
// by key group like keyed state: a queue is a table of the operator's keyed state backend, so
// checkpoints store the timers of each key group beside its state and a restore at another
// parallelism hands them to the key group's new owner. A timer is (time, key, namespace); the
// namespace tells apart the timers of one key that mean different things (a window operator
// puts the window there; a process function leaves it empty). There is at most one timer per
// (key, namespace, time).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "sluice/functions.h"
#include "sluice/runtime.h"
#include "sluice/serializer.h"
#include "sluice/state.h"

namespace sluice {

struct InternalTimer {
  int64_t time = 0;
  int key_group = 0;
  std::string key;  // serialized key
  std::string ns;   // namespace bytes
};

// The timers of one time domain, ordered by (time, key group, key, namespace). Stored as entries
// of the backend's table format: key bytes, namespace bytes = the time (8 bytes, big-endian) then
// the timer's namespace, an unused touched time, an empty value.
//
// Each key group keeps its timers in a sorted vector consumed from the front, and a set beside
// it: timers are mostly registered in increasing time (a window asks for its next firing when
// it fires), so a new timer is usually appended to the vector, and firing moves a read position
// instead of freeing a node. A timer earlier than the vector's last goes into the set, and a
// timer removed from the middle of the vector is marked dead there, so that no operation costs
// more than a binary search or a set operation. Not thread-safe: the task's thread only.
class TimerQueue final : public StateTableBase {
 public:
  explicit TimerQueue(const KeyContext& ctx)
      : ctx_(ctx), groups_(static_cast<size_t>(std::max(ctx.num_key_groups, 0))) {}

  // Adds the timer; false when it exists already. Throws std::invalid_argument for a key group
  // outside the subtask's range.
  bool add(int64_t time, int key_group, std::string_view key, std::string_view ns) {
    Group& g = groups_[index(key_group)];
    const bool was_empty = g.empty();
    const int64_t old_head = was_empty ? 0 : g.front().time;
    auto pos = g.find_in_run(time, key, ns);
    if (pos != g.v.end()) {
      if (!pos->dead) return false;
      pos->dead = false;  // removed earlier, registered again
    } else if (g.late.count(Probe{time, key, ns}) > 0) {
      return false;
    } else if (g.v.size() == g.head || Less{}(g.v.back(), Probe{time, key, ns})) {
      g.v.push_back(Timer{time, std::string(key), std::string(ns)});
    } else {
      g.late.insert(Timer{time, std::string(key), std::string(ns)});
    }
    ++size_;
    ++g.changes;
    if (was_empty) {
      heads_.emplace(time, key_group);
    } else if (g.front().time != old_head) {
      heads_.erase({old_head, key_group});
      heads_.emplace(g.front().time, key_group);
    }
    return true;
  }
  // Removes the timer; false when there is none.
  bool remove(int64_t time, int key_group, std::string_view key, std::string_view ns) {
    Group& g = groups_[index(key_group)];
    if (g.empty()) return false;
    const int64_t old_head = g.front().time;
    auto pos = g.find_in_run(time, key, ns);
    if (pos != g.v.end() && !pos->dead) {
      pos->dead = true;
      g.skip_dead();
    } else if (auto it = g.late.find(Probe{time, key, ns}); it != g.late.end()) {
      g.late.erase(it);
    } else {
      return false;
    }
    removed(key_group, g, old_head);
    return true;
  }
  bool empty() const { return size_ == 0; }
  // The earliest timer's time; the queue must not be empty.
  int64_t next_time() const { return heads_.begin()->first; }
  // The earliest timer's key group and key, left in the queue; valid until the next change of
  // the queue. The queue must not be empty.
  std::pair<int, std::string_view> peek_key() const {
    const int kg = heads_.begin()->second;
    return {kg, groups_[index(kg)].front().key};
  }
  // Removes and returns the earliest timer; the queue must not be empty.
  InternalTimer pop() {
    const int kg = heads_.begin()->second;
    Group& g = groups_[index(kg)];
    InternalTimer t;
    t.key_group = kg;
    if (g.front_in_run()) {
      Timer& e = g.v[g.head++];
      t.time = e.time;
      t.key = std::move(e.key);
      t.ns = std::move(e.ns);
      g.skip_dead();
    } else {
      auto node = g.late.extract(g.late.begin());
      t.time = node.value().time;
      t.key = std::move(node.value().key);
      t.ns = std::move(node.value().ns);
    }
    removed(kg, g, t.time);
    return t;
  }

  // StateTableBase
  size_t size() const override { return size_; }
  uint64_t write_entries(int kg, std::string& out) const override {
    DataOutput o(out);
    std::string ns;
    const Group& g = groups_.at(index(kg));
    uint64_t n = 0;
    auto write = [&](const Timer& e) {
      state_internal::write_bytes(o, e.key);
      ns.clear();
      append_time(ns, e.time);
      ns += e.ns;
      state_internal::write_bytes(o, ns);
      Serializer<int64_t>::write(o, 0);
      state_internal::write_bytes(o, {});
      ++n;
    };
    for (size_t i = g.head; i < g.v.size(); ++i) {
      if (!g.v[i].dead) write(g.v[i]);
    }
    for (const Timer& e : g.late) write(e);
    return n;
  }
  void read_entries(int kg, DataInput& in, uint64_t count) override {
    for (uint64_t i = 0; i < count; ++i) {
      std::string_view key = state_internal::read_bytes(in);
      std::string_view ns = state_internal::read_bytes(in);
      int64_t touched;
      Serializer<int64_t>::read(in, touched);
      state_internal::read_bytes(in);
      if (ns.size() < 8) throw SerializationError("timer entry without a time");
      add(read_time(ns), kg, key, ns.substr(8));
    }
  }
  void append_keys(int, std::vector<std::string>&) const override {}
  uint64_t changes(int kg) const override { return groups_.at(index(kg)).changes; }

 private:
  struct Timer {
    int64_t time = 0;
    std::string key;
    std::string ns;
    bool dead = false;  // removed while in the middle of the run (never at its front)
  };
  // A timer to look up without copying its strings.
  struct Probe {
    int64_t time;
    std::string_view key;
    std::string_view ns;
  };
  // Orders timers and probes by (time, key, namespace).
  struct Less {
    using is_transparent = void;
    static std::tuple<int64_t, std::string_view, std::string_view> tie(const Timer& t) {
      return {t.time, t.key, t.ns};
    }
    static std::tuple<int64_t, std::string_view, std::string_view> tie(const Probe& p) {
      return {p.time, p.key, p.ns};
    }
    template <class A, class B>
    bool operator()(const A& a, const B& b) const {
      return tie(a) < tie(b);
    }
  };
  // A key group's timers: the run v[head..] sorted (v[..head] fired, their strings moved out;
  // v[head] never dead), and the timers that came out of order.
  struct Group {
    std::vector<Timer> v;
    size_t head = 0;
    std::set<Timer, Less> late;
    uint64_t changes = 0;  // timers added and removed so far
    bool empty() const { return head == v.size() && late.empty(); }
    bool front_in_run() const {
      return head < v.size() && (late.empty() || Less{}(v[head], *late.begin()));
    }
    const Timer& front() const { return front_in_run() ? v[head] : *late.begin(); }
    // The run's entry equal to the timer (dead or not), or v.end().
    std::vector<Timer>::iterator find_in_run(int64_t time, std::string_view key,
                                             std::string_view ns) {
      const Probe probe{time, key, ns};
      auto pos = std::lower_bound(v.begin() + static_cast<ptrdiff_t>(head), v.end(), probe, Less{});
      return pos != v.end() && !Less{}(probe, *pos) ? pos : v.end();
    }
    // Moves the front past dead entries, then drops the fired prefix once it is the larger
    // part, so that memory follows the live timers.
    void skip_dead() {
      while (head < v.size() && v[head].dead) ++head;
      if (head == v.size()) {
        v.clear();
        head = 0;
      } else if (head >= 64 && head * 2 >= v.size()) {
        v.erase(v.begin(), v.begin() + static_cast<ptrdiff_t>(head));
        head = 0;
      }
    }
  };

  static void append_time(std::string& out, int64_t t) {
    uint64_t u = static_cast<uint64_t>(t) ^ (uint64_t{1} << 63);  // orders like the signed value
    for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>((u >> (8 * i)) & 0xff));
  }
  static int64_t read_time(std::string_view b) {
    uint64_t u = 0;
    for (int i = 0; i < 8; ++i) u = (u << 8) | static_cast<unsigned char>(b[static_cast<size_t>(i)]);
    return static_cast<int64_t>(u ^ (uint64_t{1} << 63));
  }
  size_t index(int kg) const {
    size_t i = static_cast<size_t>(kg - ctx_.first_key_group);
    if (kg < ctx_.first_key_group || i >= groups_.size()) {
      throw std::invalid_argument("timer of key group " + std::to_string(kg) +
                                  " is outside this subtask's range");
    }
    return i;
  }
  // A timer of group `kg` is gone; `old_head` was the group's earliest time before.
  void removed(int kg, Group& g, int64_t old_head) {
    --size_;
    ++g.changes;
    if (g.empty() || g.front().time != old_head) {
      heads_.erase({old_head, kg});
      if (!g.empty()) heads_.emplace(g.front().time, kg);
    }
  }

  const KeyContext& ctx_;
  std::vector<Group> groups_;                // by key group (relative to the range)
  std::set<std::pair<int64_t, int>> heads_;  // (earliest time, key group) of non-empty groups
  size_t size_ = 0;
};

template <class Table>
class InternalTableFactory final : public TableFactory {
 public:
  std::unique_ptr<StateTableBase> make_heap_table(const KeyContext& ctx) const override {
    return std::make_unique<Table>(ctx);
  }
};

// The timers of one keyed operator, for the operator's current key (the backend's key context).
// Processing-time timers ask the runtime for a callback at the earliest one.
class InternalTimerService {
 public:
  InternalTimerService(KeyedStateBackend& backend, TaskRuntime& rt)
      : backend_(backend),
        rt_(rt),
        event_(backend.internal_table<TimerQueue>("_timers/event", InternalTableFactory<TimerQueue>())),
        processing_(backend.internal_table<TimerQueue>("_timers/processing",
                                                       InternalTableFactory<TimerQueue>())) {}

  int64_t current_watermark() const { return watermark_; }
  int64_t current_processing_time() const { return rt_.current_processing_time(); }

  void register_event_time_timer(int64_t time, std::string_view ns = {}) {
    const KeyContext& k = key();
    event_.add(time, k.key_group, k.key, ns);
  }
  void delete_event_time_timer(int64_t time, std::string_view ns = {}) {
    const KeyContext& k = key();
    event_.remove(time, k.key_group, k.key, ns);
  }
  void register_processing_time_timer(int64_t time, std::string_view ns = {}) {
    const KeyContext& k = key();
    bool earliest = processing_.empty() || time < processing_.next_time();
    if (processing_.add(time, k.key_group, k.key, ns) && earliest) {
      rt_.request_processing_time_callback(time);
    }
  }
  void delete_processing_time_timer(int64_t time, std::string_view ns = {}) {
    const KeyContext& k = key();
    processing_.remove(time, k.key_group, k.key, ns);
  }
  size_t num_event_time_timers() const { return event_.size(); }
  size_t num_processing_time_timers() const { return processing_.size(); }

  // After a restore, before processing: asks for a callback at the earliest processing-time
  // timer (at once if it is overdue).
  void start() {
    if (!processing_.empty()) rt_.request_processing_time_callback(processing_.next_time());
  }
  // Fires the event-time timers up to `watermark`, earliest first: fire(timer) with the timer's
  // key as the backend's current key. A timer registered meanwhile at or before the watermark
  // fires in the same call.
  template <class Fire>
  void advance_watermark(int64_t watermark, Fire&& fire) {
    advance_watermark(watermark, fire, NoPrefetch{});
  }
  // The same, and before each firing calls prefetch(key_group, key) with the key of the next
  // timer due, so that the operator can start loading that key's state while it fires this one.
  template <class Fire, class Prefetch>
  void advance_watermark(int64_t watermark, Fire&& fire, Prefetch&& prefetch) {
    watermark_ = watermark;
    while (!event_.empty() && event_.next_time() <= watermark) {
      InternalTimer t = event_.pop();
      if constexpr (!std::is_same_v<std::decay_t<Prefetch>, NoPrefetch>) {
        if (!event_.empty() && event_.next_time() <= watermark) {
          auto [key_group, key] = event_.peek_key();
          prefetch(key_group, key);
        }
      }
      backend_.set_current_key(t.key, t.key_group);
      fire(t);
    }
  }
  // Fires the processing-time timers up to `now`, then asks for a callback at the next one.
  template <class Fire>
  void advance_processing_time(int64_t now, Fire&& fire) {
    while (!processing_.empty() && processing_.next_time() <= now) fire_one(processing_, fire);
    if (!processing_.empty()) rt_.request_processing_time_callback(processing_.next_time());
  }

 private:
  struct NoPrefetch {};

  const KeyContext& key() {
    KeyContext& k = backend_.key_context();
    if (k.key_group < 0) throw std::logic_error("timers belong to a key: there is no current key");
    return k;
  }
  template <class Fire>
  void fire_one(TimerQueue& q, Fire& fire) {
    InternalTimer t = q.pop();
    backend_.set_current_key(t.key, t.key_group);
    fire(t);
  }

  KeyedStateBackend& backend_;
  TaskRuntime& rt_;
  TimerQueue& event_;
  TimerQueue& processing_;
  int64_t watermark_ = kMinWatermark;
};

}  // namespace sluice
