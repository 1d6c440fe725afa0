// Storage underneath the typed keyed states: a table per state, on the heap (objects) or over an
// embedded store's entries (serialized), addressed by key group and the current key.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sluice/internal/key_table.h"
#include "sluice/internal/runtime.h"
#include "sluice/keys.h"
#include "sluice/serializer.h"
#include "sluice/state_descriptors.h"

namespace sluice::internal {

// The key that state accesses refer to: set by the keyed operator before each call into user
// code, through set().
struct KeyContext {
  int key_group = -1;       // absolute key group of the current key; -1: no current key
  std::string key;          // the current key's serialized bytes
  uint64_t key_hash = 0;    // state_internal::hash_key_bytes(key)
  uint64_t key_serial = 1;  // a new number for every current key set: tables remember their
                            // last lookup by it (0: never a current key's)
  int first_key_group = 0;  // the subtask's key-group range
  int num_key_groups = 1;
  std::function<int64_t()> now_ms;  // processing time, for TTL

  // Makes the bytes written into `key` the current key, in key group `kg` (-1: none).
  void set(int kg) {
    key_group = kg;
    key_hash = state_internal::hash_key_bytes(key);
    ++key_serial;
  }
  void set(std::string_view bytes, int kg) {
    key.assign(bytes);
    set(kg);
  }
  state_internal::HashedKey hashed_key() const { return {key, key_hash}; }
  // Whether the current key lies in the subtask's key groups (false without one).
  bool in_range() const {
    return key_group >= first_key_group && key_group < first_key_group + num_key_groups;
  }
  // Throws what a state used with the current key must when !in_range(): std::logic_error
  // without a current key, std::invalid_argument for one outside the range.
  [[noreturn]] void throw_out_of_range() const;
};

// ---------------------------------------------------------------------------------------------
// Storage underneath the typed states.
//
// The entries of one state in one key group serialize as
//   entry := key bytes, namespace bytes, touched_ms (int64), value bytes (Serializer<V>)
// where every "bytes" is a varint length and the bytes, so that entries can be skipped without
// knowing the value type.

namespace state_internal {

// Starts loading a state value into the cache (HeapStateTable::prefetch). A type whose value
// points to more memory overloads it in its own namespace, found by argument-dependent lookup.
template <class V>
void prefetch_value(const V& v) {
  __builtin_prefetch(&v);
}

inline void write_bytes(DataOutput& out, std::string_view b) {
  out.write_varint(b.size());
  out.write_raw(b.data(), b.size());
}
inline std::string_view read_bytes(DataInput& in) { return in.read_view(in.read_varint()); }

// One entry of the canonical format, read with read_entry (the namespace must be empty).
struct Entry {
  std::string_view key;
  int64_t touched_ms = 0;
  std::string_view value;
};
inline Entry read_entry(DataInput& in) {
  Entry e;
  e.key = read_bytes(in);
  if (!read_bytes(in).empty()) {
    throw SerializationError("state entry with a namespace: not supported by this version");
  }
  Serializer<int64_t>::read(in, e.touched_ms);
  e.value = read_bytes(in);
  return e;
}
inline void write_entry(DataOutput& o, std::string_view key, int64_t touched_ms,
                        std::string_view value) {
  write_bytes(o, key);
  write_bytes(o, {});  // namespace: reserved
  Serializer<int64_t>::write(o, touched_ms);
  write_bytes(o, value);
}
// A state's section of a key group's bytes: its name, the number of entries, the entries.
inline void write_section(DataOutput& o, std::string_view name, uint64_t count,
                          std::string_view entries) {
  write_bytes(o, name);
  o.write_varint(count);
  o.write_raw(entries.data(), entries.size());
}

// Skips `count` entries (see above).
inline void skip_entries(DataInput& in, uint64_t count) {
  for (uint64_t i = 0; i < count; ++i) {
    read_bytes(in);  // key
    read_bytes(in);  // namespace
    in.read_view(sizeof(int64_t));
    read_bytes(in);  // value
  }
}

}  // namespace state_internal

// The byte-level side of one named keyed state, which the backend snapshots and restores
// without knowing the value type.
class StateTableBase {
 public:
  virtual ~StateTableBase() = default;
  // Entries over all keys and key groups (expired ones included until they are met).
  virtual size_t size() const = 0;
  // Appends the live entries of key group `kg` to `out`; returns how many it wrote.
  virtual uint64_t write_entries(int kg, std::string& out) const = 0;
  // Adds `count` entries of key group `kg` read from `in`. Throws SerializationError on
  // malformed bytes, std::invalid_argument for a key group outside the range.
  virtual void read_entries(int kg, DataInput& in, uint64_t count) = 0;
  // Appends the serialized keys with a live entry in key group `kg`.
  virtual void append_keys(int kg, std::vector<std::string>& keys) const = 0;
  // Writes what the table holds of its own into the store underneath (a store table's changed
  // values it keeps as objects), so that a reader of the store sees every change. Default:
  // nothing.
  virtual void flush() {}
  // The store underneath changed (a restore wrote into it): forget any value read before. Call
  // flush() before changing the store.
  virtual void reload() {}
};

// The storage of one named keyed state with values of type V, at the backend's current key
// (key group, key bytes). Pointers returned stay valid until the next call on the table. A
// typed state that changes a returned value in place calls modified() afterwards: a backend
// that keeps serialized values writes the value back then; the heap needs nothing.
template <class V>
class StateTable : public StateTableBase {
 public:
  // The current key's value, or nullptr (an expired entry is absent). A read: renews the TTL
  // only with update_on_read.
  virtual V* find() = 0;
  // The same for a value about to be changed in place: renews the TTL (a write).
  virtual V* find_for_write() = 0;
  // Sets the current key's value (a write) and returns it.
  virtual V& put(V value) = 0;
  // Removes the current key's entry.
  virtual void erase() = 0;
  // Called after a value returned by find_for_write() was changed in place (a backend of
  // serialized values writes it back here).
  virtual void modified() {}
  // A hint that the value of (key_group, key) is about to be used: a backend may start loading
  // it into the cache. Changes nothing, not the current key either; a key group outside the
  // range is ignored. Default: nothing.
  virtual void prefetch(int /*key_group*/, std::string_view /*key*/) {}
  // With one lookup: sets the current key's value to `f(current, v)`, or to `v` when it has
  // none; returns the new value.
  template <class F>
  V& merge(V v, F&& f) {
    if (V* cur = find_for_write()) {
      *cur = f(static_cast<const V&>(*cur), static_cast<const V&>(v));
      modified();
      return *cur;
    }
    return put(std::move(v));
  }
};

// Keyed state in hash tables of objects: one table per key group, entries by serialized key.
// The entry of the current key is looked up once per key set (KeyContext::key_serial), so that a
// read followed by a write of the same key, the common case, finds it once.
template <class V>
class HeapStateTable final : public StateTable<V> {
 public:
  struct Entry {
    V value;
    int64_t touched_ms = 0;  // last write (or read, with update_on_read)
  };

