// The Kafka connector, on librdkafka: a source and a sink built like Flink's. Link the
// `sluice_connector_kafka` target (Sluice::connector_kafka) to use it; librdkafka comes with it and
// is not part of this header.
//
//   auto source = sluice::kafka::KafkaSource<std::string>::builder()
//                     .set_bootstrap_servers("127.0.0.1:9092")
//                     .set_topics({"readings"})
//                     .set_group_id("alerting")
//                     .set_starting_offsets(sluice::kafka::OffsetsInitializer::earliest())
//                     .set_value_only_deserializer(sluice::kafka::string_deserializer())
//                     .build();
//   auto lines = env.from_source(source, strategy, "Kafka readings");
//   alerts.add_sink(sluice::kafka::KafkaSink<std::string>::builder()
//                       .set_bootstrap_servers("127.0.0.1:9092")
//                       .set_topic("alerts")
//                       .set_value_serializer([](const std::string& s) { return s; })
//                       .set_delivery_guarantee(sluice::kafka::DeliveryGuarantee::kExactlyOnce)
//                       .set_transactional_id_prefix("alerting")
//                       .build());
//
// The source assigns partitions to its subtasks itself (no consumer-group rebalancing), keeps the
// offsets in the checkpoint (union operator state, so a restore at any parallelism hands every
// partition to its new owner), commits them to Kafka when a checkpoint completes (for monitoring
// only), and runs the watermark strategy per partition. The sink writes with no guarantee, at
// least once (flush at each checkpoint), or exactly once (see KafkaSink).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sluice/functions.h"
#include "sluice/task_label.h"
#include "sluice/watermarks.h"

namespace sluice::kafka {

struct TopicPartition {
  std::string topic;
  int32_t partition = 0;
  auto operator<=>(const TopicPartition&) const = default;
};

// What a consumer does when a partition has no committed offset (auto.offset.reset).
enum class OffsetResetStrategy { kEarliest, kLatest, kNone };

// Where reading starts (or, in bounded mode, stops) per partition.
class OffsetsInitializer {
 public:
  enum class Kind { kEarliest, kLatest, kCommitted, kTimestamp, kSpecific };
  static OffsetsInitializer earliest() { return OffsetsInitializer(Kind::kEarliest); }
  static OffsetsInitializer latest() { return OffsetsInitializer(Kind::kLatest); }
  // The group's committed offsets; `reset` for a partition without one.
  static OffsetsInitializer committed_offsets(
      OffsetResetStrategy reset = OffsetResetStrategy::kEarliest) {
    OffsetsInitializer o(Kind::kCommitted);
    o.reset_ = reset;
    return o;
  }
  // The first record whose timestamp is at or after `ms` (the end when there is none).
  static OffsetsInitializer timestamp(int64_t ms) {
    OffsetsInitializer o(Kind::kTimestamp);
    o.timestamp_ms_ = ms;
    return o;
  }
  // Given offsets; `reset` for a partition not listed.
  static OffsetsInitializer offsets(std::map<TopicPartition, int64_t> offsets,
                                    OffsetResetStrategy reset = OffsetResetStrategy::kEarliest) {
    OffsetsInitializer o(Kind::kSpecific);
    o.offsets_ = std::move(offsets);
    o.reset_ = reset;
    return o;
  }
  Kind kind() const { return kind_; }
  OffsetResetStrategy reset() const { return reset_; }
  int64_t timestamp_ms() const { return timestamp_ms_; }
  const std::map<TopicPartition, int64_t>& specific() const { return offsets_; }

 private:
  explicit OffsetsInitializer(Kind k) : kind_(k) {}
  Kind kind_;
  OffsetResetStrategy reset_ = OffsetResetStrategy::kEarliest;
  int64_t timestamp_ms_ = 0;
  std::map<TopicPartition, int64_t> offsets_;
};

struct KafkaHeader {
  std::string_view key;
  std::string_view value;
};

// One record as read. Its views are valid only during the deserializer's call.
class KafkaRecord {
 public:
  explicit KafkaRecord(const void* message) : m_(message) {}
  std::string_view topic() const;
  int32_t partition() const;
  int64_t offset() const;
  // The record's timestamp (ms), or kNoTimestamp when it has none.
  int64_t timestamp() const;
  bool has_key() const;
  std::string_view key() const;
  std::string_view value() const;
  // Allocates: call it only when the headers are needed.
  std::vector<KafkaHeader> headers() const;

