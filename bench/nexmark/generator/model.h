// The Nexmark data model: people, auctions and bids of an online auction site, as the reference
// generator (Beam's and Flink's Nexmark) defines them. Plain C++: no Sluice type here, so the
// baselines and the jobs share it; the jobs serialize every struct with a tie() member field by
// field (queries/nexmark_job.h).
#pragma once

#include <cstdint>
#include <string>
#include <tuple>
#include <variant>

namespace nexmark {

// A new person (registers to sell or bid).
struct Person {
  int64_t id = 0;
  std::string name;
  std::string email_address;
  std::string credit_card;
  std::string city;
  std::string state;
  int64_t date_time = 0;  // event time, ms since the epoch
  std::string extra;      // padding to the configured average size
  bool operator==(const Person&) const = default;
  auto tie() {
    return std::tie(id, name, email_address, credit_card, city, state, date_time, extra);
  }
  auto tie() const {
    return std::tie(id, name, email_address, credit_card, city, state, date_time, extra);
  }
};

// A new auction of an item.
struct Auction {
  int64_t id = 0;
  std::string item_name;
  std::string description;
  int64_t initial_bid = 0;
  int64_t reserve = 0;
  int64_t date_time = 0;  // event time, ms since the epoch
  int64_t expires = 0;    // ms since the epoch
  int64_t seller = 0;     // a person id
  int64_t category = 0;
  std::string extra;
  bool operator==(const Auction&) const = default;
  auto tie() {
    return std::tie(id, item_name, description, initial_bid, reserve, date_time, expires, seller,
                    category, extra);
  }
  auto tie() const {
    return std::tie(id, item_name, description, initial_bid, reserve, date_time, expires, seller,
                    category, extra);
  }
};

// A bid on an auction.
struct Bid {
  int64_t auction = 0;  // an auction id
  int64_t bidder = 0;   // a person id
  int64_t price = 0;    // in cents
  std::string channel;
  std::string url;
  int64_t date_time = 0;  // event time, ms since the epoch
  std::string extra;
  bool operator==(const Bid&) const = default;
  auto tie() { return std::tie(auction, bidder, price, channel, url, date_time, extra); }
  auto tie() const { return std::tie(auction, bidder, price, channel, url, date_time, extra); }
};

// One generated event: exactly one of the three.
struct Event {
  std::variant<Person, Auction, Bid> data;

  const Person* person() const { return std::get_if<Person>(&data); }
  const Auction* auction() const { return std::get_if<Auction>(&data); }
  const Bid* bid() const { return std::get_if<Bid>(&data); }
  int64_t date_time() const {
    return std::visit([](const auto& e) { return e.date_time; }, data);
  }
  bool operator==(const Event&) const = default;
};

}  // namespace nexmark
