// State that functions keep across records, and what checkpoints snapshot and restore.
//
// Keyed state: values that a keyed function keeps per key, reached through its RuntimeContext.
//
//   struct Count : sluice::KeyedProcessFunction<std::string, Event, Out> {
//     void open(sluice::RuntimeContext& ctx) override {
//       count_ = &ctx.get_state(sluice::ValueStateDescriptor<int64_t>("count"));
//     }
//     void process_element(const Event& e, Context& ctx, sluice::Collector<Out>& out) override {
//       count_->update(count_->value() + 1);   // the count of ctx.current_key()
//     }
//     sluice::ValueState<int64_t>* count_ = nullptr;
//   };
//
// Every access reads or writes the entry of the key of the record being processed. A keyed
// operator holds a KeyedStateBackend for its subtask's key-group range. Underneath the typed
// states (ValueState, ListState, ...), the backend addresses an entry by key group, the key's
// serialized bytes and namespace bytes (reserved: always empty for now), and it snapshots and
// restores per key group, so that a restore at another parallelism hands each key group to its
// new owner. HeapKeyedStateBackend keeps the values as objects in hash tables; a backend that
// keeps serialized values (on disk) implements the same interface. An optional time-to-live
// (processing time) makes entries expire that were not written for that long; expired entries
// are never returned.
//
// Operator state (OperatorStateStore, OperatorListState): named lists that a non-keyed function
// keeps for its subtask, snapshotted element by element so that a restore at another parallelism
// can redistribute the elements over the new subtasks.
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
#include <unordered_map>
#include <utility>
#include <vector>

#include "sluice/keys.h"
#include "sluice/runtime.h"
#include "sluice/serializer.h"

