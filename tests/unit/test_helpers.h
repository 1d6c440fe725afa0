// Small doubles and checks shared by the in-process tests of operator chains.
#pragma once

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>
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

}  // namespace sluice::testing_support
