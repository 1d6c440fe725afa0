// The RocksDB keyed state backend.
//
// One RocksDB instance per keyed operator and subtask, in a working directory of its own under
// state.backend.rocksdb.localdir, removed when the backend and every snapshot still reading it
// are gone. One column family per state, named after it (Instance::FamilyNameOf); keys are the key
// group (2 bytes, big-endian) then the serialized key, so a key-group range is one contiguous key
// range; values are touched_ms then the serialized value (see KvStore in sluice/state.h). Writes
// skip the write-ahead log: a checkpoint, not the log, is what a failure restores from.
//
// Write buffers: RocksDB's skip list by default, a state's with a Bloom filter of its keys (2% of
// its room), so that a read of a key the buffer does not hold skips its search; the filter is
// made with the buffer, so even an empty state's family holds it. With hash write buffers
// (state.backend.rocksdb.writebuffer.hash), a state's column family keeps its write buffer
// (memtable) in a hash table of linked lists instead, and overwrites a value there in place when
// the new one is no larger: a state update of a key already in the buffer is a hash lookup and a
// copy, not a skip-list insert. Such a buffer has no order, so every iterator asks for total
// order (RocksDB then sorts a copy of the buffer), and a scan of live state flushes the buffer
// first (scans are rare: a key group's keys, the number of entries). An in-place overwrite keeps
// the entry's sequence number, which is why RocksDB offers no snapshots then: a full snapshot
// flushes the states' buffers and makes its iterators while they are empty, so no entry they
// read is overwritten later. Timers keep the skip list: they are read in order (the earliest,
// the last of a key group) all the time.
//
// Timers are entries of their own column families too (StoreTimerQueue, sluice/internal/timers.h),
// keyed by key group then firing order. A canonical section with namespaces (timers as earlier
// versions wrote them) is restored as one entry per key group, whose key is the bare key-group
// prefix and whose value is the canonical entries (a varint count, then the entries); the timer
// queue reads it in when it is declared (operators declare their timers when they open, before
// any snapshot) and deletes it. In any other state the bare prefix is the entry of a key that
// serializes to no bytes.
//
// Snapshots (after the states' tables wrote back the values they changed in their caches, see
// StoreStateTable; restore and compaction write them back first too):
//   full         the synchronous part takes a RocksDB snapshot (a sequence number, no copy);
//                with hash write buffers, which rule RocksDB snapshots out, it flushes the
//                states' buffers and makes an iterator per state instead. The deferred part
//                reads each state in one pass and writes the key groups in the canonical
//                format every backend reads (so such a checkpoint restores on either backend).
//   incremental  the synchronous part flushes the write buffers and makes a RocksDB checkpoint
//                (hard links of the live files) in the working directory; the deferred part
//                copies to <checkpoint dir>/shared/ the SST files that the last completed
//                checkpoint did not have (SST files never change once written), and the small
//                files (MANIFEST, CURRENT, OPTIONS) to the checkpoint's own folder.
//                A savepoint is always full, so that it stands alone.
//
// Restore: a native snapshot of exactly this subtask's key groups becomes the instance (its
// files copied into the working directory and opened); anything else (another parallelism,
// canonical key groups) is inserted entry by entry, clipped to this subtask's key groups.
#include <rocksdb/cache.h>
#include <rocksdb/compaction_filter.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/memtablerep.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/checkpoint.h>
#include <rocksdb/write_batch.h>
#include <rocksdb/write_buffer_manager.h>

#include <algorithm>
#include <filesystem>
#include <set>
#include <stdexcept>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/checkpoint_storage.h"
#include "common/ids.h"
#include "sluice/internal/timers.h"
#include "spdlog/spdlog.h"
#include "taskmanager/state/rocksdb_instance.h"
#include "taskmanager/state/state_backend.h"

