// Baselines of the windowed queries: q5 (hot items, sliding), q7 (highest bid, tumbling), q8
// (new users, tumbling join), q11 (sessions), q12 (processing-time windows).
#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "baseline/baseline.h"

namespace nexmark::baseline {
namespace {

int64_t AlignDown(int64_t t, int64_t size) { return t - ((t % size) + size) % size; }

// Bids per auction in 2 s panes; each 10 s window is the sum of its 5 panes.
class Q5 final : public Query {
 public:
  void process(Event&& e) override {
    const Bid* b = e.bid();
    if (!b) return;
    int64_t pane = AlignDown(b->date_time, kSlide);
    ++panes_[pane][b->auction];
    for (int64_t end = pane + kSlide; end <= pane + kSize; end += kSlide) ends_.insert(end);
  }
  void advance_watermark(int64_t watermark) override {
    while (!ends_.empty() && *ends_.begin() - 1 <= watermark) {
      int64_t end = *ends_.begin();
      ends_.erase(ends_.begin());
      Fire(end);
      panes_.erase(panes_.begin(), panes_.lower_bound(end - kSize + kSlide));
    }
  }

 private:
  static constexpr int64_t kSize = 10'000, kSlide = 2'000;
  void Fire(int64_t end) {
    std::unordered_map<int64_t, int64_t> counts;
    for (auto it = panes_.lower_bound(end - kSize); it != panes_.end() && it->first < end; ++it) {
      for (const auto& [auction, n] : it->second) counts[auction] += n;
    }
    int64_t max = 0;
    for (const auto& [auction, n] : counts) max = std::max(max, n);
    for (const auto& [auction, n] : counts) {
      if (n == max) checksum_.add(RowHash(Q5Row{auction, n, end}));
    }
  }
  std::map<int64_t, std::unordered_map<int64_t, int64_t>> panes_;
  std::set<int64_t> ends_;
};

// Per 10 s window: the highest price, its bids, and the bids at the window's end.
class Q7 final : public Query {
 public:
  void process(Event&& e) override {
    const Bid* b = e.bid();
    if (!b) return;
    Window& w = windows_[AlignDown(b->date_time, kSize)];
    if (b->price > w.price) {
      w.price = b->price;
      w.bids.assign(1, *b);
    } else if (b->price == w.price) {
      w.bids.push_back(*b);
    }
    if (b->date_time % kSize == 0) windows_[b->date_time - kSize].at_end.push_back(*b);
  }
  void advance_watermark(int64_t watermark) override {
    while (!windows_.empty() && windows_.begin()->first + kSize - 1 <= watermark) {
      const Window& w = windows_.begin()->second;
      if (w.price >= 0) {
        for (const Bid& b : w.bids) Emit(b);
        for (const Bid& b : w.at_end) {
          if (b.price == w.price) Emit(b);
        }
      }
      windows_.erase(windows_.begin());
    }
  }

 private:
  static constexpr int64_t kSize = 10'000;
  struct Window {
    int64_t price = -1;
    std::vector<Bid> bids, at_end;
  };
  void Emit(const Bid& b) {
    checksum_.add(RowHash(BidRow{b.auction, b.bidder, b.price, b.date_time, b.extra}));
  }
  std::map<int64_t, Window> windows_;  // by start
};

// Per 10 s window: the persons who registered and the sellers who opened auctions.
class Q8 final : public Query {
 public:
  void process(Event&& e) override {
    if (const Person* p = e.person()) {
      windows_[AlignDown(p->date_time, kSize)].persons.emplace(p->id, p->name);
    } else if (const Auction* a = e.auction()) {
      windows_[AlignDown(a->date_time, kSize)].sellers.insert(a->seller);
    }
  }
  void advance_watermark(int64_t watermark) override {
    while (!windows_.empty() && windows_.begin()->first + kSize - 1 <= watermark) {
      int64_t start = windows_.begin()->first;
      const Window& w = windows_.begin()->second;
      for (const auto& [id, name] : w.persons) {
        if (w.sellers.count(id)) checksum_.add(RowHash(Q8Row{id, name, start}));
      }
      windows_.erase(windows_.begin());
    }
  }

 private:
  static constexpr int64_t kSize = 10'000;
  struct Window {
    std::unordered_map<int64_t, std::string> persons;
    std::unordered_set<int64_t> sellers;
  };
  std::map<int64_t, Window> windows_;
};

// Per bidder, its open sessions [start, last bid + gap), merged when they overlap or touch.
class Q11 final : public Query {
 public:
  void process(Event&& e) override {
    const Bid* b = e.bid();
    if (!b) return;
    std::vector<Session>& open = sessions_[b->bidder];
    Session s{b->date_time, b->date_time + kGap, 1};
    for (auto it = open.begin(); it != open.end();) {
      if (it->start <= s.end && it->end >= s.start) {
        s = Session{std::min(s.start, it->start), std::max(s.end, it->end), s.count + it->count};
        it = open.erase(it);
      } else {
        ++it;
      }
    }
    open.push_back(s);
    timers_.add(s.end - 1, b->bidder);
  }
  void advance_watermark(int64_t watermark) override {
    timers_.fire_until(watermark, [this](int64_t time, int64_t bidder) {
      auto it = sessions_.find(bidder);
      if (it == sessions_.end()) return;
      std::vector<Session>& open = it->second;
      for (auto s = open.begin(); s != open.end();) {
        if (s->end - 1 == time) {
          checksum_.add(RowHash(BidderWindowRow{bidder, s->count, s->start, s->end}));
          s = open.erase(s);
        } else {
          ++s;
        }
      }
      if (open.empty()) sessions_.erase(it);
    });
  }

 private:
  static constexpr int64_t kGap = 10'000;
  struct Session {
    int64_t start, end, count;
  };
  std::unordered_map<int64_t, std::vector<Session>> sessions_;
  Timers<int64_t> timers_;
};

// Per bidder, bids in windows of 10 s of the wall clock.
class Q12 final : public Query {
 public:
  void process(Event&& e) override {
    const Bid* b = e.bid();
    if (!b) return;
    if ((++seen_ & 4095) == 0) {
      int64_t now = NowMs();
      if (now >= window_start_ + kSize) {
        Flush();
        window_start_ = AlignDown(now, kSize);
      }
    }
    ++counts_[b->bidder];
  }
  void finish() override { Flush(); }

 private:
  static constexpr int64_t kSize = 10'000;
  static int64_t NowMs() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  void Flush() {
    for (const auto& [bidder, n] : counts_) {
      checksum_.add(
          Q12RowChecksum(BidderWindowRow{bidder, n, window_start_, window_start_ + kSize}));
    }
    counts_.clear();
  }
  int64_t seen_ = 0;
  int64_t window_start_ = AlignDown(NowMs(), kSize);
  std::unordered_map<int64_t, int64_t> counts_;
};

const RegisterQuery kQ5("q5", [](const GeneratorConfig&) { return std::make_unique<Q5>(); });
const RegisterQuery kQ7("q7", [](const GeneratorConfig&) { return std::make_unique<Q7>(); });
const RegisterQuery kQ8("q8", [](const GeneratorConfig&) { return std::make_unique<Q8>(); });
const RegisterQuery kQ11("q11", [](const GeneratorConfig&) { return std::make_unique<Q11>(); });
const RegisterQuery kQ12("q12", [](const GeneratorConfig&) { return std::make_unique<Q12>(); });

}  // namespace
}  // namespace nexmark::baseline