 private:
  const void* m_;  // rd_kafka_message_t
};

// The source's settings, without the record type.
struct KafkaSourceConfig {
  std::string bootstrap_servers;
  std::vector<std::string> topics;
  std::string topic_pattern;  // ECMAScript regular expression over whole topic names
  std::string group_id;
  OffsetsInitializer starting = OffsetsInitializer::earliest();
  // Bounded mode: each partition ends at these offsets (exclusive), the job then FINISHES.
  std::optional<OffsetsInitializer> stopping;
  // librdkafka properties, passed through; partition.discovery.interval.ms,
  // commit.offsets.on.checkpoint and client.id.prefix are the source's own (Flink's names).
  std::map<std::string, std::string> properties;
  // How long metadata and offset lookups may take before the source fails.
  int64_t request_timeout_ms = 10000;
  // Records fetched per call into librdkafka.
  int batch_size = 1024;
};

namespace internal {

// The type-free part of the source: the consumer, the partitions a subtask owns and their
// positions. Used from the task's thread only.
class PartitionReader {
 public:
  explicit PartitionReader(KafkaSourceConfig config);
  ~PartitionReader();
  PartitionReader(const PartitionReader&) = delete;
  PartitionReader& operator=(const PartitionReader&) = delete;

  // Creates the consumer, finds the partitions and assigns this subtask's, from `restored`
  // (encoded partition states of a checkpoint, every subtask's: union state) or, for a
  // partition not there, from the starting offsets. Throws std::runtime_error naming the topic,
  // the servers or the property on error. `task` (task_label() of the subtask) names it in what
  // it logs.
  void open(int subtask, int parallelism, const std::vector<std::string>& restored,
            bool is_restored, const std::string& task = "");
  // Fetches up to batch_size records, waiting at most `timeout_ms` for the first. Returns the
  // count; record(i) and split(i) are valid until the next poll(). Throws on a fatal error.
  size_t poll(int timeout_ms);
  KafkaRecord record(size_t i) const;
  // The index among this subtask's partitions (see num_splits) of record i.
  int split(size_t i) const { return splits_of_batch_[i]; }
  // Record i of the batch is emitted: the partition's position moves past it.
  void advance(size_t i);
  // Bounded mode: partition `split` (an index of num_splits()) has reached its stopping offset.
  bool split_finished(size_t split) const;
  // Bounded mode: every partition of this subtask has reached its stopping offset.
  bool finished() const;
  // Looks for new partitions (and topics matching the pattern) when the discovery interval has
  // passed; returns true when this subtask got new ones.
  bool maybe_discover(int64_t now_ms);
  size_t num_splits() const;
  // Every partition's state, encoded for the union operator state.
  std::vector<std::string> snapshot() const;
  // Remembers the positions of checkpoint `id`; commit_checkpoint(id) commits them to Kafka
  // (asynchronously, for monitoring) when the group id is set and commits are on.
  void remember(int64_t id);
  void commit_checkpoint(int64_t id);
  void close();

 private:
  struct State;
  std::unique_ptr<State> s_;
  std::vector<int> splits_of_batch_;
};

}  // namespace internal

// The value of a record as bytes (std::string).
inline std::function<std::string(const KafkaRecord&)> string_deserializer() {
  return [](const KafkaRecord& r) { return std::string(r.value()); };
}

template <class T>
class KafkaSourceBuilder;

// Checks a source's settings; throws std::invalid_argument naming what is missing or
// contradictory (compiled once in the connector).
void validate_source_config(const KafkaSourceConfig& c, bool has_deserializer);

// Reads Kafka topics. T is what the deserializer makes of a record. Copyable: the runtime copies
// it into every subtask before open().
template <class T>
class KafkaSource final : public SourceFunction<T> {
 public:
  using Deserializer = std::function<T(const KafkaRecord&)>;
  static KafkaSourceBuilder<T> builder();

  KafkaSource(KafkaSourceConfig config, Deserializer deserializer)
      : config_(std::move(config)), deserializer_(std::move(deserializer)) {}
  KafkaSource(const KafkaSource& o)
      : SourceFunction<T>(o),
        config_(o.config_),
        deserializer_(o.deserializer_),
        strategy_(o.strategy_) {}
  std::string default_name() const { return "Kafka Source"; }
  const KafkaSourceConfig& config() const { return config_; }

  // From env.from_source(): timestamps and watermarks per partition.
  void set_watermark_strategy(WatermarkStrategy<T> strategy) {
    strategy_ = std::make_shared<WatermarkStrategy<T>>(std::move(strategy));
  }

