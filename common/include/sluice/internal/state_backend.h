// The keyed state backend of one keyed operator in one subtask (the interface both backends
// implement), and the operator state of one operator in one subtask.
#pragma once

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/internal/runtime.h"
#include "sluice/internal/state_table.h"
#include "sluice/keys.h"
#include "sluice/state_descriptors.h"

namespace sluice {
template <class T>
class OperatorListState;
template <class K, class V>
class BroadcastState;
}  // namespace sluice

namespace sluice::internal {

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
  void set_current_key(std::string_view key, int key_group) { ctx_.set(key, key_group); }
  // No current key: state accesses throw std::logic_error.
  void clear_current_key() { ctx_.set(-1); }
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
    auto& t = static_cast<StateTable<V>&>(create_table(name, TypedTableFactory<V>(ttl)));
    tables_[name] = &t;
    return t;
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
    visit_keys([this](int kg, std::vector<std::string>& keys) { append_declared_keys(kg, keys); },
               fn);
  }
  // The same for the keys with a live entry in the declared state `name` (none if `name` is not
  // declared): a broadcast function's apply_to_keyed_state.
  void for_each_key_of(const std::string& name,
                       const std::function<void(const std::string& key)>& fn) {
    auto it = tables_.find(name);
    if (it == tables_.end()) return;
    const StateTableBase* t = it->second;
    visit_keys([t](int kg, std::vector<std::string>& keys) { t->append_keys(kg, keys); }, fn);
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
  // Calls fn(key) with the key current for every distinct key that append(kg, keys) lists, key
  // group by key group; then clears the current key.
  void visit_keys(const std::function<void(int kg, std::vector<std::string>& keys)>& append,
                  const std::function<void(const std::string& key)>& fn) {
    std::vector<std::string> keys;
    for (int kg = ctx_.first_key_group; kg < ctx_.first_key_group + ctx_.num_key_groups; ++kg) {
      keys.clear();
      append(kg, keys);
      std::sort(keys.begin(), keys.end());
      keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
      for (const std::string& key : keys) {
        set_current_key(key, kg);
        fn(key);
      }
    }
    clear_current_key();
  }

  std::map<std::string, std::unique_ptr<StateBase>> states_;  // the typed states, by name
  std::map<std::string, StateTableBase*> tables_;             // their tables, by name
  std::map<std::string, StateTableBase*> internal_;           // internal tables, by name
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
// The operator state of one operator in one subtask: named lists. Restore is lazy, as for keyed
// state: a restored list is deserialized when declared, and one never declared again is written
// back unchanged by later snapshots. Used only from the task's thread.
class OperatorStateStore {
 public:
  // The list named `d.name`, created at the first call from what was restored under that name.
  // Throws std::invalid_argument for a name declared with another type or a descriptor with a
  // TTL (operator state does not expire), SerializationError for restored bytes that do not
  // deserialize.
  // `mode` says how a restore at another parallelism hands the list out; a name keeps the mode
  // it was first declared with (std::invalid_argument otherwise).
  template <class T>
  OperatorListState<T>& get_list_state(const ListStateDescriptor<T>& d,
                                       ListDistribution mode = ListDistribution::kSplit) {
    return get_state<OperatorListState<T>>(d, mode);
  }
  // The broadcast state named `d.name` (a map every subtask holds whole), stored as a broadcast
  // list of key/value pairs; otherwise as get_list_state.
  template <class K, class V>
  BroadcastState<K, V>& get_broadcast_state(const MapStateDescriptor<K, V>& d) {
    return get_state<BroadcastState<K, V>>(d, ListDistribution::kBroadcast);
  }
  size_t num_states() const { return lists_.size(); }

  // Takes the lists of `in`: a declared list gets the elements at once, any other keeps them
  // until declared.
  void restore(const OperatorSnapshot& in) {
    for (const auto& [name, mode] : in.distribution) modes_.emplace(name, mode);
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
    for (const auto& [name, mode] : modes_) {
      if (mode != ListDistribution::kSplit && out.lists.count(name)) out.distribution[name] = mode;
    }
  }

 private:
  // The state named `d.name`, of kind S (an OperatorStateBase), as get_list_state describes.
  template <class S, class D>
  S& get_state(const D& d, ListDistribution mode) {
    if (d.ttl) {
      throw std::invalid_argument("operator state '" + d.name + "' cannot have a time-to-live");
    }
    auto it = lists_.find(d.name);
    if (it == lists_.end()) {
      check_mode(d.name, mode);
      modes_[d.name] = mode;
      auto s = std::make_unique<S>();
      auto p = pending_.find(d.name);
      if (p != pending_.end()) {
        restore_into(*s, d.name, p->second);
        pending_.erase(p);
      }
      it = lists_.emplace(d.name, std::move(s)).first;
    }
    auto* s = dynamic_cast<S*>(it->second.get());
    if (!s) {
      throw std::invalid_argument("operator state '" + d.name +
                                  "' was already declared with another kind or type");
    }
    check_mode(d.name, mode);
    return *s;
  }

  // A declared list must keep the mode it was stored with: a restore has already handed it out.
  void check_mode(const std::string& name, ListDistribution mode) const {
    auto it = modes_.find(name);
    if (it != modes_.end() && it->second != mode) {
      throw std::invalid_argument("operator state '" + name +
                                  "' was declared with another distribution (split, union or "
                                  "broadcast) than it was stored with");
    }
  }

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
  std::map<std::string, ListDistribution> modes_;
};

// One broadcast state a broadcast stream carries (DataStream::broadcast): its name, and how an
// operator declares it in its operator state.
struct BroadcastStateSpec {
  std::string name;
  std::function<OperatorStateBase&(OperatorStateStore&)> declare;
};

// The broadcast states of one broadcast function's operator: those its broadcast stream names,
// declared (and filled from a restore) when the operator opens. Looked up by name on every
// get_broadcast_state; a function has few.
class BroadcastStates {
 public:
  explicit BroadcastStates(std::vector<BroadcastStateSpec> specs) : specs_(std::move(specs)) {}
  // Declares every state in `store`. Throws as OperatorStateStore::get_broadcast_state does.
  void declare(OperatorStateStore& store) {
    states_.clear();
    for (const BroadcastStateSpec& spec : specs_)
      states_.push_back({spec.name, &spec.declare(store)});
  }
  // The state of descriptor `d`: std::invalid_argument if the broadcast stream does not name it
  // or names it with other key and value types.
  template <class K, class V>
  BroadcastState<K, V>& get(const MapStateDescriptor<K, V>& d) const {
    for (const Declared& s : states_) {
      if (s.name != d.name) continue;
      auto* typed = dynamic_cast<BroadcastState<K, V>*>(s.state);
      if (!typed) {
        throw std::invalid_argument("broadcast state '" + d.name +
                                    "' was declared with other key and value types");
      }
      return *typed;
    }
    throw std::invalid_argument("broadcast state '" + d.name +
                                "' is not one of this stream's: pass its descriptor to "
                                "broadcast()");
  }

 private:
  struct Declared {
    std::string name;
    OperatorStateBase* state;
  };
  std::vector<BroadcastStateSpec> specs_;
  std::vector<Declared> states_;
};
}  // namespace sluice::internal
