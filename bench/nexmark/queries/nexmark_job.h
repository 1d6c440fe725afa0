// What every Nexmark job shares: the generator as a replayable parallel source, the event
// streams with event time, and the checksum sink.
//
// Job arguments (after --): every generator setting (--events, --rate, --seed, ...; see
// generator/config.h), and
//   --result-dir D   where each sink subtask writes its partial checksum at the end (required)
//
// The source: subtask i of p emits events i, i + p, ... (generator/schedule.h); its position is
// operator list state, so a restore (at any parallelism) emits exactly the events left. Event
// time: the event's date_time, with watermarks 4 s behind the highest seen, as the reference's
// table definition (WATERMARK FOR dateTime AS dateTime - INTERVAL '4' SECOND).
//
// The sink: per subtask, the number of rows and the sum of their hashes (queries/rows.h), kept
// as operator state (a restore goes on from the checkpoint's sums) and written when the input
// ends to D/part-<subtask> as "<rows> <sum in hex>"; the harness adds the files.
#pragma once

#include <sluice/sluice.h>

#include <chrono>
#include <cstdio>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "generator/generator.h"
#include "generator/schedule.h"
#include "queries/rows.h"

namespace nexmark {
template <class T, class = void>
struct HasTie : std::false_type {};
template <class T>
struct HasTie<T, std::void_t<decltype(std::declval<const T&>().tie())>> : std::true_type {};
}  // namespace nexmark

namespace sluice {
// The model and rows are plain structs with a tie() of their fields: serialized field by field.
template <class T>
struct Serializer<T, std::enable_if_t<nexmark::HasTie<T>::value>> {
  static void write(DataOutput& out, const T& v) {
    std::apply(
        [&](const auto&... f) { (Serializer<std::decay_t<decltype(f)>>::write(out, f), ...); },
        v.tie());
  }
  static void read(DataInput& in, T& v) {
    std::apply([&](auto&... f) { (Serializer<std::decay_t<decltype(f)>>::read(in, f), ...); },
               v.tie());
  }
};
// An event: the index of its kind, then that kind's fields.
template <>
struct Serializer<nexmark::Event> {
  static void write(DataOutput& out, const nexmark::Event& e) {
    uint8_t kind = static_cast<uint8_t>(e.data.index());
    out.write_raw(&kind, 1);
    std::visit([&](const auto& v) { Serializer<std::decay_t<decltype(v)>>::write(out, v); },
               e.data);
  }
  static void read(DataInput& in, nexmark::Event& e) {
    uint8_t kind = 0;
    in.read_raw(&kind, 1);
    switch (kind) {
      case 0:
        e.data.emplace<nexmark::Person>();
        break;
      case 1:
        e.data.emplace<nexmark::Auction>();
        break;
      case 2:
        e.data.emplace<nexmark::Bid>();
        break;
      default:
        throw SerializationError("nexmark event of unknown kind " + std::to_string(kind));
    }
    std::visit([&](auto& v) { Serializer<std::decay_t<decltype(v)>>::read(in, v); }, e.data);
  }
};
}  // namespace sluice

namespace nexmark {

// The reference's watermark delay.
inline constexpr std::chrono::milliseconds kWatermarkDelay{4000};

struct JobOptions {
  GeneratorConfig generator;
  std::string result_dir;
};

// The generator settings and --result-dir from the job's arguments; std::invalid_argument
// naming a bad one.
inline JobOptions ParseJobOptions(const sluice::JobArgs& args) {
  JobOptions o;
  for (const std::string& name : GeneratorOptionNames()) {
    if (args.has(name)) SetGeneratorOption(o.generator, name, args.get(name));
  }
  o.generator.validate();
  o.result_dir = args.required("result-dir");
  return o;
}

// The generator as a parallel source of events (see the top of this file).
class NexmarkSource final : public sluice::SourceFunction<Event> {
 public:
  explicit NexmarkSource(GeneratorConfig config) : config_(config) {}
  std::string default_name() const { return "Source: Nexmark"; }

  void open(sluice::RuntimeContext& ctx) override {
    generator_.emplace(config_);
    state_ = &ctx.get_operator_list_state(
        sluice::ListStateDescriptor<SchedulePosition>("nexmark-position"));
    std::vector<SchedulePosition> start =
        ctx.is_restored() ? state_->get()
                          : EventSchedule::Start(config_.events, ctx.index_of_this_subtask(),
                                                 ctx.number_of_parallel_subtasks());
    schedule_.emplace(config_, start);
  }

