// The record deserializers (sluice/serializer.h: deserialize<T>, Serializer<T>::read) on the bytes
// of one record as they arrive from another TaskManager or from state, and the entry formats of
// keyed state and timers built on them (state_internal::read_entry, timer_internal::read_entry).
// The input's first byte picks the type; the rest is the record. A record that decodes must
// encode to bytes that decode to the same record.
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "fuzz_support.h"
#include "record_types.h"
#include "sluice/internal/state_table.h"
#include "sluice/internal/timers.h"
#include "sluice/serializer.h"

namespace {

using sluice::fuzz::Bid;

template <class T>
void Decode(std::string_view bytes) {
  T v;
  try {
    v = sluice::deserialize<T>(bytes);
  } catch (const sluice::SerializationError&) {
    return;
  }
  (void)sluice::fuzz::Use(v);
  const std::string once = sluice::serialize(v);
  const std::string twice = sluice::serialize(sluice::deserialize<T>(once));
  SLUICE_FUZZ_CHECK(once == twice);
}

void DecodeStateEntries(std::string_view bytes) {
  sluice::DataInput in(bytes);
  try {
    while (!in.at_end()) {
      sluice::internal::state_internal::Entry e = sluice::internal::state_internal::read_entry(in);
      SLUICE_FUZZ_CHECK(e.key.size() + e.value.size() <= bytes.size());
    }
  } catch (const sluice::SerializationError&) {
  }
}

void DecodeTimers(std::string_view bytes) {
  sluice::DataInput in(bytes);
  try {
    while (!in.at_end()) {
      sluice::internal::InternalTimer t;
      sluice::internal::timer_internal::read_entry(in, t);
      // A timer read back from its sort key writes the same sort key.
      std::string key;
      sluice::internal::timer_internal::append_sort_key(key, t.time, t.key, t.ns);
      sluice::internal::InternalTimer again;
      sluice::internal::timer_internal::read_sort_key(key, again);
      SLUICE_FUZZ_CHECK(again.time == t.time && again.key == t.key && again.ns == t.ns);
    }
  } catch (const sluice::SerializationError&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 14) {
    case 0:
      Decode<int64_t>(bytes);
      break;
    case 1:
      Decode<bool>(bytes);
      break;
    case 2:
      Decode<std::string>(bytes);
      break;
    case 3:
      Decode<std::pair<std::string, int64_t>>(bytes);
      break;
    case 4:
      Decode<std::tuple<int32_t, std::string, double>>(bytes);
      break;
    case 5:
      Decode<std::vector<std::string>>(bytes);
      break;
    case 6:
      Decode<std::optional<int64_t>>(bytes);
      break;
    case 7:
      Decode<std::map<std::string, std::vector<int32_t>>>(bytes);
      break;
    case 8:
      Decode<Bid>(bytes);
      break;
    case 9:
      Decode<std::vector<Bid>>(bytes);
      break;
    case 10:
      Decode<std::pair<bool, std::optional<bool>>>(bytes);
      break;
    case 11:
      Decode<std::vector<std::pair<int64_t, std::string>>>(bytes);
      break;
    case 12:
      DecodeStateEntries(bytes);
      break;
    default:
      DecodeTimers(bytes);
      break;
  }
  return 0;
}
