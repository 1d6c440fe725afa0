// The RocksDB backend's instance layer (rocksdb_backend.cc is the backend over it): the memory
// budget the instances of a TaskManager share, one instance in its working directory with the
// options of its column families, time-to-live by compaction, and a state's entries as a
// KvStore. The write buffers and their options are described at the top of rocksdb_backend.cc.
#pragma once

#include <rocksdb/cache.h>
#include <rocksdb/compaction_filter.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/memtablerep.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>
#include <rocksdb/write_buffer_manager.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "sluice/internal/state_table.h"
#include "taskmanager/state/state_backend.h"

namespace sluice {

class RocksDbMemory {
 public:
  std::shared_ptr<rocksdb::Cache> cache;
  std::shared_ptr<rocksdb::WriteBufferManager> write_buffers;
  // The open instances, for their figures (RocksDbStatsOf); an instance leaves before it closes.
  absl::Mutex mu;
  std::set<rocksdb::DB*> open ABSL_GUARDED_BY(mu);
};

namespace rocksdb_internal {

namespace fs = std::filesystem;

// Restore: write batches of about this size; a state's reused write batch is dropped past it.
constexpr size_t kBatchBytes = 4 << 20;
// Share of a state's write buffer given to its Bloom filter of keys (Instance).
constexpr double kWriteBufferFilterRatio = 0.02;

// Time-to-live per column family, read by compactions on RocksDB's threads.
class TtlRegistry {
 public:
  explicit TtlRegistry(std::function<int64_t()> now) : now_(std::move(now)) {}
  void Set(uint32_t family, int64_t ttl_ms) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    ttl_ms_[family] = ttl_ms;
  }
  // The TTL of `family`, or -1.
  int64_t Get(uint32_t family) const ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    auto it = ttl_ms_.find(family);
    return it == ttl_ms_.end() ? -1 : it->second;
  }
  int64_t now() const { return now_(); }

 private:
  std::function<int64_t()> now_;
  mutable absl::Mutex mu_;
  std::map<uint32_t, int64_t> ttl_ms_ ABSL_GUARDED_BY(mu_);
};

// Drops entries not written for the state's TTL when RocksDB compacts them: expired entries of
// keys never read again do not stay on disk forever.
class TtlFilter final : public rocksdb::CompactionFilter {
 public:
  TtlFilter(int64_t ttl_ms, int64_t now_ms) : ttl_ms_(ttl_ms), now_ms_(now_ms) {}
  bool Filter(int, const rocksdb::Slice&, const rocksdb::Slice& value, std::string*,
              bool*) const override {
    return now_ms_ - internal::state_internal::stored_touched_ms({value.data(), value.size()}) >=
           ttl_ms_;
  }
  const char* Name() const override { return "sluice.TtlFilter"; }

 private:
  int64_t ttl_ms_;
  int64_t now_ms_;
};

class TtlFilterFactory final : public rocksdb::CompactionFilterFactory {
 public:
  explicit TtlFilterFactory(std::shared_ptr<TtlRegistry> registry)
      : registry_(std::move(registry)) {}
  std::unique_ptr<rocksdb::CompactionFilter> CreateCompactionFilter(
      const rocksdb::CompactionFilter::Context& context) override {
    int64_t ttl = registry_->Get(context.column_family_id);
    if (ttl < 0) return nullptr;
    return std::make_unique<TtlFilter>(ttl, registry_->now());
  }
  const char* Name() const override { return "sluice.TtlFilterFactory"; }

 private:
  std::shared_ptr<TtlRegistry> registry_;
};

