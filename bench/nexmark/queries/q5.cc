// Nexmark q5, hot items: the auctions with the most bids in each sliding window of 10 s every
// 2 s (the reference's SQL: HOP of 2 s and 10 s). Bids per auction and window with a sliding
// window count; then, keyed by window end, the highest count and the auctions that have it,
// emitted when the watermark passes the window (all its counts have come by then). See
// nexmark_job.h for the arguments.
#include "queries/nexmark_job.h"

namespace {

using nexmark::Q5Row;

class WithWindowEnd final
    : public sluice::ProcessWindowFunction<int64_t, Q5Row, int64_t, sluice::TimeWindow> {
 public:
  void process(const int64_t& auction, Context& ctx, const std::vector<int64_t>& counts,
               sluice::Collector<Q5Row>& out) override {
    for (int64_t n : counts) out.collect(Q5Row{auction, n, ctx.window().end});
  }
};

// Per window end: the highest count so far and the auctions that have it.
class MostBids final : public sluice::KeyedProcessFunction<int64_t, Q5Row, Q5Row> {
 public:
  void open(sluice::RuntimeContext& ctx) override {
    top_ = &ctx.get_list_state(sluice::ListStateDescriptor<Q5Row>("top"));
  }
  void process_element(const Q5Row& r, Context& ctx, sluice::Collector<Q5Row>&) override {
    std::vector<Q5Row> top = top_->get();
    if (top.empty() || r.num > top.front().num) {
      top_->update({r});
      ctx.timer_service().register_event_time_timer(r.window_end - 1);
    } else if (r.num == top.front().num) {
      top_->add(r);
    }
  }
  void on_timer(int64_t, OnTimerContext&, sluice::Collector<Q5Row>& out) override {
    for (Q5Row& r : top_->get()) out.collect(std::move(r));
    top_->clear();
  }

 private:
  sluice::ListState<Q5Row>* top_ = nullptr;
};

}  // namespace

SLUICE_JOB(env, args) {
  env.set_job_name("Nexmark q5: hot items");
  nexmark::JobOptions o = nexmark::ParseJobOptions(args);
  auto counts = nexmark::Bids(nexmark::Events(env, o))
                    .key_by([](const nexmark::Bid& b) { return b.auction; })
                    .window(sluice::SlidingEventTimeWindows::of(std::chrono::seconds(10),
                                                                std::chrono::seconds(2)))
                    .aggregate(nexmark::CountBids(), WithWindowEnd());
  auto hot = counts.key_by([](const Q5Row& r) { return r.window_end; })
                 .process(MostBids(), "Most bids per window");
  nexmark::SinkChecksum(hot, o);
}