  HeapStateTable(const KeyContext& ctx, std::optional<StateTtlConfig> ttl)
      : ctx_(ctx), ttl_(ttl), groups_(static_cast<size_t>(std::max(ctx.num_key_groups, 0))) {}

  V* find() override {
    Entry* e = find_entry();
    return e ? &e->value : nullptr;
  }
  V* find_for_write() override {
    Entry* e = find_entry();
    if (!e) return nullptr;
    if (ttl_) e->touched_ms = ctx_.now_ms();
    return &e->value;
  }
  V& put(V value) override {
    Entry* e = lookup();
    if (!e) {
      e = &group().insert(ctx_.hashed_key());
      current_ = e;
    }
    e->value = std::move(value);
    e->touched_ms = ttl_ ? ctx_.now_ms() : 0;
    return e->value;
  }
  void erase() override {
    if (lookup()) erase_current();
  }
  void prefetch(int key_group, std::string_view key) override {
    const size_t i = slot(key_group);
    if (i == groups_.size()) return;
    const Entry* e = groups_[i].find(state_internal::hashed(key));
    if (!e) return;
    using state_internal::prefetch_value;
    prefetch_value(e->value);
  }
  size_t size() const override {
    size_t n = 0;
    for (const auto& g : groups_) n += g.size();
    return n;
  }