// One RocksDB instance in its working directory. Shared by the backend and the snapshots still
// reading it; the last owner closes it and removes the directory.
class Instance {
 public:
  Instance(std::string root, const StateBackendOptions& options, std::shared_ptr<TtlRegistry> ttl)
      : root_(std::move(root)),
        db_dir_(root_ + "/db"),
        ttl_(std::move(ttl)),
        memory_(options.memory),
        hash_(options.hash_write_buffers) {
    db_options_.create_if_missing = true;
    db_options_.create_missing_column_families = true;
    db_options_.max_open_files = -1;
    db_options_.info_log_level = rocksdb::InfoLogLevel::WARN_LEVEL;
    db_options_.keep_log_file_num = 2;
    if (options.memory) db_options_.write_buffer_manager = options.memory->write_buffers;
    // Only the skip list takes concurrent writes; the task's thread is the only writer anyway.
    db_options_.allow_concurrent_memtable_write = !hash_;
    family_options_.write_buffer_size = static_cast<size_t>(options.write_buffer_size);
    family_options_.compaction_filter_factory = std::make_shared<TtlFilterFactory>(ttl_);
    rocksdb::BlockBasedTableOptions table;
    table.block_size = static_cast<size_t>(options.block_size);
    if (options.memory) table.block_cache = options.memory->cache;
    table.cache_index_and_filter_blocks = options.memory != nullptr;
    table.cache_index_and_filter_blocks_with_high_priority = true;
    // Index and filter in partitions of a block each, with only their top level pinned: a lookup
    // in a large file reads one small partition, not the file's whole filter, when the cache is
    // smaller than the state.
    table.index_type = rocksdb::BlockBasedTableOptions::IndexType::kTwoLevelIndexSearch;
    table.partition_filters = true;
    table.metadata_block_size = 4096;
    table.pin_top_level_index_and_filter = true;
    table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
    family_options_.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
    ordered_family_options_ = family_options_;
    // A state's write buffers keep a Bloom filter of whole keys (2% of their room: about 13
    // bits per entry of a number key, by arithmetic): a read of a key a buffer does not hold
    // skips its search, which costs most when state outgrows the buffers. RocksDB makes the
    // filter with each buffer, so an empty family costs that room too: not given to the default
    // family (no state's) nor to timer queues, whose reads are mostly in order and whose lookups
    // the queue's table of known timers mostly spares (sluice/internal/timers.h).
    family_options_.memtable_prefix_bloom_size_ratio = kWriteBufferFilterRatio;
    family_options_.memtable_whole_key_filtering = true;
    if (hash_) SetHashWriteBuffers(options);
    write_options_.disableWAL = true;
  }

