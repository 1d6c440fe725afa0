// The Kafka source's type-free core: partition discovery and assignment, offsets, fetching.
#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <map>
#include <regex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "kafka_common.h"
#include "sluice/connectors/kafka.h"

namespace sluice::kafka {

namespace {
const rd_kafka_message_t* Msg(const void* m) { return static_cast<const rd_kafka_message_t*>(m); }
}  // namespace

std::string_view KafkaRecord::topic() const { return rd_kafka_topic_name(Msg(m_)->rkt); }
int32_t KafkaRecord::partition() const { return Msg(m_)->partition; }
int64_t KafkaRecord::offset() const { return Msg(m_)->offset; }
int64_t KafkaRecord::timestamp() const {
  int64_t ts = rd_kafka_message_timestamp(Msg(m_), nullptr);
  return ts < 0 ? kNoTimestamp : ts;
}
bool KafkaRecord::has_key() const { return Msg(m_)->key != nullptr; }
std::string_view KafkaRecord::key() const {
  const rd_kafka_message_t* m = Msg(m_);
  return m->key ? std::string_view(static_cast<const char*>(m->key), m->key_len) : "";
}
std::string_view KafkaRecord::value() const {
  const rd_kafka_message_t* m = Msg(m_);
  return m->payload ? std::string_view(static_cast<const char*>(m->payload), m->len) : "";
}
std::vector<KafkaHeader> KafkaRecord::headers() const {
  std::vector<KafkaHeader> out;
  rd_kafka_headers_t* hdrs = nullptr;
  if (rd_kafka_message_headers(Msg(m_), &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR) return out;
  const char* name;
  const void* value;
  size_t size;
  for (size_t i = 0;
       rd_kafka_header_get_all(hdrs, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR; ++i) {
    out.push_back({name, value ? std::string_view(static_cast<const char*>(value), size) : ""});
  }
  return out;
}

void validate_source_config(const KafkaSourceConfig& c, bool has_deserializer) {
  if (c.bootstrap_servers.empty()) {
    throw std::invalid_argument("Kafka source: set_bootstrap_servers() is required");
  }
  if (c.topics.empty() == c.topic_pattern.empty()) {
    throw std::invalid_argument(
        "Kafka source: give either set_topics() or set_topic_pattern(), not both or neither");
  }
  for (const std::string& t : c.topics) {
    if (t.empty()) throw std::invalid_argument("Kafka source: an empty topic name");
  }
  if (!c.topic_pattern.empty()) {
    try {
      std::regex re(c.topic_pattern);
    } catch (const std::regex_error& e) {
      throw std::invalid_argument("Kafka source: topic pattern '" + c.topic_pattern +
                                  "' is not a regular expression: " + e.what());
    }
  }
  if (!has_deserializer) {
    throw std::invalid_argument(
        "Kafka source: set_value_only_deserializer() or set_deserializer() is required");
  }
  if (c.starting.kind() == OffsetsInitializer::Kind::kCommitted && c.group_id.empty()) {
    throw std::invalid_argument(
        "Kafka source: starting from committed offsets needs set_group_id()");
  }
  if (c.batch_size < 1) throw std::invalid_argument("Kafka source: batch size must be positive");
}

namespace internal {

namespace {

// The source's own properties (Flink's names); the others go to librdkafka.
constexpr const char* kDiscoveryInterval = "partition.discovery.interval.ms";
constexpr const char* kCommitOnCheckpoint = "commit.offsets.on.checkpoint";
constexpr const char* kClientIdPrefix = "client.id.prefix";

// A stable hash of a topic name, so that every subtask computes the same owners.
uint32_t TopicHash(const std::string& topic) {
  uint32_t h = 2166136261u;
  for (unsigned char c : topic) h = (h ^ c) * 16777619u;
  return h;
}

int64_t ParseInt(const std::string& key, const std::string& v) {
  try {
    size_t pos = 0;
    int64_t n = std::stoll(v, &pos);
    if (pos == v.size()) return n;
  } catch (const std::exception&) {
  }
  throw std::invalid_argument("Kafka property '" + key + "' = '" + v + "' is not an integer");
}

}  // namespace

struct PartitionReader::State {
  struct Split {
    TopicPartition tp;
    int64_t position = 0;  // the next offset to emit
    int64_t stop = -1;     // bounded mode: the offset to end before; -1 unbounded
    bool paused = false;
    // Bounded mode: the partition was seen to hold nothing more before `stop` from here on (an
    // end-of-partition event, or a record at or past the stop). Applied at the next poll(),
    // once every record of the batch before it has been emitted.
    int64_t end_seen = -1;
  };

  KafkaSourceConfig config;
  std::string servers_for_errors;
  KafkaHandle rk;
  rd_kafka_queue_t* queue = nullptr;
  int subtask = 0;
  std::string task;  // task_label() of the subtask, for the log
  int parallelism = 1;
  int64_t discovery_interval_ms = 300000;
  int64_t next_discovery_ms = 0;
  bool commit_on_checkpoint = true;
  std::vector<Split> splits;
  std::map<TopicPartition, Split> restored;
  bool is_restored = false;
  std::vector<rd_kafka_message_t*> batch;
  // The split of the last record looked up: a batch mostly holds runs of one partition.
  const rd_kafka_topic_t* last_rkt = nullptr;
  int32_t last_partition = -1;
  int last_split = -1;
  std::map<int64_t, std::vector<std::pair<TopicPartition, int64_t>>> to_commit;

  void release_batch() {
    for (rd_kafka_message_t* m : batch) rd_kafka_message_destroy(m);
    batch.clear();
  }

  int owner(const TopicPartition& tp) const {
    int start = static_cast<int>(((TopicHash(tp.topic) * 31u) & 0x7fffffffu) %
                                 static_cast<uint32_t>(parallelism));
    return (start + tp.partition) % parallelism;
  }

  // Every partition of the topics this source reads, sorted. Throws for an unknown topic or
  // servers that cannot be reached.
  std::vector<TopicPartition> list_partitions() {
    const rd_kafka_metadata_t* md = nullptr;
    rd_kafka_resp_err_t err =
        rd_kafka_metadata(rk.get(), 1, nullptr, &md, static_cast<int>(config.request_timeout_ms));
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      throw std::runtime_error("cannot read the topics of the Kafka cluster at '" +
                               config.bootstrap_servers + "' within " +
                               std::to_string(config.request_timeout_ms) +
                               " ms: " + rd_kafka_err2str(err));
    }
    std::map<std::string, int> counts;
    for (int i = 0; i < md->topic_cnt; ++i) {
      const rd_kafka_metadata_topic_t& t = md->topics[i];
      if (t.err == RD_KAFKA_RESP_ERR_NO_ERROR) counts[t.topic] = t.partition_cnt;
    }
    rd_kafka_metadata_destroy(md);
    std::vector<TopicPartition> out;
    if (!config.topic_pattern.empty()) {
      std::regex re(config.topic_pattern);
      for (const auto& [name, n] : counts) {
        if (!std::regex_match(name, re)) continue;
        for (int p = 0; p < n; ++p) out.push_back({name, p});
      }
    } else {
      for (const std::string& t : config.topics) {
        auto it = counts.find(t);
        if (it == counts.end()) {
          throw std::runtime_error("Kafka topic '" + t + "' does not exist on '" +
                                   config.bootstrap_servers + "'");
        }
        for (int p = 0; p < it->second; ++p) out.push_back({t, p});
      }
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  void watermarks_of(const TopicPartition& tp, int64_t* low, int64_t* high) {
    rd_kafka_resp_err_t err =
        rd_kafka_query_watermark_offsets(rk.get(), tp.topic.c_str(), tp.partition, low, high,
                                         static_cast<int>(config.request_timeout_ms));
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      throw std::runtime_error("cannot read the offsets of Kafka partition " + tp.topic + "-" +
                               std::to_string(tp.partition) + ": " + rd_kafka_err2str(err));
    }
  }

  // Resolves `init` for the partitions `tps` to offsets.
  std::vector<int64_t> resolve(const OffsetsInitializer& init,
                               const std::vector<TopicPartition>& tps) {
    std::vector<int64_t> out(tps.size(), 0);
    std::vector<int64_t> low(tps.size()), high(tps.size());
    for (size_t i = 0; i < tps.size(); ++i) watermarks_of(tps[i], &low[i], &high[i]);
    auto reset = [&](size_t i, const std::string& why) {
      switch (init.reset()) {
        case OffsetResetStrategy::kEarliest:
          return low[i];
        case OffsetResetStrategy::kLatest:
          return high[i];
        case OffsetResetStrategy::kNone:
          break;
      }
      throw std::runtime_error("Kafka partition " + tps[i].topic + "-" +
                               std::to_string(tps[i].partition) + " has " + why +
                               " and the offset reset strategy is none");
    };
    switch (init.kind()) {
      case OffsetsInitializer::Kind::kEarliest:
        return low;
      case OffsetsInitializer::Kind::kLatest:
        return high;
      case OffsetsInitializer::Kind::kSpecific:
        for (size_t i = 0; i < tps.size(); ++i) {
          auto it = init.specific().find(tps[i]);
          out[i] = it != init.specific().end() ? std::clamp(it->second, low[i], high[i])
                                               : reset(i, "no given offset");
        }
        return out;
      case OffsetsInitializer::Kind::kCommitted:
      case OffsetsInitializer::Kind::kTimestamp: {
        if (tps.empty()) return out;
        PartitionList list = NewPartitionList(static_cast<int>(tps.size()));
        for (const TopicPartition& tp : tps) {
          rd_kafka_topic_partition_t* e =
              rd_kafka_topic_partition_list_add(list.get(), tp.topic.c_str(), tp.partition);
          if (init.kind() == OffsetsInitializer::Kind::kTimestamp) e->offset = init.timestamp_ms();
        }
        rd_kafka_resp_err_t err =
            init.kind() == OffsetsInitializer::Kind::kCommitted
                ? rd_kafka_committed(rk.get(), list.get(),
                                     static_cast<int>(config.request_timeout_ms))
                : rd_kafka_offsets_for_times(rk.get(), list.get(),
                                             static_cast<int>(config.request_timeout_ms));
        if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
          throw std::runtime_error(std::string("cannot read the ") +
                                   (init.kind() == OffsetsInitializer::Kind::kCommitted
                                        ? "committed offsets of group '" + config.group_id + "'"
                                        : "offsets for a timestamp") +
                                   " from Kafka: " + rd_kafka_err2str(err));
        }
        for (size_t i = 0; i < tps.size(); ++i) {
          int64_t o = list->elems[i].offset;
          if (init.kind() == OffsetsInitializer::Kind::kTimestamp) {
            out[i] = o < 0 ? high[i] : o;  // no record at or after the time: the end
          } else {
            out[i] = o < 0 ? reset(i, "no committed offset in group '" + config.group_id + "'")
                           : std::clamp(o, low[i], high[i]);
          }
        }
        return out;
      }
    }
    return out;
  }

  // Adds the partitions of `all` this subtask owns and does not read yet. New partitions start
  // from the restored position, else (at the first start) from the starting offsets, else
  // (found later, or new since the checkpoint) from the earliest offset. Returns true when any
  // was added.
  bool add_owned(const std::vector<TopicPartition>& all, bool at_start) {
    std::set<TopicPartition> have;
    for (const Split& s : splits) have.insert(s.tp);
    std::vector<TopicPartition> fresh;
    for (const TopicPartition& tp : all) {
      if (owner(tp) != subtask || have.count(tp)) continue;
      auto r = restored.find(tp);
      if (r != restored.end()) {
        splits.push_back(r->second);
      } else {
        fresh.push_back(tp);
      }
    }
    if (!fresh.empty()) {
      OffsetsInitializer from =
          at_start && !is_restored ? config.starting : OffsetsInitializer::earliest();
      std::vector<int64_t> start = resolve(from, fresh);
      std::vector<int64_t> stop;
      if (config.stopping) stop = resolve(*config.stopping, fresh);
      for (size_t i = 0; i < fresh.size(); ++i) {
        splits.push_back({fresh[i], start[i], config.stopping ? stop[i] : -1, false});
      }
    }
    return splits.size() > have.size();
  }

  void assign() {
    PartitionList list = NewPartitionList(static_cast<int>(splits.size()) + 1);
    for (Split& s : splits) {
      if (s.stop >= 0 && s.position >= s.stop) continue;  // nothing to read
      rd_kafka_topic_partition_list_add(list.get(), s.tp.topic.c_str(), s.tp.partition)->offset =
          s.position;
    }
    rd_kafka_resp_err_t err = rd_kafka_assign(rk.get(), list.get());
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      throw std::runtime_error(std::string("cannot assign Kafka partitions: ") +
                               rd_kafka_err2str(err));
    }
    last_rkt = nullptr;
  }

  void pause(Split& sp) {
    if (sp.paused) return;
    PartitionList l = NewPartitionList();
    rd_kafka_topic_partition_list_add(l.get(), sp.tp.topic.c_str(), sp.tp.partition);
    rd_kafka_pause_partitions(rk.get(), l.get());
    sp.paused = true;
  }
  // Bounded mode: partition `split` holds nothing before its stopping offset from `offset` on.
  void note_end(size_t split, int64_t offset) {
    Split& sp = splits[split];
    if (sp.stop >= 0 && offset >= sp.stop) sp.end_seen = std::max(sp.end_seen, offset);
  }
  // Applies what note_end() saw, once the records before it are emitted: the partition is done.
  void apply_ends() {
    for (Split& sp : splits) {
      if (sp.end_seen < 0) continue;
      sp.end_seen = -1;
      if (sp.position >= sp.stop) continue;
      sp.position = sp.stop;
      pause(sp);
    }
  }

  int split_of(const rd_kafka_message_t* m) {
    if (m->rkt == last_rkt && m->partition == last_partition) return last_split;
    const char* topic = rd_kafka_topic_name(m->rkt);
    for (size_t i = 0; i < splits.size(); ++i) {
      if (splits[i].tp.partition == m->partition && splits[i].tp.topic == topic) {
        last_rkt = m->rkt;
        last_partition = m->partition;
        last_split = static_cast<int>(i);
        return last_split;
      }
    }
    return -1;
  }
};

PartitionReader::PartitionReader(KafkaSourceConfig config) : s_(std::make_unique<State>()) {
  s_->config = std::move(config);
}

PartitionReader::~PartitionReader() { close(); }

void PartitionReader::open(int subtask, int parallelism, const std::vector<std::string>& restored,
                           bool is_restored, const std::string& task) {
  State& s = *s_;
  s.subtask = subtask;
  s.task = task.empty() ? "subtask " + std::to_string(subtask) : "task " + task;
  s.parallelism = parallelism;
  s.is_restored = is_restored;
  for (const std::string& e : restored) {
    // "partition,position,stop,topic" (a topic name has no comma).
    int32_t partition = 0;
    int64_t position = 0, stop = -1;
    int n = 0;
    if (std::sscanf(e.c_str(), "%" SCNd32 ",%" SCNd64 ",%" SCNd64 ",%n", &partition, &position,
                    &stop, &n) != 3 ||
        n <= 0) {
      throw std::runtime_error("restoring the Kafka source: a malformed partition state '" + e +
                               "'");
    }
    TopicPartition tp{e.substr(static_cast<size_t>(n)), partition};
    s.restored[tp] = {tp, position, stop, false};
  }

  std::map<std::string, std::string> props;
  props["bootstrap.servers"] = s.config.bootstrap_servers;
  props["group.id"] = s.config.group_id.empty() ? "sluice-kafka-source" : s.config.group_id;
  props["enable.auto.commit"] = "false";
  props["enable.auto.offset.store"] = "false";
  // Bounded mode learns from end-of-partition events that a partition whose last offsets hold no
  // record (transaction markers, compacted or aborted records) is done.
  props["enable.partition.eof"] = s.config.stopping ? "true" : "false";
  // A position that retention has removed resumes at the earliest record kept, not at the end.
  props["auto.offset.reset"] = "earliest";
  // librdkafka 2.0 stops fetching a partition while the consumer queue holds queued.min.messages
  // records (default 100,000; the partitions of a queue count together) and decides again only
  // when its broker thread next wakes, up to a second later: a chain that takes more than 100,000
  // records a second waited for most of each second (bench/kafka_bench.cc: 383 k records/s through
  // a job that does 1 M per CPU-second, 633 k with this). The queue stays bounded by
  // queued.max.messages.kbytes (64 MiB), librdkafka's bound for larger records anyway.
  props["queued.min.messages"] = "1000000";
  std::string client_prefix = "sluice-kafka-source";
  for (const auto& [k, v] : s.config.properties) {
    if (k == kDiscoveryInterval) {
      s.discovery_interval_ms = ParseInt(k, v);
    } else if (k == kCommitOnCheckpoint) {
      if (v != "true" && v != "false") {
        throw std::invalid_argument("Kafka property '" + k + "' = '" + v +
                                    "' must be true or false");
      }
      s.commit_on_checkpoint = v == "true";
    } else if (k == kClientIdPrefix) {
      client_prefix = v;
    } else {
      props[k] = v;
    }
  }
  if (!props.count("client.id")) props["client.id"] = client_prefix + "-" + std::to_string(subtask);
  if (s.config.stopping) s.discovery_interval_ms = 0;  // bounded: the partitions at the start
  s.rk = NewClient(RD_KAFKA_CONSUMER, props);
  s.queue = rd_kafka_queue_get_consumer(s.rk.get());
  s.add_owned(s.list_partitions(), true);
  s.assign();
  s.next_discovery_ms = 0;
}

size_t PartitionReader::poll(int timeout_ms) {
  State& s = *s_;
  s.release_batch();
  splits_of_batch_.clear();
  s.apply_ends();
  if (s.splits.empty() || finished()) {
    // Nothing assigned: wait as a fetch would, so the caller's loop does not spin.
    std::this_thread::sleep_for(std::chrono::milliseconds(timeout_ms));
    return 0;
  }
  s.batch.resize(static_cast<size_t>(s.config.batch_size));
  ssize_t n = rd_kafka_consume_batch_queue(s.queue, timeout_ms, s.batch.data(), s.batch.size());
  if (n < 0) {
    s.batch.clear();
    throw std::runtime_error(std::string("reading from Kafka: ") +
                             rd_kafka_err2str(rd_kafka_last_error()));
  }
  s.batch.resize(static_cast<size_t>(n));
  // Errors are passed as messages: drop them from the batch, failing on the fatal ones.
  size_t out = 0;
  for (size_t i = 0; i < s.batch.size(); ++i) {
    rd_kafka_message_t* m = s.batch[i];
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      // Bounded mode: at the end of a partition whose stopping offset is reached (the offsets
      // before it may hold no record), the partition is done.
      int split = s.split_of(m);
      if (split >= 0) s.note_end(static_cast<size_t>(split), m->offset);
      rd_kafka_message_destroy(m);
      continue;
    }
    if (m->err) {
      std::string what = rd_kafka_message_errstr(m);
      rd_kafka_resp_err_t err = m->err;
      rd_kafka_message_destroy(m);
      if (err == RD_KAFKA_RESP_ERR__FATAL || err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
          err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED ||
          err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET) {
        for (size_t j = i + 1; j < s.batch.size(); ++j) rd_kafka_message_destroy(s.batch[j]);
        s.batch.resize(out);
        throw std::runtime_error("reading from Kafka: " + what);
      }
      continue;  // transient (a broker down, a leader change): librdkafka retries
    }
    int split = s.split_of(m);
    State::Split* sp = split >= 0 ? &s.splits[static_cast<size_t>(split)] : nullptr;
    // Not from a partition this subtask reads, from before its position (a fetch that raced an
    // assignment), or at or past its stopping offset: not emitted.
    if (!sp || m->offset < sp->position || (sp->stop >= 0 && m->offset >= sp->stop)) {
      if (sp && sp->stop >= 0 && m->offset >= sp->stop) {
        s.note_end(static_cast<size_t>(split), m->offset);
      }
      rd_kafka_message_destroy(m);
      continue;
    }
    s.batch[out++] = m;
    splits_of_batch_.push_back(split);
  }
  s.batch.resize(out);
  return out;
}

KafkaRecord PartitionReader::record(size_t i) const { return KafkaRecord(s_->batch[i]); }

void PartitionReader::advance(size_t i) {
  State::Split& sp = s_->splits[static_cast<size_t>(splits_of_batch_[i])];
  sp.position = s_->batch[i]->offset + 1;
  if (sp.stop >= 0 && sp.position >= sp.stop) s_->pause(sp);
}

bool PartitionReader::split_finished(size_t split) const {
  const State::Split& sp = s_->splits[split];
  return sp.stop >= 0 && sp.position >= sp.stop;
}

bool PartitionReader::finished() const {
  for (const State::Split& sp : s_->splits) {
    if (sp.stop < 0 || sp.position < sp.stop) return false;
  }
  return true;
}

bool PartitionReader::maybe_discover(int64_t now_ms) {
  State& s = *s_;
  if (s.discovery_interval_ms <= 0) return false;
  if (s.next_discovery_ms == 0) s.next_discovery_ms = now_ms + s.discovery_interval_ms;
  if (now_ms < s.next_discovery_ms) return false;
  s.next_discovery_ms = now_ms + s.discovery_interval_ms;
  try {
    if (!s.add_owned(s.list_partitions(), false)) return false;
  } catch (const std::runtime_error& e) {
    // A broker that is away for a moment does not stop reading; the next round tries again.
    std::fprintf(stderr, "Kafka source of %s: partition discovery failed: %s\n", s.task.c_str(),
                 e.what());
    return false;
  }
  s.release_batch();
  s.assign();
  return true;
}

size_t PartitionReader::num_splits() const { return s_->splits.size(); }

std::vector<std::string> PartitionReader::snapshot() const {
  std::vector<std::string> out;
  out.reserve(s_->splits.size());
  for (const State::Split& sp : s_->splits) {
    out.push_back(std::to_string(sp.tp.partition) + "," + std::to_string(sp.position) + "," +
                  std::to_string(sp.stop) + "," + sp.tp.topic);
  }
  return out;
}

void PartitionReader::remember(int64_t id) {
  State& s = *s_;
  if (!s.commit_on_checkpoint || s.config.group_id.empty()) return;
  auto& v = s.to_commit[id];
  for (const State::Split& sp : s.splits) v.emplace_back(sp.tp, sp.position);
  while (s.to_commit.size() > 32) s.to_commit.erase(s.to_commit.begin());
}

void PartitionReader::commit_checkpoint(int64_t id) {
  State& s = *s_;
  auto it = s.to_commit.find(id);
  if (it == s.to_commit.end() || !s.rk) return;
  PartitionList list = NewPartitionList(static_cast<int>(it->second.size()) + 1);
  for (const auto& [tp, offset] : it->second) {
    rd_kafka_topic_partition_list_add(list.get(), tp.topic.c_str(), tp.partition)->offset = offset;
  }
  s.to_commit.erase(s.to_commit.begin(), std::next(it));
  if (list->cnt > 0) rd_kafka_commit(s.rk.get(), list.get(), 1);  // for monitoring: async
}

void PartitionReader::close() {
  if (!s_ || !s_->rk) return;
  s_->release_batch();
  if (s_->queue) rd_kafka_queue_destroy(s_->queue);
  s_->queue = nullptr;
  rd_kafka_consumer_close(s_->rk.get());
  s_->rk.reset();
}

}  // namespace internal
}  // namespace sluice::kafka
