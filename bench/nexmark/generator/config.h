// The generator's settings: the reference generator's NexmarkConfiguration/GeneratorConfig
// defaults, with event time on one deterministic timeline (see README.md, "The generator").
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace nexmark {

// Ids start here so that queries find matches even on small inputs (as the reference).
inline constexpr int64_t kFirstPersonId = 1000;
inline constexpr int64_t kFirstAuctionId = 1000;
inline constexpr int64_t kFirstCategoryId = 10;
inline constexpr int kNumCategories = 5;
// A hot seller/bidder/auction is the first of each batch of this many ids.
inline constexpr int64_t kHotBatch = 100;
// How many ids past the last generated person or auction a reference may name.
inline constexpr int64_t kPersonIdLead = 10;
inline constexpr int64_t kAuctionIdLead = 10;

struct GeneratorConfig {
  // Mixed into every event's random numbers: another seed, other events. Default: 0.
  uint64_t seed = 0;
  // Events in the whole stream (over all subtasks). Default: 1,000,000.
  int64_t events = 1'000'000;
  // Events per second of event time: event n has time base_time_ms + n * 1e6 / rate us. The
  // reference's published runs use 10,000,000. Default: 10,000,000.
  int64_t rate = 10'000'000;
  // The first event's time, ms since the epoch (the reference uses the wall clock; a constant
  // keeps runs identical). Default: 1767225600000 (2026-01-01T00:00:00Z).
  int64_t base_time_ms = 1'767'225'600'000;
  // Of every person + auction + bid proportion events: persons, auctions, bids. Default 1:3:46.
  int person_proportion = 1;
  int auction_proportion = 3;
  int bid_proportion = 46;
  // Average sizes the extra fields pad to. Defaults: 200, 500, 100.
  int avg_person_bytes = 200;
  int avg_auction_bytes = 500;
  int avg_bid_bytes = 100;
  // 1 - 1/ratio of bids go to hot auctions / come from hot bidders; of auctions to hot sellers.
  // Defaults: 2, 4, 4.
  int hot_auction_ratio = 2;
  int hot_bidders_ratio = 4;
  int hot_sellers_ratio = 4;
  // Auctions considered in flight, people considered active. Defaults: 100, 1000.
  int num_in_flight_auctions = 100;
  int num_active_people = 1000;
  // Events come in groups of this many in a pseudo-random order (1: in order). Default: 1.
  int64_t out_of_order_group_size = 1;
  // With this probability an event is held back and emitted up to occasional_delay_ms of event
  // time later than its place (Beam's unbounded source; the reference's Flink runs use 0).
  // Defaults: 0, 3000.
  double prob_delayed_event = 0;
  int64_t occasional_delay_ms = 3000;

  int total_proportion() const { return person_proportion + auction_proportion + bid_proportion; }
  double inter_event_delay_us() const { return 1e6 / static_cast<double>(rate); }
  // The (monotonic) event time of event number n.
  int64_t timestamp_for(int64_t n) const {
    return base_time_ms +
           static_cast<int64_t>(static_cast<double>(n) * inter_event_delay_us()) / 1000;
  }
  // The event id of event number n: n itself, shuffled within its out-of-order group.
  int64_t event_id(int64_t n) const {
    int64_t g = out_of_order_group_size;
    return (n / g) * g + static_cast<int64_t>((static_cast<unsigned __int128>(n) * 953) %
                                              static_cast<unsigned __int128>(g));
  }
  // Throws std::invalid_argument naming the first setting out of range.
  void validate() const;
};

// The command-line names of the settings (--events, --rate, ...), without the dashes.
const std::vector<std::string>& GeneratorOptionNames();
// Sets the setting called `name` from its text; std::invalid_argument naming the option and the
// value when the name is unknown or the value is not a number.
void SetGeneratorOption(GeneratorConfig& config, const std::string& name, const std::string& value);

}  // namespace nexmark