  // The options of a state family with hash write buffers (see the top of this file).
  void SetHashWriteBuffers(const StateBackendOptions& options) {
    // A hash bucket per 256 bytes of buffer (a few entries each), at least 1024. The buckets
    // take their room in the buffer: a budget for all buffers smaller than one caps them.
    size_t buffer = family_options_.write_buffer_size;
    if (options.memory) buffer = std::min(buffer, options.memory->write_buffers->buffer_size());
    size_t buckets = std::clamp<size_t>(buffer / 256, 1024, 1 << 20);
    family_options_.memtable_factory.reset(rocksdb::NewHashLinkListRepFactory(buckets));
    // The hash buffer files entries under a prefix: the whole key. The filter then holds it as
    // that prefix already.
    family_options_.prefix_extractor.reset(rocksdb::NewNoopTransform());
    family_options_.memtable_whole_key_filtering = false;
    family_options_.inplace_update_support = true;
  }
  ~Instance() {
    Close();
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  // Opens the instance in the working directory with the column families found there.
  void Open() {
    db_ = OpenAt(db_dir_, &families_);
    if (memory_) {
      absl::MutexLock lock(&memory_->mu);
      memory_->open.insert(db_);
    }
  }

  // Opens the instance in `dir` (created when missing), filling `families` by name (the
  // default family included). The caller closes it with CloseAt.
  rocksdb::DB* OpenAt(const std::string& dir,
                      std::map<std::string, rocksdb::ColumnFamilyHandle*>* families) {
    std::vector<std::string> names;
    if (!rocksdb::DB::ListColumnFamilies(db_options_, dir, &names).ok()) names.clear();
    if (std::find(names.begin(), names.end(), rocksdb::kDefaultColumnFamilyName) == names.end()) {
      names.push_back(rocksdb::kDefaultColumnFamilyName);
    }
    std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
    for (const std::string& n : names) descriptors.emplace_back(n, FamilyOptions(n));
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* db = nullptr;
    Check(rocksdb::DB::Open(db_options_, dir, descriptors, &handles, &db), "cannot open RocksDB",
          dir);
    for (auto* h : handles) (*families)[h->GetName()] = h;
    return db;
  }
  static void CloseAt(rocksdb::DB* db,
                      std::map<std::string, rocksdb::ColumnFamilyHandle*>& families) {
    if (!db) return;
    for (auto& [name, h] : families) db->DestroyColumnFamilyHandle(h);
    families.clear();
    db->Close();
    delete db;
  }

  bool is_open() const { return db_ != nullptr; }
  // A numeric property of `family`; 0 when RocksDB has none.
  uint64_t Property(rocksdb::ColumnFamilyHandle* family, const std::string& name) {
    uint64_t v = 0;
    return db_->GetIntProperty(family, name, &v) ? v : 0;
  }
  rocksdb::DB* db() { return db_; }
  // The column family of state `name`, created when missing.
  rocksdb::ColumnFamilyHandle* Family(const std::string& name) {
    const std::string family = FamilyNameOf(name);
    auto it = families_.find(family);
    if (it != families_.end()) return it->second;
    rocksdb::ColumnFamilyHandle* h = nullptr;
    Check(db_->CreateColumnFamily(FamilyOptions(family), family, &h),
          absl::StrCat("cannot create the column family of state '", name, "'"), db_dir_);
    return families_[family] = h;
  }
  // Every state's column family, by state name (the default family left out).
  std::vector<std::pair<std::string, rocksdb::ColumnFamilyHandle*>> StateFamilies() const {
    std::vector<std::pair<std::string, rocksdb::ColumnFamilyHandle*>> out;
    for (const auto& [family, h] : families_) {
      if (family != rocksdb::kDefaultColumnFamilyName) out.emplace_back(StateNameOf(family), h);
    }
    std::sort(out.begin(), out.end());
    return out;
  }
  // The column family of a state: its name, but for a state named as RocksDB's default family
  // (which is not a state's) or one that begins with the escape byte, which get one in front.
  static std::string FamilyNameOf(const std::string& state) {
    if (state != rocksdb::kDefaultColumnFamilyName && (state.empty() || state[0] != '\x01')) {
      return state;
    }
    return '\x01' + state;
  }
  static std::string StateNameOf(const std::string& family) {
    return !family.empty() && family[0] == '\x01' ? family.substr(1) : family;
  }

  // Whether the column family `name` keeps RocksDB's ordered write buffer: all do without hash
  // write buffers, and RocksDB's default family (no state's) and a timer queue's always (read in
  // key order all the time; see "_timers/" in sluice/internal/timers.h).
  bool IsOrdered(const std::string& name) const { return !hash_ || !IsState(name); }
  // Whether the column family `name` holds a state's entries: not RocksDB's default family nor
  // a timer queue's.
  static bool IsState(const std::string& name) {
    return name != rocksdb::kDefaultColumnFamilyName && name.rfind("_timers/", 0) != 0;
  }
  bool hash_write_buffers() const { return hash_; }

  // Flushes the write buffer of every hash-buffered state family that holds entries, waiting
  // for the files: afterwards no entry but new ones is in a buffer that overwrites in place.
  // (A flush that does not wait would do, but RocksDB refuses it with TryAgain while writes are
  // stopped for too many unflushed buffers.)
  void FlushHashWriteBuffers() {
    std::vector<rocksdb::ColumnFamilyHandle*> families;
    for (const auto& [name, h] : families_) {
      if (!IsOrdered(name) && Unflushed(h)) {
        families.push_back(h);
      }
    }
    Flush(families, /*wait=*/true);
  }
  // Whether `family` has entries in write buffers, the current one or any not yet flushed.
  bool Unflushed(rocksdb::ColumnFamilyHandle* family) {
    return Property(family, rocksdb::DB::Properties::kNumEntriesActiveMemTable) > 0 ||
           Property(family, rocksdb::DB::Properties::kNumImmutableMemTable) > 0;
  }
  // Flushes the write buffers of `families`, waiting for the files when `wait`.
  void Flush(const std::vector<rocksdb::ColumnFamilyHandle*>& families, bool wait) {
    if (families.empty()) return;
    rocksdb::FlushOptions flush;
    flush.wait = wait;
    flush.allow_write_stall = true;  // flush now; a stall, if any, falls on the next write
    Check(db_->Flush(flush, families), "cannot flush RocksDB", db_dir_);
  }

  const std::string& root() const { return root_; }
  const std::string& db_dir() const { return db_dir_; }
  const rocksdb::WriteOptions& write_options() const { return write_options_; }
  TtlRegistry& ttl() { return *ttl_; }

  // Read options for every read: entries in total order (see the top of this file).
  static rocksdb::ReadOptions Reading(const rocksdb::Snapshot* snapshot = nullptr) {
    rocksdb::ReadOptions ro;
    ro.total_order_seek = true;
    ro.snapshot = snapshot;
    return ro;
  }

  // Throws std::runtime_error("<what> in '<dir>': <status>") unless `s` is OK.
  static void Check(const rocksdb::Status& s, const std::string& what, const std::string& dir) {
    if (!s.ok()) throw std::runtime_error(absl::StrCat(what, " in '", dir, "': ", s.ToString()));
  }

 private:
  const rocksdb::ColumnFamilyOptions& FamilyOptions(const std::string& name) const {
    return IsState(name) ? family_options_ : ordered_family_options_;
  }

  void Close() {
    if (memory_ && db_) {
      absl::MutexLock lock(&memory_->mu);
      memory_->open.erase(db_);
    }
    CloseAt(db_, families_);
    db_ = nullptr;
  }

  std::string root_;
  std::string db_dir_;
  std::shared_ptr<TtlRegistry> ttl_;
  rocksdb::DBOptions db_options_;
  rocksdb::ColumnFamilyOptions family_options_;          // states: the filter, maybe hash buffers
  rocksdb::ColumnFamilyOptions ordered_family_options_;  // timers, default: skip list only
  rocksdb::WriteOptions write_options_;
  rocksdb::DB* db_ = nullptr;
  std::map<std::string, rocksdb::ColumnFamilyHandle*> families_;
  std::shared_ptr<RocksDbMemory> memory_;
  bool hash_;  // hash write buffers for states
};

// The entries of one state: a column family.
class FamilyStore final : public internal::KvStore {
 public:
  FamilyStore(Instance& instance, rocksdb::ColumnFamilyHandle* family, std::string name)
      : instance_(instance),
        family_(family),
        name_(std::move(name)),
        ordered_(instance_.IsOrdered(name_)) {}
  bool get(std::string_view key, std::string* value) override {
    rocksdb::Status s = instance_.db()->Get(read_options_, family_, Slice(key), value);
    if (s.IsNotFound()) return false;
    Fail(s, "read");
    return true;
  }
  void put(std::string_view key, std::string_view value) override {
    // A batch kept from write to write: what DB::Put does, less an allocation.
    Fail(batch_.Put(family_, Slice(key), Slice(value)), "write");
    if (!batching_ || batch_.GetDataSize() >= kBatchBytes) WriteBatch();
  }
  void remove(std::string_view key) override {
    Fail(batch_.Delete(family_, Slice(key)), "delete");
    if (!batching_ || batch_.GetDataSize() >= kBatchBytes) WriteBatch();
  }
  void begin_batch() override { batching_ = true; }
  void commit_batch() override {
    batching_ = false;
    WriteBatch();
  }
  void scan_range(std::string_view from, std::string_view end,
                  const std::function<bool(std::string_view, std::string_view)>& fn) override {
    FlushIfUnordered();
    rocksdb::ReadOptions options = read_options_;
    rocksdb::Slice upper = Slice(end);
    options.iterate_upper_bound = &upper;
    std::unique_ptr<rocksdb::Iterator> it(instance_.db()->NewIterator(options, family_));
    for (it->Seek(Slice(from)); it->Valid(); it->Next()) {
      if (!fn({it->key().data(), it->key().size()}, {it->value().data(), it->value().size()}))
        break;
    }
    Fail(it->status(), "scan");
  }
  bool last_key(std::string_view from, std::string_view end, std::string* key) override {
    FlushIfUnordered();  // timers, its one user, have ordered buffers
    std::unique_ptr<rocksdb::Iterator> it(instance_.db()->NewIterator(read_options_, family_));
    it->SeekForPrev(Slice(end));
    if (it->Valid() && it->key() == Slice(end)) it->Prev();
    bool found = it->Valid() && it->key().compare(Slice(from)) >= 0;
    if (found) key->assign(it->key().data(), it->key().size());
    Fail(it->status(), "scan");
    return found;
  }