namespace sluice {

// Processing-time expiry of state entries. The clock restarts when an entry is written (created
// or updated), and also when it is read if `update_on_read`.
struct StateTtlConfig {
  std::chrono::milliseconds ttl{0};
  // Default: false (expiry counts from the last write).
  bool update_on_read = false;
};

// What every state descriptor has: a name unique within the function, and an optional TTL
// (keyed state only).
struct StateDescriptorBase {
  explicit StateDescriptorBase(std::string n) : name(std::move(n)) {}
  std::string name;
  std::optional<StateTtlConfig> ttl;
};

template <class T>
struct ValueStateDescriptor : StateDescriptorBase {
  explicit ValueStateDescriptor(std::string n, T default_v = T{})
      : StateDescriptorBase(std::move(n)), default_value(std::move(default_v)) {}
  T default_value;  // what value() returns for a key without an entry
};
template <class T>
struct ListStateDescriptor : StateDescriptorBase {
  using StateDescriptorBase::StateDescriptorBase;
};
template <class K, class V>
struct MapStateDescriptor : StateDescriptorBase {
  using StateDescriptorBase::StateDescriptorBase;
};
// f(const T& accumulated, const T& next) -> T.
template <class T>
struct ReducingStateDescriptor : StateDescriptorBase {
  ReducingStateDescriptor(std::string n, std::function<T(const T&, const T&)> f)
      : StateDescriptorBase(std::move(n)), reduce(std::move(f)) {}
  std::function<T(const T&, const T&)> reduce;
};
// Flink's AggregateFunction: an accumulator created, fed and read out.
template <class IN, class ACC, class OUT>
struct AggregatingStateDescriptor : StateDescriptorBase {
  AggregatingStateDescriptor(std::string n, std::function<ACC()> create,
                             std::function<void(ACC&, const IN&)> add_fn,
                             std::function<OUT(const ACC&)> result)
      : StateDescriptorBase(std::move(n)),
        create_accumulator(std::move(create)),
        add(std::move(add_fn)),
        get_result(std::move(result)) {}
  std::function<ACC()> create_accumulator;
  std::function<void(ACC&, const IN&)> add;
  std::function<OUT(const ACC&)> get_result;
};

// The key that state accesses refer to: set by the keyed operator before each call into user
// code.
struct KeyContext {
  int key_group = -1;       // absolute key group of the current key; -1: no current key
  std::string key;          // the current key's serialized bytes
  int first_key_group = 0;  // the subtask's key-group range
  int num_key_groups = 1;
  std::function<int64_t()> now_ms;  // processing time, for TTL
};

// ---------------------------------------------------------------------------------------------
// Storage underneath the typed states.
//
// The entries of one state in one key group serialize as
//   entry := key bytes, namespace bytes, touched_ms (int64), value bytes (Serializer<V>)
// where every "bytes" is a varint length and the bytes, so that entries can be skipped without
// knowing the value type.

namespace state_internal {

// Hash and equality of serialized keys, inlined for the short keys most jobs have (a number, a
// short string): the library's string hash and memcmp calls cost more than the lookup itself.
inline uint64_t load_tail(const char* p, size_t n) {  // n <= 8
  uint64_t v = 0;
  std::memcpy(&v, p, n);
  return v;
}
// Transparent: tables can be searched with a std::string_view without copying it.
struct KeyBytesHash {
  using is_transparent = void;
  size_t operator()(std::string_view k) const noexcept {
    const char* p = k.data();
    size_t n = k.size();
    uint64_t h = 0x9e3779b97f4a7c15ull ^ n;
    while (n >= 8) {
      uint64_t w;
      std::memcpy(&w, p, 8);
      h = (h ^ w) * 0xff51afd7ed558ccdull;
      h ^= h >> 32;
      p += 8;
      n -= 8;
    }
    if (n > 0) h = (h ^ load_tail(p, n)) * 0xc4ceb9fe1a85ec53ull;
    return static_cast<size_t>(h ^ (h >> 29));
  }
};
struct KeyBytesEq {
  using is_transparent = void;
  bool operator()(std::string_view a, std::string_view b) const noexcept {
    size_t n = a.size();
    if (n != b.size()) return false;
    if (n <= 8) return load_tail(a.data(), n) == load_tail(b.data(), n);
    return std::memcmp(a.data(), b.data(), n) == 0;
  }
};

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
    Entry* e = find_entry(group());
    return e ? &e->value : nullptr;
  }
  V* find_for_write() override {
    Entry* e = find_entry(group());
    if (!e) return nullptr;
    if (ttl_) e->touched_ms = ctx_.now_ms();
    return &e->value;
  }
  V& put(V value) override {
    Entry& e = group()[ctx_.key];
    e.value = std::move(value);
    e.touched_ms = ttl_ ? ctx_.now_ms() : 0;
    return e.value;
  }
  void erase() override { group().erase(ctx_.key); }
  void prefetch(int key_group, std::string_view key) override {
    const size_t i = slot(key_group);
    if (i == groups_.size()) return;
    auto it = groups_[i].find(key);
    if (it == groups_[i].end()) return;
    using state_internal::prefetch_value;
    prefetch_value(it->second.value);
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
    for (const auto& [key, e] : g) {
      if (expired(e, now)) continue;
      value.clear();
      DataOutput vo(value);
      Serializer<V>::write(vo, e.value);
      state_internal::write_entry(o, key, e.touched_ms, value);
      ++n;
    }
    return n;
  }
  void read_entries(int kg, DataInput& in, uint64_t count) override {
    auto& g = groups_.at(index(kg));
    for (uint64_t i = 0; i < count; ++i) {
      state_internal::Entry in_entry = state_internal::read_entry(in);
      Entry e{};
      e.touched_ms = in_entry.touched_ms;
      e.value = deserialize<V>(in_entry.value);
      g.insert_or_assign(std::string(in_entry.key), std::move(e));
    }
  }
  void append_keys(int kg, std::vector<std::string>& keys) const override {
    const auto& g = groups_.at(index(kg));
    int64_t now = ttl_ && !g.empty() ? ctx_.now_ms() : 0;
    for (const auto& [key, e] : g) {
      if (!expired(e, now)) keys.push_back(key);
    }
  }

