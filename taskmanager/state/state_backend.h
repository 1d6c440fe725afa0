// The keyed state backends a TaskManager offers its tasks, chosen per job by state.backend.type:
//
//   hashmap  HeapKeyedStateBackend (sluice/state.h): objects in hash tables, full snapshots.
//   rocksdb  an embedded RocksDB instance per keyed operator and subtask, under
//            state.backend.rocksdb.localdir: state larger than memory, incremental checkpoints
//            (state.backend.incremental) that store only the files the last completed
//            checkpoint did not have. The instances of one TaskManager share one memory budget
//            (taskmanager.memory.managed.size): a block cache that the write buffers are
//            charged to.
//
// This folder is the only code that includes RocksDB; the rest of the runtime sees the
// KeyedStateBackend interface.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/config.h"
#include "sluice/internal/heap_backend.h"
#include "sluice/state.h"

namespace sluice {

// What the RocksDB instances of one TaskManager share (opaque outside this folder).
class RocksDbMemory;
// A budget of `bytes` for the block cache, of which `write_buffer_ratio` may hold write buffers.
std::shared_ptr<RocksDbMemory> MakeRocksDbMemory(int64_t bytes, double write_buffer_ratio);

// RocksDB's figures for the TaskManager's metrics: the shared block cache's usage, and the bytes
// compaction has yet to rewrite (RocksDB's estimate) summed over the open instances.
struct RocksDbStats {
  int64_t block_cache_usage = 0;
  int64_t pending_compaction_bytes = 0;
  int64_t instances = 0;
};
RocksDbStats RocksDbStatsOf(RocksDbMemory& memory);

struct StateBackendOptions {
  enum class Type { kHashMap, kRocksDb };
  Type type = Type::kHashMap;
  bool incremental = true;
  // Where RocksDB instances get their working directories.
  std::string local_dir;
  int64_t write_buffer_size = 16 << 20;  // per column family
  int64_t block_size = 4 << 10;
  // States' write buffers in hash tables, overwritten in place (see rocksdb_backend.cc).
  bool hash_write_buffers = false;
  // Values each state's table keeps as objects, written back when it is full and before a
  // snapshot (internal::StoreStateTable); 0: the current key's only, every change written.
  size_t value_cache_entries = 16384;
  std::shared_ptr<RocksDbMemory> memory;  // null: RocksDB's defaults
};

// The options of a TaskManager whose configuration is `conf`, with a job's overrides of
// state.backend.* keys (`job_config`, validated by the JobManager) applied. `memory` is the
// TaskManager's shared budget. InvalidArgument names a bad key.
absl::StatusOr<StateBackendOptions> StateBackendOptionsFor(
    const Configuration& conf, const std::map<std::string, std::string>& job_config,
    std::shared_ptr<RocksDbMemory> memory);

// Where the backend of one keyed operator belongs, and where a restore reads files from.
struct BackendSite {
  std::string job_id;
  int vertex_id = 0;
  int subtask = 0;
  int attempt = 0;
  int node_id = -1;
  // The job's checkpoint directory of the checkpoint restored from (native snapshots' files are
  // relative to it); empty for a fresh start.
  std::string restore_dir;
  std::function<int64_t()> now_ms = system_clock_ms;
  // True while the task snapshots for a savepoint: a backend that checkpoints incrementally
  // writes the canonical format instead, so that the savepoint stands alone. Null: never.
  std::function<bool()> savepoint_snapshot;
};

// A keyed state backend for key groups `range`. Throws std::runtime_error (naming the directory)
// when RocksDB cannot create its instance.
std::unique_ptr<internal::KeyedStateBackend> CreateKeyedStateBackend(
    const StateBackendOptions& options, const BackendSite& site, KeyGroupRange range);

// The RocksDB backend alone (tests and benchmarks).
std::unique_ptr<internal::KeyedStateBackend> CreateRocksDbKeyedStateBackend(
    const StateBackendOptions& options, const BackendSite& site, KeyGroupRange range);

// Compacts every column family of a RocksDB backend now (expired entries are dropped by
// compactions); does nothing for another backend. For tests and benchmarks.
void CompactRocksDb(internal::KeyedStateBackend& backend);

}  // namespace sluice
