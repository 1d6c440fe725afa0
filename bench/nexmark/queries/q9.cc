// Nexmark q9, winning bids: every auction with its highest bid within its time range
// (winning_bids.h). See nexmark_job.h for the arguments.
#include "queries/winning_bids.h"

SLUICE_JOB(env, args) {
  env.set_job_name("Nexmark q9: winning bids");
  nexmark::JobOptions o = nexmark::ParseJobOptions(args);
  nexmark::SinkChecksum(nexmark::WinningBidsOf<true>(nexmark::Events(env, o)), o);
}
