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
  // The store underneath changed (a restore wrote into it): forget any value read before.
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
    if (ctx_.key_group < 0) {
      throw std::logic_error(
          "keyed state used where there is no current key (keyed state "
          "belongs to process_element, not to open or end_input)");
    }
    return groups_[index(ctx_.key_group)];  // throws
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

// The part of StoreStateTable that knows no value type: which entry is the current key's, whether
// it has been read and is present, its touched time and TTL, and the byte-level scans (in
// common/sdk/state_table.cc).
class StoreTableCore {
 public:
  StoreTableCore(const KeyContext& ctx, KvStore& store, std::optional<StateTtlConfig> ttl)
      : ctx_(ctx), store_(store), ttl_(ttl) {}

  bool has_ttl() const { return ttl_.has_value(); }
  bool renews_on_read() const { return ttl_ && ttl_->update_on_read; }
  // Makes the current key the selected entry; false when another was selected before (anything
  // cached for it is stale). Throws without a current key or for one outside the range.
  bool select();
  // After select(): reads the entry unless read already. Returns its value's serialized bytes
  // when it was read now and is present, else null.
  const std::string_view* read();
  bool present() const { return present_; }
  void set_present() { present_ = true; }
  // A present entry under a TTL: false (and the entry removed) when it has expired; else sets
  // *now to the processing time it was checked at.
  bool live(int64_t* now);
  // Removes the selected entry.
  void remove();
  // Writing the selected entry back: begin_write() returns the buffer holding `touched`, to which
  // the caller appends the serialized value, then end_write() stores it.
  std::string& begin_write(int64_t touched);
  void end_write();
  // The touched time of a write now: the processing time under a TTL, else 0.
  int64_t touched_now() const { return ttl_ ? ctx_.now_ms() : 0; }
  // The touched time of an in-place change: the processing time under a TTL, else unchanged.
  int64_t touched_on_change() const { return ttl_ ? ctx_.now_ms() : touched_; }

  size_t size() const;
  uint64_t write_entries(int kg, std::string& out) const;
  // `check` throws SerializationError unless its argument is a serialized value of the state.
  void read_entries(int kg, DataInput& in, uint64_t count, void (*check)(std::string_view));
  void append_keys(int kg, std::vector<std::string>& keys) const;
  void reload() { valid_ = false; }

 private:
  bool expired(int64_t touched, int64_t now) const {
    return ttl_ && now - touched >= ttl_->ttl.count();
  }

  const KeyContext& ctx_;
  KvStore& store_;
  std::optional<StateTtlConfig> ttl_;
  // The selected entry: (kg_, key_) when valid_; read from the store when loaded_.
  bool valid_ = false;
  bool loaded_ = false;
  bool present_ = false;
  uint64_t serial_ = 0;  // the KeyContext::key_serial the selection was last checked at
  int kg_ = -1;
  std::string key_;
  std::string store_key_;
  std::string bytes_;
  std::string_view value_;
  int64_t touched_ = 0;
};

// Keyed state in an embedded store: values serialized, read back into a cached object per
// access. The object of the current key is kept until another key is accessed, so that a read
// followed by a change (find_for_write, modified) deserializes once.
template <class V>
class StoreStateTable final : public StateTable<V> {
 public:
  StoreStateTable(const KeyContext& ctx, KvStore& store, std::optional<StateTtlConfig> ttl)
      : core_(ctx, store, ttl) {}

  V* find() override { return load(/*write=*/core_.renews_on_read()); }
  V* find_for_write() override { return load(/*write=*/core_.has_ttl()); }
  V& put(V value) override {
    core_.select();
    cached_ = std::move(value);
    core_.set_present();
    write_back(core_.touched_now());
    return *cached_;
  }
  void erase() override {
    core_.select();
    core_.remove();
    cached_.reset();
  }
  void modified() override {
    if (core_.present() && cached_) write_back(core_.touched_on_change());
  }
  size_t size() const override { return core_.size(); }
  uint64_t write_entries(int kg, std::string& out) const override {
    return core_.write_entries(kg, out);
  }
  void reload() override { core_.reload(); }
  void read_entries(int kg, DataInput& in, uint64_t count) override {
    core_.read_entries(kg, in, count, [](std::string_view v) { (void)deserialize<V>(v); });
  }
  void append_keys(int kg, std::vector<std::string>& keys) const override {
    core_.append_keys(kg, keys);
  }

 private:
  V* load(bool write) {
    if (!core_.select()) cached_.reset();
    if (const std::string_view* bytes = core_.read()) cached_ = deserialize<V>(*bytes);
    if (!core_.present()) return nullptr;
    if (core_.has_ttl()) {
      int64_t now;
      if (!core_.live(&now)) {
        cached_.reset();
        return nullptr;
      }
      if (write) write_back(now);
    }
    return &*cached_;
  }
  void write_back(int64_t touched) {
    DataOutput o(core_.begin_write(touched));
    Serializer<V>::write(o, *cached_);
    core_.end_write();
  }

  StoreTableCore core_;
  std::optional<V> cached_;
};

// How a backend makes the table of a state whose value type only the caller knows: the backend
// picks the kind of table it keeps.
class TableFactory {
 public:
  virtual ~TableFactory() = default;
  virtual std::unique_ptr<StateTableBase> make_heap_table(const KeyContext& ctx) const = 0;
  // A table over an embedded store's entries.
  virtual std::unique_ptr<StateTableBase> make_store_table(const KeyContext& ctx,
                                                           KvStore& store) const = 0;
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
  std::unique_ptr<StateTableBase> make_store_table(const KeyContext& ctx,
                                                   KvStore& store) const override {
    return std::make_unique<StoreStateTable<V>>(ctx, store, ttl_);
  }
  std::optional<StateTtlConfig> ttl() const override { return ttl_; }
  void check_value(std::string_view value) const override { (void)deserialize<V>(value); }

 private:
  std::optional<StateTtlConfig> ttl_;
};
}  // namespace sluice::internal
