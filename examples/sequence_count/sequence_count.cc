// Sequence count: an end-to-end check of exactly-once processing and output.
//
//   sluice run -p 2 -D execution.checkpointing.interval=1s build/examples/libsequence_count.so
//       -- --keys 100 --per-key 1000 --rate 2000 --output /tmp/sequence_count
//
// A replayable source emits seq 1..N for each of K keys; a keyed function counts them and the
// seqs out of order; at the end each key's line `key,count,violations` goes to an exactly-once
// file sink in --output. Correct output: every key once, with count N and 0 violations.
#include "sequence_count.h"

#include <sluice/connectors/files.h>
#include <sluice/sluice.h>

#include <stdexcept>
#include <string>

SLUICE_JOB(env, args) {
  int64_t keys = args.get_int("keys", 100);
  int64_t per_key = args.get_int("per-key", 1000);
  double rate = args.get_double("rate", 0);
  if (keys < 1) throw std::invalid_argument("--keys must be at least 1");
  if (per_key < 1) throw std::invalid_argument("--per-key must be at least 1");
  if (rate < 0) throw std::invalid_argument("--rate must not be negative");

  env.set_job_name("SequenceCount");
  env.add_source(sequence_count::SequenceCountSource(keys, per_key, rate), "Key Sequences")
      .key_by([](const sequence_count::KeySeq& r) { return r.key; })
      .process(sequence_count::CountSequence(), "Count Sequence")
      .sink_to(sluice::files::ExactlyOnceTextFileSink<std::string>(
          args.get("output", "/tmp/sequence_count")));
}