namespace sluice {

RocksDbStats RocksDbStatsOf(RocksDbMemory& memory) {
  RocksDbStats s;
  s.block_cache_usage = static_cast<int64_t>(memory.cache->GetUsage());
  absl::MutexLock lock(&memory.mu);
  for (rocksdb::DB* db : memory.open) {
    uint64_t v = 0;
    if (db->GetIntProperty(rocksdb::DB::Properties::kEstimatePendingCompactionBytes, &v)) {
      s.pending_compaction_bytes += static_cast<int64_t>(v);
    }
    ++s.instances;
  }
  return s;
}

std::shared_ptr<RocksDbMemory> MakeRocksDbMemory(int64_t bytes, double write_buffer_ratio) {
  auto m = std::make_shared<RocksDbMemory>();
  // A tenth of the cache is kept for index and filter blocks, so that data blocks cannot push
  // them out: a lookup then reads at most one data block from disk.
  m->cache = rocksdb::NewLRUCache(static_cast<size_t>(std::max<int64_t>(bytes, 1 << 20)),
                                  /*num_shard_bits=*/-1, /*strict_capacity_limit=*/false,
                                  /*high_pri_pool_ratio=*/0.1);
  m->write_buffers = std::make_shared<rocksdb::WriteBufferManager>(
      static_cast<size_t>(static_cast<double>(bytes) * write_buffer_ratio), m->cache);
  return m;
}

namespace {

namespace fs = std::filesystem;
using internal::state_internal::key_group_prefix;
using rocksdb_internal::FamilyStore;
using rocksdb_internal::Instance;
using rocksdb_internal::kBatchBytes;
using rocksdb_internal::TtlRegistry;

constexpr char kBackendName[] = "rocksdb";

// Appends to `key_groups` a section named `name` with the canonical entries (as HeapStateTable
// writes them) that `it` reads from `from` on, in each key group that has any, in one pass.
// Entries older than `ttl_ms` (when >= 0) are left out.
void WriteCanonical(rocksdb::Iterator& it, std::string_view from, const std::string& name,
                    int64_t ttl_ms, int64_t now, std::map<int, std::string>& key_groups) {
  int kg = -1;
  uint64_t n = 0;
  std::string entries;
  auto section = [&] {
    if (n == 0) return;
    DataOutput o(key_groups[kg]);
    internal::state_internal::write_section(o, name, n, entries);
    entries.clear();
    n = 0;
  };
  for (it.Seek(rocksdb::Slice(from.data(), from.size())); it.Valid(); it.Next()) {
    std::string_view k(it.key().data(), it.key().size());
    std::string_view v(it.value().data(), it.value().size());
    if (k.size() < internal::state_internal::kKeyGroupPrefixBytes) continue;
    int entry_kg = (static_cast<uint8_t>(k[0]) << 8) | static_cast<uint8_t>(k[1]);
    if (entry_kg != kg) {
      section();
      kg = entry_kg;
    }
    DataOutput o(entries);
    n += internal::state_internal::append_stored_entry(o, k, v, ttl_ms, now);
  }
  section();
}

// Adds `count` canonical entries of key group `kg` to `batch` for `family`.
void PutCanonical(rocksdb::WriteBatch& batch, rocksdb::ColumnFamilyHandle* family, int kg,
                  DataInput& in, uint64_t count) {
  std::string value;
  for (uint64_t i = 0; i < count; ++i) {
    internal::state_internal::Entry e = internal::state_internal::read_entry(in);
    internal::state_internal::make_stored_value(value, e.touched_ms, e.value);
    batch.Put(family, internal::state_internal::store_key(kg, e.key), value);
  }
}

// Which SST files the checkpoints of one instance stored, so that the next checkpoint stores
// only new ones. Only files of a completed checkpoint are built on: the files of one that
// failed may have been removed.
class UploadTracker {
 public:
  using Files = std::map<std::string, internal::StoreFile>;  // by name in the instance
  Files Confirmed() const ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return confirmed_;
  }
  void Stored(int64_t id, Files files) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    stored_[id] = std::move(files);
  }
  void Completed(int64_t id) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    auto it = stored_.find(id);
    if (it == stored_.end()) return;
    confirmed_ = std::move(it->second);
    stored_.erase(stored_.begin(), std::next(it));
  }

 private:
  mutable absl::Mutex mu_;
  std::map<int64_t, Files> stored_ ABSL_GUARDED_BY(mu_);
  Files confirmed_ ABSL_GUARDED_BY(mu_);
};

