// Figures 7 to 9 of sluice-bench (`sluice-bench state`): the keyed state backends, driven in
// this process on one thread through the KeyedStateBackend interface, as a keyed operator drives
// them (no cluster, no network).
//
//   7. Keyed-update throughput: per record, set the current key and read-modify-write a
//      ValueState<int64_t> count, keys drawn pseudo-randomly from K, at K = 100 thousand and
//      K = 10 million (every key present beforehand). Heap beside RocksDB beside a hand-written
//      std::unordered_map loop, runs interleaved; updates per CPU-second of the thread. Counts
//      of sampled keys are compared between the three: a mismatch is an error.
//   8. Checkpoints of about 1 GiB of RocksDB state (4 million keys of 256 pseudo-random bytes),
//      full beside incremental, with 1% of the keys rewritten between checkpoints. Per checkpoint:
//      the synchronous part (on the task's thread), the whole duration (with the asynchronous
//      upload or state-file write), and the bytes stored. The full backend starts from the
//      incremental one's first checkpoint (a restore, also timed), so both hold the same state;
//      sampled values are compared after the last round.
//   9. Event-time timers, heap beside RocksDB: T keys register one timer each at a pseudo-random
//      time (CPU per timer), then all fire in order (CPU per timer), runs interleaved; also how
//      many timers each holds in memory. The two must fire the same timers in the same order.
//
// RocksDB runs with the defaults a TaskManager gives it: a 128 MiB budget
// (taskmanager.memory.managed.size) for block cache and write buffers, 16 MiB write buffers,
// 4 KiB blocks. Working directories and checkpoint files go to a temporary folder (--state-dir
// to choose it), removed at the end.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"

namespace sluice::bench {

struct StateBenchOptions {
  // Smaller key counts, state and timer counts, one run of figures 7 and 9: a smoke run.
  // Default: false.
  bool quick = false;
  // Figure 7: updates timed per run of each variant. Default: 0, meaning 2,000,000 (300,000
  // with quick).
  int64_t updates = 0;
  // Figure 7: rounds of (heap, RocksDB, loop) at each key count. Default: 0, meaning 3 (1 with
  // quick).
  int runs = 0;
  // Figure 8: checkpoints after the first, each after 1% of the keys were rewritten. Default: 0,
  // meaning 3 (2 with quick).
  int checkpoints = 0;
  // Figure 9: timers registered and fired per run. Default: 0, meaning 2,000,000 (200,000 with
  // quick).
  int64_t timers = 0;
  // RocksDB with hash write buffers (state.backend.rocksdb.writebuffer.hash). Default: false.
  bool hash_write_buffers = false;
  // Values each RocksDB state keeps as objects (state.backend.rocksdb.cache.entries). Default:
  // -1, the backend's default.
  int64_t rocksdb_cache_entries = -1;
  // Where the RocksDB instances and checkpoint files go. Default: a new folder under the
  // system's temporary folder.
  std::string dir;
  bool run_updates = true;      // figure 7
  bool run_checkpoints = true;  // figure 8
  bool run_timers = true;       // figure 9
};

// Runs figures 7, 8 and/or 9 and prints them on standard output. DataLoss when a backend returns a
// value the others do not; Internal for a backend error.
absl::Status RunStateFigures(const StateBenchOptions& options);

}  // namespace sluice::bench
