// Nexmark q3, local item suggestion: who sells in category 10 from OR, ID or CA, and which
// auctions. An incremental join of persons and auctions on seller id in keyed state (the
// reference's unbounded SQL join): per person, its name, city and state when it lives in one of
// those states (else an empty marker, so that its auctions are dropped at once); an auction that
// comes before its seller waits in a list. Each matching pair is emitted once. See
// nexmark_job.h for the arguments.
#include "queries/nexmark_job.h"

namespace {

using nexmark::Auction;
using nexmark::Person;
using nexmark::Q3Row;

class JoinSellers final : public sluice::KeyedCoProcessFunction<int64_t, Person, Auction, Q3Row> {
 public:
  void open(sluice::RuntimeContext& ctx) override {
    seller_ = &ctx.get_state(sluice::ValueStateDescriptor<Q3Row>("seller"));
    waiting_ = &ctx.get_list_state(sluice::ListStateDescriptor<int64_t>("waiting-auctions"));
  }
  void process_element1(const Person& p, Context&, sluice::Collector<Q3Row>& out) override {
    bool local = p.state == "OR" || p.state == "ID" || p.state == "CA";
    Q3Row seller = local ? Q3Row{p.name, p.city, p.state, 0} : Q3Row{};
    for (int64_t id : local ? waiting_->get() : std::vector<int64_t>{}) {
      Q3Row row = seller;
      row.auction_id = id;
      out.collect(std::move(row));
    }
    waiting_->clear();
    seller_->update(std::move(seller));
  }
  void process_element2(const Auction& a, Context&, sluice::Collector<Q3Row>& out) override {
    if (!seller_->has_value()) {
      waiting_->add(a.id);
      return;
    }
    Q3Row row = seller_->value();
    if (row.state.empty()) return;  // not a local seller
    row.auction_id = a.id;
    out.collect(std::move(row));
  }

 private:
  sluice::ValueState<Q3Row>* seller_ = nullptr;
  sluice::ListState<int64_t>* waiting_ = nullptr;
};

}  // namespace

SLUICE_JOB(env, args) {
  env.set_job_name("Nexmark q3: local item suggestion");
  nexmark::JobOptions o = nexmark::ParseJobOptions(args);
  auto events = nexmark::Events(env, o);
  auto persons = nexmark::Persons(events);
  auto auctions = nexmark::Auctions(events)
                      .filter([](const Auction& a) { return a.category == 10; })
                      .name("category = 10");
  auto rows =
      persons.connect(auctions)
          .key_by([](const Person& p) { return p.id; }, [](const Auction& a) { return a.seller; })
          .process(JoinSellers(), "Join sellers");
  nexmark::SinkChecksum(rows, o);
}