 private:
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
  std::unordered_map<std::string, Entry, state_internal::KeyBytesHash, state_internal::KeyBytesEq>&
  group() {
    if (ctx_.key_group < 0) {
      throw std::logic_error(
          "keyed state used where there is no current key (keyed state "
          "belongs to process_element, not to open or end_input)");
    }
    return groups_[index(ctx_.key_group)];
  }
  bool expired(const Entry& e, int64_t now) const {
    return ttl_ && now - e.touched_ms >= ttl_->ttl.count();
  }
  // One lookup of the current key in `g`; an expired entry is erased and not returned.
  Entry* find_entry(std::unordered_map<std::string, Entry, state_internal::KeyBytesHash,
                                       state_internal::KeyBytesEq>& g) {
    auto it = g.find(ctx_.key);
    if (it == g.end()) return nullptr;
    if (ttl_) {
      int64_t now = ctx_.now_ms();
      if (expired(it->second, now)) {
        g.erase(it);
        return nullptr;
      }
      if (ttl_->update_on_read) it->second.touched_ms = now;
    }
    return &it->second;
  }

  const KeyContext& ctx_;
  std::optional<StateTtlConfig> ttl_;
  std::vector<std::unordered_map<std::string, Entry, state_internal::KeyBytesHash,
                                 state_internal::KeyBytesEq>>
      groups_;
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

// Keyed state in an embedded store: values serialized, read back into a cached object per
// access. The object of the current key is kept until another key is accessed, so that a read
// followed by a change (find_for_write, modified) deserializes once.
template <class V>
class StoreStateTable final : public StateTable<V> {
 public:
  StoreStateTable(const KeyContext& ctx, KvStore& store, std::optional<StateTtlConfig> ttl)
      : ctx_(ctx), store_(store), ttl_(ttl) {}

  V* find() override { return load(/*write=*/ttl_ && ttl_->update_on_read); }
  V* find_for_write() override { return load(/*write=*/ttl_.has_value()); }
  V& put(V value) override {
    select();
    cached_ = std::move(value);
    present_ = true;
    write_back(ttl_ ? ctx_.now_ms() : 0);
    return *cached_;
  }
  void erase() override {
    select();
    store_.remove(store_key_);
    cached_.reset();
    present_ = false;
  }
  void modified() override {
    if (present_ && cached_) write_back(ttl_ ? ctx_.now_ms() : touched_);
  }

  size_t size() const override {
    size_t n = 0;
    for (int kg = ctx_.first_key_group; kg < ctx_.first_key_group + ctx_.num_key_groups; ++kg) {
      store_.scan(kg, [&](std::string_view, std::string_view) { ++n; });
    }
    return n;
  }
  uint64_t write_entries(int kg, std::string& out) const override {
    int64_t now = ttl_ ? ctx_.now_ms() : 0;
    int64_t ttl_ms = ttl_ ? ttl_->ttl.count() : -1;
    DataOutput o(out);
    uint64_t n = 0;
    store_.scan(kg, [&](std::string_view k, std::string_view v) {
      n += state_internal::append_stored_entry(o, k, v, ttl_ms, now);
    });
    return n;
  }
  void reload() override { valid_ = false; }
  void read_entries(int kg, DataInput& in, uint64_t count) override {
    reload();
    std::string value;
    for (uint64_t i = 0; i < count; ++i) {
      state_internal::Entry e = state_internal::read_entry(in);
      deserialize<V>(e.value);  // malformed bytes fail the restore here, not at first access
      state_internal::make_stored_value(value, e.touched_ms, e.value);
      store_.put(state_internal::store_key(kg, e.key), value);
    }
  }
  void append_keys(int kg, std::vector<std::string>& keys) const override {
    int64_t now = ttl_ ? ctx_.now_ms() : 0;
    store_.scan(kg, [&](std::string_view k, std::string_view v) {
      if (!expired(state_internal::stored_touched_ms(v), now)) {
        keys.emplace_back(k.substr(state_internal::kKeyGroupPrefixBytes));
      }
    });
  }

