// Nexmark q8, monitor new users: the people who registered and opened an auction in the same
// tumbling window of 10 s, as a windowed co-group of persons and auctions on id = seller
// (the reference's SQL groups both sides by id and window, then joins them: one row per person
// and window). See nexmark_job.h for the arguments.
#include "queries/nexmark_job.h"

namespace {

using nexmark::Q8Row;

constexpr int64_t kWindowMs = 10'000;

struct Seller {
  int64_t id = 0;
  auto tie() { return std::tie(id); }
  auto tie() const { return std::tie(id); }
};

}  // namespace

SLUICE_JOB(env, args) {
  env.set_job_name("Nexmark q8: monitor new users");
  nexmark::JobOptions o = nexmark::ParseJobOptions(args);
  auto events = nexmark::Events(env, o);
  auto persons = nexmark::Persons(events).map([](const nexmark::Person& p) {
    return Q8Row{p.id, p.name, p.date_time - ((p.date_time % kWindowMs) + kWindowMs) % kWindowMs};
  });
  auto sellers =
      nexmark::Auctions(events).map([](const nexmark::Auction& a) { return Seller{a.seller}; });
  auto rows =
      persons.co_group(sellers)
          .where([](const Q8Row& p) { return p.id; })
          .equal_to([](const Seller& s) { return s.id; })
          .window(sluice::TumblingEventTimeWindows::of(std::chrono::milliseconds(kWindowMs)))
          .apply<Q8Row>([](const std::vector<Q8Row>& ps, const std::vector<Seller>& ss,
                           sluice::Collector<Q8Row>& out) {
            if (!ss.empty()) {
              for (const Q8Row& p : ps) out.collect(p);
            }
          });
  nexmark::SinkChecksum(rows, o);
}
