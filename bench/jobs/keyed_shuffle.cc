// Benchmark job: generate -> key_by -> sum -> discard, the keyed sum reading over the network.
// Number v becomes the record (key, v), summed per key on v (a KeyedStream of a plain int64_t
// does not compile: see the note in sluice_bench.cc).
//   --count N          numbers 0..N-1 (default 5000000)
//   --keys K           distinct keys (default 1024); the key of v is table[v % K]
//   --layout L         spread: source and sum both at parallelism 2, keys over both sum
//                        subtasks (each source sends about half of its records to the other slot);
//                      remote: source at parallelism 1 (slot 0), sum at parallelism 2 with every
//                        key owned by sum subtask 1 (slot 1), so all records go from slot 0 to
//                        slot 1. (default spread)
// Slot i holds subtask i of every vertex; on a cluster of TaskManagers with one slot each, slots 0
// and 1 are on different TaskManagers.
#include <sluice/sluice.h>

#include <stdexcept>

#include "workload.h"

using sluice::bench::KeyValue;

SLUICE_JOB(env, args) {
  env.set_job_name("bench: keyed shuffle");
  int64_t count = args.get_int("count", 5'000'000);
  int keys = static_cast<int>(args.get_int("keys", 1024));
  std::string layout = args.get("layout", "spread");
  if (keys < 1) throw std::invalid_argument("--keys must be at least 1");
  if (layout != "spread" && layout != "remote") {
    throw std::invalid_argument("--layout must be 'spread' or 'remote', got '" + layout + "'");
  }
  constexpr int kMaxParallelism = sluice::bench::kMaxParallelism;
  env.set_max_parallelism(kMaxParallelism);
  env.set_parallelism(2);
  const bool remote = layout == "remote";
  const int source_parallelism = remote ? 1 : 2;
  auto table = sluice::bench::MakeKeyTable(keys, remote ? 1 : -1, 2, kMaxParallelism);
  auto records = env.generate_sequence(0, count - 1);
  records.set_parallelism(source_parallelism);
  auto keyed = records.map([table](int64_t v) { return sluice::bench::MakeRecord(table, v); });
  keyed.set_parallelism(source_parallelism);
  keyed.key_by([](const KeyValue& kv) { return kv.first; })
      .sum<1>()
      .add_sink(sluice::DiscardingSink<KeyValue>(), "Sink: Discard");
}
