// Baselines of the joins: q3 (persons and auctions by seller), q4 and q9 (auctions and their
// winning bids; q4 then averages per category), q20 (bids with their category-10 auction).
#include <algorithm>
#include <optional>
#include <unordered_map>
#include <vector>

#include "baseline/baseline.h"

namespace nexmark::baseline {
namespace {

class Q3 final : public Query {
 public:
  void process(Event&& e) override {
    if (const Person* p = e.person()) {
      Seller& s = sellers_[p->id];
      s.local = p->state == "OR" || p->state == "ID" || p->state == "CA";
      if (s.local) s.row = Q3Row{p->name, p->city, p->state, 0};
      auto w = waiting_.find(p->id);
      if (w == waiting_.end()) return;
      if (s.local) {
        for (int64_t id : w->second) Emit(s, id);
      }
      waiting_.erase(w);
    } else if (const Auction* a = e.auction()) {
      if (a->category != 10) return;
      auto s = sellers_.find(a->seller);
      if (s == sellers_.end()) {
        waiting_[a->seller].push_back(a->id);
      } else if (s->second.local) {
        Emit(s->second, a->id);
      }
    }
  }

 private:
  struct Seller {
    bool local = false;
    Q3Row row;
  };
  void Emit(Seller& s, int64_t auction_id) {
    s.row.auction_id = auction_id;
    checksum_.add(RowHash(s.row));
  }
  std::unordered_map<int64_t, Seller> sellers_;
  std::unordered_map<int64_t, std::vector<int64_t>> waiting_;
};

// The winning bid of each auction, reported to `on_winner(auction, bid)` when the watermark
// passes the auction's end.
class WinningBids : public Query {
 public:
  void process(Event&& e) override {
    if (Auction* a = std::get_if<Auction>(&e.data)) {
      State& s = auctions_[a->id];
      s.auction = std::move(*a);
      s.known = true;
      auto early = early_.find(s.auction.id);
      if (early != early_.end()) {
        for (const Bid& b : early->second) Consider(s, b);
        early_.erase(early);
      }
      timers_.add(s.auction.expires, Timer{s.auction.id, true});
    } else if (const Bid* b = e.bid()) {
      auto it = auctions_.find(b->auction);
      if (it == auctions_.end()) {
        early_[b->auction].push_back(*b);
        timers_.add(b->date_time, Timer{b->auction, false});
      } else if (!it->second.closed) {
        Consider(it->second, *b);
      }
    }
  }
  void advance_watermark(int64_t watermark) override {
    timers_.fire_until(watermark, [this](int64_t time, const Timer& t) {
      if (!t.expiry) {  // an early bid's time: drop early bids whose auction did not come
        if (auctions_.count(t.auction)) return;
        auto early = early_.find(t.auction);
        if (early == early_.end()) return;
        auto& bids = early->second;
        bids.erase(std::remove_if(bids.begin(), bids.end(),
                                  [time](const Bid& b) { return b.date_time <= time; }),
                   bids.end());
        if (bids.empty()) early_.erase(early);
        return;
      }
      State& s = auctions_[t.auction];
      if (s.closed) return;
      if (s.best) on_winner(s.auction, *s.best);
      s.closed = true;
      s.auction = Auction{};  // only the mark stays
      s.best.reset();
    });
  }

 protected:
  virtual void on_winner(const Auction& a, const Bid& b) = 0;

 private:
  struct State {
    Auction auction;
    std::optional<Bid> best;
    bool known = false, closed = false;
  };
  struct Timer {
    int64_t auction;
    bool expiry;  // else an early bid's time
  };
  static void Consider(State& s, const Bid& b) {
    if (b.date_time < s.auction.date_time || b.date_time > s.auction.expires) return;
    if (!s.best || BetterBid(b, *s.best)) s.best = b;
  }
  std::unordered_map<int64_t, State> auctions_;
  std::unordered_map<int64_t, std::vector<Bid>> early_;
  Timers<Timer> timers_;
};

class Q9 final : public WinningBids {
 protected:
  void on_winner(const Auction& a, const Bid& b) override { checksum_.add(RowHash(Q9Row{a, b})); }
};

class Q4 final : public WinningBids {
 public:
  void finish() override {
    for (const auto& [category, t] : totals_) {
      checksum_.add(RowHash(Q4Row{category, t.first / t.second}));
    }
  }

 protected:
  void on_winner(const Auction& a, const Bid& b) override {
    auto& t = totals_[a.category];
    t.first += b.price;
    t.second += 1;
  }

 private:
  std::unordered_map<int64_t, std::pair<int64_t, int64_t>> totals_;  // sum, count
};

class Q20 final : public Query {
 public:
  void process(Event&& e) override {
    if (Auction* a = std::get_if<Auction>(&e.data)) {
      auto w = waiting_.find(a->id);
      if (a->category == 10 && w != waiting_.end()) {
        for (const Bid& b : w->second) checksum_.add(RowHash(Q20Row{b, *a}));
      }
      if (w != waiting_.end()) waiting_.erase(w);
      if (a->category == 10) {
        auctions_[a->id] = std::move(*a);
      } else {
        auctions_[a->id].category = a->category;  // a mark: its bids are dropped
      }
    } else if (const Bid* b = e.bid()) {
      auto it = auctions_.find(b->auction);
      if (it == auctions_.end()) {
        waiting_[b->auction].push_back(*b);
      } else if (it->second.category == 10) {
        checksum_.add(RowHash(Q20Row{*b, it->second}));
      }
    }
  }

 private:
  std::unordered_map<int64_t, Auction> auctions_;
  std::unordered_map<int64_t, std::vector<Bid>> waiting_;
};

const RegisterQuery kQ3("q3", [](const GeneratorConfig&) { return std::make_unique<Q3>(); });
const RegisterQuery kQ4("q4", [](const GeneratorConfig&) { return std::make_unique<Q4>(); });
const RegisterQuery kQ9("q9", [](const GeneratorConfig&) { return std::make_unique<Q9>(); });
const RegisterQuery kQ20("q20", [](const GeneratorConfig&) { return std::make_unique<Q20>(); });

}  // namespace
}  // namespace nexmark::baseline