 private:
  // Makes the current key the cached one (reading nothing yet).
  bool select() {
    if (ctx_.key_group < 0) {
      throw std::logic_error(
          "keyed state used where there is no current key (keyed state "
          "belongs to process_element, not to open or end_input)");
    }
    if (valid_ && kg_ == ctx_.key_group && key_ == ctx_.key) return true;
    if (ctx_.key_group < ctx_.first_key_group ||
        ctx_.key_group >= ctx_.first_key_group + ctx_.num_key_groups) {
      throw std::invalid_argument("key group " + std::to_string(ctx_.key_group) +
                                  " is outside this subtask's range");
    }
    kg_ = ctx_.key_group;
    key_ = ctx_.key;
    store_key_.clear();
    state_internal::append_key_group_prefix(store_key_, kg_);
    store_key_.append(key_);
    valid_ = true;
    loaded_ = false;
    present_ = false;
    cached_.reset();
    return false;
  }
  V* load(bool write) {
    select();
    if (!loaded_) {
      loaded_ = true;
      present_ = store_.get(store_key_, &bytes_);
      if (present_) {
        touched_ = state_internal::stored_touched_ms(bytes_);
        cached_ = deserialize<V>(std::string_view(bytes_).substr(sizeof(int64_t)));
      }
    }
    if (!present_) return nullptr;
    if (ttl_) {
      int64_t now = ctx_.now_ms();
      if (expired(touched_, now)) {
        store_.remove(store_key_);
        present_ = false;
        cached_.reset();
        return nullptr;
      }
      if (write) write_back(now);
    }
    return &*cached_;
  }
  void write_back(int64_t touched) {
    touched_ = touched;
    bytes_.clear();
    DataOutput o(bytes_);
    Serializer<int64_t>::write(o, touched);
    Serializer<V>::write(o, *cached_);
    store_.put(store_key_, bytes_);
  }

  bool expired(int64_t touched, int64_t now) const {
    return ttl_ && now - touched >= ttl_->ttl.count();
  }

  const KeyContext& ctx_;
  KvStore& store_;
  std::optional<StateTtlConfig> ttl_;
  // The cached entry: for (kg_, key_) when valid_; read from the store when loaded_.
  bool valid_ = false;
  bool loaded_ = false;
  bool present_ = false;
  int kg_ = -1;
  std::string key_;
  std::string store_key_;
  std::string bytes_;
  int64_t touched_ = 0;
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

// ---------------------------------------------------------------------------------------------
// The keyed state backend.

class StateBase {
 public:
  virtual ~StateBase() = default;
  // Removes the current key's entry.
  virtual void clear() = 0;
  // Entries over all keys and key groups.
  virtual size_t size() const = 0;
};

// The keyed state of one keyed operator in one subtask: the current key, the named states, and
// their snapshot and restore per key group. Used only from the task's thread.
class SLUICE_EXPORT KeyedStateBackend {
 public:
  virtual ~KeyedStateBackend() = default;
  KeyedStateBackend(const KeyedStateBackend&) = delete;
  KeyedStateBackend& operator=(const KeyedStateBackend&) = delete;

  // The key that state accesses refer to. The operator sets it before each call into user code.
  KeyContext& key_context() { return ctx_; }
  void set_current_key(std::string_view key, int key_group) {
    ctx_.key.assign(key);
    ctx_.key_group = key_group;
  }
  // No current key: state accesses throw std::logic_error.
  void clear_current_key() { ctx_.key_group = -1; }
  KeyGroupRange key_group_range() const {
    return {ctx_.first_key_group, ctx_.first_key_group + ctx_.num_key_groups - 1};
  }

  // The state named `descriptor.name`, of kind S (ValueState<T>, ListState<T>, ...), created at
  // the first call from what was restored under that name, if anything. Asking again returns
  // the same object; asking for a declared name with another kind or type throws
  // std::invalid_argument; restored bytes that do not deserialize throw SerializationError.
  template <class S, class D>
  S& get(const D& descriptor) {
    auto it = states_.find(descriptor.name);
    if (it == states_.end()) {
      it = states_.emplace(descriptor.name, std::make_unique<S>(*this, descriptor)).first;
    }
    S* s = dynamic_cast<S*>(it->second.get());
    if (!s) {
      throw std::invalid_argument("state '" + descriptor.name +
                                  "' was already declared with another kind or type");
    }
    return *s;
  }
  size_t num_states() const { return states_.size(); }