  void open(RuntimeContext& ctx) override {
    state_ = &ctx.get_union_list_state(ListStateDescriptor<std::string>("kafka-partitions"));
    reader_ = std::make_unique<internal::PartitionReader>(config_);
    reader_->open(ctx.index_of_this_subtask(), ctx.number_of_parallel_subtasks(),
                  ctx.is_restored() ? state_->get() : std::vector<std::string>{}, ctx.is_restored(),
                  task_label(ctx.task_info()));
    interval_ms_ = ctx.task_info().auto_watermark_interval_ms;
    if (strategy_) watermarks_.emplace(*strategy_, [] { return system_clock_ms(); });
  }

  void run(typename SourceFunction<T>::SourceContext& ctx) override {
    int64_t next_emit = system_clock_ms() + interval_ms_;
    sync_splits(ctx);
    while (this->is_running()) {
      int64_t now = system_clock_ms();
      if (reader_->maybe_discover(now)) sync_splits(ctx);
      size_t n = reader_->poll(100);
      for (size_t i = 0; i < n; ++i) {
        KafkaRecord r = reader_->record(i);
        T v = deserialize(r);
        int64_t ts = r.timestamp();
        if (watermarks_) ts = watermarks_->timestamp(reader_->split(i), v, ts);
        // The position moves only after collect(): a checkpoint taken inside it stores this
        // record's offset, as the record is not emitted yet.
        ctx.collect_with_timestamp(std::move(v), ts);
        reader_->advance(i);
      }
      if (n == 0) ctx.flush();
      now = system_clock_ms();
      if (watermarks_ && interval_ms_ > 0 && now >= next_emit) {
        // A partition read to its stopping offset no longer holds event time back.
        for (size_t s = 0; s < reader_->num_splits(); ++s) {
          if (reader_->split_finished(s)) watermarks_->finish_split(s);
        }
        watermarks_->on_periodic_emit(ctx.watermark_output());
        next_emit = now + interval_ms_;
      }
      if (config_.stopping && reader_->finished()) return;
    }
  }

  void snapshot_state(int64_t checkpoint_id) override {
    state_->update(reader_->snapshot());
    reader_->remember(checkpoint_id);
  }
  void notify_checkpoint_complete(int64_t checkpoint_id) override {
    if (reader_) reader_->commit_checkpoint(checkpoint_id);
  }
  void close() override {
    if (reader_) reader_->close();
  }

 private:
  T deserialize(const KafkaRecord& r) {
    try {
      return deserializer_(r);
    } catch (const std::exception& e) {
      throw std::runtime_error(
          "the Kafka record at " + std::string(r.topic()) + "-" + std::to_string(r.partition()) +
          " offset " + std::to_string(r.offset()) + " could not be deserialized: " + e.what());
    }
  }
  // The split watermarks follow the partitions this subtask owns.
  void sync_splits(typename SourceFunction<T>::SourceContext& ctx) {
    if (!watermarks_) return;
    watermarks_->set_splits(reader_->num_splits());
    if (reader_->num_splits() == 0) ctx.watermark_output().mark_idle();
  }

  KafkaSourceConfig config_;
  Deserializer deserializer_;
  std::shared_ptr<const WatermarkStrategy<T>> strategy_;
  std::unique_ptr<internal::PartitionReader> reader_;
  std::optional<SplitWatermarks<T>> watermarks_;
  OperatorListState<std::string>* state_ = nullptr;
  int64_t interval_ms_ = 200;
};

template <class T>
class KafkaSourceBuilder {
 public:
  KafkaSourceBuilder& set_bootstrap_servers(std::string servers) {
    c_.bootstrap_servers = std::move(servers);
    return *this;
  }
  KafkaSourceBuilder& set_topics(std::vector<std::string> topics) {
    c_.topics = std::move(topics);
    return *this;
  }
  KafkaSourceBuilder& set_topic_pattern(std::string regex) {
    c_.topic_pattern = std::move(regex);
    return *this;
  }
  KafkaSourceBuilder& set_group_id(std::string id) {
    c_.group_id = std::move(id);
    return *this;
  }
  KafkaSourceBuilder& set_starting_offsets(OffsetsInitializer o) {
    c_.starting = std::move(o);
    return *this;
  }
  // Bounded mode: stop at `o` (OffsetsInitializer::latest(): the offsets latest at the start).
  KafkaSourceBuilder& set_bounded(OffsetsInitializer o) {
    c_.stopping = std::move(o);
    return *this;
  }
  KafkaSourceBuilder& set_property(std::string key, std::string value) {
    c_.properties[std::move(key)] = std::move(value);
    return *this;
  }
  KafkaSourceBuilder& set_value_only_deserializer(std::function<T(std::string_view)> f) {
    d_ = [f = std::move(f)](const KafkaRecord& r) { return f(r.value()); };
    return *this;
  }
  // A function of the whole record: key, value, headers, partition, offset, timestamp.
  KafkaSourceBuilder& set_deserializer(std::function<T(const KafkaRecord&)> f) {
    d_ = std::move(f);
    return *this;
  }
  // Throws std::invalid_argument naming what is missing or contradictory.
  KafkaSource<T> build() const {
    validate_source_config(c_, static_cast<bool>(d_));
    return KafkaSource<T>(c_, d_);
  }

