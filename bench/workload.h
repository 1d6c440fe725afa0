// The per-record work of the benchmark jobs, shared by the job libraries (bench/jobs/) and the
// hand-written loops of sluice_bench.cc that they are compared with, so both do the same work.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "sluice/keys.h"

namespace sluice::bench {

// Chained pipeline: map then filter. Cheap on purpose: the figure is the runtime's per-record
// cost, not the work's.
inline int64_t MapRecord(int64_t v) { return (v ^ (v >> 7)) * 3 + 1; }
// Keeps 7 records of 8.
inline bool KeepRecord(int64_t v) { return (v & 7) != 0; }

// The keyed job's max parallelism (number of key groups), which its key tables assume.
inline constexpr int kMaxParallelism = 128;

// Keyed shuffle: number v becomes the record (keys[v % keys.size()], v).
//
// `only_subtask` < 0: keys 0..count-1, spread over all `parallelism` subtasks by the key-group
// hash. Otherwise: the first `count` non-negative integers whose key group belongs to subtask
// `only_subtask` of `parallelism`, so that every record goes to that one subtask.
inline std::vector<int64_t> MakeKeyTable(int count, int only_subtask, int parallelism,
                                         int max_parallelism) {
  std::vector<int64_t> keys;
  keys.reserve(static_cast<size_t>(count));
  for (int64_t k = 0; static_cast<int>(keys.size()) < count; ++k) {
    if (only_subtask >= 0) {
      int kg = key_group_for_hash(KeyHash<int64_t>{}(k), max_parallelism);
      if (subtask_for_key_group(kg, max_parallelism, parallelism) != only_subtask) continue;
    }
    keys.push_back(k);
  }
  return keys;
}

inline int64_t KeyOf(const std::vector<int64_t>& keys, int64_t v) {
  return keys[static_cast<size_t>(v % static_cast<int64_t>(keys.size()))];
}

// The keyed job's record: (key, value), summed per key on the value.
using KeyValue = std::pair<int64_t, int64_t>;
inline KeyValue MakeRecord(const std::vector<int64_t>& keys, int64_t v) {
  return {KeyOf(keys, v), v};
}

}  // namespace sluice::bench