// Names that keep the files of one subtask's operator apart in checkpoint storage.
struct FileNaming {
  std::string tag;          // unique per instance: shared file names never collide
  std::string private_dir;  // "v<vertex>-s<subtask>-n<node>-<tag>", under chk-<n>/
};

// The deferred part of an incremental snapshot: stores the files of a local RocksDB checkpoint.
class IncrementalUpload final : public internal::DeferredSnapshot {
 public:
  IncrementalUpload(std::shared_ptr<Instance> instance, std::shared_ptr<UploadTracker> tracker,
                    std::string local_dir, UploadTracker::Files base, FileNaming naming,
                    KeyGroupRange range)
      : instance_(std::move(instance)),
        tracker_(std::move(tracker)),
        local_dir_(std::move(local_dir)),
        base_(std::move(base)),
        naming_(std::move(naming)),
        range_(range) {}
  ~IncrementalUpload() override {
    std::error_code ec;
    fs::remove_all(local_dir_, ec);
  }

  void complete(const std::string& job_dir, int64_t checkpoint_id,
                internal::OperatorSnapshot& out) override {
    internal::NativeSnapshot snap;
    snap.backend = kBackendName;
    snap.first_key_group = range_.first;
    snap.last_key_group = range_.last;
    std::string private_dir = absl::StrCat("chk-", checkpoint_id, "/", naming_.private_dir);
    std::error_code ec;
    fs::create_directories(absl::StrCat(job_dir, "/shared"), ec);
    fs::create_directories(absl::StrCat(job_dir, "/", private_dir), ec);
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(local_dir_)) names.push_back(e.path().filename());
    std::sort(names.begin(), names.end());
    UploadTracker::Files shared;
    for (const std::string& name : names) {
      std::string from = absl::StrCat(local_dir_, "/", name);
      uint64_t size = fs::file_size(from);
      bool is_sst = name.size() > 4 && name.compare(name.size() - 4, 4, ".sst") == 0;
      internal::StoreFile f;
      auto known = base_.find(name);
      if (is_sst && known != base_.end() && known->second.size == size) {
        f = known->second;  // stored by an earlier checkpoint: SST files never change
      } else {
        f.name = name;
        f.size = size;
        f.shared = is_sst;
        f.path = is_sst ? absl::StrCat("shared/", naming_.tag, "-", name)
                        : absl::StrCat(private_dir, "/", name);
        absl::Status st = CopyFileDurably(from, absl::StrCat(job_dir, "/", f.path), /*sync=*/true);
        if (!st.ok()) throw std::runtime_error(std::string(st.message()));
        snap.uploaded_bytes += size;
      }
      if (f.shared) shared[name] = f;
      snap.files.push_back(std::move(f));
    }
    tracker_->Stored(checkpoint_id, std::move(shared));
    out.native.push_back(std::move(snap));
  }

 private:
  std::shared_ptr<Instance> instance_;  // keeps the working directory
  std::shared_ptr<UploadTracker> tracker_;
  std::string local_dir_;
  UploadTracker::Files base_;
  FileNaming naming_;
  KeyGroupRange range_;
};

// The deferred part of a full snapshot: the canonical key groups, read at a RocksDB snapshot
// taken in the synchronous part. With in-place updates (hash write buffers) RocksDB has no
// snapshots; the iterators are then made in the synchronous part instead, once the buffers that
// overwrite in place are flushed (Instance::FlushHashWriteBuffers): an iterator reads as of
// when it was made as long as no entry it reads is overwritten in place. Such iterators hold
// the write buffers and files of that moment until their state is read.
class FullSnapshotWrite final : public internal::DeferredSnapshot {
 public:
  struct Family {
    std::string name;
    rocksdb::ColumnFamilyHandle* handle;
    int64_t ttl_ms;
  };
  FullSnapshotWrite(std::shared_ptr<Instance> instance, const std::vector<Family>& families,
                    KeyGroupRange range, int64_t now)
      : instance_(std::move(instance)),
        from_(key_group_prefix(range.first)),
        end_(key_group_prefix(range.last + 1)),
        upper_(end_),
        now_(now),
        snapshot_(instance_->hash_write_buffers() ? nullptr : instance_->db()->GetSnapshot()) {
    for (const Family& f : families) {
      readers_.push_back({f, snapshot_ ? nullptr : NewIterator(f.handle)});
    }
  }
  ~FullSnapshotWrite() override {
    readers_.clear();
    if (snapshot_) instance_->db()->ReleaseSnapshot(snapshot_);
  }
  FullSnapshotWrite(const FullSnapshotWrite&) = delete;  // the iterators point at upper_
  FullSnapshotWrite& operator=(const FullSnapshotWrite&) = delete;

