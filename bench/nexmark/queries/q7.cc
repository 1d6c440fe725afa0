// Nexmark q7, highest bid: the bids with the highest price of each tumbling window of 10 s. The
// reference's SQL joins each bid with its window's maximum for B.dateTime BETWEEN end - 10 s AND
// end, both ends included: a bid at exactly a window's end also counts for that window when its
// price equals that window's maximum (without raising it).
//
// Two stages, as the reference's local/global aggregation: a tumbling window keyed by a spread
// of bids (not one key per window, which would put every bid of a window on one subtask) keeps
// the highest price and the bids that have it; then, keyed by window end, the partial results
// and the end-of-window bids meet, and the winners are emitted when the watermark passes the
// window. See nexmark_job.h for the arguments.
#include "queries/nexmark_job.h"

namespace {

using nexmark::Bid;
using nexmark::BidRow;

constexpr int64_t kWindowMs = 10'000;
constexpr int64_t kSpread = 64;

// Bids at the highest price of a window (or one bid at a window's end: `at_end`).
struct TopBids {
  int64_t window_end = 0;
  int64_t price = -1;
  std::vector<Bid> bids;
  bool at_end = false;
  auto tie() { return std::tie(window_end, price, bids, at_end); }
  auto tie() const { return std::tie(window_end, price, bids, at_end); }
};

void Merge(TopBids& into, const TopBids& from) {
  if (from.price > into.price) {
    into.price = from.price;
    into.bids = from.bids;
  } else if (from.price == into.price) {
    into.bids.insert(into.bids.end(), from.bids.begin(), from.bids.end());
  }
}

struct HighestBids {
  using accumulator_type = TopBids;
  using result_type = TopBids;
  TopBids create_accumulator() const { return {}; }
  void add(const Bid& b, TopBids& acc) const {
    if (b.price > acc.price) {
      acc.price = b.price;
      acc.bids.assign(1, b);
    } else if (b.price == acc.price) {
      acc.bids.push_back(b);
    }
  }
  TopBids get_result(const TopBids& acc) const { return acc; }
  TopBids merge(TopBids a, const TopBids& b) const {
    Merge(a, b);
    return a;
  }
};

class WithWindowEnd final
    : public sluice::ProcessWindowFunction<TopBids, TopBids, int64_t, sluice::TimeWindow> {
 public:
  void process(const int64_t&, Context& ctx, const std::vector<TopBids>& tops,
               sluice::Collector<TopBids>& out) override {
    for (TopBids t : tops) {
      t.window_end = ctx.window().end;
      out.collect(std::move(t));
    }
  }
};

// Per window end: the partial results merged, and the bids at the window's end.
class Winners final : public sluice::KeyedProcessFunction<int64_t, TopBids, BidRow> {
 public:
  void open(sluice::RuntimeContext& ctx) override {
    top_ = &ctx.get_state(sluice::ValueStateDescriptor<TopBids>("top"));
    at_end_ = &ctx.get_list_state(sluice::ListStateDescriptor<Bid>("bids-at-end"));
  }
  void process_element(const TopBids& t, Context& ctx, sluice::Collector<BidRow>&) override {
    ctx.timer_service().register_event_time_timer(t.window_end - 1);
    if (t.at_end) {
      at_end_->add(t.bids.front());
    } else {
      top_->merge(t, [](const TopBids& cur, const TopBids& v) {
        TopBids m = cur;
        Merge(m, v);
        return m;
      });
    }
  }
  void on_timer(int64_t, OnTimerContext&, sluice::Collector<BidRow>& out) override {
    TopBids top = top_->value();
    if (top.price >= 0) {
      for (const Bid& b : top.bids) out.collect(Row(b));
      for (const Bid& b : at_end_->get()) {
        if (b.price == top.price) out.collect(Row(b));
      }
    }
    top_->clear();
    at_end_->clear();
  }

 private:
  static BidRow Row(const Bid& b) {
    return BidRow{b.auction, b.bidder, b.price, b.date_time, b.extra};
  }
  sluice::ValueState<TopBids>* top_ = nullptr;
  sluice::ListState<Bid>* at_end_ = nullptr;
};

}  // namespace

SLUICE_JOB(env, args) {
  env.set_job_name("Nexmark q7: highest bid");
  nexmark::JobOptions o = nexmark::ParseJobOptions(args);
  auto bids = nexmark::Bids(nexmark::Events(env, o));
  auto partial =
      bids.key_by([](const Bid& b) {
            return static_cast<int64_t>(
                static_cast<uint64_t>(b.auction * 31 + b.bidder + b.date_time) % kSpread);
          })
          .window(sluice::TumblingEventTimeWindows::of(std::chrono::milliseconds(kWindowMs)))
          .aggregate(HighestBids(), WithWindowEnd());
  auto at_end = bids.filter([](const Bid& b) { return b.date_time % kWindowMs == 0; })
                    .name("Bids at a window's end")
                    .map([](const Bid& b) {
                      return TopBids{b.date_time, b.price, {b}, true};
                    });
  auto winners = partial.union_(at_end)
                     .key_by([](const TopBids& t) { return t.window_end; })
                     .process(Winners(), "Highest bids per window");
  nexmark::SinkChecksum(winners, o);
}