  // For the typed states' constructors: the table of a state declared for the first time.
  template <class V>
  StateTable<V>& table(const std::string& name, const std::optional<StateTtlConfig>& ttl) {
    return static_cast<StateTable<V>&>(create_table(name, TypedTableFactory<V>(ttl)));
  }
  // A table the runtime keeps for itself (timers), of type Table made by `factory`: created at
  // the first call from what was restored under `name`, the same object afterwards.
  template <class Table>
  Table& internal_table(const std::string& name, const TableFactory& factory) {
    auto it = internal_.find(name);
    if (it == internal_.end()) it = internal_.emplace(name, &create_table(name, factory)).first;
    return static_cast<Table&>(*it->second);
  }

  // The synchronous part of a snapshot for checkpoint `checkpoint_id`: one byte string per key
  // group of the range that holds any entry into out.key_groups[kg], including states restored
  // but not declared since (unchanged); or, for a backend of an embedded store, what its
  // out.deferred part will store off the task's thread. Processing may change the state as soon
  // as it returns.
  virtual void snapshot(OperatorSnapshot& out, int64_t checkpoint_id = 0) = 0;
  // Checkpoint `checkpoint_id` is complete: an incremental backend may build on its files.
  virtual void notify_checkpoint_complete(int64_t /*checkpoint_id*/) {}
  // Takes the key groups of `in` (all must lie in the range, else std::invalid_argument). A
  // declared state is filled at once; the bytes of any other state are kept until the state is
  // declared. Throws SerializationError on malformed bytes.
  virtual void restore(const OperatorSnapshot& in) = 0;
  // Calls fn(serialized key) once for every key with a live entry in any declared state, in
  // key-group order, with that key as the current key; then clears the current key. `fn` may
  // read and change state.
  void for_each_key(const std::function<void(const std::string& key)>& fn) {
    std::vector<std::string> keys;
    for (int kg = ctx_.first_key_group; kg < ctx_.first_key_group + ctx_.num_key_groups; ++kg) {
      keys.clear();
      append_declared_keys(kg, keys);
      std::sort(keys.begin(), keys.end());
      keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
      for (const std::string& key : keys) {
        set_current_key(key, kg);
        fn(key);
      }
    }
    clear_current_key();
  }

 protected:
  // For the key groups `range`, with `now_ms` as processing time (for TTL).
  KeyedStateBackend(KeyGroupRange range, std::function<int64_t()> now_ms) {
    ctx_.first_key_group = range.first;
    ctx_.num_key_groups = std::max(range.size(), 0);
    ctx_.now_ms = std::move(now_ms);
  }
  // Creates the table of a state declared for the first time, filled with what was restored
  // under `name`.
  virtual StateTableBase& create_table(const std::string& name, const TableFactory& factory) = 0;
  // Appends the keys with a live entry in key group `kg` in any declared table (repeats allowed).
  virtual void append_declared_keys(int kg, std::vector<std::string>& keys) const = 0;

  KeyContext ctx_;

 private:
  std::map<std::string, std::unique_ptr<StateBase>> states_;  // the typed states, by name
  std::map<std::string, StateTableBase*> internal_;           // internal tables, by name
};

template <class T>
class ValueState final : public StateBase {
 public:
  ValueState(KeyedStateBackend& backend, const ValueStateDescriptor<T>& d)
      : table_(backend.table<T>(d.name, d.ttl)), default_(d.default_value) {}
  // The current key's value, or the descriptor's default.
  T value() {
    T* v = table_.find();
    return v ? *v : default_;
  }
  bool has_value() { return table_.find() != nullptr; }
  void update(T v) { table_.put(std::move(v)); }
  // Sets the value to f(value, v), or to v when there is none, with one lookup; returns it.
  template <class F>
  const T& merge(T v, F&& f) {
    return table_.merge(std::move(v), std::forward<F>(f));
  }
  void clear() override { table_.erase(); }
  size_t size() const override { return table_.size(); }