  uint64_t write_entries(int kg, std::string& out) const override {
    const auto& g = groups_.at(index(kg));
    int64_t now = ttl_ && !g.empty() ? ctx_.now_ms() : 0;
    DataOutput o(out);
    std::string value;
    uint64_t n = 0;
    g.for_each([&](std::string_view key, const Entry& e) {
      if (expired(e, now)) return;
      value.clear();
      DataOutput vo(value);
      Serializer<V>::write(vo, e.value);
      state_internal::write_entry(o, key, e.touched_ms, value);
      ++n;
    });
    return n;
  }
  void read_entries(int kg, DataInput& in, uint64_t count) override {
    current_serial_ = 0;  // inserts move entries
    auto& g = groups_.at(index(kg));
    for (uint64_t i = 0; i < count; ++i) {
      state_internal::Entry in_entry = state_internal::read_entry(in);
      V value = deserialize<V>(in_entry.value);
      Entry& e = g.find_or_insert(state_internal::hashed(in_entry.key));
      e.value = std::move(value);
      e.touched_ms = in_entry.touched_ms;
    }
  }
  void append_keys(int kg, std::vector<std::string>& keys) const override {
    const auto& g = groups_.at(index(kg));
    int64_t now = ttl_ && !g.empty() ? ctx_.now_ms() : 0;
    g.for_each([&](std::string_view key, const Entry& e) {
      if (!expired(e, now)) keys.emplace_back(key);
    });
  }

 private:
  using Group = KeyTable<Entry>;

  // The index of key group `kg` in groups_, or groups_.size() when it is outside the range.
  size_t slot(int kg) const {
    if (kg < ctx_.first_key_group) return groups_.size();
    return std::min(static_cast<size_t>(kg - ctx_.first_key_group), groups_.size());
  }
  size_t index(int kg) const {
    const size_t i = slot(kg);
    if (i == groups_.size()) {
      throw std::invalid_argument("key group " + std::to_string(kg) +
                                  " is outside this subtask's range");
    }
    return i;
  }
  Group& group() {
    const size_t i = slot(ctx_.key_group);
    if (i != groups_.size()) [[likely]]
      return groups_[i];
    ctx_.throw_out_of_range();
  }
  bool expired(const Entry& e, int64_t now) const {
    return ttl_ && now - e.touched_ms >= ttl_->ttl.count();
  }
  // The current key's entry, or nullptr: looked up once per current key. An entry moves only
  // when its table inserts or erases, and only this table's methods do, each updating current_.
  Entry* lookup() {
    if (current_serial_ == ctx_.key_serial) return current_;
    current_ = group().find(ctx_.hashed_key());
    current_serial_ = ctx_.key_serial;
    return current_;
  }
  // Erases the current key's entry, which lookup() found.
  void erase_current() {
    group().erase(ctx_.hashed_key());
    current_ = nullptr;
  }
  // The current key's entry, or nullptr; an expired entry is erased and not returned.
  Entry* find_entry() {
    Entry* e = lookup();
    if (!e || !ttl_) return e;
    int64_t now = ctx_.now_ms();
    if (expired(*e, now)) {
      erase_current();
      return nullptr;
    }
    if (ttl_->update_on_read) e->touched_ms = now;
    return e;
  }