  void complete(const std::string&, int64_t, internal::OperatorSnapshot& out) override {
    // One pass per state; a key group's sections come in the states' order.
    std::map<int, std::string> key_groups;
    for (Reader& r : readers_) {
      if (!r.it) r.it = NewIterator(r.family.handle);
      WriteCanonical(*r.it, from_, r.family.name, r.family.ttl_ms, now_, key_groups);
      Instance::Check(r.it->status(),
                      absl::StrCat("state '", r.family.name, "': cannot read a snapshot"),
                      instance_->db_dir());
      r.it.reset();  // lets go of the files and buffers it holds
    }
    for (auto& [kg, bytes] : key_groups) out.key_groups[kg] = std::move(bytes);
  }

 private:
  struct Reader {
    Family family;
    std::unique_ptr<rocksdb::Iterator> it;
  };
  // An iterator over this subtask's key groups of `family`, at snapshot_ (null: now).
  std::unique_ptr<rocksdb::Iterator> NewIterator(rocksdb::ColumnFamilyHandle* family) {
    rocksdb::ReadOptions ro = Instance::Reading(snapshot_);
    ro.iterate_upper_bound = &upper_;
    return std::unique_ptr<rocksdb::Iterator>(instance_->db()->NewIterator(ro, family));
  }

  std::shared_ptr<Instance> instance_;  // outlives the iterators
  std::string from_;
  std::string end_;
  rocksdb::Slice upper_;  // end_, the iterators' bound
  int64_t now_;
  const rocksdb::Snapshot* snapshot_;  // null with in-place updates
  std::vector<Reader> readers_;
};

class RocksDbKeyedStateBackend final : public internal::KeyedStateBackend {
 public:
  RocksDbKeyedStateBackend(const StateBackendOptions& options, const BackendSite& site,
                           KeyGroupRange range)
      : internal::KeyedStateBackend(range, site.now_ms),
        options_(options),
        site_(site),
        range_(range),
        tracker_(std::make_shared<UploadTracker>()) {
    std::string base =
        options.local_dir.empty() ? fs::temp_directory_path().string() : options.local_dir;
    naming_.tag = NewJobId().substr(0, 16);
    std::string where = absl::StrCat("v", site.vertex_id, "-s", site.subtask, "-n", site.node_id);
    naming_.private_dir = absl::StrCat(where, "-", naming_.tag);
    std::string root = absl::StrCat(base, "/sluice-rocksdb-", site.job_id, "-", where, "-a",
                                    site.attempt, "-", naming_.tag);
    std::error_code ec;
    fs::create_directories(root + "/db", ec);
    if (ec) {
      throw std::runtime_error(
          absl::StrCat("cannot create the RocksDB working directory '", root, "': ", ec.message()));
    }
    instance_ =
        std::make_shared<Instance>(root, options, std::make_shared<TtlRegistry>(site.now_ms));
  }

