#include "common/state_redistribution.h"

#include <algorithm>
#include <map>
#include <string>
#include <utility>

#include "sluice/keys.h"

namespace sluice {

std::vector<internal::OperatorSnapshot> NarrowSnapshots(
    const std::vector<std::vector<internal::OperatorSnapshot>>& by_subtask, int subtask,
    int parallelism, int max_parallelism) {
  const int old_parallelism = static_cast<int>(by_subtask.size());
  const KeyGroupRange range = key_group_range(subtask, max_parallelism, parallelism);
  // Node ids in the order they first appear.
  std::vector<int> nodes;
  std::map<int, internal::OperatorSnapshot> out;
  for (int old = 0; old < old_parallelism; ++old) {
    for (const internal::OperatorSnapshot& s : by_subtask[old]) {
      auto [it, inserted] = out.try_emplace(s.node_id);
      if (inserted) {
        nodes.push_back(s.node_id);
        it->second.node_id = s.node_id;
      }
      internal::OperatorSnapshot& mine = it->second;
      for (const auto& [kg, bytes] : s.key_groups) {
        if (kg >= range.first && kg <= range.last) mine.key_groups[kg] = bytes;
      }
      for (const internal::NativeSnapshot& n : s.native) {
        if (n.first_key_group <= range.last && n.last_key_group >= range.first) {
          mine.native.push_back(n);
        }
      }
    }
  }
  // Per list: the elements of all old subtasks in order, with the list's distribution.
  struct AllElements {
    internal::ListDistribution mode = internal::ListDistribution::kSplit;
    std::vector<const std::string*> elements;
    // Broadcast: each old subtask's copy (an empty list is not stored, so one may lack it).
    std::map<int, std::vector<const std::string*>> copies;
  };
  std::map<std::pair<int, std::string>, AllElements> all;
  // A broadcast list is the same on every subtask: a new subtask takes one old subtask's copy.
  const int broadcast_from = subtask % std::max(old_parallelism, 1);
  for (int old = 0; old < old_parallelism; ++old) {
    for (const internal::OperatorSnapshot& s : by_subtask[old]) {
      for (const auto& [name, elements] : s.lists) {
        auto d = s.distribution.find(name);
        auto mode = d == s.distribution.end() ? internal::ListDistribution::kSplit : d->second;
        AllElements& a = all[{s.node_id, name}];
        a.mode = mode;
        // Same parallelism: a split list stays where it was.
        if (mode == internal::ListDistribution::kBroadcast) {
          for (const std::string& e : elements) a.copies[old].push_back(&e);
          continue;
        }
        bool keep = mode == internal::ListDistribution::kUnion || old_parallelism != parallelism ||
                    old == subtask;
        if (!keep) continue;
        for (const std::string& e : elements) a.elements.push_back(&e);
      }
    }
  }
  for (auto& [key, a] : all) {
    if (a.mode == internal::ListDistribution::kBroadcast && !a.copies.empty()) {
      auto from = a.copies.find(broadcast_from);
      a.elements = from != a.copies.end() ? from->second : a.copies.begin()->second;
    }
    size_t n = a.elements.size();
    size_t begin = 0, end = n;
    if (a.mode == internal::ListDistribution::kSplit && old_parallelism != parallelism) {
      begin = n * static_cast<size_t>(subtask) / static_cast<size_t>(parallelism);
      end = n * static_cast<size_t>(subtask + 1) / static_cast<size_t>(parallelism);
    }
    if (begin == end) continue;
    internal::OperatorSnapshot& mine = out[key.first];
    std::vector<std::string>& part = mine.lists[key.second];
    for (size_t i = begin; i < end; ++i) part.push_back(*a.elements[i]);
    if (a.mode != internal::ListDistribution::kSplit) mine.distribution[key.second] = a.mode;
  }
  std::vector<internal::OperatorSnapshot> result;
  for (int node : nodes) {
    internal::OperatorSnapshot& s = out[node];
    if (!s.empty()) result.push_back(std::move(s));
  }
  return result;
}

std::vector<internal::OperatorSnapshot> AssignSnapshots(std::vector<SnapshotGroup> groups,
                                                        int subtask, int parallelism,
                                                        int max_parallelism) {
  std::vector<internal::OperatorSnapshot> out;
  for (SnapshotGroup& g : groups) {
    // Only the mapped operators' snapshots are narrowed (the others went elsewhere, or nowhere).
    for (std::vector<internal::OperatorSnapshot>& snapshots : g.by_subtask) {
      std::erase_if(snapshots, [&g](const internal::OperatorSnapshot& s) {
        return !g.node_ids.count(s.node_id);
      });
    }
    for (internal::OperatorSnapshot& s :
         NarrowSnapshots(g.by_subtask, subtask, parallelism, max_parallelism)) {
      s.node_id = g.node_ids.at(s.node_id);
      out.push_back(std::move(s));
    }
  }
  return out;
}

}  // namespace sluice
