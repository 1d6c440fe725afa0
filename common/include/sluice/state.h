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
// Every access reads or writes the entry of the key of the record being processed. State is
// stored by key group, then by the key's serialized bytes: the layout checkpoints snapshot and
// restore per key-group range, and that a disk-backed store can use unchanged. An optional
// time-to-live (processing time) makes entries expire that were not written for that long;
// expired entries are never returned.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace sluice {

// Processing-time expiry of state entries. The clock restarts when an entry is written (created
// or updated), and also when it is read if `update_on_read`.
struct StateTtlConfig {
  std::chrono::milliseconds ttl{0};
  // Default: false (expiry counts from the last write).
  bool update_on_read = false;
};

// What every state descriptor has: a name unique within the function, and an optional TTL.
struct StateDescriptorBase {
  explicit StateDescriptorBase(std::string n) : name(std::move(n)) {}
  std::string name;
  std::optional<StateTtlConfig> ttl;
};

template <class T>
struct ValueStateDescriptor : StateDescriptorBase {
  explicit ValueStateDescriptor(std::string name, T default_value = T{})
      : StateDescriptorBase(std::move(name)), default_value(std::move(default_value)) {}
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
  ReducingStateDescriptor(std::string name, std::function<T(const T&, const T&)> f)
      : StateDescriptorBase(std::move(name)), reduce(std::move(f)) {}
  std::function<T(const T&, const T&)> reduce;
};
// Flink's AggregateFunction: an accumulator created, fed and read out.
template <class IN, class ACC, class OUT>
struct AggregatingStateDescriptor : StateDescriptorBase {
  AggregatingStateDescriptor(std::string name, std::function<ACC()> create,
                             std::function<void(ACC&, const IN&)> add,
                             std::function<OUT(const ACC&)> result)
      : StateDescriptorBase(std::move(name)),
        create_accumulator(std::move(create)),
        add(std::move(add)),
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

// A named state of one keyed operator: one table per key group, entries by serialized key.
template <class V>
class StateTable {
 public:
  struct Entry {
    V value;
    int64_t touched_ms = 0;  // last write (or read, with update_on_read)
  };

  StateTable(const KeyContext& ctx, std::optional<StateTtlConfig> ttl)
      : ctx_(ctx), ttl_(ttl), groups_(static_cast<size_t>(ctx.num_key_groups)) {}

  // The current key's entry, or nullptr (expired entries are removed and not returned).
  V* find() {
    Entry* e = find_entry(group());
    return e ? &e->value : nullptr;
  }
  // The current key's entry, created from `make` when absent; counts as a write.
  template <class Make>
  V& get_or_create(Make make) {
    auto& g = group();
    Entry* e = find_entry(g);
    if (!e) e = &g.emplace(ctx_.key, Entry{make(), 0}).first->second;
    if (ttl_) e->touched_ms = ctx_.now_ms();
    return e->value;
  }
  void put(V value) {
    auto& e = group()[ctx_.key];
    e.value = std::move(value);
    e.touched_ms = ttl_ ? ctx_.now_ms() : 0;
  }
  void erase() { group().erase(ctx_.key); }
  // Entries of all keys in one key group (for snapshots).
  const std::unordered_map<std::string, Entry>& key_group(int kg) const {
    return groups_.at(static_cast<size_t>(kg - ctx_.first_key_group));
  }
  size_t size() const {
    size_t n = 0;
    for (const auto& g : groups_) n += g.size();
    return n;
  }

 private:
  std::unordered_map<std::string, Entry>& group() {
    if (ctx_.key_group < 0) {
      throw std::logic_error(
          "keyed state used where there is no current key (keyed state "
          "belongs to process_element, not to open or end_input)");
    }
    size_t i = static_cast<size_t>(ctx_.key_group - ctx_.first_key_group);
    if (i >= groups_.size()) {
      throw std::logic_error("key group " + std::to_string(ctx_.key_group) +
                             " is outside this subtask's range");
    }
    return groups_[i];
  }
  // One lookup of the current key in `g`; an expired entry is erased and not returned.
  Entry* find_entry(std::unordered_map<std::string, Entry>& g) {
    auto it = g.find(ctx_.key);
    if (it == g.end()) return nullptr;
    if (ttl_) {
      int64_t now = ctx_.now_ms();
      if (now - it->second.touched_ms >= ttl_->ttl.count()) {
        g.erase(it);
        return nullptr;
      }
      if (ttl_->update_on_read) it->second.touched_ms = now;
    }
    return &it->second;
  }

