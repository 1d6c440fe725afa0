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
//
// The heap backend keeps timers in a HeapTimerQueue. A backend of an embedded store keeps them
// in a StoreTimerQueue: all timers in the store, ordered, and only the earliest few of each key
// group in memory, so that timers, like state, may outgrow memory.
#pragma once

#include <algorithm>
#include <bit>
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
#include "sluice/internal/runtime.h"
#include "sluice/internal/state_backend.h"
#include "sluice/serializer.h"

namespace sluice::internal {

struct InternalTimer {
  int64_t time = 0;
  int key_group = 0;
  std::string key;  // serialized key
  std::string ns;   // namespace bytes
};

namespace timer_internal {

// A timer's sort key: the time (8 bytes, big-endian, sign bit flipped so that bytes order like
// the signed value), the key with each 0x00 byte written as 0x00 0xff and ended by 0x00 0x00,
// then the namespace as it is. Byte order of sort keys is the order of (time, key, namespace).
inline void append_sort_key(std::string& out, int64_t time, std::string_view key,
                            std::string_view ns) {
  uint64_t u = static_cast<uint64_t>(time) ^ (uint64_t{1} << 63);
  for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>((u >> (8 * i)) & 0xff));
  size_t from = 0;
  for (size_t z = key.find('\0'); z != std::string_view::npos; z = key.find('\0', from)) {
    out.append(key.substr(from, z + 1 - from));
    out.push_back('\xff');
    from = z + 1;
  }
  out.append(key.substr(from));
  out.push_back('\0');
  out.push_back('\0');
  out.append(ns);
}

inline int64_t read_time(std::string_view b) {
  uint64_t u = 0;
  for (int i = 0; i < 8; ++i) u = (u << 8) | static_cast<unsigned char>(b[static_cast<size_t>(i)]);
  return static_cast<int64_t>(u ^ (uint64_t{1} << 63));
}

// Reads a sort key back into `t` (time, key, ns); throws SerializationError when malformed.
inline void read_sort_key(std::string_view b, InternalTimer& t) {
  if (b.size() < 10) throw SerializationError("timer entry too short for a time and a key");
  t.time = read_time(b);
  t.key.clear();
  size_t i = 8;
  for (;;) {
    size_t z = b.find('\0', i);
    if (z == std::string_view::npos || z + 1 >= b.size()) {
      throw SerializationError("timer entry whose key has no end");
    }
    t.key.append(b.substr(i, z - i));
    if (b[z + 1] == '\0') {
      i = z + 2;
      break;
    }
    if (b[z + 1] != '\xff') throw SerializationError("timer entry with a malformed key");
    t.key.push_back('\0');
    i = z + 2;
  }
  t.ns.assign(b.substr(i));
}

// Reads one canonical timer entry: (sort key, no namespace, touched 0, no value), or the form
// of earlier versions (key, namespace = 8-byte time then the namespace).
inline void read_entry(DataInput& in, InternalTimer& t) {
  std::string_view key = state_internal::read_bytes(in);
  std::string_view ns = state_internal::read_bytes(in);
  int64_t touched;
  Serializer<int64_t>::read(in, touched);
  state_internal::read_bytes(in);
  if (ns.empty()) {
    read_sort_key(key, t);
    return;
  }
  if (ns.size() < 8) throw SerializationError("timer entry without a time");
  t.time = read_time(ns);
  t.key.assign(key);
  t.ns.assign(ns.substr(8));
}

}  // namespace timer_internal

// The timers of one time domain, ordered by (time, key group, key, namespace), at most one per
// (key, namespace, time). A table of the keyed state backend: its canonical entries are one per
// timer, keyed by the timer's sort key (see timer_internal::append_sort_key), with no value.
// Not thread-safe: the task's thread only.
class TimerQueue : public StateTableBase {
 public:
  // Adds the timer; false when it exists already. Throws std::invalid_argument for a key group
  // outside the subtask's range.
  virtual bool add(int64_t time, int key_group, std::string_view key, std::string_view ns) = 0;
  // Removes the timer; false when there is none.
  virtual bool remove(int64_t time, int key_group, std::string_view key, std::string_view ns) = 0;
  virtual bool empty() const = 0;
  // The earliest timer's time; the queue must not be empty.
  virtual int64_t next_time() const = 0;
  // The earliest timer's key group and key, left in the queue; valid until the next change of
  // the queue. The queue must not be empty.
  virtual std::pair<int, std::string_view> peek_key() const = 0;
  // Removes and returns the earliest timer; the queue must not be empty.
  virtual InternalTimer pop() = 0;

