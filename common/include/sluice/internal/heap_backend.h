// Keyed state on the heap: the default backend (state.backend.type: hashmap).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "sluice/core.h"
#include "sluice/internal/state_backend.h"

namespace sluice::internal {

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
}  // namespace sluice::internal