  const KeyContext& ctx_;
  std::optional<StateTtlConfig> ttl_;
  std::vector<std::unordered_map<std::string, Entry>> groups_;
};

class StateBase {
 public:
  virtual ~StateBase() = default;
  // Removes the current key's entry.
  virtual void clear() = 0;
  // Entries over all keys and key groups.
  virtual size_t size() const = 0;
};

template <class T>
class ValueState final : public StateBase {
 public:
  ValueState(const KeyContext& ctx, const ValueStateDescriptor<T>& d)
      : table_(ctx, d.ttl), default_(d.default_value) {}
  // The current key's value, or the descriptor's default.
  T value() {
    T* v = table_.find();
    return v ? *v : default_;
  }
  bool has_value() { return table_.find() != nullptr; }
  void update(T v) { table_.put(std::move(v)); }
  void clear() override { table_.erase(); }
  size_t size() const override { return table_.size(); }

 private:
  StateTable<T> table_;
  T default_;
};

template <class T>
class ListState final : public StateBase {
 public:
  ListState(const KeyContext& ctx, const ListStateDescriptor<T>& d) : table_(ctx, d.ttl) {}
  // The current key's elements, in the order they were added (empty without an entry).
  std::vector<T> get() {
    auto* v = table_.find();
    return v ? *v : std::vector<T>{};
  }
  void add(T v) {
    table_.get_or_create([] { return std::vector<T>{}; }).push_back(std::move(v));
  }
  void add_all(const std::vector<T>& vs) {
    auto& l = table_.get_or_create([] { return std::vector<T>{}; });
    l.insert(l.end(), vs.begin(), vs.end());
  }
  // Replaces the current key's elements.
  void update(std::vector<T> vs) { table_.put(std::move(vs)); }
  void clear() override { table_.erase(); }
  size_t size() const override { return table_.size(); }

 private:
  StateTable<std::vector<T>> table_;
};

template <class K, class V>
class MapState final : public StateBase {
 public:
  MapState(const KeyContext& ctx, const MapStateDescriptor<K, V>& d) : table_(ctx, d.ttl) {}
  std::optional<V> get(const K& k) {
    auto* m = table_.find();
    if (!m) return std::nullopt;
    auto it = m->find(k);
    if (it == m->end()) return std::nullopt;
    return it->second;
  }
  bool contains(const K& k) { return get(k).has_value(); }
  void put(K k, V v) {
    table_.get_or_create([] { return std::map<K, V>{}; })[std::move(k)] = std::move(v);
  }
  void remove(const K& k) {
    auto* m = table_.find();
    if (!m) return;
    m->erase(k);
    if (m->empty()) table_.erase();
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
  StateTable<std::map<K, V>> table_;
};

template <class T>
class ReducingState final : public StateBase {
 public:
  ReducingState(const KeyContext& ctx, const ReducingStateDescriptor<T>& d)
      : table_(ctx, d.ttl), reduce_(d.reduce) {}
  // The reduced value of the current key, if anything was added.
  std::optional<T> get() {
    T* v = table_.find();
    return v ? std::optional<T>(*v) : std::nullopt;
  }
  void add(const T& v) {
    T* cur = table_.find();
    table_.put(cur ? reduce_(*cur, v) : v);
  }
  void clear() override { table_.erase(); }
  size_t size() const override { return table_.size(); }

 private:
  StateTable<T> table_;
  std::function<T(const T&, const T&)> reduce_;
};

template <class IN, class ACC, class OUT>
class AggregatingState final : public StateBase {
 public:
  AggregatingState(const KeyContext& ctx, const AggregatingStateDescriptor<IN, ACC, OUT>& d)
      : table_(ctx, d.ttl), d_(d) {}
  // The aggregate of the current key, if anything was added.
  std::optional<OUT> get() {
    ACC* acc = table_.find();
    return acc ? std::optional<OUT>(d_.get_result(*acc)) : std::nullopt;
  }
  void add(const IN& v) { d_.add(table_.get_or_create(d_.create_accumulator), v); }
  void clear() override { table_.erase(); }
  size_t size() const override { return table_.size(); }

 private:
  StateTable<ACC> table_;
  AggregatingStateDescriptor<IN, ACC, OUT> d_;
};

// The states of one keyed operator, by name. Asking twice for a name returns the same state;
// asking for a name with another kind or type is an error.
class KeyedStateStore {
 public:
  explicit KeyedStateStore(KeyContext ctx) : ctx_(std::move(ctx)) {}
  KeyContext& key_context() { return ctx_; }

  template <class S, class D>
  S& get(const D& descriptor) {
    auto it = states_.find(descriptor.name);
    if (it == states_.end()) {
      it = states_.emplace(descriptor.name, std::make_unique<S>(ctx_, descriptor)).first;
    }
    S* s = dynamic_cast<S*>(it->second.get());
    if (!s) {
      throw std::invalid_argument("state '" + descriptor.name +
                                  "' was already declared with another kind or type");
    }
    return *s;
  }
  size_t num_states() const { return states_.size(); }

 private:
  KeyContext ctx_;
  std::map<std::string, std::unique_ptr<StateBase>> states_;
};

}  // namespace sluice