  void append_keys(int, std::vector<std::string>&) const override {}
  void read_entries(int kg, DataInput& in, uint64_t count) override {
    InternalTimer t;
    for (uint64_t i = 0; i < count; ++i) {
      timer_internal::read_entry(in, t);
      add(t.time, kg, t.key, t.ns);
    }
  }
};

// Timers on the heap. Each key group keeps its timers in a sorted vector consumed from the
// front, and a set beside it: timers are mostly registered in increasing time (a window asks
// for its next firing when it fires), so a new timer is usually appended to the vector, and
// firing moves a read position instead of freeing a node. A timer earlier than the vector's
// last goes into the set, and a timer removed from the middle of the vector is marked dead
// there, so that no operation costs more than a binary search or a set operation.
class HeapTimerQueue final : public TimerQueue {
 public:
  explicit HeapTimerQueue(const KeyContext& ctx)
      : ctx_(ctx), groups_(static_cast<size_t>(std::max(ctx.num_key_groups, 0))) {}

  bool add(int64_t time, int key_group, std::string_view key, std::string_view ns) override {
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
    ++g.size;
    if (was_empty) {
      heads_.emplace(time, key_group);
    } else if (g.front().time != old_head) {
      heads_.erase({old_head, key_group});
      heads_.emplace(g.front().time, key_group);
    }
    return true;
  }
  bool remove(int64_t time, int key_group, std::string_view key, std::string_view ns) override {
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
  bool empty() const override { return size_ == 0; }
  int64_t next_time() const override { return heads_.begin()->first; }
  std::pair<int, std::string_view> peek_key() const override {
    const int kg = heads_.begin()->second;
    return {kg, groups_[index(kg)].front().key};
  }
  InternalTimer pop() override { return pop_front(heads_.begin()->second); }
  // Forgets every timer.
  void clear() {
    groups_.assign(groups_.size(), Group{});
    heads_.clear();
    size_ = 0;
  }

  // For a queue that keeps only some of a key group's timers here (StoreTimerQueue):
  // How many timers key group `kg` has.
  size_t group_size(int kg) const { return groups_[index(kg)].size; }
  // Whether (time, key, ns) comes after every timer of key group `kg`, which must have one.
  bool after_last(int kg, int64_t time, std::string_view key, std::string_view ns) const {
    return Less{}(groups_[index(kg)].back(), Probe{time, key, ns});
  }
  // Removes and returns the earliest or the last timer of key group `kg`, which must have one.
  InternalTimer pop_front(int kg) {
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
      take(g.late.extract(g.late.begin()).value(), t);
    }
    removed(kg, g, t.time);
    return t;
  }
  InternalTimer pop_back(int kg) {
    Group& g = groups_[index(kg)];
    const int64_t old_head = g.front().time;
    InternalTimer t;
    t.key_group = kg;
    if (g.late.empty() || (g.head < g.v.size() && Less{}(*g.late.rbegin(), g.v.back()))) {
      take(g.v.back(), t);
      g.v.pop_back();
      g.skip_dead();
    } else {
      take(g.late.extract(std::prev(g.late.end())).value(), t);
    }
    removed(kg, g, old_head);
    return t;
  }

  // StateTableBase
  size_t size() const override { return size_; }
  uint64_t write_entries(int kg, std::string& out) const override {
    DataOutput o(out);
    std::string key;
    const Group& g = groups_.at(index(kg));
    auto write = [&](const Timer& e) {
      key.clear();
      timer_internal::append_sort_key(key, e.time, e.key, e.ns);
      state_internal::write_entry(o, key, 0, {});
    };
    for (size_t i = g.head; i < g.v.size(); ++i) {
      if (!g.v[i].dead) write(g.v[i]);
    }
    for (const Timer& e : g.late) write(e);
    return g.size;
  }

