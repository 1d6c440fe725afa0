// SplitWatermarks: per-split watermark generators combined as a source's watermark.
#include <gtest/gtest.h>

#include <chrono>
#include <vector>

#include "sluice/watermarks.h"

namespace sluice {
namespace {

struct RecordingOutput final : WatermarkOutput {
  void emit_watermark(int64_t w) override {
    if (w > last) last = w;
    idle = false;
  }
  void mark_idle() override { idle = true; }
  void mark_active() override { idle = false; }
  int64_t last = kMinWatermark;
  bool idle = false;
};

TEST(SplitWatermarksTest, TheSlowestActiveSplitHoldsTheWatermark) {
  int64_t now = 1000;
  auto strategy =
      WatermarkStrategy<int64_t>::for_bounded_out_of_orderness(std::chrono::milliseconds(0))
          .with_timestamp_assigner([](const int64_t& v, int64_t) { return v; });
  SplitWatermarks<int64_t> w(strategy, [&] { return now; });
  w.set_splits(2);
  RecordingOutput out;
  EXPECT_EQ(w.timestamp(0, 500, kNoTimestamp), 500);
  w.on_periodic_emit(out);
  EXPECT_EQ(out.last, kMinWatermark) << "split 1 has no watermark yet: it holds event time";
  w.timestamp(1, 100, kNoTimestamp);
  w.on_periodic_emit(out);
  EXPECT_EQ(out.last, 99) << "the lagging split";
  w.timestamp(1, 700, kNoTimestamp);
  w.on_periodic_emit(out);
  EXPECT_EQ(out.last, 499);
}

TEST(SplitWatermarksTest, AnIdleSplitDoesNotHoldTheWatermarkAndAllIdleIsIdle) {
  int64_t now = 1000;
  auto strategy = WatermarkStrategy<int64_t>::for_monotonous_timestamps()
                      .with_timestamp_assigner([](const int64_t& v, int64_t) { return v; })
                      .with_idleness(std::chrono::milliseconds(50));
  SplitWatermarks<int64_t> w(strategy, [&] { return now; });
  w.set_splits(2);
  RecordingOutput out;
  w.on_periodic_emit(out);  // the idleness clocks start
  w.timestamp(0, 300, kNoTimestamp);
  now += 60;
  w.timestamp(0, 400, kNoTimestamp);
  w.on_periodic_emit(out);
  EXPECT_EQ(out.last, 399) << "split 1 has been silent past the idleness timeout";
  EXPECT_FALSE(out.idle);
  now += 60;
  w.on_periodic_emit(out);
  EXPECT_TRUE(out.idle) << "both splits silent";
  w.timestamp(1, 900, kNoTimestamp);
  w.on_periodic_emit(out);
  EXPECT_FALSE(out.idle);
  EXPECT_EQ(out.last, 899) << "split 0 is still idle: split 1 alone sets the watermark";
}

TEST(SplitWatermarksTest, NewSplitsJoinWithoutAWatermark) {
  auto strategy = WatermarkStrategy<int64_t>::for_monotonous_timestamps().with_timestamp_assigner(
      [](const int64_t& v, int64_t) { return v; });
  SplitWatermarks<int64_t> w(strategy, [] { return int64_t{0}; });
  w.set_splits(1);
  RecordingOutput out;
  w.timestamp(0, 50, kNoTimestamp);
  w.on_periodic_emit(out);
  EXPECT_EQ(out.last, 49);
  w.set_splits(2);
  EXPECT_EQ(w.num_splits(), 2u);
  w.timestamp(0, 80, kNoTimestamp);
  w.on_periodic_emit(out);
  EXPECT_EQ(out.last, 49) << "the new split holds event time until it has a watermark";
}

}  // namespace
}  // namespace sluice
