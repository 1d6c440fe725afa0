// Figures 7 to 9: the keyed state backends (see state_bench.h).
#include "state_bench.h"

#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "bench_util.h"
#include "common/checkpoint_storage.h"
#include "sluice/internal/timers.h"
#include "sluice/state.h"
#include "taskmanager/state/state_backend.h"

namespace sluice::bench {
namespace {

namespace fs = std::filesystem;

constexpr int kMaxParallelism = 128;
constexpr KeyGroupRange kRange{0, kMaxParallelism - 1};
// A TaskManager's defaults: taskmanager.memory.managed.size, its write-buffer share.
constexpr int64_t kManagedBytes = 128 << 20;
constexpr double kWriteBufferRatio = 0.5;

// A folder removed with this object.
class ScratchDir {
 public:
  explicit ScratchDir(const std::string& parent) {
    std::string base = parent.empty() ? fs::temp_directory_path().string() : parent;
    std::string tmpl = base + "/sluice-state-bench-XXXXXX";
    if (!mkdtemp(tmpl.data())) throw std::runtime_error("cannot create a folder under " + base);
    path_ = tmpl;
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// state.backend.rocksdb.writebuffer.hash of every RocksDB backend made (--rocksdb-hash).
bool hash_write_buffers = false;
// state.backend.rocksdb.cache.entries of every RocksDB backend made (--rocksdb-cache; -1: the
// default).
int64_t rocksdb_cache_entries = -1;

// One backend as a TaskManager makes it for a keyed operator of a job (its own memory budget:
// one subtask per TaskManager).
std::unique_ptr<internal::KeyedStateBackend> MakeBackend(StateBackendOptions::Type type,
                                                         bool incremental, const std::string& root,
                                                         const std::string& name) {
  StateBackendOptions o;
  o.type = type;
  o.incremental = incremental;
  o.local_dir = root + "/local-" + name;
  fs::create_directories(o.local_dir);
  if (type == StateBackendOptions::Type::kRocksDb) {
    o.memory = MakeRocksDbMemory(kManagedBytes, kWriteBufferRatio);
    o.hash_write_buffers = hash_write_buffers;
    if (rocksdb_cache_entries >= 0)
      o.value_cache_entries = static_cast<size_t>(rocksdb_cache_entries);
  }
  BackendSite site;
  site.job_id = "bench";
  site.node_id = 1;
  site.restore_dir = root + "/checkpoints";
  return CreateKeyedStateBackend(o, site, kRange);
}

// What a keyed operator does before calling the user's function with a record of `key`.
inline void SetCurrentKey(internal::KeyedStateBackend& b, int64_t key) {
  internal::KeyContext& kc = b.key_context();
  kc.key.clear();
  DataOutput out(kc.key);
  Serializer<int64_t>::write(out, key);
  kc.set(key_group_for_hash(KeyHash<int64_t>{}(key), kMaxParallelism));
}

// The key of update number `i` of run `run` among `keys`.
inline int64_t KeyOf(int64_t run, int64_t i, int64_t keys) {
  return static_cast<int64_t>(
      SplitMix64(static_cast<uint64_t>(run) << 40 ^ static_cast<uint64_t>(i)) %
      static_cast<uint64_t>(keys));
}

// ---------------------------------------------------------------------------------------------
// Figure 7.

// A backend with a count of 1 for every key, and the state object a keyed function would hold.
struct CountingBackend {
  std::unique_ptr<internal::KeyedStateBackend> backend;
  ValueState<int64_t>* count = nullptr;

  void Fill(int64_t keys) {
    for (int64_t k = 0; k < keys; ++k) {
      SetCurrentKey(*backend, k);
      count->update(1);
    }
  }
  void Update(int64_t run, int64_t updates, int64_t keys) {
    for (int64_t i = 0; i < updates; ++i) {
      SetCurrentKey(*backend, KeyOf(run, i, keys));
      count->update(count->value() + 1);
    }
  }
  int64_t Get(int64_t key) {
    SetCurrentKey(*backend, key);
    return count->value();
  }
};

CountingBackend MakeCounting(StateBackendOptions::Type type, const std::string& root,
                             const std::string& name) {
  CountingBackend c;
  c.backend = MakeBackend(type, true, root, name);
  c.count = &c.backend->get<ValueState<int64_t>>(ValueStateDescriptor<int64_t>("count"));
  return c;
}

template <class F>
Stopwatch Timed(F&& f) {
  Stopwatch sw;
  sw.Start();
  f();
  sw.Stop();
  return sw;
}

absl::Status RunUpdateFigure(const StateBenchOptions& o, const std::string& root) {
  const std::vector<int64_t> key_counts = o.quick ? std::vector<int64_t>{100'000, 1'000'000}
                                                  : std::vector<int64_t>{100'000, 10'000'000};
  std::printf(
      "\n7. Keyed-state update (set the key, read and write a ValueState<int64_t> count), keys "
      "drawn pseudo-randomly, every key present beforehand; %s updates per run, medians of %d "
      "interleaved runs, one thread.\n",
      Count(o.updates).c_str(), o.runs);
  std::printf("%12s  %-34s %-34s %-22s %10s\n", "keys", "heap", "RocksDB", "unordered_map loop",
              "RocksDB/heap");
  for (int64_t keys : key_counts) {
    ScratchDir dir(root);
    auto t0 = Clock::now();
    CountingBackend heap = MakeCounting(StateBackendOptions::Type::kHashMap, dir.path(), "heap");
    CountingBackend rocks =
        MakeCounting(StateBackendOptions::Type::kRocksDb, dir.path(), "rocksdb");
    std::unordered_map<int64_t, int64_t> loop;
    loop.reserve(static_cast<size_t>(keys));
    heap.Fill(keys);
    rocks.Fill(keys);
    for (int64_t k = 0; k < keys; ++k) loop[k] = 1;
    std::fprintf(stderr, "  (%s keys filled in %.1f s)\n", Count(keys).c_str(), SecondsSince(t0));

    std::vector<double> heap_cpu, rocks_cpu, loop_cpu, rocks_wall;
    for (int run = 0; run < o.runs; ++run) {
      Stopwatch h = Timed([&] { heap.Update(run, o.updates, keys); });
      Stopwatch r = Timed([&] { rocks.Update(run, o.updates, keys); });
      Stopwatch l = Timed([&] {
        for (int64_t i = 0; i < o.updates; ++i) ++loop[KeyOf(run, i, keys)];
      });
      heap_cpu.push_back(h.cpu_s);
      rocks_cpu.push_back(r.cpu_s);
      loop_cpu.push_back(l.cpu_s);
      rocks_wall.push_back(r.wall_s);
    }
    // The three agree on sampled keys.
    for (int64_t s = 0; s < 10'000; ++s) {
      int64_t k = KeyOf(1 << 20, s, keys);
      int64_t want = loop[k], h = heap.Get(k), r = rocks.Get(k);
      if (h != want || r != want) {
        return absl::DataLossError(
            absl::StrCat("key ", k, " of ", keys, ": heap ", h, ", RocksDB ", r, ", loop ", want));
      }
    }
    auto cell = [&](const std::vector<double>& cpu, const std::vector<double>& wall) {
      double per_cpu = static_cast<double>(o.updates) / Median(cpu);
      std::string s = absl::StrFormat("%s per core (%.0f ns)", Rate(per_cpu), 1e9 / per_cpu);
      if (!wall.empty()) {
        absl::StrAppendFormat(&s, ", %s wall", Rate(static_cast<double>(o.updates) / Median(wall)));
      }
      return s;
    };
    std::printf("%12s  %-34s %-34s %-22s %10.2f\n", Count(keys).c_str(), cell(heap_cpu, {}).c_str(),
                cell(rocks_cpu, rocks_wall).c_str(), cell(loop_cpu, {}).c_str(),
                Median(rocks_cpu) / Median(heap_cpu));
    std::fflush(stdout);
  }
  std::printf(
      "RocksDB/heap is the cost ratio (CPU per update). RocksDB's wall rate includes waiting for "
      "reads of its files.\n");
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------------
// Figure 8.

constexpr int kValueBytes = 256;

// The value of `key` at `version`: pseudo-random bytes (so that compression cannot shrink them).
std::string ValueOf(int64_t key, int version) {
  std::string v(kValueBytes, '\0');
  for (int i = 0; i < kValueBytes; i += 8) {
    uint64_t x = SplitMix64(static_cast<uint64_t>(key) * 1'000'003 +
                            static_cast<uint64_t>(version) * 7919 + static_cast<uint64_t>(i));
    std::memcpy(v.data() + i, &x, 8);
  }
  return v;
}

struct CheckpointSample {
  double sync_ms = 0;   // the synchronous part, on the task's thread
  double total_ms = 0;  // until every byte is stored
  double stored_bytes = 0;
  double state_bytes = 0;  // all the bytes the checkpoint's state takes
};

uint64_t NativeBytes(const internal::OperatorSnapshot& s, bool uploaded) {
  uint64_t n = 0;
  for (const internal::NativeSnapshot& native : s.native) {
    if (uploaded) {
      n += native.uploaded_bytes;
    } else {
      for (const internal::StoreFile& f : native.files) n += f.size;
    }
  }
  return n;
}

// Checkpoint `id` of `b`, as a task takes it: the synchronous part, then on the snapshot
// thread the deferred part and the subtask's state file; the checkpoint then completes.
absl::StatusOr<CheckpointSample> Checkpoint(internal::KeyedStateBackend& b,
                                            const std::string& job_dir, int64_t id,
                                            internal::OperatorSnapshot* kept) {
  CheckpointSample s;
  auto t0 = Clock::now();
  internal::OperatorSnapshot snap;
  snap.node_id = 1;
  b.snapshot(snap, id);
  s.sync_ms = SecondsSince(t0) * 1e3;
  if (snap.deferred) {
    std::shared_ptr<internal::DeferredSnapshot> d = std::move(snap.deferred);
    d->complete(job_dir, id, snap);
  }
  const std::string chk = absl::StrCat(job_dir, "/chk-", id);
  fs::create_directories(chk);
  proto::StateHandle handle;
  absl::Status written = WriteStateFile(chk + "/v1-s0", {snap}, &handle);
  if (!written.ok()) return written;
  s.total_ms = SecondsSince(t0) * 1e3;
  b.notify_checkpoint_complete(id);
  s.stored_bytes = static_cast<double>(handle.size() + NativeBytes(snap, true));
  s.state_bytes = static_cast<double>(handle.size() + NativeBytes(snap, false));
  if (kept) *kept = std::move(snap);
  return s;
}

absl::Status RunCheckpointFigure(const StateBenchOptions& o, const std::string& root) {
  const int64_t keys = o.quick ? 400'000 : 4'000'000;
  const int64_t churn = keys / 100;
  ScratchDir dir(root);
  const std::string job_dir = dir.path() + "/checkpoints";
  fs::create_directories(job_dir);
  std::printf(
      "\n8. Checkpoints of RocksDB state: %s keys of %d pseudo-random bytes (%s of values), "
      "1%% of the keys (%s) rewritten before each checkpoint after the first.\n",
      Count(keys).c_str(), kValueBytes, Bytes(static_cast<double>(keys) * kValueBytes).c_str(),
      Count(churn).c_str());

  ValueStateDescriptor<std::string> descriptor("value");
  auto incremental = MakeBackend(StateBackendOptions::Type::kRocksDb, true, dir.path(), "incr");
  auto& inc_value = incremental->get<ValueState<std::string>>(descriptor);
  std::vector<uint8_t> version(static_cast<size_t>(keys), 1);
  auto t0 = Clock::now();
  for (int64_t k = 0; k < keys; ++k) {
    SetCurrentKey(*incremental, k);
    inc_value.update(ValueOf(k, 1));
  }
  std::printf("   filled in %.1f s\n", SecondsSince(t0));

  int64_t id = 1;
  internal::OperatorSnapshot first;
  absl::StatusOr<CheckpointSample> c1 = Checkpoint(*incremental, job_dir, id++, &first);
  if (!c1.ok()) return c1.status();
  std::printf(
      "   first incremental checkpoint: every file new, %s stored in %.0f ms (%.1f ms "
      "synchronous)\n",
      Bytes(c1->stored_bytes).c_str(), c1->total_ms, c1->sync_ms);

  // The full backend restores the first checkpoint: both hold the same state.
  auto full = MakeBackend(StateBackendOptions::Type::kRocksDb, false, dir.path(), "full");
  t0 = Clock::now();
  full->restore(first);
  auto& full_value = full->get<ValueState<std::string>>(descriptor);
  SetCurrentKey(*full, 0);
  if (full_value.value() != ValueOf(0, 1)) return absl::DataLossError("restore lost key 0");
  std::printf("   restore of that checkpoint into a new instance: %.0f ms\n",
              SecondsSince(t0) * 1e3);

  std::vector<CheckpointSample> inc_samples, full_samples;
  for (int round = 0; round < o.checkpoints; ++round) {
    for (int64_t i = 0; i < churn; ++i) {
      int64_t k = KeyOf(round + 1, i, keys);
      int v = ++version[static_cast<size_t>(k)];
      std::string value = ValueOf(k, v);
      SetCurrentKey(*incremental, k);
      inc_value.update(value);
      SetCurrentKey(*full, k);
      full_value.update(value);
    }
    // Alternate which goes first: the page cache favours the second.
    for (int turn = 0; turn < 2; ++turn) {
      bool inc_turn = (turn == 0) == (round % 2 == 0);
      absl::StatusOr<CheckpointSample> s =
          Checkpoint(inc_turn ? *incremental : *full, job_dir, id++, nullptr);
      if (!s.ok()) return s.status();
      (inc_turn ? inc_samples : full_samples).push_back(*s);
      // A full checkpoint builds on none before it: its state files go once measured.
      if (!inc_turn) fs::remove_all(absl::StrCat(job_dir, "/chk-", id - 1));
    }
  }
  for (int64_t s = 0; s < 2'000; ++s) {
    int64_t k = KeyOf(1 << 20, s, keys);
    std::string want = ValueOf(k, version[static_cast<size_t>(k)]);
    SetCurrentKey(*incremental, k);
    bool inc_ok = inc_value.value() == want;
    SetCurrentKey(*full, k);
    if (!inc_ok || full_value.value() != want) {
      return absl::DataLossError(
          absl::StrCat("key ", k, " differs from version ", int(version[static_cast<size_t>(k)])));
    }
  }

  auto median = [](const std::vector<CheckpointSample>& v, double CheckpointSample::*field) {
    std::vector<double> x;
    for (const CheckpointSample& s : v) x.push_back(s.*field);
    return Median(x);
  };
  std::printf("   medians of %d checkpoints each, alternating which goes first:\n", o.checkpoints);
  std::printf("   %-12s %16s %14s %14s %14s\n", "", "synchronous", "duration", "stored", "state");
  for (auto [name, samples] : {std::pair{"full", &full_samples}, {"incremental", &inc_samples}}) {
    std::printf("   %-12s %13.1f ms %11.0f ms %14s %14s\n", name,
                median(*samples, &CheckpointSample::sync_ms),
                median(*samples, &CheckpointSample::total_ms),
                Bytes(median(*samples, &CheckpointSample::stored_bytes)).c_str(),
                Bytes(median(*samples, &CheckpointSample::state_bytes)).c_str());
  }
  std::printf("   incremental / full: duration %.3f, stored bytes %.3f\n",
              median(inc_samples, &CheckpointSample::total_ms) /
                  median(full_samples, &CheckpointSample::total_ms),
              median(inc_samples, &CheckpointSample::stored_bytes) /
                  median(full_samples, &CheckpointSample::stored_bytes));
  std::fflush(stdout);
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------------
// Figure 9.

struct TimerSample {
  double add_cpu_s = 0;
  double fire_cpu_s = 0;
  size_t in_memory = 0;     // RocksDB: timers held in memory once all were registered
  uint64_t fired_hash = 0;  // of the (time, key) sequence fired
};

// Registers `timers` event-time timers, one per key at a pseudo-random time, then fires them all
// in order, as a watermark past the last one does.
TimerSample RunTimers(StateBackendOptions::Type type, const std::string& root, int64_t timers) {
  std::unique_ptr<internal::KeyedStateBackend> b = MakeBackend(type, true, root, "timers");
  internal::TimerQueue& q =
      b->internal_table<internal::TimerQueue>("_timers/event", internal::TimerQueueFactory());
  TimerSample s;
  std::string key;
  double c0 = ThreadCpuSeconds();
  for (int64_t k = 0; k < timers; ++k) {
    key.clear();
    DataOutput out(key);
    Serializer<int64_t>::write(out, k);
    int kg = key_group_for_hash(KeyHash<int64_t>{}(k), kMaxParallelism);
    int64_t time = static_cast<int64_t>(SplitMix64(static_cast<uint64_t>(k)) % (1u << 30));
    if (!q.add(time, kg, key, {})) throw std::runtime_error("a timer was registered twice");
  }
  s.add_cpu_s = ThreadCpuSeconds() - c0;
  if (auto* stored = dynamic_cast<internal::StoreTimerQueue*>(&q)) s.in_memory = stored->cached();
  c0 = ThreadCpuSeconds();
  int64_t fired = 0;
  while (!q.empty()) {
    internal::InternalTimer t = q.pop();
    s.fired_hash =
        SplitMix64(s.fired_hash ^ static_cast<uint64_t>(t.time)) ^ std::hash<std::string>{}(t.key);
    ++fired;
  }
  s.fire_cpu_s = ThreadCpuSeconds() - c0;
  if (fired != timers) throw std::runtime_error("fewer timers fired than were registered");
  return s;
}

absl::Status RunTimerFigure(const StateBenchOptions& o, const std::string& root) {
  std::printf(
      "\n9. Event-time timers: %s keys register one timer each at a pseudo-random time, then all "
      "fire in order; medians of %d interleaved runs, one thread.\n",
      Count(o.timers).c_str(), o.runs);
  std::printf("%-10s %-28s %-28s %s\n", "backend", "register", "fire", "timers in memory");
  std::vector<double> add[2], fire[2];
  size_t in_memory[2] = {0, 0};
  for (int run = 0; run < o.runs; ++run) {
    uint64_t hash[2];
    for (int i = 0; i < 2; ++i) {
      ScratchDir dir(root);
      TimerSample s = RunTimers(
          i == 0 ? StateBackendOptions::Type::kHashMap : StateBackendOptions::Type::kRocksDb,
          dir.path(), o.timers);
      add[i].push_back(s.add_cpu_s);
      fire[i].push_back(s.fire_cpu_s);
      in_memory[i] = s.in_memory;
      hash[i] = s.fired_hash;
    }
    if (hash[0] != hash[1]) {
      return absl::DataLossError("the heap and RocksDB fired timers in different orders");
    }
  }
  auto cell = [&](const std::vector<double>& cpu) {
    double per_cpu = static_cast<double>(o.timers) / Median(cpu);
    return absl::StrFormat("%s per core (%.0f ns)", Rate(per_cpu), 1e9 / per_cpu);
  };
  for (int i = 0; i < 2; ++i) {
    std::printf("%-10s %-28s %-28s %s\n", i == 0 ? "heap" : "RocksDB", cell(add[i]).c_str(),
                cell(fire[i]).c_str(),
                i == 0 ? "all" : Count(static_cast<int64_t>(in_memory[i])).c_str());
  }
  std::printf(
      "RocksDB/heap: register %.1f, fire %.1f (CPU per timer). Both fired the same "
      "timers in the same order.\n",
      Median(add[1]) / Median(add[0]), Median(fire[1]) / Median(fire[0]));
  std::fflush(stdout);
  return absl::OkStatus();
}

}  // namespace

absl::Status RunStateFigures(const StateBenchOptions& options) {
  StateBenchOptions o = options;
  if (o.updates == 0) o.updates = o.quick ? 300'000 : 2'000'000;
  if (o.runs == 0) o.runs = o.quick ? 1 : 3;
  if (o.checkpoints == 0) o.checkpoints = o.quick ? 2 : 3;
  if (o.timers == 0) o.timers = o.quick ? 200'000 : 2'000'000;
  hash_write_buffers = o.hash_write_buffers;
  if (hash_write_buffers) std::printf("\nRocksDB with hash write buffers.\n");
  rocksdb_cache_entries = o.rocksdb_cache_entries;
  std::printf("\nRocksDB states cache %zu values each (state.backend.rocksdb.cache.entries).\n",
              rocksdb_cache_entries >= 0 ? static_cast<size_t>(rocksdb_cache_entries)
                                         : StateBackendOptions{}.value_cache_entries);
  try {
    if (o.run_updates) {
      absl::Status s = RunUpdateFigure(o, o.dir);
      if (!s.ok()) return s;
    }
    if (o.run_checkpoints) {
      absl::Status s = RunCheckpointFigure(o, o.dir);
      if (!s.ok()) return s;
    }
    if (o.run_timers) return RunTimerFigure(o, o.dir);
  } catch (const std::exception& e) {
    return absl::InternalError(e.what());
  }
  return absl::OkStatus();
}

}  // namespace sluice::bench
