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
//
// Broadcast state (BroadcastState, ReadOnlyBroadcastState): a map that every subtask of a
// broadcast function holds whole, written only by the broadcast side (see
// DataStream::broadcast). It is operator state stored as a broadcast list of key/value pairs:
// after a restore at any parallelism, every subtask gets one old subtask's copy.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "sluice/internal/state_backend.h"
#include "sluice/internal/state_table.h"
#include "sluice/serializer.h"
#include "sluice/state_descriptors.h"

namespace sluice {

template <class T>
class ValueState final : public internal::StateBase {
 public:
  ValueState(internal::KeyedStateBackend& backend, const ValueStateDescriptor<T>& d)
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
  internal::StateTable<T>& table_;
  T default_;
};

template <class T>
class ListState final : public internal::StateBase {
 public:
  ListState(internal::KeyedStateBackend& backend, const ListStateDescriptor<T>& d)
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
  internal::StateTable<std::vector<T>>& table_;
};

template <class K, class V>
class MapState final : public internal::StateBase {
 public:
  MapState(internal::KeyedStateBackend& backend, const MapStateDescriptor<K, V>& d)
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
  internal::StateTable<std::map<K, V>>& table_;
};

template <class T>
class ReducingState final : public internal::StateBase {
 public:
  ReducingState(internal::KeyedStateBackend& backend, const ReducingStateDescriptor<T>& d)
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
  internal::StateTable<T>& table_;
  std::function<T(const T&, const T&)> reduce_;
};

template <class IN, class ACC, class OUT>
class AggregatingState final : public internal::StateBase {
 public:
  AggregatingState(internal::KeyedStateBackend& backend,
                   const AggregatingStateDescriptor<IN, ACC, OUT>& d)
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
  internal::StateTable<ACC>& table_;
  AggregatingStateDescriptor<IN, ACC, OUT> d_;
};
// A list that a function keeps for its subtask (Flink's operator ListState). At a checkpoint
// each element is stored on its own; a restore at another parallelism spreads the elements of
// all the old subtasks over the new ones, so a function must not assume it gets back what it
// stored.
template <class T>
class OperatorListState final : public internal::OperatorStateBase {
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

// The broadcast state of a broadcast function as its data side sees it (the ReadOnlyContext's
// get_broadcast_state): every method is const, so that only the broadcast side, whose records
// every subtask sees alike, can change it and all subtasks keep the same contents.
template <class K, class V>
class ReadOnlyBroadcastState : public internal::OperatorStateBase {
 public:
  // The value of `k`, if there is one.
  std::optional<V> get(const K& k) const {
    auto it = map_.find(k);
    if (it == map_.end()) return std::nullopt;
    return it->second;
  }
  bool contains(const K& k) const { return map_.count(k) != 0; }
  // Every entry, ordered by key: for (const auto& [k, v] : state.entries()).
  const std::map<K, V>& entries() const { return map_; }
  size_t size() const { return map_.size(); }
  bool empty() const { return map_.empty(); }

  // One element per entry: the key's bytes, then the value's.
  void snapshot(std::vector<std::string>& out) const override {
    for (const auto& [k, v] : map_) {
      std::string e;
      DataOutput o(e);
      Serializer<K>::write(o, k);
      Serializer<V>::write(o, v);
      out.push_back(std::move(e));
    }
  }
  void restore(const std::vector<std::string>& elements) override {
    for (const std::string& e : elements) {
      DataInput in(e);
      K k{};
      V v{};
      Serializer<K>::read(in, k);
      Serializer<V>::read(in, v);
      if (!in.at_end()) throw SerializationError("trailing bytes after a broadcast state entry");
      map_.insert_or_assign(std::move(k), std::move(v));
    }
  }

 protected:
  std::map<K, V> map_;
};

// The broadcast state as the broadcast side sees it (the Context's get_broadcast_state). Every
// subtask gets every broadcast record, so changes made from them alone keep the copies equal;
// changes that depend on anything else a subtask has (its data records, its index, the clock)
// make them differ, and a restore at another parallelism then hands one subtask's copy to others.
template <class K, class V>
class BroadcastState final : public ReadOnlyBroadcastState<K, V> {
 public:
  void put(K k, V v) { this->map_.insert_or_assign(std::move(k), std::move(v)); }
  void remove(const K& k) { this->map_.erase(k); }
  void clear() { this->map_.clear(); }
};

// The keyed state kind a descriptor declares (ValueStateDescriptor<T> -> ValueState<T>, ...).
template <class D>
struct state_of_descriptor;
template <class T>
struct state_of_descriptor<ValueStateDescriptor<T>> {
  using type = ValueState<T>;
};
template <class T>
struct state_of_descriptor<ListStateDescriptor<T>> {
  using type = ListState<T>;
};
template <class K, class V>
struct state_of_descriptor<MapStateDescriptor<K, V>> {
  using type = MapState<K, V>;
};
template <class T>
struct state_of_descriptor<ReducingStateDescriptor<T>> {
  using type = ReducingState<T>;
};
template <class IN, class ACC, class OUT>
struct state_of_descriptor<AggregatingStateDescriptor<IN, ACC, OUT>> {
  using type = AggregatingState<IN, ACC, OUT>;
};
}  // namespace sluice