 private:
  StateTable<T>& table_;
  T default_;
};

template <class T>
class ListState final : public StateBase {
 public:
  ListState(KeyedStateBackend& backend, const ListStateDescriptor<T>& d)
      : table_(backend.table<std::vector<T>>(d.name, d.ttl)) {}
  // The current key's elements, in the order they were added (empty without an entry).
  std::vector<T> get() {
    auto* v = table_.find();
    return v ? *v : std::vector<T>{};
  }
  void add(T v) {
    list().push_back(std::move(v));
    table_.modified();
  }
  void add_all(const std::vector<T>& vs) {
    auto& l = list();
    l.insert(l.end(), vs.begin(), vs.end());
    table_.modified();
  }
  // Replaces the current key's elements.
  void update(std::vector<T> vs) { table_.put(std::move(vs)); }
  void clear() override { table_.erase(); }
  size_t size() const override { return table_.size(); }

 private:
  std::vector<T>& list() {
    std::vector<T>* l = table_.find_for_write();
    return l ? *l : table_.put({});
  }
  StateTable<std::vector<T>>& table_;
};

template <class K, class V>
class MapState final : public StateBase {
 public:
  MapState(KeyedStateBackend& backend, const MapStateDescriptor<K, V>& d)
      : table_(backend.table<std::map<K, V>>(d.name, d.ttl)) {}
  std::optional<V> get(const K& k) {
    auto* m = table_.find();
    if (!m) return std::nullopt;
    auto it = m->find(k);
    if (it == m->end()) return std::nullopt;
    return it->second;
  }
  bool contains(const K& k) { return get(k).has_value(); }
  void put(K k, V v) {
    std::map<K, V>* m = table_.find_for_write();
    if (!m) m = &table_.put({});
    (*m)[std::move(k)] = std::move(v);
    table_.modified();
  }
  void remove(const K& k) {
    auto* m = table_.find();
    if (!m) return;
    m->erase(k);
    if (m->empty()) {
      table_.erase();
    } else {
      table_.modified();
    }
  }
  // The current key's whole map (a copy), ordered by map key.
  std::map<K, V> entries() {
    auto* m = table_.find();
    return m ? *m : std::map<K, V>{};
  }
  bool is_empty() {
    auto* m = table_.find();
    return !m || m->empty();
  }
  void clear() override { table_.erase(); }
  size_t size() const override { return table_.size(); }

 private:
  StateTable<std::map<K, V>>& table_;
};

template <class T>
class ReducingState final : public StateBase {
 public:
  ReducingState(KeyedStateBackend& backend, const ReducingStateDescriptor<T>& d)
      : table_(backend.table<T>(d.name, d.ttl)), reduce_(d.reduce) {}
  // The reduced value of the current key, if anything was added.
  std::optional<T> get() {
    T* v = table_.find();
    return v ? std::optional<T>(*v) : std::nullopt;
  }
  void add(const T& v) { table_.merge(v, reduce_); }
  void clear() override { table_.erase(); }
  size_t size() const override { return table_.size(); }

 private:
  StateTable<T>& table_;
  std::function<T(const T&, const T&)> reduce_;
};

template <class IN, class ACC, class OUT>
class AggregatingState final : public StateBase {
 public:
  AggregatingState(KeyedStateBackend& backend, const AggregatingStateDescriptor<IN, ACC, OUT>& d)
      : table_(backend.table<ACC>(d.name, d.ttl)), d_(d) {}
  // The aggregate of the current key, if anything was added.
  std::optional<OUT> get() {
    ACC* acc = table_.find();
    return acc ? std::optional<OUT>(d_.get_result(*acc)) : std::nullopt;
  }
  void add(const IN& v) {
    ACC* acc = table_.find_for_write();
    if (!acc) acc = &table_.put(d_.create_accumulator());
    d_.add(*acc, v);
    table_.modified();
  }
  void clear() override { table_.erase(); }
  size_t size() const override { return table_.size(); }

