// A buffer of the data exchange between TaskManagers as the consumer receives it: a
// proto::NetworkBuffer off the gRPC stream, its kind taken as taskmanager/network.cc takes it,
// and a data buffer split into records by the engine (sluice/internal/graph.h: read_records),
// with and without each record's timestamp, for several record types. Every record decoded is
// passed on and counted; a malformed buffer throws SerializationError, which fails the task.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>

#include "fuzz_support.h"
#include "proto/data_exchange.pb.h"
#include "record_types.h"
#include "sluice/internal/graph.h"

namespace {

template <class T>
class CountingCollector final : public sluice::Collector<T> {
 public:
  void emit(T&& v) override {
    use_ += sluice::fuzz::Use(v);
    ++count_;
  }
  int64_t count() const { return count_; }

 private:
  int64_t count_ = 0;
  uint64_t use_ = 0;
};

template <class T>
void Split(std::string_view bytes, bool timestamped) {
  CountingCollector<T> out;
  int64_t timestamp = 0;
  sluice::internal::SingleWriterCounter counted;
  try {
    sluice::internal::read_records<T>(timestamped, bytes, &out, &timestamp, &counted);
  } catch (const sluice::SerializationError&) {
  }
  SLUICE_FUZZ_CHECK(counted.get() == out.count());  // records passed on are counted, also on error
  if (!timestamped) SLUICE_FUZZ_CHECK(timestamp == sluice::kNoTimestamp);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  sluice::proto::NetworkBuffer msg;
  if (!msg.ParseFromArray(data, static_cast<int>(size))) return 0;
  const auto kind = static_cast<sluice::internal::BufferKind>(msg.kind());
  if (kind != sluice::internal::BufferKind::kData) return 0;
  const std::string& bytes = msg.data();
  for (bool timestamped : {false, true}) {
    Split<std::string>(bytes, timestamped);
    Split<int64_t>(bytes, timestamped);
    Split<std::pair<std::string, int64_t>>(bytes, timestamped);
    Split<std::map<std::string, int32_t>>(bytes, timestamped);
    Split<sluice::fuzz::Bid>(bytes, timestamped);
  }
  return 0;
}
