// The Nexmark generator: deterministic, the reference's proportions, id sequences and field
// distributions, and a schedule whose union over subtasks (also after a restore at another
// parallelism) is every event once.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <stdexcept>
#include <vector>

#include "generator/generator.h"
#include "generator/schedule.h"
#include "queries/rows.h"

namespace nexmark {
namespace {

GeneratorConfig Small(int64_t events = 50'000) {
  GeneratorConfig c;
  c.events = events;
  c.rate = 1000;
  return c;
}

// Every event number a schedule emits, in order.
std::vector<int64_t> Drain(EventSchedule& s, int64_t limit = -1) {
  std::vector<int64_t> out;
  for (int64_t n; (limit < 0 || static_cast<int64_t>(out.size()) < limit) && (n = s.peek()) >= 0;
       s.pop()) {
    out.push_back(n);
  }
  return out;
}

TEST(NexmarkGeneratorTest, SameConfigSameEventsAndSeedChangesThem) {
  GeneratorConfig c = Small(2'000);
  EventGenerator a(c), b(c);
  c.seed = 7;
  EventGenerator other(c);
  int differ = 0;
  for (int64_t n = 0; n < 2'000; ++n) {
    ASSERT_EQ(a.next_event(n), b.next_event(n)) << "event " << n;
    if (!(a.next_event(n) == other.next_event(n))) ++differ;
  }
  EXPECT_GT(differ, 1'900);
  // Out of order: any event made alone equals the same event made in sequence.
  EXPECT_EQ(a.next_event(1'234), EventGenerator(Small(2'000)).next_event(1'234));
}

TEST(NexmarkGeneratorTest, ProportionsAreOneThreeFortySixPerFifty) {
  EventGenerator g(Small());
  std::map<size_t, int64_t> kinds;
  for (int64_t n = 0; n < 50'000; ++n) {
    Event e = g.next_event(n);
    ++kinds[e.data.index()];
    int64_t rem = n % 50;
    ASSERT_EQ(e.data.index(), rem < 1 ? 0u : rem < 4 ? 1u : 2u) << "event " << n;
  }
  EXPECT_EQ(kinds[0], 1'000);
  EXPECT_EQ(kinds[1], 3'000);
  EXPECT_EQ(kinds[2], 46'000);
}

TEST(NexmarkGeneratorTest, IdsFollowTheReferenceSequences) {
  EventGenerator g(Small());
  int64_t persons = 0, auctions = 0, hot_auction_bids = 0, hot_bidder_bids = 0, bids = 0;
  int64_t hot_seller_auctions = 0;
  for (int64_t n = 0; n < 50'000; ++n) {
    Event e = g.next_event(n);
    int64_t last_person = kFirstPersonId + persons - 1,
            last_auction = kFirstAuctionId + auctions - 1;
    if (const Person* p = e.person()) {
      ASSERT_EQ(p->id, kFirstPersonId + persons++) << "persons are numbered in order";
    } else if (const Auction* a = e.auction()) {
      ASSERT_EQ(a->id, kFirstAuctionId + auctions++) << "auctions are numbered in order";
      ASSERT_GE(a->seller, kFirstPersonId);
      ASSERT_LE(a->seller, last_person + kPersonIdLead);
      ASSERT_GE(a->seller, std::max(kFirstPersonId, last_person + 1 - 1000));  // active people
      ASSERT_GE(a->category, kFirstCategoryId);
      ASSERT_LT(a->category, kFirstCategoryId + kNumCategories);
      ASSERT_GT(a->expires, a->date_time);
      ASSERT_GE(a->reserve, a->initial_bid);
      if ((a->seller - kFirstPersonId) % kHotBatch == 0) ++hot_seller_auctions;
    } else {
      const Bid* b = e.bid();
      ++bids;
      ASSERT_GE(b->auction, std::max(kFirstAuctionId, last_auction - 100));  // in flight
      ASSERT_LE(b->auction, last_auction + kAuctionIdLead);
      ASSERT_GE(b->bidder, kFirstPersonId);
      ASSERT_LE(b->bidder, last_person + kPersonIdLead);
      ASSERT_GE(b->price, 100);
      ASSERT_LE(b->price, 100'000'000);
      if (b->auction == kFirstAuctionId + ((last_auction - kFirstAuctionId) / 100) * 100) {
        ++hot_auction_bids;
      }
      if (b->bidder == kFirstPersonId + ((last_person - kFirstPersonId) / 100) * 100 + 1) {
        ++hot_bidder_bids;
      }
    }
  }
  // Hot ratios 2, 4, 4: about 1/2, 3/4 and 3/4 are hot (a few more by chance).
  EXPECT_NEAR(static_cast<double>(hot_auction_bids) / bids, 0.5, 0.03);
  EXPECT_NEAR(static_cast<double>(hot_bidder_bids) / bids, 0.75, 0.03);
  EXPECT_NEAR(static_cast<double>(hot_seller_auctions) / auctions, 0.75, 0.05);
}

TEST(NexmarkGeneratorTest, FieldsFollowTheReferenceDistributions) {
  EventGenerator g(Small());
  const std::set<std::string> states = {"AZ", "CA", "ID", "OR", "WA", "WY"};
  double person_bytes = 0, auction_bytes = 0, bid_bytes = 0;
  int64_t persons = 0, auctions = 0, bids = 0;
  for (int64_t n = 0; n < 50'000; ++n) {
    Event e = g.next_event(n);
    ASSERT_EQ(e.date_time(), g.config().base_time_ms + n) << "1000 events/s: one per ms";
    if (const Person* p = e.person()) {
      ++persons;
      ASSERT_TRUE(states.count(p->state)) << p->state;
      ASSERT_NE(p->name.find(' '), std::string::npos);
      ASSERT_EQ(p->credit_card.size(), 19u);
      ASSERT_NE(p->email_address.find('@'), std::string::npos);
      person_bytes += 8 + p->name.size() + p->email_address.size() + p->credit_card.size() +
                      p->city.size() + p->state.size() + p->extra.size();
    } else if (const Auction* a = e.auction()) {
      ++auctions;
      ASSERT_LT(a->item_name.size(), 20u);
      ASSERT_LT(a->description.size(), 100u);
      auction_bytes += 48 + a->item_name.size() + a->description.size() + a->extra.size();
    } else {
      const Bid* b = e.bid();
      ++bids;
      ASSERT_FALSE(b->channel.empty());
      ASSERT_EQ(b->url.rfind("https://www.nexmark.com/", 0), 0u) << b->url;
      bid_bytes += 32 + b->extra.size();
    }
  }
  // Extra fields pad each kind to its average size.
  EXPECT_NEAR(person_bytes / persons, 200, 5);
  EXPECT_NEAR(auction_bytes / auctions, 500, 5);
  EXPECT_NEAR(bid_bytes / bids, 100, 2);
}

TEST(NexmarkGeneratorTest, UnionOverSubtasksIsTheSameAtAnyParallelism) {
  GeneratorConfig c = Small(20'000);
  c.prob_delayed_event = 0.1;
  EventGenerator g(c);
  std::multiset<uint64_t> one, three;
  EventSchedule all(c, EventSchedule::Start(c.events, 0, 1));
  for (int64_t n : Drain(all)) one.insert(RowHash(g.next_event(n)));
  for (int i = 0; i < 3; ++i) {
    EventSchedule s(c, EventSchedule::Start(c.events, i, 3));
    int64_t last_release = INT64_MIN;
    for (int64_t n : Drain(s)) {
      ASSERT_EQ(n % 3, i);
      three.insert(RowHash(g.next_event(n)));
      int64_t release = 0;
      if (!EventSchedule::HeldBack(c, n, &release)) release = c.timestamp_for(n);
      ASSERT_GE(release, last_release) << "events come in order of their release time";
      last_release = release;
    }
  }
  EXPECT_EQ(one.size(), 20'000u);
  EXPECT_EQ(one, three);
}

TEST(NexmarkGeneratorTest, HeldBackEventsComeWithinTheirDelay) {
  GeneratorConfig c = Small(20'000);
  c.prob_delayed_event = 0.1;
  c.occasional_delay_ms = 3000;
  EventSchedule s(c, EventSchedule::Start(c.events, 0, 1));
  int64_t held = 0, max_seen = c.base_time_ms;
  for (int64_t n : Drain(s)) {
    int64_t ts = c.timestamp_for(n), release = 0;
    if (EventSchedule::HeldBack(c, n, &release)) {
      ++held;
      ASSERT_GT(release, ts);
      ASSERT_LE(release, ts + 3000);
    }
    // Never later than the watermark delay (4 s) behind the newest event: no event is late.
    ASSERT_GT(ts, max_seen - 4000);
    max_seen = std::max(max_seen, ts);
  }
  EXPECT_NEAR(static_cast<double>(held) / 20'000, 0.1, 0.01);
}

TEST(NexmarkGeneratorTest, RestoredPositionsEmitWhatIsLeftAtAnotherParallelism) {
  GeneratorConfig c = Small(10'000);
  c.prob_delayed_event = 0.2;
  // Two subtasks emit part of their share, then their positions are spread over three.
  std::multiset<int64_t> emitted;
  std::vector<SchedulePosition> stored;
  for (int i = 0; i < 2; ++i) {
    EventSchedule s(c, EventSchedule::Start(c.events, i, 2));
    for (int64_t n : Drain(s, 1'000 + 700 * i)) emitted.insert(n);
    s.peek();  // a checkpoint inside collect(): the peeked event is still to come
    for (const SchedulePosition& p : s.position()) stored.push_back(p);
  }
  ASSERT_GT(stored.size(), 2u) << "held-back events are part of the position";
  for (int i = 0; i < 3; ++i) {
    std::vector<SchedulePosition> mine;
    for (size_t k = static_cast<size_t>(i); k < stored.size(); k += 3) mine.push_back(stored[k]);
    EventSchedule s(c, mine);
    for (int64_t n : Drain(s)) emitted.insert(n);
  }
  ASSERT_EQ(emitted.size(), 10'000u);
  int64_t expect = 0;
  for (int64_t n : emitted) ASSERT_EQ(n, expect++) << "every event exactly once";
}

TEST(NexmarkGeneratorTest, BadSettingsAreNamed) {
  GeneratorConfig c;
  EXPECT_THROW(SetGeneratorOption(c, "events", "ten"), std::invalid_argument);
  EXPECT_THROW(SetGeneratorOption(c, "no-such-option", "1"), std::invalid_argument);
  SetGeneratorOption(c, "rate", "0");
  try {
    c.validate();
    FAIL() << "rate 0 accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("--rate"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace nexmark