 private:
  StateTable<ACC>& table_;
  AggregatingStateDescriptor<IN, ACC, OUT> d_;
};

// Keyed state on the heap, for key groups [range.first, range.last].
//
// Snapshots are synchronous copies: snapshot() serializes the tables into bytes on the task's
// thread, so that processing can go on while the runtime writes the bytes to a file off the
// task's thread. The bytes of key group kg are, for each state with live entries there (in
// name order): its name (varint length, bytes), the number of entries (varint), then the
// entries (see "Storage underneath the typed states").
//
// Restore is lazy per state, like Flink's: the restored bytes are kept by name and deserialized
// when the function declares the state (get_state in open()). A state restored but never
// declared again is written back unchanged by later snapshots.
class HeapKeyedStateBackend final : public KeyedStateBackend {
 public:
  explicit HeapKeyedStateBackend(KeyGroupRange range,
                                 std::function<int64_t()> now_ms = system_clock_ms)
      : KeyedStateBackend(range, std::move(now_ms)) {}

  void snapshot(OperatorSnapshot& out, int64_t = 0) override {
    std::vector<std::string> names;
    for (const auto& [name, t] : tables_) names.push_back(name);
    for (const auto& [name, p] : pending_) names.push_back(name);
    std::sort(names.begin(), names.end());
    std::string entries;
    for (int kg = ctx_.first_key_group; kg < ctx_.first_key_group + ctx_.num_key_groups; ++kg) {
      std::string bytes;
      DataOutput o(bytes);
      for (const std::string& name : names) {
        auto t = tables_.find(name);
        if (t != tables_.end()) {
          entries.clear();
          uint64_t n = t->second->write_entries(kg, entries);
          if (n > 0) state_internal::write_section(o, name, n, entries);
          continue;
        }
        const auto& groups = pending_.at(name);
        auto g = groups.find(kg);
        if (g != groups.end()) {
          state_internal::write_section(o, name, g->second.count, g->second.entries);
        }
      }
      if (!bytes.empty()) out.key_groups[kg] = std::move(bytes);
    }
  }

  void restore(const OperatorSnapshot& in) override {
    if (!in.native.empty()) {
      throw std::invalid_argument(
          "the checkpoint holds this operator's keyed state in the " + in.native.front().backend +
          " backend's format; restore it with state.backend.type: " + in.native.front().backend);
    }
    KeyGroupRange range = key_group_range();
    for (const auto& [kg, bytes] : in.key_groups) {
      if (kg < range.first || kg > range.last) {
        throw std::invalid_argument(
            "restored key group " + std::to_string(kg) + " is outside this subtask's range [" +
            std::to_string(range.first) + ", " + std::to_string(range.last) + "]");
      }
      DataInput di(bytes);
      while (!di.at_end()) {
        std::string name(state_internal::read_bytes(di));
        uint64_t count = di.read_varint();
        DataInput start = di;
        state_internal::skip_entries(di, count);
        size_t len = start.remaining() - di.remaining();
        std::string_view section = start.read_view(len);
        auto t = tables_.find(name);
        if (t != tables_.end()) {
          read_into(*t->second, name, kg, section, count);
        } else {
          Pending& p = pending_[name][kg];
          p.count += count;
          p.entries.append(section);
        }
      }
    }
  }

 protected:
  void append_declared_keys(int kg, std::vector<std::string>& keys) const override {
    for (const auto& [name, t] : tables_) t->append_keys(kg, keys);
  }
  StateTableBase& create_table(const std::string& name, const TableFactory& factory) override {
    if (tables_.count(name)) throw std::logic_error("state '" + name + "' has a table already");
    std::unique_ptr<StateTableBase> t = factory.make_heap_table(ctx_);
    auto p = pending_.find(name);
    if (p != pending_.end()) {
      for (const auto& [kg, g] : p->second) read_into(*t, name, kg, g.entries, g.count);
      pending_.erase(p);
    }
    return *tables_.emplace(name, std::move(t)).first->second;
  }

 private:
  // Entries of one state in one key group, restored and not declared yet.
  struct Pending {
    uint64_t count = 0;
    std::string entries;
  };

  static void read_into(StateTableBase& t, const std::string& name, int kg,
                        std::string_view entries, uint64_t count) {
    try {
      DataInput in(entries);
      t.read_entries(kg, in, count);
    } catch (const SerializationError& e) {
      throw SerializationError("restoring state '" + name + "' (key group " + std::to_string(kg) +
                               "): " + e.what());
    }
  }

