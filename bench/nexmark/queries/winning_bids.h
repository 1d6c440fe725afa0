// The winning bid of every auction (q9, and the first stage of q4): auctions and bids keyed by
// auction id; the highest bid (BetterBid breaks ties) among those whose time is within the
// auction's [date_time, expires] wins, and is emitted when the watermark passes `expires`
// (the reference's SQL joins without time bound and emits every change; an auction's result
// cannot change after that point, since no bid is late).
//
// Per auction id, keyed state:
//   - "range": the auction's time range (and category), kept after the auction closed (marked
//     closed) so that later bids on it, which cannot win, are dropped at once;
//   - "best": the best bid so far, as a Bid (q9) or its price (q4);
//   - "auction": the whole auction (q9 only, read once when it closes);
//   - "early": bids that came before their auction (from another source subtask, or ahead of
//     it): when the auction comes they are judged; a timer at each one's time drops those whose
//     auction has not come by then (it would be later than the bid, so the bid cannot win).
#pragma once

#include "queries/nexmark_job.h"

namespace nexmark {

struct AuctionRange {
  int64_t date_time = 0, expires = 0, category = 0;
  bool closed = false;
  auto tie() { return std::tie(date_time, expires, category, closed); }
  auto tie() const { return std::tie(date_time, expires, category, closed); }
};

// q4's result of one auction: its category and winning price.
struct CategoryPrice {
  int64_t category = 0, price = 0;
  auto tie() { return std::tie(category, price); }
  auto tie() const { return std::tie(category, price); }
};

// kFullRow: emit Q9Row (the auction and its winning bid); else CategoryPrice.
template <bool kFullRow>
class WinningBids final
    : public sluice::KeyedCoProcessFunction<int64_t, Auction, Bid,
                                            std::conditional_t<kFullRow, Q9Row, CategoryPrice>> {
  using Out = std::conditional_t<kFullRow, Q9Row, CategoryPrice>;
  using Best = std::conditional_t<kFullRow, Bid, int64_t>;
  using Base = sluice::KeyedCoProcessFunction<int64_t, Auction, Bid, Out>;

 public:
  void open(sluice::RuntimeContext& ctx) override {
    range_ = &ctx.get_state(sluice::ValueStateDescriptor<AuctionRange>("range"));
    best_ = &ctx.get_state(sluice::ValueStateDescriptor<Best>("best"));
    early_ = &ctx.get_list_state(sluice::ListStateDescriptor<Bid>("early"));
    if constexpr (kFullRow) {
      auction_ = &ctx.get_state(sluice::ValueStateDescriptor<Auction>("auction"));
    }
  }

  void process_element1(const Auction& a, typename Base::Context& ctx,
                        sluice::Collector<Out>&) override {
    AuctionRange r{a.date_time, a.expires, a.category, false};
    range_->update(r);
    if constexpr (kFullRow) auction_->update(a);
    for (const Bid& b : early_->get()) Consider(r, b);
    early_->clear();
    ctx.timer_service().register_event_time_timer(a.expires);
  }

  void process_element2(const Bid& b, typename Base::Context& ctx,
                        sluice::Collector<Out>&) override {
    if (!range_->has_value()) {
      early_->add(b);
      ctx.timer_service().register_event_time_timer(b.date_time);
      return;
    }
    AuctionRange r = range_->value();
    if (!r.closed) Consider(r, b);
  }

  void on_timer(int64_t time, typename Base::OnTimerContext&,
                sluice::Collector<Out>& out) override {
    if (!range_->has_value()) {  // an early bid's time: its auction did not come in time
      std::vector<Bid> keep;
      for (Bid& b : early_->get()) {
        if (b.date_time > time) keep.push_back(std::move(b));
      }
      if (keep.empty()) {
        early_->clear();
      } else {
        early_->update(std::move(keep));
      }
      return;
    }
    AuctionRange r = range_->value();
    if (r.closed || time < r.expires) return;
    if (best_->has_value()) {
      if constexpr (kFullRow) {
        out.collect(Q9Row{auction_->value(), best_->value()});
        auction_->clear();
      } else {
        out.collect(CategoryPrice{r.category, best_->value()});
      }
      best_->clear();
    } else if constexpr (kFullRow) {
      auction_->clear();
    }
    r.closed = true;
    range_->update(r);
  }

 private:
  void Consider(const AuctionRange& r, const Bid& b) {
    if (b.date_time < r.date_time || b.date_time > r.expires) return;
    if constexpr (kFullRow) {
      best_->merge(b, [](const Bid& cur, const Bid& v) { return BetterBid(v, cur) ? v : cur; });
    } else {
      best_->merge(b.price, [](int64_t cur, int64_t v) { return std::max(cur, v); });
    }
  }

  sluice::ValueState<AuctionRange>* range_ = nullptr;
  sluice::ValueState<Best>* best_ = nullptr;
  sluice::ListState<Bid>* early_ = nullptr;
  sluice::ValueState<Auction>* auction_ = nullptr;
};

// Auctions and bids of `events`, joined by auction id into winning bids.
template <bool kFullRow>
auto WinningBidsOf(sluice::DataStream<Event> events) {
  return Auctions(events)
      .connect(Bids(events))
      .key_by([](const Auction& a) { return a.id; }, [](const Bid& b) { return b.auction; })
      .process(WinningBids<kFullRow>(), "Winning bids");
}

}  // namespace nexmark