  void run(SourceContext& ctx) override {
    for (uint64_t k = 0;; ++k) {
      if ((k & 1023) == 0 && !is_running()) return;
      int64_t n = schedule_->peek();
      if (n < 0) return;
      ctx.collect(generator_->next_event(n));  // a checkpoint in here stores n as still to come
      schedule_->pop();
    }
  }

  void snapshot_state(int64_t) override { state_->update(schedule_->position()); }

 private:
  GeneratorConfig config_;
  std::optional<EventGenerator> generator_;
  std::optional<EventSchedule> schedule_;
  sluice::OperatorListState<SchedulePosition>* state_ = nullptr;
};

// The source, with event time and watermarks.
inline sluice::DataStream<Event> Events(sluice::StreamExecutionEnvironment& env,
                                        const JobOptions& o) {
  return env.add_source(NexmarkSource(o.generator))
      .assign_timestamps_and_watermarks(
          sluice::WatermarkStrategy<Event>::for_bounded_out_of_orderness(kWatermarkDelay)
              .with_timestamp_assigner([](const Event& e, int64_t) { return e.date_time(); }))
      .name("Timestamps/Watermarks");
}

// The events of one kind (the reference's person, auction and bid views).
template <class T>
sluice::DataStream<T> OfKind(sluice::DataStream<Event> events, const std::string& name) {
  return events
      .flat_map([](const Event& e, sluice::Collector<T>& out) {
        if (const T* v = std::get_if<T>(&e.data)) out.collect(*v);
      })
      .name(name);
}
inline sluice::DataStream<Bid> Bids(sluice::DataStream<Event> e) { return OfKind<Bid>(e, "Bids"); }
inline sluice::DataStream<Person> Persons(sluice::DataStream<Event> e) {
  return OfKind<Person>(e, "Persons");
}
inline sluice::DataStream<Auction> Auctions(sluice::DataStream<Event> e) {
  return OfKind<Auction>(e, "Auctions");
}

// Sums the hashes of the rows it receives (see the top of this file). `Hash` is a function
// object: uint64_t(const T&).
template <class T, class Hash>
class ChecksumSink final : public sluice::SinkFunction<T> {
 public:
  ChecksumSink(std::string dir, Hash hash) : dir_(std::move(dir)), hash_(std::move(hash)) {}

  void open(sluice::RuntimeContext& ctx) override {
    subtask_ = ctx.index_of_this_subtask();
    state_ = &ctx.get_operator_list_state(sluice::ListStateDescriptor<Checksum>("checksum"));
    // After a restore at another parallelism a subtask may get several old subtasks' sums.
    for (const Checksum& c : state_->get()) sum_.add(c);
  }
  // Hash returns a row's hash, or a Checksum standing for several rows (q12).
  void invoke(const T& row) override { sum_.add(hash_(row)); }
  void snapshot_state(int64_t) override { state_->update({sum_}); }
  void close() override {
    std::string path = dir_ + "/part-" + std::to_string(subtask_);
    FILE* f = std::fopen(path.c_str(), "w");
    if (!f) throw std::runtime_error("cannot write the checksum file " + path);
    std::fprintf(f, "%lld %016llx\n", static_cast<long long>(sum_.rows),
                 static_cast<unsigned long long>(sum_.sum));
    if (std::fclose(f) != 0) throw std::runtime_error("cannot write the checksum file " + path);
  }

 private:
  std::string dir_;
  Hash hash_;
  int subtask_ = 0;
  Checksum sum_;
  sluice::OperatorListState<Checksum>* state_ = nullptr;
};

template <class T, class Hash>
void SinkChecksum(sluice::DataStream<T> rows, const JobOptions& o, Hash hash) {
  rows.add_sink(ChecksumSink<T, Hash>(o.result_dir, std::move(hash)), "Sink: Checksum");
}
template <class T>
void SinkChecksum(sluice::DataStream<T> rows, const JobOptions& o) {
  SinkChecksum(std::move(rows), o, [](const T& r) { return RowHash(r); });
}

// An aggregate function counting a window's bids (q5, q11).
struct CountBids {
  using accumulator_type = int64_t;
  using result_type = int64_t;
  int64_t create_accumulator() const { return 0; }
  void add(const Bid&, int64_t& acc) const { ++acc; }
  int64_t get_result(const int64_t& acc) const { return acc; }
  int64_t merge(int64_t a, const int64_t& b) const { return a + b; }
};

}  // namespace nexmark