  std::map<std::string, std::unique_ptr<StateTableBase>> tables_;  // declared states
  std::map<std::string, std::map<int, Pending>> pending_;          // by name, then key group
};

// ---------------------------------------------------------------------------------------------
// Operator state.

class OperatorStateBase {
 public:
  virtual ~OperatorStateBase() = default;
  // Appends the serialized elements.
  virtual void snapshot(std::vector<std::string>& out) const = 0;
  // Appends deserialized elements; throws SerializationError.
  virtual void restore(const std::vector<std::string>& elements) = 0;
};

// A list that a function keeps for its subtask (Flink's operator ListState). At a checkpoint
// each element is stored on its own; a restore at another parallelism spreads the elements of
// all the old subtasks over the new ones, so a function must not assume it gets back what it
// stored.
template <class T>
class OperatorListState final : public OperatorStateBase {
 public:
  std::vector<T> get() const { return values_; }
  void add(T v) { values_.push_back(std::move(v)); }
  // Replaces the elements.
  void update(std::vector<T> vs) { values_ = std::move(vs); }
  void clear() { values_.clear(); }

  void snapshot(std::vector<std::string>& out) const override {
    for (const T& v : values_) out.push_back(serialize(v));
  }
  void restore(const std::vector<std::string>& elements) override {
    for (const std::string& e : elements) values_.push_back(deserialize<T>(e));
  }

 private:
  std::vector<T> values_;
};

// The operator state of one operator in one subtask: named lists. Restore is lazy, as for keyed
// state: a restored list is deserialized when declared, and one never declared again is written
// back unchanged by later snapshots. Used only from the task's thread.
class OperatorStateStore {
 public:
  // The list named `d.name`, created at the first call from what was restored under that name.
  // Throws std::invalid_argument for a name declared with another type or a descriptor with a
  // TTL (operator state does not expire), SerializationError for restored bytes that do not
  // deserialize.
  template <class T>
  OperatorListState<T>& get_list_state(const ListStateDescriptor<T>& d) {
    if (d.ttl) {
      throw std::invalid_argument("operator state '" + d.name + "' cannot have a time-to-live");
    }
    auto it = lists_.find(d.name);
    if (it == lists_.end()) {
      auto s = std::make_unique<OperatorListState<T>>();
      auto p = pending_.find(d.name);
      if (p != pending_.end()) {
        restore_into(*s, d.name, p->second);
        pending_.erase(p);
      }
      it = lists_.emplace(d.name, std::move(s)).first;
    }
    auto* s = dynamic_cast<OperatorListState<T>*>(it->second.get());
    if (!s) {
      throw std::invalid_argument("operator state '" + d.name +
                                  "' was already declared with another type");
    }
    return *s;
  }
  size_t num_states() const { return lists_.size(); }

  // Takes the lists of `in`: a declared list gets the elements at once, any other keeps them
  // until declared.
  void restore(const OperatorSnapshot& in) {
    for (const auto& [name, elements] : in.lists) {
      auto it = lists_.find(name);
      if (it != lists_.end()) {
        restore_into(*it->second, name, elements);
      } else {
        auto& p = pending_[name];
        p.insert(p.end(), elements.begin(), elements.end());
      }
    }
  }
  // Writes every non-empty list into out.lists (one serialized string per element).
  void snapshot(OperatorSnapshot& out) const {
    for (const auto& [name, s] : lists_) {
      std::vector<std::string> elements;
      s->snapshot(elements);
      if (!elements.empty()) out.lists[name] = std::move(elements);
    }
    for (const auto& [name, elements] : pending_) {
      if (!elements.empty()) out.lists[name] = elements;
    }
  }

 private:
  static void restore_into(OperatorStateBase& s, const std::string& name,
                           const std::vector<std::string>& elements) {
    try {
      s.restore(elements);
    } catch (const SerializationError& e) {
      throw SerializationError("restoring operator state '" + name + "': " + e.what());
    }
  }

  std::map<std::string, std::unique_ptr<OperatorStateBase>> lists_;
  std::map<std::string, std::vector<std::string>> pending_;  // restored, not declared yet
};

}  // namespace sluice
