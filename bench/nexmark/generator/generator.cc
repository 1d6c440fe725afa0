#include "generator/generator.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <string_view>

namespace nexmark {
namespace {

constexpr std::array<std::string_view, 6> kUsStates = {"AZ", "CA", "ID", "OR", "WA", "WY"};
constexpr std::array<std::string_view, 10> kUsCities = {
    "Phoenix", "Los Angeles", "San Francisco", "Boise", "Portland",
    "Bend",    "Redmond",     "Seattle",       "Kent",  "Cheyenne"};
constexpr std::array<std::string_view, 11> kFirstNames = {
    "Peter", "Paul", "Luke", "John", "Saul", "Vicky", "Kate", "Julie", "Sarah", "Deiter", "Walter"};
constexpr std::array<std::string_view, 9> kLastNames = {
    "Shultz", "Abrams", "Spencer", "White", "Bartels", "Walton", "Smith", "Jones", "Noris"};
constexpr std::array<std::string_view, 4> kHotChannels = {"Google", "Facebook", "Baidu", "Apple"};
constexpr int kChannels = 10'000;
// Bids name a hot channel with probability 1 - 1/kHotChannelsRatio.
constexpr int kHotChannelsRatio = 2;

template <size_t N>
std::string_view Pick(Rng& rng, const std::array<std::string_view, N>& a) {
  return a[static_cast<size_t>(rng.next_int(N))];
}

// A made-up product page, its three folders random.
std::string BaseUrl(Rng& rng) {
  std::string url = "https://www.nexmark.com/";
  for (int i = 0; i < 3; ++i) url += NextString(rng, 5, '_') + "/";
  return url + "item.htm?query=1";
}

// Java's Integer.reverse on 32 bits, then the absolute value (as the reference's channel ids).
int64_t ReversedBits(int32_t v) {
  uint32_t x = static_cast<uint32_t>(v), r = 0;
  for (int i = 0; i < 32; ++i, x >>= 1) r = (r << 1) | (x & 1);
  return std::abs(static_cast<int64_t>(static_cast<int32_t>(r)));
}

int64_t ParseInt(const std::string& name, const std::string& value) {
  size_t used = 0;
  try {
    int64_t v = std::stoll(value, &used);
    if (used == value.size()) return v;
  } catch (const std::exception&) {
  }
  throw std::invalid_argument("generator option --" + name + " is not an integer: '" + value + "'");
}

double ParseDouble(const std::string& name, const std::string& value) {
  size_t used = 0;
  try {
    double v = std::stod(value, &used);
    if (used == value.size()) return v;
  } catch (const std::exception&) {
  }
  throw std::invalid_argument("generator option --" + name + " is not a number: '" + value + "'");
}

}  // namespace

void GeneratorConfig::validate() const {
  auto check = [](bool ok, const char* what) {
    if (!ok) throw std::invalid_argument(std::string("nexmark generator: ") + what);
  };
  check(events >= 0, "--events must not be negative");
  check(rate > 0, "--rate must be positive");
  check(person_proportion > 0 && auction_proportion > 0 && bid_proportion > 0,
        "--person-proportion, --auction-proportion and --bid-proportion must be positive");
  check(avg_person_bytes >= 0 && avg_auction_bytes >= 0 && avg_bid_bytes >= 0,
        "the average sizes must not be negative");
  check(hot_auction_ratio > 0 && hot_bidders_ratio > 0 && hot_sellers_ratio > 0,
        "the hot ratios must be positive");
  check(num_in_flight_auctions > 0, "--num-in-flight-auctions must be positive");
  check(num_active_people > 0, "--num-active-people must be positive");
  check(out_of_order_group_size > 0, "--out-of-order-group-size must be positive");
  check(prob_delayed_event >= 0 && prob_delayed_event <= 1,
        "--prob-delayed-event must be between 0 and 1");
  check(occasional_delay_ms > 0, "--occasional-delay-ms must be positive");
}

const std::vector<std::string>& GeneratorOptionNames() {
  static const std::vector<std::string> names = {
      "seed",
      "events",
      "rate",
      "base-time-ms",
      "person-proportion",
      "auction-proportion",
      "bid-proportion",
      "avg-person-bytes",
      "avg-auction-bytes",
      "avg-bid-bytes",
      "hot-auction-ratio",
      "hot-bidders-ratio",
      "hot-sellers-ratio",
      "num-in-flight-auctions",
      "num-active-people",
      "out-of-order-group-size",
      "prob-delayed-event",
      "occasional-delay-ms",
  };
  return names;
}

void SetGeneratorOption(GeneratorConfig& c, const std::string& name, const std::string& value) {
  auto i = [&] { return ParseInt(name, value); };
  auto i32 = [&] { return static_cast<int>(ParseInt(name, value)); };
  if (name == "seed") {
    c.seed = static_cast<uint64_t>(i());
  } else if (name == "events") {
    c.events = i();
  } else if (name == "rate") {
    c.rate = i();
  } else if (name == "base-time-ms") {
    c.base_time_ms = i();
  } else if (name == "person-proportion") {
    c.person_proportion = i32();
  } else if (name == "auction-proportion") {
    c.auction_proportion = i32();
  } else if (name == "bid-proportion") {
    c.bid_proportion = i32();
  } else if (name == "avg-person-bytes") {
    c.avg_person_bytes = i32();
  } else if (name == "avg-auction-bytes") {
    c.avg_auction_bytes = i32();
  } else if (name == "avg-bid-bytes") {
    c.avg_bid_bytes = i32();
  } else if (name == "hot-auction-ratio") {
    c.hot_auction_ratio = i32();
  } else if (name == "hot-bidders-ratio") {
    c.hot_bidders_ratio = i32();
  } else if (name == "hot-sellers-ratio") {
    c.hot_sellers_ratio = i32();
  } else if (name == "num-in-flight-auctions") {
    c.num_in_flight_auctions = i32();
  } else if (name == "num-active-people") {
    c.num_active_people = i32();
  } else if (name == "out-of-order-group-size") {
    c.out_of_order_group_size = i();
  } else if (name == "prob-delayed-event") {
    c.prob_delayed_event = ParseDouble(name, value);
  } else if (name == "occasional-delay-ms") {
    c.occasional_delay_ms = i();
  } else {
    throw std::invalid_argument("unknown generator option --" + name);
  }
}

std::string NextString(Rng& rng, int max_length, char space) {
  int len = 3 + static_cast<int>(rng.next_int(max_length - 3));
  std::string s;
  s.reserve(static_cast<size_t>(len));
  for (int i = 0; i < len; ++i) {
    s.push_back(rng.next_int(13) == 0 ? space : static_cast<char>('a' + rng.next_int(26)));
  }
  if (space == ' ') {
    size_t b = s.find_first_not_of(' ');
    if (b == std::string::npos) return {};
    s = s.substr(b, s.find_last_not_of(' ') - b + 1);
  }
  return s;
}

std::string NextExactString(Rng& rng, int length) {
  std::string s(static_cast<size_t>(length), 'a');
  uint64_t bits = 0;
  int left = 0;  // letters left in `bits`: 26^13 < 2^64
  for (char& c : s) {
    if (left == 0) {
      bits = rng.next_u64();
      left = 13;
    }
    c = static_cast<char>('a' + bits % 26);
    bits /= 26;
    --left;
  }
  return s;
}

std::string NextExtra(Rng& rng, int current_size, int desired_average) {
  if (current_size > desired_average) return {};
  int remaining = desired_average - current_size;
  int delta = static_cast<int>(std::lround(remaining * 0.2));
  int size = remaining - delta + (delta == 0 ? 0 : static_cast<int>(rng.next_int(2 * delta)));
  return NextExactString(rng, size);
}

int64_t NextPrice(Rng& rng) {
  return std::llround(std::pow(10.0, rng.next_double() * 6.0) * 100.0);
}

EventGenerator::EventGenerator(GeneratorConfig config) : config_(config) {
  config_.validate();
  // The URLs are part of the stream: made from the seed, the same in every process.
  Rng rng(config_.seed, ~uint64_t{0});
  for (size_t i = 0; i < kHotChannels.size(); ++i) hot_urls_.push_back(BaseUrl(rng));
  channel_urls_.reserve(kChannels);
  for (int i = 0; i < kChannels; ++i) {
    std::string url = BaseUrl(rng);
    if (rng.next_int(10) > 0) url += "&channel_id=" + std::to_string(ReversedBits(i));
    channel_urls_.push_back(std::move(url));
  }
}

int64_t EventGenerator::last_base0_person_id(int64_t event_id) const {
  int64_t epoch = event_id / config_.total_proportion();
  int64_t offset = event_id % config_.total_proportion();
  if (offset >= config_.person_proportion) offset = config_.person_proportion - 1;
  return epoch * config_.person_proportion + offset;
}

int64_t EventGenerator::last_base0_auction_id(int64_t event_id) const {
  int64_t epoch = event_id / config_.total_proportion();
  int64_t offset = event_id % config_.total_proportion();
  if (offset < config_.person_proportion) {
    --epoch;  // a person: the last auction of the epoch before
    offset = config_.auction_proportion - 1;
  } else if (offset >= config_.person_proportion + config_.auction_proportion) {
    offset = config_.auction_proportion - 1;  // a bid: the last auction of this epoch
  } else {
    offset -= config_.person_proportion;
  }
  return epoch * config_.auction_proportion + offset;
}

int64_t EventGenerator::next_base0_person_id(int64_t event_id, Rng& rng) const {
  int64_t people = last_base0_person_id(event_id) + 1;
  int64_t active = std::min<int64_t>(people, config_.num_active_people);
  return people - active + rng.next_int(active + kPersonIdLead);
}

int64_t EventGenerator::next_base0_auction_id(int64_t event_id, Rng& rng) const {
  int64_t max_auction = last_base0_auction_id(event_id);
  int64_t min_auction = std::max<int64_t>(max_auction - config_.num_in_flight_auctions, 0);
  return min_auction + rng.next_int(max_auction - min_auction + 1 + kAuctionIdLead);
}

Event EventGenerator::next_event(int64_t n) const {
  int64_t event_id = config_.event_id(n);
  int64_t timestamp = config_.timestamp_for(event_id);
  Rng rng(config_.seed, static_cast<uint64_t>(event_id));
  int64_t rem = event_id % config_.total_proportion();
  if (rem < config_.person_proportion) return Event{next_person(event_id, timestamp, rng)};
  if (rem < config_.person_proportion + config_.auction_proportion) {
    return Event{next_auction(event_id, timestamp, rng)};
  }
  return Event{next_bid(event_id, timestamp, rng)};
}

Person EventGenerator::next_person(int64_t event_id, int64_t timestamp, Rng& rng) const {
  Person p;
  p.id = last_base0_person_id(event_id) + kFirstPersonId;
  p.name = std::string(Pick(rng, kFirstNames)) + " " + std::string(Pick(rng, kLastNames));
  p.email_address = NextString(rng, 7) + "@" + NextString(rng, 5) + ".com";
  char card[24];
  std::snprintf(card, sizeof(card), "%04d %04d %04d %04d", static_cast<int>(rng.next_int(10000)),
                static_cast<int>(rng.next_int(10000)), static_cast<int>(rng.next_int(10000)),
                static_cast<int>(rng.next_int(10000)));
  p.credit_card = card;
  p.city = Pick(rng, kUsCities);
  p.state = Pick(rng, kUsStates);
  p.date_time = timestamp;
  int size = 8 + static_cast<int>(p.name.size() + p.email_address.size() + p.credit_card.size() +
                                  p.city.size() + p.state.size());
  p.extra = NextExtra(rng, size, config_.avg_person_bytes);
  return p;
}

Auction EventGenerator::next_auction(int64_t event_id, int64_t timestamp, Rng& rng) const {
  Auction a;
  a.id = last_base0_auction_id(event_id) + kFirstAuctionId;
  // 1 - 1/hot_sellers_ratio of auctions are by the first person of the latest batch of 100.
  if (rng.next_int(config_.hot_sellers_ratio) > 0) {
    a.seller = (last_base0_person_id(event_id) / kHotBatch) * kHotBatch;
  } else {
    a.seller = next_base0_person_id(event_id, rng);
  }
  a.seller += kFirstPersonId;
  a.category = kFirstCategoryId + rng.next_int(kNumCategories);
  a.initial_bid = NextPrice(rng);
  // Lengths average the time until num_in_flight_auctions more auctions have been made.
  int64_t events_for_auctions =
      (static_cast<int64_t>(config_.num_in_flight_auctions) * config_.total_proportion()) /
      config_.auction_proportion;
  int64_t horizon_ms = config_.timestamp_for(event_id + events_for_auctions) - timestamp;
  a.date_time = timestamp;
  a.expires = timestamp + 1 + rng.next_int(std::max<int64_t>(horizon_ms * 2, 1));
  a.item_name = NextString(rng, 20);
  a.description = NextString(rng, 100);
  a.reserve = a.initial_bid + NextPrice(rng);
  int size = 8 + static_cast<int>(a.item_name.size() + a.description.size()) + 8 * 5;
  a.extra = NextExtra(rng, size, config_.avg_auction_bytes);
  return a;
}

Bid EventGenerator::next_bid(int64_t event_id, int64_t timestamp, Rng& rng) const {
  Bid b;
  // 1 - 1/hot_auction_ratio of bids are for the first auction of the latest batch of 100.
  if (rng.next_int(config_.hot_auction_ratio) > 0) {
    b.auction = (last_base0_auction_id(event_id) / kHotBatch) * kHotBatch;
  } else {
    b.auction = next_base0_auction_id(event_id, rng);
  }
  b.auction += kFirstAuctionId;
  // Hot bidders are the second person of the batch, so that they are not the hot sellers.
  if (rng.next_int(config_.hot_bidders_ratio) > 0) {
    b.bidder = (last_base0_person_id(event_id) / kHotBatch) * kHotBatch + 1;
  } else {
    b.bidder = next_base0_person_id(event_id, rng);
  }
  b.bidder += kFirstPersonId;
  b.price = NextPrice(rng);
  if (rng.next_int(kHotChannelsRatio) > 0) {
    size_t i = static_cast<size_t>(rng.next_int(kHotChannels.size()));
    b.channel = kHotChannels[i];
    b.url = hot_urls_[i];
  } else {
    size_t i = static_cast<size_t>(rng.next_int(kChannels));
    b.channel = "channel-" + std::to_string(i);
    b.url = channel_urls_[i];
  }
  b.date_time = timestamp;
  b.extra = NextExtra(rng, 8 * 4, config_.avg_bid_bytes);
  return b;
}

}  // namespace nexmark
