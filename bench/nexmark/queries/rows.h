// The result rows of the Nexmark queries and their order-independent checksum, shared by the
// Sluice jobs and the single-threaded baselines (plain C++, no Sluice type). A result set's
// checksum is the number of rows and the sum (mod 2^64) of a 64-bit hash of each row, so any
// order and any split over subtasks give the same figure.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <tuple>
#include <variant>

#include "generator/model.h"
#include "generator/random.h"

namespace nexmark {

// Hashes a row field by field.
class RowHasher {
 public:
  RowHasher& add(int64_t v) {
    h_ = Rng::Mix(h_ * 0x100000001b3ULL + static_cast<uint64_t>(v) + 0x9e3779b97f4a7c15ULL);
    return *this;
  }
  RowHasher& add(std::string_view s) {
    uint64_t f = 0xcbf29ce484222325ULL;  // FNV-1a
    for (unsigned char c : s) f = (f ^ c) * 0x100000001b3ULL;
    return add(static_cast<int64_t>(f ^ s.size()));
  }
  template <class... Fs>
  RowHasher& add_all(const std::tuple<Fs...>& fields) {
    std::apply([this](const auto&... f) { (add(f), ...); }, fields);
    return *this;
  }
  RowHasher& add(const std::string& s) { return add(std::string_view(s)); }
  uint64_t value() const { return h_; }