  const KeyContext& ctx_;
  std::optional<StateTtlConfig> ttl_;
  std::vector<Group> groups_;
  // The result of lookup() for the current key numbered current_serial_ (0: none).
  uint64_t current_serial_ = 0;
  Entry* current_ = nullptr;
};

// The entries of one state in an embedded store (a RocksDB column family), as bytes. Keys are
// store_key(key group, serialized key): the key group first, big-endian, so that one key group's
// entries are contiguous and in order. Values are the entry's touched_ms (8 bytes, as
// Serializer<int64_t> writes it) followed by the value's serialized bytes. Implemented by the
// runtime; used from the task's thread. Every method throws std::runtime_error naming the store
// when the store fails (a full disk).
class SLUICE_EXPORT KvStore {
 public:
  virtual ~KvStore() = default;
  // Sets *value and returns true when `key` has an entry.
  virtual bool get(std::string_view key, std::string* value) = 0;
  virtual void put(std::string_view key, std::string_view value) = 0;
  virtual void remove(std::string_view key) = 0;
  // Calls fn(key, value) for the entries with from <= key < end, in key order, until fn
  // returns false.
  virtual void scan_range(std::string_view from, std::string_view end,
                          const std::function<bool(std::string_view, std::string_view)>& fn) = 0;
  // Calls fn(key, value) for every entry of key group `kg`, in key order.
  void scan(int kg, const std::function<void(std::string_view, std::string_view)>& fn);
  // Sets *key to the greatest key with from <= key < end and returns true; false when there is
  // none.
  virtual bool last_key(std::string_view from, std::string_view end, std::string* key) = 0;
  // The puts and removes between begin_batch() and commit_batch() may be applied together, at
  // commit_batch() at the latest (reads in between need not see them). Default: one by one.
  virtual void begin_batch() {}
  virtual void commit_batch() {}
};

namespace state_internal {
constexpr size_t kKeyGroupPrefixBytes = 2;  // key groups are < 32768
inline void append_key_group_prefix(std::string& out, int kg) {
  out.push_back(static_cast<char>((kg >> 8) & 0xff));
  out.push_back(static_cast<char>(kg & 0xff));
}
inline std::string key_group_prefix(int kg) {
  std::string p;
  append_key_group_prefix(p, kg);
  return p;
}
inline std::string store_key(int kg, std::string_view key) {
  std::string k;
  k.reserve(kKeyGroupPrefixBytes + key.size());
  append_key_group_prefix(k, kg);
  k.append(key);
  return k;
}
inline int64_t stored_touched_ms(std::string_view value) {
  int64_t t = 0;
  if (value.size() >= sizeof(t)) std::memcpy(&t, value.data(), sizeof(t));
  return t;
}
// A store's value: touched_ms, then the value's bytes.
inline void make_stored_value(std::string& out, int64_t touched_ms, std::string_view bytes) {
  out.clear();
  DataOutput o(out);
  Serializer<int64_t>::write(o, touched_ms);
  o.write_raw(bytes.data(), bytes.size());
}
// Appends the store entry (key, value) to `o` as a canonical entry, unless it is malformed or
// older than `ttl_ms` (when >= 0) at `now`; returns whether it did.
inline bool append_stored_entry(DataOutput& o, std::string_view key, std::string_view value,
                                int64_t ttl_ms, int64_t now) {
  if (value.size() < sizeof(int64_t) || key.size() < kKeyGroupPrefixBytes) return false;
  int64_t touched = stored_touched_ms(value);
  if (ttl_ms >= 0 && now - touched >= ttl_ms) return false;
  write_entry(o, key.substr(kKeyGroupPrefixBytes), touched, value.substr(sizeof(int64_t)));
  return true;
}
}  // namespace state_internal

inline void KvStore::scan(int kg,
                          const std::function<void(std::string_view, std::string_view)>& fn) {
  scan_range(state_internal::key_group_prefix(kg), state_internal::key_group_prefix(kg + 1),
             [&](std::string_view k, std::string_view v) {
               fn(k, v);
               return true;
             });
}

// The part of StoreStateTable that knows no value type: TTL, reading and writing one entry, and
// the byte-level scans (in common/sdk/state_table.cc).
class StoreTableCore {
 public:
  StoreTableCore(const KeyContext& ctx, KvStore& store, std::optional<StateTtlConfig> ttl)
      : ctx_(ctx), store_(store), ttl_(ttl) {}