 private:
  KafkaSourceConfig c_;
  std::function<T(const KafkaRecord&)> d_;
};

template <class T>
KafkaSourceBuilder<T> KafkaSource<T>::builder() {
  return KafkaSourceBuilder<T>();
}

// ---------------------------------------------------------------------------------------------
// The sink.

// What the sink promises about its records (Flink's DeliveryGuarantee).
enum class DeliveryGuarantee {
  // Produced as they come; nothing waits for Kafka at a checkpoint.
  kNone,
  // Every checkpoint waits until Kafka has acknowledged what was produced before it; a failed
  // delivery fails the checkpoint and the task. After a failure records may be written twice.
  kAtLeastOnce,
  // One Kafka transaction per checkpoint and subtask, committed when the checkpoint completes:
  // a read_committed consumer sees every record once. Needs checkpointing. The records of a
  // checkpoint are kept in the checkpoint itself until it completes, and then produced and
  // committed in a transaction together with a marker (the checkpoint id and the run's lineage
  // token, as the offset and metadata of consumer group `<prefix>-<subtask>` on partition 0 of
  // the marker topic). After a failure, each old subtask's transactional id `<prefix>-<i>` is
  // taken over by subtask i % parallelism (a transaction the failed attempt left open is
  // aborted, a zombie fenced), which commits the restored batches of i its marker does not
  // cover yet and skips the others.
  kExactlyOnce,
};

// A property of the sink's own (set_property(kMarkerOutsideTransaction, "true"), not passed to
// librdkafka): exactly once also commits each marker plainly, outside the transaction, after the
// transaction committed. Default false, which is right for a Kafka broker: the transaction
// commits the marker with the records. librdkafka's mock cluster (sluice-kafka-dev) acknowledges
// a transaction's offset commit without storing it, so against the mock a restore would find no
// marker and commit its restored batches again (duplicates) unless this is true. Only the
// values "true" and "false" are accepted.
inline constexpr const char* kMarkerOutsideTransaction = "sluice.marker.commit-outside-transaction";

struct KafkaSinkConfig {
  std::string bootstrap_servers;
  std::string topic;  // empty: chosen per record
  DeliveryGuarantee guarantee = DeliveryGuarantee::kNone;
  std::string transactional_id_prefix;
  // Exactly once: the topic whose partition 0 carries the commit markers (default: `topic`).
  std::string marker_topic;
  // librdkafka properties, passed through; kMarkerOutsideTransaction is the sink's own.
  std::map<std::string, std::string> properties;
  int64_t request_timeout_ms = 30000;
};

// Checks a sink's settings; throws std::invalid_argument naming the setting.
void validate_sink_config(const KafkaSinkConfig& c, bool has_value_serializer,
                          bool has_topic_selector);

namespace internal {

// The type-free part of the sink: the producer, delivery errors, and for exactly once the
// batches of the checkpoints not committed yet. Used from the task's thread only.
class RecordProducer {
 public:
  explicit RecordProducer(KafkaSinkConfig config);
  ~RecordProducer();
  RecordProducer(const RecordProducer&) = delete;
  RecordProducer& operator=(const RecordProducer&) = delete;

  // Creates the producer. Exactly once (which needs `checkpointing`): takes over the origins of
  // the restored state (union state: every subtask's) that fall to this subtask, committing
  // their batches that Kafka does not have yet. Throws std::runtime_error with librdkafka's
  // message. `task` (task_label() of the subtask) names it in what it logs.
  void open(int subtask, int parallelism, const std::vector<std::string>& restored,
            bool checkpointing, const std::string& task = "");
  // Produces (or, exactly once, stages) one record. Throws when an earlier delivery failed.
  void send(std::string_view topic, const std::string_view* key, std::string_view value);
  // At checkpoint `id`: waits for deliveries (at least once) or seals the staged batch under
  // `id` (exactly once) and returns the batches the checkpoint must keep.
  std::vector<std::string> snapshot(int64_t id);
  // Exactly once: commits the batches of checkpoints up to `id`, in order.
  void commit(int64_t id);
  // Waits for what was produced (not for exactly once's staged records) and closes.
  void close();

