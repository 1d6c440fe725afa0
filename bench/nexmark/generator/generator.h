// Makes Nexmark event number n of the stream a GeneratorConfig describes: its kind (by the
// person/auction/bid proportions of its id), its ids (the reference's id sequences, active
// windows and hot ratios) and its fields (names, cities, states, e-mails, credit cards, item
// names, descriptions, prices, categories, channels, URLs, extra padding). A pure function of
// (config, n): thread-compatible, no state between calls.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "generator/config.h"
#include "generator/model.h"
#include "generator/random.h"

namespace nexmark {

class EventGenerator {
 public:
  // Throws std::invalid_argument when the config is out of range (GeneratorConfig::validate).
  explicit EventGenerator(GeneratorConfig config);

  const GeneratorConfig& config() const { return config_; }
  // Event number n (0 <= n < config().events).
  Event next_event(int64_t n) const;

  // The id sequences (base 0: without kFirstPersonId/kFirstAuctionId), for event id `event_id`.
  // The last person/auction generated at or before this event id.
  int64_t last_base0_person_id(int64_t event_id) const;
  int64_t last_base0_auction_id(int64_t event_id) const;

 private:
  Person next_person(int64_t event_id, int64_t timestamp, Rng& rng) const;
  Auction next_auction(int64_t event_id, int64_t timestamp, Rng& rng) const;
  Bid next_bid(int64_t event_id, int64_t timestamp, Rng& rng) const;
  // A person among the active ones, or a few ahead of the last.
  int64_t next_base0_person_id(int64_t event_id, Rng& rng) const;
  // An auction among those in flight, or a few ahead of the last.
  int64_t next_base0_auction_id(int64_t event_id, Rng& rng) const;

  GeneratorConfig config_;
  std::vector<std::string> hot_urls_;
  std::vector<std::string> channel_urls_;  // of "channel-<i>"
};

// Helpers of the field distributions, exposed for the tests.
// 3 to max_length - 1 letters with a space in about every 13th place, trimmed.
std::string NextString(Rng& rng, int max_length, char space = ' ');
// Exactly `length` lowercase letters.
std::string NextExactString(Rng& rng, int length);
// Padding such that current_size + its length averages desired_average (+-20%).
std::string NextExtra(Rng& rng, int current_size, int desired_average);
// 10^(6u) * 100 cents, rounded: $1 to $1,000,000, log-uniform.
int64_t NextPrice(Rng& rng);

}  // namespace nexmark
