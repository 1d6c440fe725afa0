// The byte-level part of the store-backed state tables, and the key-range error that every
// state table raises (see sluice/internal/state_table.h).
#include "sluice/internal/state_table.h"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace sluice::internal {

void KeyContext::throw_out_of_range() const {
  if (key_group < 0) {
    throw std::logic_error(
        "keyed state used where there is no current key (keyed state "
        "belongs to process_element, not to open or end_input)");
  }
  throw std::invalid_argument("key group " + std::to_string(key_group) +
                              " is outside this subtask's range");
}

const std::string& StoreTableCore::store_key(int kg, std::string_view key) const {
  store_key_.clear();
  state_internal::append_key_group_prefix(store_key_, kg);
  store_key_.append(key);
  return store_key_;
}

const std::string_view* StoreTableCore::read(int kg, std::string_view key, int64_t* touched) const {
  if (!store_.get(store_key(kg, key), &bytes_)) return nullptr;
  *touched = state_internal::stored_touched_ms(bytes_);
  value_ = std::string_view(bytes_).substr(std::min(bytes_.size(), sizeof(int64_t)));
  return &value_;
}

std::string& StoreTableCore::begin_write(int64_t touched) const {
  bytes_.clear();
  DataOutput o(bytes_);
  Serializer<int64_t>::write(o, touched);
  return bytes_;
}

void StoreTableCore::end_write(int kg, std::string_view key) const {
  store_.put(store_key(kg, key), bytes_);
}

void StoreTableCore::remove(int kg, std::string_view key) const {
  store_.remove(store_key(kg, key));
}

size_t StoreTableCore::size() const {
  size_t n = 0;
  for (int kg = ctx_.first_key_group; kg < ctx_.first_key_group + ctx_.num_key_groups; ++kg) {
    store_.scan(kg, [&](std::string_view, std::string_view) { ++n; });
  }
  return n;
}

uint64_t StoreTableCore::write_entries(int kg, std::string& out) const {
  int64_t now = ttl_ ? ctx_.now_ms() : 0;
  int64_t ttl_ms = ttl_ ? ttl_->ttl.count() : -1;
  DataOutput o(out);
  uint64_t n = 0;
  store_.scan(kg, [&](std::string_view k, std::string_view v) {
    n += state_internal::append_stored_entry(o, k, v, ttl_ms, now);
  });
  return n;
}

void StoreTableCore::read_entries(int kg, DataInput& in, uint64_t count,
                                  void (*check)(std::string_view)) {
  std::string value;
  for (uint64_t i = 0; i < count; ++i) {
    state_internal::Entry e = state_internal::read_entry(in);
    check(e.value);  // malformed bytes fail the restore here, not at first access
    state_internal::make_stored_value(value, e.touched_ms, e.value);
    store_.put(state_internal::store_key(kg, e.key), value);
  }
}

void StoreTableCore::append_keys(int kg, std::vector<std::string>& keys) const {
  int64_t now = ttl_ ? ctx_.now_ms() : 0;
  store_.scan(kg, [&](std::string_view k, std::string_view v) {
    if (!expired(state_internal::stored_touched_ms(v), now)) {
      keys.emplace_back(k.substr(state_internal::kKeyGroupPrefixBytes));
    }
  });
}

}  // namespace sluice::internal
