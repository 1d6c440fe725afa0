// Small doubles and checks shared by the in-process tests of operator chains.
#pragma once

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/sluice.h"

namespace sluice::testing_support {

// A sink that keeps what it receives, shared between the copies the SDK makes of it.
template <class T>
struct CollectingSink final : SinkFunction<T> {
  std::shared_ptr<std::vector<T>> values = std::make_shared<std::vector<T>>();
  void invoke(const T& v) override { values->push_back(v); }
};

// A buffer of timestamped records (each with its timestamp in member `ts`), as the producer of
// a timestamped edge writes it.
template <class T>
std::string TimestampedBuffer(const std::vector<T>& records) {
  std::string b;
  DataOutput out(b);
  for (const T& r : records) {
    Serializer<int64_t>::write(out, r.ts);
    Serializer<T>::write(out, r);
  }
  return b;
}

// Runs `f`, which must throw an OperatorError naming `op` with `what` in its message.
template <class F>
void ExpectOperatorError(F f, const std::string& op, const std::string& what) {
  try {
    f();
    ADD_FAILURE() << "no OperatorError";
  } catch (const OperatorError& e) {
    EXPECT_EQ(e.operator_name(), op);
    EXPECT_THAT(e.what(), ::testing::HasSubstr(what));
  }
}

// Writes a timer entry as versions before the sort-key form did: key, namespace = the time (8
// bytes, big-endian, sign bit flipped) then the timer's namespace, touched 0, no value.
inline void WriteOldTimerEntry(DataOutput& o, int64_t time, std::string_view key,
                               std::string_view ns) {
  std::string n;
  uint64_t u = static_cast<uint64_t>(time) ^ (uint64_t{1} << 63);
  for (int i = 7; i >= 0; --i) n.push_back(static_cast<char>((u >> (8 * i)) & 0xff));
  n += ns;
  internal::state_internal::write_bytes(o, key);
  internal::state_internal::write_bytes(o, n);
  Serializer<int64_t>::write(o, 0);
  internal::state_internal::write_bytes(o, {});
}

}  // namespace sluice::testing_support
