// Baselines of the stateless queries: q0 (pass through), q1 (currency conversion), q2
// (selection), q14 (calculation), q21 (add channel id).
#include "baseline/baseline.h"

namespace nexmark::baseline {
namespace {

class Q0 final : public Query {
 public:
  void process(Event&& e) override {
    if (const Bid* b = e.bid()) {
      checksum_.add(RowHash(BidRow{b->auction, b->bidder, b->price, b->date_time, b->extra}));
    }
  }
};

class Q1 final : public Query {
 public:
  void process(Event&& e) override {
    if (const Bid* b = e.bid()) {
      checksum_.add(RowHash(Q1Row{b->auction, b->bidder, b->price * 908, b->date_time, b->extra}));
    }
  }
};

class Q2 final : public Query {
 public:
  void process(Event&& e) override {
    const Bid* b = e.bid();
    if (b && b->auction % 123 == 0) checksum_.add(RowHash(Q2Row{b->auction, b->price}));
  }
};

class Q14 final : public Query {
 public:
  void process(Event&& e) override {
    Q14Row row;
    if (const Bid* b = e.bid(); b && Q14RowOf(*b, &row)) checksum_.add(RowHash(row));
  }
};

class Q21 final : public Query {
 public:
  void process(Event&& e) override {
    std::string id;
    if (const Bid* b = e.bid(); b && Q21ChannelId(*b, &id)) {
      checksum_.add(RowHash(Q21Row{b->auction, b->bidder, b->price, b->channel, id}));
    }
  }
};

const RegisterQuery kQ0("q0", [](const GeneratorConfig&) { return std::make_unique<Q0>(); });
const RegisterQuery kQ1("q1", [](const GeneratorConfig&) { return std::make_unique<Q1>(); });
const RegisterQuery kQ2("q2", [](const GeneratorConfig&) { return std::make_unique<Q2>(); });
const RegisterQuery kQ14("q14", [](const GeneratorConfig&) { return std::make_unique<Q14>(); });
const RegisterQuery kQ21("q21", [](const GeneratorConfig&) { return std::make_unique<Q21>(); });

}  // namespace
}  // namespace nexmark::baseline
