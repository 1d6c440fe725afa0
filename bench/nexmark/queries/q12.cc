// Nexmark q12, processing-time windows: the bids of each bidder per tumbling window of 10 s of
// processing time. A keyed process function with processing-time timers (per bidder: a count
// and its window's start; at the window's end the row is emitted), and at the end of the input
// every open window is emitted too. The SDK's processing-time windows (as Flink's) drop the
// windows still open when a bounded input ends, which would lose up to the last 10 s of bids
// and leave nothing to check. The checksum weighs each row by its count (rows.h,
// Q12RowChecksum), so it does not depend on where the clock cut the windows. See
// nexmark_job.h for the arguments.
#include "queries/nexmark_job.h"

namespace {

using nexmark::BidderWindowRow;

constexpr int64_t kWindowMs = 10'000;

class ProcessingTimeCounts final
    : public sluice::KeyedProcessFunction<int64_t, nexmark::Bid, BidderWindowRow> {
 public:
  void open(sluice::RuntimeContext& ctx) override {
    window_ = &ctx.get_state(sluice::ValueStateDescriptor<BidderWindowRow>("window"));
  }
  void process_element(const nexmark::Bid& b, Context& ctx,
                       sluice::Collector<BidderWindowRow>&) override {
    if (window_->has_value()) {  // this bidder's window is open: count the bid in it
      window_->merge(BidderWindowRow{}, [](const BidderWindowRow& open, const BidderWindowRow&) {
        BidderWindowRow w = open;
        ++w.bid_count;
        return w;
      });
      return;
    }
    int64_t now = ctx.timer_service().current_processing_time();
    int64_t start = now - now % kWindowMs;
    window_->update(BidderWindowRow{b.bidder, 1, start, start + kWindowMs});
    ctx.timer_service().register_processing_time_timer(start + kWindowMs - 1);
  }
  void on_timer(int64_t, OnTimerContext&, sluice::Collector<BidderWindowRow>& out) override {
    if (window_->has_value()) out.collect(window_->value());
    window_->clear();
  }
  void end_input_of_key(const int64_t&, sluice::Collector<BidderWindowRow>& out) override {
    if (window_->has_value()) out.collect(window_->value());
  }

 private:
  sluice::ValueState<BidderWindowRow>* window_ = nullptr;
};

}  // namespace

SLUICE_JOB(env, args) {
  env.set_job_name("Nexmark q12: processing-time windows");
  nexmark::JobOptions o = nexmark::ParseJobOptions(args);
  auto rows = nexmark::Bids(nexmark::Events(env, o))
                  .key_by([](const nexmark::Bid& b) { return b.bidder; })
                  .process(ProcessingTimeCounts(), "Processing-time windows");
  nexmark::SinkChecksum(rows, o, nexmark::Q12RowChecksum);
}
