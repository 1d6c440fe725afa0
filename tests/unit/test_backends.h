// The keyed state backends that state, timer and window tests run on, as the TaskManager makes
// them: the heap, RocksDB with full and with incremental snapshots, and RocksDB with hash write
// buffers and full snapshots (working directories and checkpoint storage in a temporary folder
// the maker removes). The RocksDB kinds also differ in their states' value caches
// (state.backend.rocksdb.cache.entries): full snapshots the default, incremental 3 values
// (written back and emptied all the time), hash buffers none (every change written at once). A
// snapshot taken through the maker is completed as the runtime completes it (its deferred part run,
// files stored), and backends the maker makes restore from what it stored.
#pragma once

#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "sluice/internal/runtime.h"
#include "sluice/state.h"
#include "taskmanager/state/state_backend.h"
#include "test_runtime.h"

namespace sluice::testing_support {

enum class BackendKind { kHeap, kRocksDbFull, kRocksDbIncremental, kRocksDbHashFull };

inline const char* BackendName(BackendKind k) {
  switch (k) {
    case BackendKind::kHeap:
      return "Heap";
    case BackendKind::kRocksDbFull:
      return "RocksDbFull";
    case BackendKind::kRocksDbIncremental:
      return "RocksDbIncremental";
    case BackendKind::kRocksDbHashFull:
      return "RocksDbHashFull";
  }
  return "?";
}

inline std::vector<BackendKind> AllBackends() {
  return {BackendKind::kHeap, BackendKind::kRocksDbFull, BackendKind::kRocksDbIncremental,
          BackendKind::kRocksDbHashFull};
}

class BackendMaker {
 public:
  explicit BackendMaker(BackendKind kind) : kind_(kind) {
    std::string tmpl =
        (std::filesystem::temp_directory_path() / "sluice-backend-test-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    root_ = tmpl;
    std::filesystem::create_directories(root_ + "/local");
    std::filesystem::create_directories(root_ + "/checkpoints");
    options_.type = kind == BackendKind::kHeap ? StateBackendOptions::Type::kHashMap
                                               : StateBackendOptions::Type::kRocksDb;
    options_.incremental = kind == BackendKind::kRocksDbIncremental;
    options_.hash_write_buffers = kind == BackendKind::kRocksDbHashFull;
    if (kind == BackendKind::kRocksDbIncremental) options_.value_cache_entries = 3;
    if (kind == BackendKind::kRocksDbHashFull) options_.value_cache_entries = 0;
    options_.local_dir = root_ + "/local";
    options_.write_buffer_size = 1 << 20;
    options_.memory = MakeRocksDbMemory(32 << 20, 0.5);
  }
  ~BackendMaker() {
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }
  BackendMaker(const BackendMaker&) = delete;
  BackendMaker& operator=(const BackendMaker&) = delete;

  BackendKind kind() const { return kind_; }
  bool incremental() const { return kind_ == BackendKind::kRocksDbIncremental; }
  // The job's checkpoint directory that completed snapshots store files under.
  std::string checkpoint_dir() const { return root_ + "/checkpoints"; }
  // Where RocksDB instances keep their working directories.
  std::string local_dir() const { return root_ + "/local"; }

  std::unique_ptr<internal::KeyedStateBackend> Make(
      KeyGroupRange range, std::function<int64_t()> now_ms = system_clock_ms, int node_id = 0) {
    BackendSite site;
    site.job_id = "test";
    site.node_id = node_id;
    site.restore_dir = checkpoint_dir();
    site.now_ms = std::move(now_ms);
    return CreateKeyedStateBackend(options_, site, range);
  }
  // For TestRuntime::SetBackendMaker.
  std::function<std::unique_ptr<internal::KeyedStateBackend>(int, const KeyGroupRange&)>
  ForRuntime() {
    return [this](int node_id, const KeyGroupRange& range) {
      return Make(range, system_clock_ms, node_id);
    };
  }

  // The backend's snapshot for checkpoint `id`, completed.
  internal::OperatorSnapshot Snapshot(internal::KeyedStateBackend& b, int64_t id) {
    internal::OperatorSnapshot s;
    b.snapshot(s, id);
    Complete(s, id);
    return s;
  }
  // Runs the deferred part of `s`, as the runtime's snapshot thread does.
  void Complete(internal::OperatorSnapshot& s, int64_t id) {
    if (!s.deferred) return;
    std::shared_ptr<internal::DeferredSnapshot> d = std::move(s.deferred);
    d->complete(checkpoint_dir(), id, s);
  }
  void Complete(std::vector<internal::OperatorSnapshot>& snaps, int64_t id) {
    for (internal::OperatorSnapshot& s : snaps) Complete(s, id);
  }

 private:
  BackendKind kind_;
  std::string root_;
  StateBackendOptions options_;
};

// Makes every TestRuntime of the program use the backend named by the environment variable
// SLUICE_TEST_BACKEND (heap, rocksdb-full, rocksdb-incremental, rocksdb-hash-full; unset: heap),
// so that a whole
// test program runs on each backend (ctest registers it once per backend). Declare one at file
// scope; Complete() finishes snapshots taken through chains.
class UseBackendOfEnvironment {
 public:
  UseBackendOfEnvironment() {
    const char* env = std::getenv("SLUICE_TEST_BACKEND");
    std::string name = env ? env : "heap";
    BackendKind kind =
        name == "rocksdb-full"          ? BackendKind::kRocksDbFull
        : name == "rocksdb-incremental" ? BackendKind::kRocksDbIncremental
        : name == "rocksdb-hash-full"   ? BackendKind::kRocksDbHashFull
        : name == "heap"
            ? BackendKind::kHeap
            : throw std::invalid_argument("SLUICE_TEST_BACKEND: unknown backend '" + name + "'");
    maker_ = std::make_unique<BackendMaker>(kind);
    DefaultBackendMaker() = maker_->ForRuntime();
  }
  ~UseBackendOfEnvironment() { DefaultBackendMaker() = nullptr; }
  BackendMaker& maker() { return *maker_; }

 private:
  std::unique_ptr<BackendMaker> maker_;
};

// For INSTANTIATE_TEST_SUITE_P's name generator.
struct BackendParamName {
  template <class Info>
  std::string operator()(const Info& info) const {
    return BackendName(info.param);
  }
};

}  // namespace sluice::testing_support