  const KeyContext& ctx() const { return ctx_; }
  KvStore& store() const { return store_; }
  bool has_ttl() const { return ttl_.has_value(); }
  bool renews_on_read() const { return ttl_ && ttl_->update_on_read; }
  int64_t now() const { return ctx_.now_ms(); }
  bool expired(int64_t touched, int64_t now) const {
    return ttl_ && now - touched >= ttl_->ttl.count();
  }
  // The touched time of a write now: the processing time under a TTL, else 0.
  int64_t touched_now() const { return ttl_ ? ctx_.now_ms() : 0; }
  // The serialized value of the entry (kg, key), setting *touched; null when there is none. The
  // bytes stay valid until the next call.
  const std::string_view* read(int kg, std::string_view key, int64_t* touched) const;
  // Writing an entry: begin_write() returns a buffer holding `touched`, to which the caller
  // appends the serialized value; end_write() stores it as (kg, key).
  std::string& begin_write(int64_t touched) const;
  void end_write(int kg, std::string_view key) const;
  void remove(int kg, std::string_view key) const;

  size_t size() const;
  uint64_t write_entries(int kg, std::string& out) const;
  // `check` throws SerializationError unless its argument is a serialized value of the state.
  void read_entries(int kg, DataInput& in, uint64_t count, void (*check)(std::string_view));
  void append_keys(int kg, std::vector<std::string>& keys) const;

 private:
  const std::string& store_key(int kg, std::string_view key) const;

  const KeyContext& ctx_;
  KvStore& store_;
  std::optional<StateTtlConfig> ttl_;
  mutable std::string store_key_;  // scratch buffers
  mutable std::string bytes_;
  mutable std::string_view value_;
};

// Keyed state in an embedded store: values serialized, and a cache of the objects of the keys
// used last (up to `cache_entries` of them, the current key's always). A value read is
// deserialized once while it stays in the cache; a change marks it dirty, and the dirty values
// are written back together when the cache is full (it is then emptied), after
// kChangesPerWriteBack times `cache_entries` changes (emptied too when its values then serialize
// to kCacheBytes or more), before any scan of the table, and when the backend flushes the tables
// (before a snapshot). So a key used record after record is read once and written once per
// that many changes, not per record. With cache_entries 0 the cache holds the current key only and
// every change is written at once.
template <class V>
class StoreStateTable final : public StateTable<V> {
 public:
  // Serialized bytes of the values a table caches, as they were last read or written, from
  // which on it empties its cache (checked when a key enters it and at the periodic write-back). A
  // value grown in place (a list appended to) is measured only when written back, so the cache
  // may hold more than this between two write-backs.
  static constexpr size_t kCacheBytes = size_t{8} << 20;
  // Changes to the table, per slot of its capacity, between two periodic write-backs, which
  // measure the values grown in place: the larger, the fewer writes of a hot value; the
  // smaller, the less a value may grow unmeasured. A full cache, a scan and a snapshot write
  // back sooner.
  static constexpr size_t kChangesPerWriteBack = 16;

  StoreStateTable(const KeyContext& ctx, KvStore& store, std::optional<StateTtlConfig> ttl,
                  size_t cache_entries)
      : core_(ctx, store, ttl),
        capacity_(cache_entries),
        limit_(std::max<size_t>(cache_entries, 1)),
        write_back_after_(limit_ > SIZE_MAX / kChangesPerWriteBack ? SIZE_MAX
                                                                   : limit_ * kChangesPerWriteBack),
        groups_(static_cast<size_t>(std::max(ctx.num_key_groups, 0))),
        listed_(groups_.size(), false) {}