  void restore(const internal::OperatorSnapshot& in) override {
    FlushTables();  // the restore writes into the column families underneath
    for (const internal::NativeSnapshot& n : in.native) {
      if (n.backend != kBackendName) {
        throw std::invalid_argument(
            absl::StrCat("the checkpoint holds keyed state in the ", n.backend,
                         " backend's format; restore it with state.backend.type: ", n.backend));
      }
    }
    // The instance is replaced only before first use; a restore into states already declared
    // inserts entries like one at another parallelism.
    bool direct = !instance_->is_open() && in.native.size() == 1 &&
                  in.native[0].first_key_group == range_.first &&
                  in.native[0].last_key_group == range_.last;
    if (direct) {
      Download(in.native[0], instance_->db_dir());
      instance_->Open();
    } else {
      EnsureOpen();
      for (size_t i = 0; i < in.native.size(); ++i) Ingest(in.native[i], i);
    }
    for (const auto& [kg, bytes] : in.key_groups) RestoreKeyGroup(kg, bytes);
    for (auto& [name, t] : tables_) {
      std::map<int, std::string> sections;
      if (t.timers) sections = TakeSections(t.family);
      t.table->reload();
      ReadSections(name, *t.table, sections);
    }
  }

  void snapshot(internal::OperatorSnapshot& out, int64_t checkpoint_id) override {
    EnsureOpen();
    FlushTables();
    rocksdb::DB* db = instance_->db();
    const bool savepoint = site_.savepoint_snapshot && site_.savepoint_snapshot();
    if (options_.incremental && !savepoint) {
      std::string local =
          absl::StrCat(instance_->root(), "/chk-", checkpoint_id, "-", snapshots_++);
      std::vector<rocksdb::ColumnFamilyHandle*> handles;
      for (const auto& [name, h] : instance_->StateFamilies()) handles.push_back(h);
      rocksdb::FlushOptions flush;
      if (!handles.empty()) {
        Instance::Check(db->Flush(flush, handles), "cannot flush RocksDB", instance_->db_dir());
      }
      rocksdb::Checkpoint* raw = nullptr;
      Instance::Check(rocksdb::Checkpoint::Create(db, &raw), "cannot checkpoint RocksDB",
                      instance_->db_dir());
      std::unique_ptr<rocksdb::Checkpoint> checkpoint(raw);
      Instance::Check(checkpoint->CreateCheckpoint(local, /*log_size_for_flush=*/0),
                      "cannot checkpoint RocksDB", local);
      out.deferred = std::make_shared<IncrementalUpload>(instance_, tracker_, local,
                                                         tracker_->Confirmed(), naming_, range_);
    } else {
      // Later writes may overwrite entries of a hash write buffer in place, under the sequence
      // number they had: the snapshot reads no such buffer.
      instance_->FlushHashWriteBuffers();
      std::vector<FullSnapshotWrite::Family> families;
      for (const auto& [name, h] : instance_->StateFamilies()) {
        families.push_back({name, h, instance_->ttl().Get(h->GetID())});
      }
      out.deferred =
          std::make_shared<FullSnapshotWrite>(instance_, families, range_, ctx_.now_ms());
    }
  }

  void notify_checkpoint_complete(int64_t checkpoint_id) override {
    tracker_->Completed(checkpoint_id);
  }

  void Compact() {
    EnsureOpen();
    FlushTables();
    rocksdb::CompactRangeOptions options;
    options.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
    for (const auto& [name, h] : instance_->StateFamilies()) {
      Instance::Check(instance_->db()->CompactRange(options, h, nullptr, nullptr),
                      absl::StrCat("state '", name, "': RocksDB cannot compact"),
                      instance_->db_dir());
    }
  }

 protected:
  void append_declared_keys(int kg, std::vector<std::string>& keys) const override {
    for (const auto& [name, t] : tables_) t.table->append_keys(kg, keys);
  }

  internal::StateTableBase& create_table(const std::string& name,
                                         const internal::TableFactory& factory) override {
    if (tables_.count(name)) throw std::logic_error("state '" + name + "' has a table already");
    EnsureOpen();
    rocksdb::ColumnFamilyHandle* family = instance_->Family(name);
    if (auto ttl = factory.ttl()) instance_->ttl().Set(family->GetID(), ttl->ttl.count());
    Table t;
    t.store = std::make_unique<FamilyStore>(*instance_, family, name);
    t.family = family;
    CheckFirstValue(name, family, factory);
    t.table = factory.make_store_table(ctx_, *t.store, options_.value_cache_entries);
    // A timer queue reads past a section, which is then read into it.
    t.timers = dynamic_cast<internal::TimerQueue*>(t.table.get()) != nullptr;
    if (t.timers) ReadSections(name, *t.table, TakeSections(family));
    return *tables_.emplace(name, std::move(t)).first->second.table;
  }

