#include "taskmanager/state/state_backend.h"

#include "common/status_macros.h"

namespace sluice {

absl::StatusOr<StateBackendOptions> StateBackendOptionsFor(
    const Configuration& conf, const std::map<std::string, std::string>& job_config,
    std::shared_ptr<RocksDbMemory> memory) {
  Configuration c = conf;
  for (const auto& [key, value] : job_config) {
    if (key.rfind("state.backend.", 0) == 0) RETURN_IF_ERROR(c.Set(key, value));
  }
  StateBackendOptions o;
  o.type = c.GetChoice("state.backend.type") == "ROCKSDB" ? StateBackendOptions::Type::kRocksDb
                                                          : StateBackendOptions::Type::kHashMap;
  o.incremental = c.GetBool("state.backend.incremental");
  o.local_dir = c.GetString("state.backend.rocksdb.localdir");
  o.write_buffer_size = c.GetBytes("state.backend.rocksdb.writebuffer.size");
  o.block_size = c.GetBytes("state.backend.rocksdb.block.blocksize");
  o.hash_write_buffers = c.GetBool("state.backend.rocksdb.writebuffer.hash");
  o.value_cache_entries = static_cast<size_t>(c.GetInt("state.backend.rocksdb.cache.entries"));
  o.memory = std::move(memory);
  return o;
}

std::unique_ptr<internal::KeyedStateBackend> CreateKeyedStateBackend(
    const StateBackendOptions& options, const BackendSite& site, KeyGroupRange range) {
  if (options.type == StateBackendOptions::Type::kRocksDb) {
    return CreateRocksDbKeyedStateBackend(options, site, range);
  }
  return std::make_unique<internal::HeapKeyedStateBackend>(range, site.now_ms);
}

}  // namespace sluice