  V* find() override { return live(slot(/*read=*/true), core_.renews_on_read()); }
  V* find_for_write() override { return live(slot(/*read=*/true), core_.has_ttl()); }
  V& put(V value) override {
    Slot& s = slot(/*read=*/false);
    s.value = std::move(value);
    changed(s, core_.touched_now());
    return *s.value;
  }
  void erase() override {
    Slot& s = slot(/*read=*/false);
    s.value.reset();
    changed(s, 0);
  }
  void modified() override {
    if (!current_) return;
    // The key set again since find_for_write (the same key, presumably): its slot again.
    Slot& s = current_serial_ == core_.ctx().key_serial ? *current_ : slot(/*read=*/true);
    if (s.value) changed(s, core_.has_ttl() ? core_.now() : s.touched);
  }
  size_t size() const override {
    write_back();
    return core_.size();
  }
  uint64_t write_entries(int kg, std::string& out) const override {
    write_back();
    return core_.write_entries(kg, out);
  }
  void read_entries(int kg, DataInput& in, uint64_t count) override {
    write_back();
    drop();
    core_.read_entries(kg, in, count, [](std::string_view v) { (void)deserialize<V>(v); });
  }
  void append_keys(int kg, std::vector<std::string>& keys) const override {
    write_back();
    core_.append_keys(kg, keys);
  }
  void flush() override { write_back(); }
  void reload() override { drop(); }

 private:
  struct Slot {
    std::optional<V> value;  // none: the key has no entry
    int64_t touched = 0;
    size_t bytes = 0;    // serialized size when last read or written
    bool dirty = false;  // changed since read or written
  };

  // The current key's slot: from the cache, else added to it (read from the store when `read`;
  // a slot not read is set by the caller at once).
  Slot& slot(bool read) {
    const KeyContext& ctx = core_.ctx();
    if (current_ && current_serial_ == ctx.key_serial) return *current_;
    if (!ctx.in_range()) ctx.throw_out_of_range();
    if (changes_ >= write_back_after_) {
      // Values changed in place (a list appended to) grow unseen: written back now, they are
      // measured, and the cache is emptied if they have grown too large.
      write_back();
      if (cached_bytes_ >= kCacheBytes) drop();
    }
    const state_internal::HashedKey key = ctx.hashed_key();
    const size_t g = static_cast<size_t>(ctx.key_group - ctx.first_key_group);
    KeyTable<Slot>& group = groups_[g];
    Slot* s = group.find(key);
    if (!s) {
      if (cached_ >= limit_ || cached_bytes_ >= kCacheBytes) {
        write_back();
        drop();
      }
      current_ = nullptr;  // an insert may move the slots
      if (!listed_[g]) {
        listed_[g] = true;
        occupied_.push_back(g);
      }
      s = &group.insert(key);
      ++cached_;
      if (read) {
        try {
          if (const std::string_view* bytes = core_.read(ctx.key_group, ctx.key, &s->touched)) {
            s->value = deserialize<V>(*bytes);
            s->bytes = bytes->size();
            cached_bytes_ += s->bytes;
          }
        } catch (...) {  // a store error or bytes of another type: cache nothing
          group.erase(key);
          --cached_;
          current_ = nullptr;
          throw;
        }
      }
    }
    current_ = s;
    current_serial_ = ctx.key_serial;
    return *s;
  }
  // The value of a slot, unless it has expired (then removed); a write renews its TTL.
  V* live(Slot& s, bool write) {
    if (!s.value) return nullptr;
    if (core_.has_ttl()) {
      const int64_t now = core_.now();
      if (core_.expired(s.touched, now)) {
        s.value.reset();
        changed(s, 0);
        return nullptr;
      }
      if (write) changed(s, now);
    }
    return &*s.value;
  }
  void changed(Slot& s, int64_t touched) {
    s.touched = touched;
    if (!s.dirty) {
      s.dirty = true;
      ++dirty_;
    }
    if (capacity_ > 0) {
      ++changes_;
      return;
    }
    // Written at once; should that fail, the slot stays dirty, to be written back later.
    write(core_.ctx().key_group, core_.ctx().key, s);
    s.dirty = false;
    --dirty_;
  }
  // Writes a slot's value (or its absence) to the store.
  void write(int kg, std::string_view key, Slot& s) const {
    size_t bytes = 0;
    if (s.value) {
      std::string& buffer = core_.begin_write(s.touched);
      const size_t header = buffer.size();
      DataOutput o(buffer);
      Serializer<V>::write(o, *s.value);
      bytes = buffer.size() - header;
      core_.end_write(kg, key);
    } else {
      core_.remove(kg, key);
    }
    cached_bytes_ = cached_bytes_ - s.bytes + bytes;
    s.bytes = bytes;
  }
  // Writes the dirty slots to the store in one batch; they are clean once it is applied.
  // Const: what the table holds does not change.
  void write_back() const {
    changes_ = 0;
    if (dirty_ == 0) return;
    writing_.clear();
    KvStore& store = core_.store();
    store.begin_batch();
    try {
      for (size_t g : occupied_) {
        const int kg = core_.ctx().first_key_group + static_cast<int>(g);
        groups_[g].for_each([&](std::string_view key, Slot& s) {
          if (!s.dirty) return;
          write(kg, key, s);
          writing_.push_back(&s);
        });
      }
    } catch (...) {  // what was written is applied; the rest stays dirty
      try {
        store.commit_batch();
      } catch (...) {
      }
      throw;
    }
    store.commit_batch();
    for (Slot* s : writing_) s->dirty = false;
    dirty_ -= writing_.size();
  }
  // Empties the cache (after write_back, or when the store was replaced underneath).
  void drop() {
    for (size_t g : occupied_) {
      groups_[g].clear();
      listed_[g] = false;
    }
    occupied_.clear();
    cached_ = 0;
    cached_bytes_ = 0;
    dirty_ = 0;
    changes_ = 0;
    current_ = nullptr;
    current_serial_ = 0;
  }