 private:
  uint64_t h_ = 0x2545f4914f6cdd1dULL;
};

// The checksum of a result set: its rows and the sum of their hashes.
struct Checksum {
  int64_t rows = 0;
  uint64_t sum = 0;
  void add(uint64_t row_hash) {
    ++rows;
    sum += row_hash;
  }
  void add(const Checksum& o) {
    rows += o.rows;
    sum += o.sum;
  }
  bool operator==(const Checksum&) const = default;
  auto tie() { return std::tie(rows, sum); }
  auto tie() const { return std::tie(rows, sum); }
};

// ---- rows, one struct per query's output (the reference's SQL sink columns, plus the window
// where the query's output is per window) ----

// q1: a bid's price in euros, in thousandths (0.908 * price, exactly).
struct Q1Row {
  int64_t auction = 0, bidder = 0, price_milli_euro = 0, date_time = 0;
  std::string extra;
  auto tie() { return std::tie(auction, bidder, price_milli_euro, date_time, extra); }
  auto tie() const { return std::tie(auction, bidder, price_milli_euro, date_time, extra); }
};
struct Q2Row {
  int64_t auction = 0, price = 0;
  auto tie() { return std::tie(auction, price); }
  auto tie() const { return std::tie(auction, price); }
};
struct Q3Row {
  std::string name, city, state;
  int64_t auction_id = 0;
  auto tie() { return std::tie(name, city, state, auction_id); }
  auto tie() const { return std::tie(name, city, state, auction_id); }
};
// q4: the average winning price of a category (integer division, as SQL AVG of a BIGINT).
struct Q4Row {
  int64_t category = 0, average = 0;
  auto tie() { return std::tie(category, average); }
  auto tie() const { return std::tie(category, average); }
};
// q5: an auction with the most bids of a sliding window.
struct Q5Row {
  int64_t auction = 0, num = 0, window_end = 0;
  auto tie() { return std::tie(auction, num, window_end); }
  auto tie() const { return std::tie(auction, num, window_end); }
};
// q0 (every bid) and q7 (a bid with the highest price of its tumbling window): the bid's columns.
struct BidRow {
  int64_t auction = 0, bidder = 0, price = 0, date_time = 0;
  std::string extra;
  auto tie() { return std::tie(auction, bidder, price, date_time, extra); }
  auto tie() const { return std::tie(auction, bidder, price, date_time, extra); }
};
// q8: a person who registered and opened an auction in the same tumbling window.
struct Q8Row {
  int64_t id = 0;
  std::string name;
  int64_t window_start = 0;
  auto tie() { return std::tie(id, name, window_start); }
  auto tie() const { return std::tie(id, name, window_start); }
};
// q9: an auction and its winning bid.
struct Q9Row {
  Auction auction;
  Bid bid;
  auto tie() { return std::tie(auction, bid); }
  auto tie() const { return std::tie(auction, bid); }
};
// q11 and q12: the bids of a bidder in one (session or processing-time) window.
struct BidderWindowRow {
  int64_t bidder = 0, bid_count = 0, start = 0, end = 0;
  auto tie() { return std::tie(bidder, bid_count, start, end); }
  auto tie() const { return std::tie(bidder, bid_count, start, end); }
};

// q14: a bid with its price in euros between 1 M and 50 M, the kind of hour of its time (UTC)
// and the number of 'c' in its extra.
struct Q14Row {
  int64_t auction = 0, bidder = 0, price_milli_euro = 0;
  std::string bid_time_type;
  int64_t date_time = 0;
  std::string extra;
  int64_t c_counts = 0;
  auto tie() {
    return std::tie(auction, bidder, price_milli_euro, bid_time_type, date_time, extra, c_counts);
  }
  auto tie() const {
    return std::tie(auction, bidder, price_milli_euro, bid_time_type, date_time, extra, c_counts);
  }
};
// q20: a bid on a category-10 auction, with the auction.
struct Q20Row {
  Bid bid;
  Auction auction;
  auto tie() { return std::tie(bid, auction); }
  auto tie() const { return std::tie(bid, auction); }
};
// q21: a bid with its channel's id (hot channels by name, the others from their URL).
struct Q21Row {
  int64_t auction = 0, bidder = 0, price = 0;
  std::string channel, channel_id;
  auto tie() { return std::tie(auction, bidder, price, channel, channel_id); }
  auto tie() const { return std::tie(auction, bidder, price, channel, channel_id); }
};

// q14's row of a bid, or false when the bid's price is outside the range. Shared by the job
// and the baseline: it is the query's whole logic.
inline bool Q14RowOf(const Bid& b, Q14Row* row) {
  int64_t milli_euro = b.price * 908;
  if (milli_euro <= 1'000'000'000 || milli_euro >= 50'000'000'000) return false;
  int64_t hour = ((b.date_time / 3'600'000) % 24 + 24) % 24;
  const char* type = hour >= 8 && hour <= 18   ? "dayTime"
                     : hour <= 6 || hour >= 20 ? "nightTime"
                                               : "otherTime";
  int64_t cs = 0;
  for (char c : b.extra) cs += c == 'c';
  *row = Q14Row{b.auction, b.bidder, milli_euro, type, b.date_time, b.extra, cs};
  return true;
}

// q21's channel id: "0" to "3" for the hot channels (by lower-case name), else what follows
// "channel_id=" at the URL's start or after an '&', up to the next '&'; false when there is none.
inline bool Q21ChannelId(const Bid& b, std::string* id) {
  std::string lower = b.channel;
  for (char& c : lower) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  if (lower == "apple") return *id = "0", true;
  if (lower == "google") return *id = "1", true;
  if (lower == "facebook") return *id = "2", true;
  if (lower == "baidu") return *id = "3", true;
  static constexpr std::string_view kKey = "channel_id=";
  for (size_t at = b.url.find(kKey); at != std::string::npos; at = b.url.find(kKey, at + 1)) {
    if (at != 0 && b.url[at - 1] != '&') continue;
    size_t begin = at + kKey.size(), end = b.url.find('&', begin);
    *id = b.url.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
    return true;
  }
  return false;
}

// ---- hashes ----

inline uint64_t RowHash(const Person& p) { return RowHasher().add(1).add_all(p.tie()).value(); }
inline uint64_t RowHash(const Auction& a) { return RowHasher().add(2).add_all(a.tie()).value(); }
inline uint64_t RowHash(const Bid& b) { return RowHasher().add(3).add_all(b.tie()).value(); }
inline uint64_t RowHash(const Event& e) {
  return std::visit([](const auto& v) { return RowHash(v); }, e.data);
}
inline uint64_t RowHash(const Q1Row& r) { return RowHasher().add_all(r.tie()).value(); }
inline uint64_t RowHash(const Q2Row& r) { return RowHasher().add_all(r.tie()).value(); }
inline uint64_t RowHash(const Q3Row& r) { return RowHasher().add_all(r.tie()).value(); }
inline uint64_t RowHash(const Q4Row& r) { return RowHasher().add_all(r.tie()).value(); }
inline uint64_t RowHash(const Q5Row& r) { return RowHasher().add_all(r.tie()).value(); }
inline uint64_t RowHash(const BidRow& r) { return RowHasher().add_all(r.tie()).value(); }
inline uint64_t RowHash(const Q8Row& r) { return RowHasher().add_all(r.tie()).value(); }
inline uint64_t RowHash(const Q9Row& r) { return RowHash(r.auction) * 31 + RowHash(r.bid); }
inline uint64_t RowHash(const Q14Row& r) { return RowHasher().add_all(r.tie()).value(); }
inline uint64_t RowHash(const Q20Row& r) { return RowHash(r.bid) * 31 + RowHash(r.auction); }
inline uint64_t RowHash(const Q21Row& r) { return RowHasher().add_all(r.tie()).value(); }
inline uint64_t RowHash(const BidderWindowRow& r) { return RowHasher().add_all(r.tie()).value(); }
// q12's windows are cut by the processing-time clock, so which bids share a row differs from
// run to run; what does not is each bidder's total. A row counts as its bid_count rows, each
// with its bidder's hash: the checksum is that of one row per bid, whatever the windows.
inline Checksum Q12RowChecksum(const BidderWindowRow& r) {
  return Checksum{r.bid_count,
                  RowHasher().add(r.bidder).value() * static_cast<uint64_t>(r.bid_count)};
}

// q7's and q9's order among bids: higher price first, then earlier, then the rest of the row, so
// that ties are broken the same way everywhere.
inline bool BetterBid(const Bid& a, const Bid& b) {
  if (a.price != b.price) return a.price > b.price;
  return std::tie(a.date_time, a.bidder, a.extra, a.channel, a.url) <
         std::tie(b.date_time, b.bidder, b.extra, b.channel, b.url);
}

}  // namespace nexmark
