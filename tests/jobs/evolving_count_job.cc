// Test job: the sequence-count pipeline (examples/sequence_count) in several versions, for the
// tests of restoring a checkpoint into a changed job (tests/integration/operator_uid_test.cc).
// Every version's committed output is checked the same way: every key once, with count
// --per-key and 0 violations.
//
//   --keys K --per-key N --rate R --output DIR   as sequence_count
//   --version V
//     base        Key Sequences (uid key-sequences) -> [key] Audit (uid audit, keyed state)
//                 -> [key] Count Sequence (uid count-sequence) -> exactly-once file sink
//                 (uid committed-output)
//     added       base with a stateless Relabel after the source and a keyed, stateful Census
//                 (uid census) before Count Sequence
//     removed     base without Audit
//     no-uids     Key Sequences -> [key] Count Sequence -> file sink, without uids
//     no-uids-tap no-uids with a new branch on the source, built before the rest (so the node
//                 ids of the others shift): Tap (a map) -> Drop (a sink that drops what it gets)
//   --unchain     the file sink does not chain to Count Sequence
#include <sluice/connectors/files.h>
#include <sluice/sluice.h>

#include <stdexcept>
#include <string>

#include "sequence_count.h"

namespace {

using sequence_count::KeySeq;

// Passes records on; per key, in keyed state, the highest seq seen (so it has state to lose).
class Audit final : public sluice::KeyedProcessFunction<int64_t, KeySeq, KeySeq> {
 public:
  void open(sluice::RuntimeContext& ctx) override {
    max_seq_ = &ctx.get_state(sluice::ValueStateDescriptor<int64_t>("max-seq"));
  }
  void process_element(const KeySeq& r, Context&, sluice::Collector<KeySeq>& out) override {
    if (r.seq > max_seq_->value()) max_seq_->update(r.seq);
    out.collect(r);
  }

 private:
  sluice::ValueState<int64_t>* max_seq_ = nullptr;
};

// Passes records on; per key, in keyed state, how many it has seen.
class Census final : public sluice::KeyedProcessFunction<int64_t, KeySeq, KeySeq> {
 public:
  void open(sluice::RuntimeContext& ctx) override {
    seen_ = &ctx.get_state(sluice::ValueStateDescriptor<int64_t>("seen"));
  }
  void process_element(const KeySeq& r, Context&, sluice::Collector<KeySeq>& out) override {
    seen_->update(seen_->value() + 1);
    out.collect(r);
  }

 private:
  sluice::ValueState<int64_t>* seen_ = nullptr;
};

class DropSink final : public sluice::SinkFunction<std::string> {
 public:
  void invoke(const std::string&) override {}
};

int64_t Key(const KeySeq& r) { return r.key; }

}  // namespace

SLUICE_JOB(env, args) {
  int64_t keys = args.get_int("keys", 20);
  int64_t per_key = args.get_int("per-key", 100);
  double rate = args.get_double("rate", 0);
  std::string version = args.get("version", "base");
  bool unchain = args.get_bool("unchain", false);
  if (version != "base" && version != "added" && version != "removed" && version != "no-uids" &&
      version != "no-uids-tap") {
    throw std::invalid_argument(
        "--version must be base, added, removed, no-uids or no-uids-tap, "
        "got '" +
        version + "'");
  }
  const bool uids = version.rfind("no-uids", 0) != 0;
  env.set_job_name("Evolving Count (" + version + ")");

  auto stream =
      env.add_source(sequence_count::SequenceCountSource(keys, per_key, rate), "Key Sequences");
  if (uids) stream.uid("key-sequences");
  if (version == "no-uids-tap") {
    stream.map([](const KeySeq& r) { return std::to_string(r.key); })
        .name("Tap")
        .add_sink(DropSink(), "Drop");
  }
  if (version == "added") stream = stream.map([](KeySeq r) { return r; }).name("Relabel");
  if (version == "base" || version == "added") {
    stream = stream.key_by(Key).process(Audit(), "Audit").uid("audit");
  }
  if (version == "added") stream = stream.key_by(Key).process(Census(), "Census").uid("census");
  auto counts = stream.key_by(Key).process(sequence_count::CountSequence(), "Count Sequence");
  if (uids) counts.uid("count-sequence");
  auto sink =
      counts.sink_to(sluice::files::ExactlyOnceTextFileSink<std::string>(args.required("output")));
  if (uids) sink.uid("committed-output");
  if (unchain) sink.disable_chaining();
}