 private:
  struct Table {
    std::unique_ptr<FamilyStore> store;
    rocksdb::ColumnFamilyHandle* family = nullptr;
    std::unique_ptr<internal::StateTableBase> table;
    bool timers = false;  // a timer queue: may have canonical sections to read in
  };

  void EnsureOpen() {
    if (!instance_->is_open()) instance_->Open();
  }
  // Writes the values the states' tables changed in their caches into the column families.
  void FlushTables() {
    for (auto& [name, t] : tables_) t.table->flush();
  }

  // Removes and returns the canonical sections stored under bare key-group prefixes in the
  // column family of a timer queue (see the top of this file), by key group.
  std::map<int, std::string> TakeSections(rocksdb::ColumnFamilyHandle* family) {
    std::map<int, std::string> sections;
    rocksdb::WriteBatch batch;
    for (int kg = range_.first; kg <= range_.last; ++kg) {
      std::string prefix = key_group_prefix(kg);
      std::string value;
      rocksdb::Status s = instance_->db()->Get(Instance::Reading(), family, prefix, &value);
      if (s.IsNotFound()) continue;
      Instance::Check(s, "cannot read RocksDB", instance_->db_dir());
      sections.emplace(kg, std::move(value));
      batch.Delete(family, prefix);
    }
    FlushBatch(batch, Instance::StateNameOf(family->GetName()));
    return sections;
  }
  // Adds the entries of `sections` (from TakeSections) to the table of state `name`.
  void ReadSections(const std::string& name, internal::StateTableBase& table,
                    const std::map<int, std::string>& sections) {
    for (const auto& [kg, bytes] : sections) {
      try {
        DataInput in(bytes);
        uint64_t n = in.read_varint();
        table.read_entries(kg, in, n);
      } catch (const SerializationError& e) {
        throw SerializationError(
            absl::StrCat("restoring state '", name, "' (key group ", kg, "): ", e.what()));
      }
    }
  }

  // Throws SerializationError naming the state when its first stored value is not of the
  // declared type.
  void CheckFirstValue(const std::string& name, rocksdb::ColumnFamilyHandle* family,
                       const internal::TableFactory& factory) {
    std::unique_ptr<rocksdb::Iterator> it(
        instance_->db()->NewIterator(Instance::Reading(), family));
    it->Seek(key_group_prefix(range_.first));
    if (!it->Valid() || it->value().size() < sizeof(int64_t)) return;
    try {
      factory.check_value(
          std::string_view(it->value().data(), it->value().size()).substr(sizeof(int64_t)));
    } catch (const SerializationError& e) {
      throw SerializationError(absl::StrCat("restoring state '", name, "': ", e.what()));
    }
  }