 private:
  struct Timer {
    int64_t time = 0;
    std::string key;
    std::string ns;
    bool dead = false;  // removed while in the middle of the run (never at its front or back)
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
  // v[head] and v.back() never dead), and the timers that came out of order.
  struct Group {
    std::vector<Timer> v;
    size_t head = 0;
    std::set<Timer, Less> late;
    size_t size = 0;  // live timers
    bool empty() const { return size == 0; }
    bool front_in_run() const {
      return head < v.size() && (late.empty() || Less{}(v[head], *late.begin()));
    }
    const Timer& front() const { return front_in_run() ? v[head] : *late.begin(); }
    const Timer& back() const {
      if (late.empty() || (head < v.size() && Less{}(*late.rbegin(), v.back()))) return v.back();
      return *late.rbegin();
    }
    // The run's entry equal to the timer (dead or not), or v.end().
    std::vector<Timer>::iterator find_in_run(int64_t time, std::string_view key,
                                             std::string_view ns) {
      const Probe probe{time, key, ns};
      auto pos = std::lower_bound(v.begin() + static_cast<ptrdiff_t>(head), v.end(), probe, Less{});
      return pos != v.end() && !Less{}(probe, *pos) ? pos : v.end();
    }
    // Moves the front past dead entries and drops those at the back, then drops the fired
    // prefix once it is the larger part, so that memory follows the live timers.
    void skip_dead() {
      while (head < v.size() && v[head].dead) ++head;
      while (head < v.size() && v.back().dead) v.pop_back();
      if (head == v.size()) {
        v.clear();
        head = 0;
      } else if (head >= 64 && head * 2 >= v.size()) {
        v.erase(v.begin(), v.begin() + static_cast<ptrdiff_t>(head));
        head = 0;
      }
    }
  };