 private:
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace internal

template <class T>
class KafkaSinkBuilder;

// Writes records to Kafka. Copyable: the runtime copies it into every subtask before open().
template <class T>
class KafkaSink final : public SinkFunction<T> {
 public:
  using Serializer = std::function<std::string(const T&)>;
  using TopicSelector = std::function<std::string(const T&)>;
  static KafkaSinkBuilder<T> builder();

  KafkaSink(KafkaSinkConfig config, Serializer value, Serializer key, TopicSelector topic)
      : config_(std::move(config)),
        value_(std::move(value)),
        key_(std::move(key)),
        topic_(std::move(topic)) {}
  KafkaSink(const KafkaSink& o)
      : SinkFunction<T>(o), config_(o.config_), value_(o.value_), key_(o.key_), topic_(o.topic_) {}
  std::string default_name() const { return "Sink: Kafka"; }

  void open(RuntimeContext& ctx) override {
    state_ = &ctx.get_union_list_state(ListStateDescriptor<std::string>("kafka-sink"));
    producer_ = std::make_unique<internal::RecordProducer>(config_);
    producer_->open(ctx.index_of_this_subtask(), ctx.number_of_parallel_subtasks(),
                    ctx.is_restored() ? state_->get() : std::vector<std::string>{},
                    ctx.task_info().checkpointing, task_label(ctx.task_info()));
  }
  void invoke(const T& v) override {
    value_buf_ = value_(v);
    std::string_view topic = config_.topic;
    if (topic_) {
      topic_buf_ = topic_(v);
      topic = topic_buf_;
    }
    if (key_) {
      key_buf_ = key_(v);
      std::string_view k = key_buf_;
      producer_->send(topic, &k, value_buf_);
    } else {
      producer_->send(topic, nullptr, value_buf_);
    }
  }
  void snapshot_state(int64_t checkpoint_id) override {
    state_->update(producer_->snapshot(checkpoint_id));
  }
  void notify_checkpoint_complete(int64_t checkpoint_id) override {
    producer_->commit(checkpoint_id);
  }
  void close() override {
    if (producer_) producer_->close();
  }

 private:
  KafkaSinkConfig config_;
  Serializer value_, key_;
  TopicSelector topic_;
  std::unique_ptr<internal::RecordProducer> producer_;
  OperatorListState<std::string>* state_ = nullptr;
  std::string value_buf_, key_buf_, topic_buf_;
};

template <class T>
class KafkaSinkBuilder {
 public:
  KafkaSinkBuilder& set_bootstrap_servers(std::string servers) {
    c_.bootstrap_servers = std::move(servers);
    return *this;
  }
  KafkaSinkBuilder& set_topic(std::string topic) {
    c_.topic = std::move(topic);
    return *this;
  }
  // The topic of each record (instead of set_topic()).
  KafkaSinkBuilder& set_topic_selector(std::function<std::string(const T&)> f) {
    topic_ = std::move(f);
    return *this;
  }
  KafkaSinkBuilder& set_value_serializer(std::function<std::string(const T&)> f) {
    value_ = std::move(f);
    return *this;
  }
  KafkaSinkBuilder& set_key_serializer(std::function<std::string(const T&)> f) {
    key_ = std::move(f);
    return *this;
  }
  KafkaSinkBuilder& set_delivery_guarantee(DeliveryGuarantee g) {
    c_.guarantee = g;
    return *this;
  }
  KafkaSinkBuilder& set_transactional_id_prefix(std::string prefix) {
    c_.transactional_id_prefix = std::move(prefix);
    return *this;
  }
  KafkaSinkBuilder& set_marker_topic(std::string topic) {
    c_.marker_topic = std::move(topic);
    return *this;
  }
  KafkaSinkBuilder& set_property(std::string key, std::string value) {
    c_.properties[std::move(key)] = std::move(value);
    return *this;
  }
  // Throws std::invalid_argument naming what is missing or contradictory.
  KafkaSink<T> build() const {
    validate_sink_config(c_, static_cast<bool>(value_), static_cast<bool>(topic_));
    return KafkaSink<T>(c_, value_, key_, topic_);
  }

 private:
  KafkaSinkConfig c_;
  std::function<std::string(const T&)> value_, key_, topic_;
};

template <class T>
KafkaSinkBuilder<T> KafkaSink<T>::builder() {
  return KafkaSinkBuilder<T>();
}

}  // namespace sluice::kafka
