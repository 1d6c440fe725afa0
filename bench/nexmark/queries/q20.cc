// Nexmark q20, expand bid with auction: every bid on a category-10 auction, with the auction.
// The reference's unbounded join, in keyed state per auction id: the auction when its category
// is 10 (else only its category, so that its bids are dropped at once), and the bids that came
// before their auction. See nexmark_job.h for the arguments.
#include "queries/nexmark_job.h"

namespace {

using nexmark::Auction;
using nexmark::Bid;
using nexmark::Q20Row;

class ExpandBids final : public sluice::KeyedCoProcessFunction<int64_t, Auction, Bid, Q20Row> {
 public:
  void open(sluice::RuntimeContext& ctx) override {
    auction_ = &ctx.get_state(sluice::ValueStateDescriptor<Auction>("auction"));
    waiting_ = &ctx.get_list_state(sluice::ListStateDescriptor<Bid>("waiting-bids"));
  }
  void process_element1(const Auction& a, Context&, sluice::Collector<Q20Row>& out) override {
    if (a.category == 10) {
      for (Bid& b : waiting_->get()) out.collect(Q20Row{std::move(b), a});
      auction_->update(a);
    } else {
      Auction other;
      other.id = a.id;
      other.category = a.category;
      auction_->update(std::move(other));
    }
    waiting_->clear();
  }
  void process_element2(const Bid& b, Context&, sluice::Collector<Q20Row>& out) override {
    if (!auction_->has_value()) {
      waiting_->add(b);
      return;
    }
    Auction a = auction_->value();
    if (a.category == 10) out.collect(Q20Row{b, std::move(a)});
  }

 private:
  sluice::ValueState<Auction>* auction_ = nullptr;
  sluice::ListState<Bid>* waiting_ = nullptr;
};

}  // namespace

SLUICE_JOB(env, args) {
  env.set_job_name("Nexmark q20: expand bid with auction");
  nexmark::JobOptions o = nexmark::ParseJobOptions(args);
  auto events = nexmark::Events(env, o);
  auto rows =
      nexmark::Auctions(events)
          .connect(nexmark::Bids(events))
          .key_by([](const Auction& a) { return a.id; }, [](const Bid& b) { return b.auction; })
          .process(ExpandBids(), "Join auctions");
  nexmark::SinkChecksum(rows, o);
}
