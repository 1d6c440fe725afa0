// Benchmark job: generate -> map -> filter -> discard, every operator chained into one task.
//   --count N   records 0..N-1 (default 10000000)
#include <sluice/sluice.h>

#include "workload.h"

SLUICE_JOB(env, args) {
  env.set_job_name("bench: chained pipeline");
  int64_t count = args.get_int("count", 10'000'000);
  env.generate_sequence(0, count - 1)
      .map([](int64_t v) { return sluice::bench::MapRecord(v); })
      .filter([](const int64_t& v) { return sluice::bench::KeepRecord(v); })
      .add_sink(sluice::DiscardingSink<int64_t>(), "Sink: Discard");
}
