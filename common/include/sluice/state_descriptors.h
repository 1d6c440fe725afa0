// What a function declares its state with: descriptors (a name, a type, a default or the
// functions that combine values) and an optional time-to-live. See sluice/state.h.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>

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
}  // namespace sluice