  static void take(Timer& e, InternalTimer& t) {
    t.time = e.time;
    t.key = std::move(e.key);
    t.ns = std::move(e.ns);
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
    --g.size;
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

// Timers in an embedded store (a RocksDB column family): every timer is an entry keyed by
// store_key(key group, sort key) with an empty value (touched 0), so a key group's timers are
// contiguous and in firing order. Memory holds, per key group, a cache of the group's earliest
// timers: every timer of the group up to the cache's last one, and at most `cache_size` of them.
// A timer after the cache's last is written to the store alone (looked up first only when it is
// not after every timer the group may have in the store: timers mostly come in increasing
// time, so most are not); popping the cache empty reads the next `cache_size` from the store,
// starting after the last timer removed, so that the deletes left behind are not read again.
// Beside the cache, a table of timers known to be in the store (found there, or written there
// beyond the cache, and not removed since) spares the lookup of a timer registered again: an
// event-time window's trigger registers its timer for every element of the window. Made on
// first use; full, it holds 8192 store keys (about 0.6 MB by arithmetic for a window's timers,
// whose store keys are about 34 bytes).
class StoreTimerQueue final : public TimerQueue {
 public:
  static constexpr size_t kDefaultCacheSize = 128;
  // Slots of the table of timers known to be stored: a timer's store key goes to one slot,
  // chosen by its hash, and replaces the one there.
  static constexpr size_t kDefaultKnownSlots = 8192;

  // `known_slots` is rounded up to a power of two.
  StoreTimerQueue(const KeyContext& ctx, KvStore& store, size_t cache_size = kDefaultCacheSize,
                  size_t known_slots = kDefaultKnownSlots)
      : ctx_(ctx),
        store_(store),
        cache_size_(std::max<size_t>(cache_size, 1)),
        known_slots_(std::bit_ceil(std::max<size_t>(known_slots, 1))),
        cache_(ctx) {
    load_all();
  }

  bool add(int64_t time, int key_group, std::string_view key, std::string_view ns) override {
    set_store_key(key_group, time, key, ns);
    if (in_cache(key_group, time, key, ns)) {
      if (!cache_.add(time, key_group, key, ns)) return false;
      put(key_group);
      if (cache_.group_size(key_group) > cache_size_) {
        cache_.pop_back(key_group);  // still in the store
        complete_[slot(key_group)] = false;
      }
      return true;
    }
    std::string& known = known_slot();
    if (known == store_key_) {
      ++lookups_spared_;
      return false;
    }
    const bool stored = may_be_stored(key_group) && store_.get(store_key_, &scratch_);
    if (!stored) put(key_group);
    known = store_key_;
    return !stored;
  }
  bool remove(int64_t time, int key_group, std::string_view key, std::string_view ns) override {
    set_store_key(key_group, time, key, ns);
    if (in_cache(key_group, time, key, ns)) {
      if (!cache_.remove(time, key_group, key, ns)) return false;
      remove_stored(known_slot_if_made());
      refill(key_group);
      return true;
    }
    std::string& known = known_slot();
    if (known == store_key_) {
      ++lookups_spared_;
    } else if (!may_be_stored(key_group) || !store_.get(store_key_, &scratch_)) {
      return false;
    }
    remove_stored(&known);
    return true;
  }
  // A key group with timers has some in the cache, so the cache knows the earliest.
  bool empty() const override { return cache_.empty(); }
  int64_t next_time() const override { return cache_.next_time(); }
  std::pair<int, std::string_view> peek_key() const override { return cache_.peek_key(); }
  InternalTimer pop() override {
    InternalTimer t = cache_.pop();
    set_store_key(t.key_group, t.time, t.key, t.ns);
    remove_stored(known_slot_if_made());
    refill(t.key_group);
    return t;
  }

  // Timers held in memory (at most cache_size per key group).
  size_t cached() const { return cache_.size(); }

  // StateTableBase. size() reads the store unless every timer is in the cache.
  size_t size() const override {
    if (std::all_of(complete_.begin(), complete_.end(), [](bool c) { return c; })) {
      return cache_.size();
    }
    size_t n = 0;
    for (int kg = ctx_.first_key_group; kg < ctx_.first_key_group + ctx_.num_key_groups; ++kg) {
      store_.scan(kg, [&](std::string_view k, std::string_view) {
        n += k.size() > state_internal::kKeyGroupPrefixBytes;
      });
    }
    return n;
  }
  uint64_t write_entries(int kg, std::string& out) const override {
    DataOutput o(out);
    uint64_t n = 0;
    store_.scan(kg, [&](std::string_view k, std::string_view v) {
      if (k.size() > state_internal::kKeyGroupPrefixBytes) {
        n += state_internal::append_stored_entry(o, k, v, -1, 0);
      }
    });
    return n;
  }
  // The store was written underneath (a restore): the cache is read again.
  void reload() override {
    cache_.clear();
    known_.clear();
    load_all();
  }

  // Lookups in the store that the table of known timers spared.
  uint64_t lookups_spared() const { return lookups_spared_; }

 private:
  // An entry's value: touched 0 and no value bytes.
  static constexpr std::string_view kValue{"\0\0\0\0\0\0\0\0", 8};

  size_t slot(int kg) const { return static_cast<size_t>(kg - ctx_.first_key_group); }
  // Whether the timer belongs in the cache: the cache holds its whole group, or the timer comes
  // no later than the cache's last. Throws std::invalid_argument for a key group out of range
  // (the cache checks it).
  bool in_cache(int kg, int64_t time, std::string_view key, std::string_view ns) const {
    const bool cached = cache_.group_size(kg) > 0;  // an incomplete group always has some
    return complete_[slot(kg)] || (cached && !cache_.after_last(kg, time, key, ns));
  }
  // Writes the timer whose store key is store_key_.
  void put(int kg) {
    store_.put(store_key_, kValue);
    std::string& last = last_[slot(kg)];
    if (last < store_key_) last = store_key_;
  }
  // The slot of the table of known timers for store_key_ (the table is made on first use).
  std::string& known_slot() {
    if (known_.empty()) known_.resize(known_slots_);
    return known_[std::hash<std::string_view>{}(store_key_) & (known_slots_ - 1)];
  }
  // The same, or null while the table is not made (a queue whose timers all stayed in its cache
  // makes none).
  std::string* known_slot_if_made() { return known_.empty() ? nullptr : &known_slot(); }
  // Removes the timer whose store key is store_key_ from the store, and forgets it if its slot
  // (`slot`: known_slot(), or null when there is no table) knows it.
  void remove_stored(std::string* slot) {
    store_.remove(store_key_);
    if (slot != nullptr && *slot == store_key_) slot->clear();
  }
  // Whether the store may hold the timer whose store key is store_key_: false when the timer
  // comes after every timer the group ever had there.
  bool may_be_stored(int kg) const { return store_key_ <= last_[slot(kg)]; }
  void set_store_key(int kg, int64_t time, std::string_view key, std::string_view ns) {
    store_key_.clear();
    state_internal::append_key_group_prefix(store_key_, kg);
    timer_internal::append_sort_key(store_key_, time, key, ns);
  }
  void load_all() {
    complete_.assign(static_cast<size_t>(std::max(ctx_.num_key_groups, 0)), true);
    last_.assign(complete_.size(), std::string());
    for (int kg = ctx_.first_key_group; kg < ctx_.first_key_group + ctx_.num_key_groups; ++kg) {
      const std::string prefix = state_internal::key_group_prefix(kg);
      complete_[slot(kg)] = false;
      load(kg, prefix);
      std::string& last = last_[slot(kg)];
      if (!store_.last_key(prefix, state_internal::key_group_prefix(kg + 1), &last) ||
          last.size() <= prefix.size()) {
        last.clear();  // no timer: every store key of the group is greater than ""
      }
    }
  }
  // After the cache of `kg` lost a timer (whose store key is store_key_): when the cache is
  // empty but the store has more, reads the next ones. Every timer up to the one removed is
  // gone, so the read starts after it.
  void refill(int kg) {
    if (complete_[slot(kg)] || cache_.group_size(kg) > 0) return;
    store_key_.push_back('\0');  // the smallest key after it
    load(kg, store_key_);
  }
  // Reads up to cache_size timers of `kg` from `from` on into the cache; the group is complete
  // when the store has no more.
  void load(int kg, std::string_view from) {
    const std::string end = state_internal::key_group_prefix(kg + 1);
    size_t taken = 0;
    bool more = false;
    InternalTimer t;
    store_.scan_range(from, end, [&](std::string_view k, std::string_view) {
      if (k.size() <= state_internal::kKeyGroupPrefixBytes) return true;  // not a timer
      if (taken == cache_size_) {
        more = true;
        return false;
      }
      try {
        timer_internal::read_sort_key(k.substr(state_internal::kKeyGroupPrefixBytes), t);
      } catch (const SerializationError& e) {
        throw SerializationError("timers of key group " + std::to_string(kg) + ": " + e.what());
      }
      cache_.add(t.time, kg, t.key, t.ns);
      ++taken;
      return true;
    });
    complete_[slot(kg)] = !more;
  }

  const KeyContext& ctx_;
  KvStore& store_;
  size_t cache_size_;
  size_t known_slots_;
  HeapTimerQueue cache_;
  std::vector<bool> complete_;  // by key group: the cache holds all of the group's timers
  // By key group: at least the greatest store key the group's timers have had since the cache
  // was read ("" when none).
  std::vector<std::string> last_;
  // By hash of the store key: timers in the store, or "" (a store key is never empty).
  std::vector<std::string> known_;
  uint64_t lookups_spared_ = 0;
  std::string store_key_;
  std::string scratch_;
};

// Makes a backend's timer queue: on the heap, or in its store.
class TimerQueueFactory final : public TableFactory {
 public:
  std::unique_ptr<StateTableBase> make_heap_table(const KeyContext& ctx) const override {
    return std::make_unique<HeapTimerQueue>(ctx);
  }
  std::unique_ptr<StateTableBase> make_store_table(const KeyContext& ctx, KvStore& store,
                                                   size_t /*cache_entries*/) const override {
    return std::make_unique<StoreTimerQueue>(ctx, store);
  }
};

// The timers of one keyed operator, for the operator's current key (the backend's key context).
// Processing-time timers ask the runtime for a callback at the earliest one.
class InternalTimerService {
 public:
  InternalTimerService(KeyedStateBackend& backend, TaskRuntime& rt)
      : backend_(backend),
        rt_(rt),
        event_(backend.internal_table<TimerQueue>("_timers/event", TimerQueueFactory())),
        processing_(backend.internal_table<TimerQueue>("_timers/processing", TimerQueueFactory())) {
  }

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

}  // namespace sluice::internal