 private:
  static rocksdb::Slice Slice(std::string_view v) { return {v.data(), v.size()}; }
  // Before an iterator over a hash buffer: iterating one sorts a copy of it, and iterating
  // backward over one that overwrites in place does not work; flushed, it is read from files.
  void FlushIfUnordered() {
    if (!ordered_ && instance_.Unflushed(family_)) instance_.Flush({family_}, /*wait=*/true);
  }
  void WriteBatch() {
    if (batch_.Count() == 0) return;
    rocksdb::Status s = instance_.db()->Write(instance_.write_options(), &batch_);
    if (batch_.GetDataSize() > kBatchBytes) {
      batch_ = rocksdb::WriteBatch();  // keep no large one
    } else {
      batch_.Clear();
    }
    Fail(s, "write");
  }
  void Fail(const rocksdb::Status& s, const char* op) {
    if (s.ok()) return;  // the message is built only for an error
    Instance::Check(s, absl::StrCat("state '", name_, "': RocksDB cannot ", op),
                    instance_.db_dir());
  }
  Instance& instance_;
  rocksdb::ColumnFamilyHandle* family_;
  std::string name_;
  bool ordered_;  // a skip-list buffer, never overwritten in place (Instance::IsOrdered)
  rocksdb::WriteBatch batch_;  // writes not yet applied: only while batching_
  bool batching_ = false;
  rocksdb::ReadOptions read_options_ = Instance::Reading();
};

}  // namespace rocksdb_internal
}  // namespace sluice
