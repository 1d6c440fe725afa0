// Nexmark q21, add channel id: every bid with a channel id (the hot channels by name, the others
// from their URL's channel_id parameter; bids with neither are left out). See nexmark_job.h for
// the arguments.
#include "queries/nexmark_job.h"

SLUICE_JOB(env, args) {
  env.set_job_name("Nexmark q21: add channel id");
  nexmark::JobOptions o = nexmark::ParseJobOptions(args);
  auto rows = nexmark::Bids(nexmark::Events(env, o))
                  .flat_map([](const nexmark::Bid& b, sluice::Collector<nexmark::Q21Row>& out) {
                    std::string id;
                    if (nexmark::Q21ChannelId(b, &id)) {
                      out.collect(nexmark::Q21Row{b.auction, b.bidder, b.price, b.channel, id});
                    }
                  })
                  .name("Channel id");
  nexmark::SinkChecksum(rows, o);
}