  // Copies the files of `snap` from checkpoint storage into `dir`.
  void Download(const internal::NativeSnapshot& snap, const std::string& dir) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    for (const internal::StoreFile& f : snap.files) {
      std::string from = absl::StrCat(site_.restore_dir, "/", f.path);
      if (!fs::exists(from, ec)) {
        throw std::runtime_error(absl::StrCat("checkpoint file '", from,
                                              "' named by the checkpoint's metadata is missing"));
      }
      absl::Status st = CopyFileDurably(from, absl::StrCat(dir, "/", f.name), /*sync=*/false);
      if (!st.ok()) throw std::runtime_error(std::string(st.message()));
      uint64_t size = fs::file_size(absl::StrCat(dir, "/", f.name), ec);
      if (size != f.size) {
        throw std::runtime_error(absl::StrCat("checkpoint file '", from, "' has ", size,
                                              " bytes, the metadata says ", f.size));
      }
    }
  }

  // Inserts the entries of this subtask's key groups from another instance's snapshot (one taken
  // at another parallelism).
  void Ingest(const internal::NativeSnapshot& snap, size_t index) {
    std::string dir = absl::StrCat(instance_->root(), "/restore-", index);
    Download(snap, dir);
    std::map<std::string, rocksdb::ColumnFamilyHandle*> families;
    rocksdb::DB* db = instance_->OpenAt(dir, &families);
    struct Closer {
      rocksdb::DB* db;
      std::map<std::string, rocksdb::ColumnFamilyHandle*>& families;
      std::string dir;
      ~Closer() {
        Instance::CloseAt(db, families);
        std::error_code ec;
        fs::remove_all(dir, ec);
      }
    } closer{db, families, dir};
    std::string begin = key_group_prefix(range_.first);
    std::string end = key_group_prefix(range_.last + 1);
    for (const auto& [family, h] : families) {
      if (family == rocksdb::kDefaultColumnFamilyName) continue;
      const std::string name = Instance::StateNameOf(family);
      rocksdb::ColumnFamilyHandle* target = instance_->Family(name);
      rocksdb::WriteBatch batch;
      std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(Instance::Reading(), h));
      for (it->Seek(begin); it->Valid() && it->key().compare(end) < 0; it->Next()) {
        batch.Put(target, it->key(), it->value());
        if (batch.GetDataSize() >= kBatchBytes) FlushBatch(batch, name);
      }
      Instance::Check(it->status(), "cannot read a restored RocksDB instance", dir);
      FlushBatch(batch, name);
    }
  }

  // Writes the canonical bytes of key group `kg` (sections of states) into the column families.
  void RestoreKeyGroup(int kg, const std::string& bytes) {
    if (kg < range_.first || kg > range_.last) {
      throw std::invalid_argument(absl::StrCat("restored key group ", kg,
                                               " is outside this subtask's range [", range_.first,
                                               ", ", range_.last, "]"));
    }
    DataInput in(bytes);
    while (!in.at_end()) {
      std::string name(internal::state_internal::read_bytes(in));
      uint64_t count = in.read_varint();
      rocksdb::WriteBatch batch;
      try {
        rocksdb::ColumnFamilyHandle* family = instance_->Family(name);
        DataInput start = in;
        bool namespaces = false;
        for (uint64_t i = 0; i < count; ++i) {
          internal::state_internal::read_bytes(in);
          namespaces |= !internal::state_internal::read_bytes(in).empty();
          in.read_view(sizeof(int64_t));
          internal::state_internal::read_bytes(in);
        }
        if (namespaces) {
          std::string_view section = start.read_view(start.remaining() - in.remaining());
          std::string value;
          DataOutput o(value);
          o.write_varint(count);
          o.write_raw(section.data(), section.size());
          batch.Put(family, key_group_prefix(kg), value);
        } else {
          PutCanonical(batch, family, kg, start, count);
        }
      } catch (const SerializationError& e) {
        throw SerializationError(
            absl::StrCat("restoring state '", name, "' (key group ", kg, "): ", e.what()));
      }
      FlushBatch(batch, name);
    }
  }

  void FlushBatch(rocksdb::WriteBatch& batch, const std::string& name) {
    if (batch.Count() == 0) return;
    Instance::Check(instance_->db()->Write(instance_->write_options(), &batch),
                    absl::StrCat("state '", name, "': RocksDB cannot write"), instance_->db_dir());
    batch.Clear();
  }

  StateBackendOptions options_;
  BackendSite site_;
  KeyGroupRange range_;
  FileNaming naming_;
  std::shared_ptr<UploadTracker> tracker_;
  int64_t snapshots_ = 0;
  std::shared_ptr<Instance> instance_;
  std::map<std::string, Table> tables_;  // declared states; destroyed before the instance
};

}  // namespace

void CompactRocksDb(internal::KeyedStateBackend& backend) {
  if (auto* r = dynamic_cast<RocksDbKeyedStateBackend*>(&backend)) r->Compact();
}

std::unique_ptr<internal::KeyedStateBackend> CreateRocksDbKeyedStateBackend(
    const StateBackendOptions& options, const BackendSite& site, KeyGroupRange range) {
  return std::make_unique<RocksDbKeyedStateBackend>(options, site, range);
}

}  // namespace sluice