  StoreTableCore core_;
  size_t capacity_;
  size_t limit_;             // slots: capacity_, at least 1
  size_t write_back_after_;  // changes: kChangesPerWriteBack * limit_, saturated
  // The cache: a table per key group of the subtask's range, like HeapStateTable's.
  mutable std::vector<KeyTable<Slot>> groups_;
  std::vector<size_t> occupied_;     // indexes of the groups with slots, once each
  std::vector<bool> listed_;         // by group: in occupied_
  size_t cached_ = 0;                // slots in groups_
  mutable size_t cached_bytes_ = 0;  // their bytes
  mutable size_t dirty_ = 0;         // slots dirty
  mutable size_t changes_ = 0;       // changes since the last write-back
  mutable std::vector<Slot*> writing_;
  Slot* current_ = nullptr;  // the slot of the current key numbered current_serial_
  uint64_t current_serial_ = 0;
};

// How a backend makes the table of a state whose value type only the caller knows: the backend
// picks the kind of table it keeps.
class TableFactory {
 public:
  virtual ~TableFactory() = default;
  virtual std::unique_ptr<StateTableBase> make_heap_table(const KeyContext& ctx) const = 0;
  // A table over an embedded store's entries, keeping up to `cache_entries` values of its own
  // (see StoreStateTable).
  virtual std::unique_ptr<StateTableBase> make_store_table(const KeyContext& ctx, KvStore& store,
                                                           size_t cache_entries) const = 0;
  // The time-to-live of the state's entries, for a store's own clean-up.
  virtual std::optional<StateTtlConfig> ttl() const { return std::nullopt; }
  // Throws SerializationError unless `value` is a serialized value of the state's type: a store
  // checks one stored value when the state is declared, so that a state declared with another
  // type fails there, as on the heap, not at some later access.
  virtual void check_value(std::string_view /*value*/) const {}
};

template <class V>
class TypedTableFactory final : public TableFactory {
 public:
  explicit TypedTableFactory(std::optional<StateTtlConfig> ttl) : ttl_(ttl) {}
  std::unique_ptr<StateTableBase> make_heap_table(const KeyContext& ctx) const override {
    return std::make_unique<HeapStateTable<V>>(ctx, ttl_);
  }
  std::unique_ptr<StateTableBase> make_store_table(const KeyContext& ctx, KvStore& store,
                                                   size_t cache_entries) const override {
    return std::make_unique<StoreStateTable<V>>(ctx, store, ttl_, cache_entries);
  }
  std::optional<StateTtlConfig> ttl() const override { return ttl_; }
  void check_value(std::string_view value) const override { (void)deserialize<V>(value); }

 private:
  std::optional<StateTtlConfig> ttl_;
};
}  // namespace sluice::internal
