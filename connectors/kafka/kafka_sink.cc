// The Kafka sink's type-free core: the producer, delivery errors, and the exactly-once batches.
//
// Exactly once keeps union operator state, every subtask's elements reaching every subtask of a
// restore (integers little-endian):
//   origin: 'O', int32 subtask, uint64 token, int64 checkpoint id: a subtask of the job (an
//           "origin"), the token of its lineage, which its commit markers carry (a marker of
//           another run is not taken for ours), and the checkpoint the state belongs to (after a
//           restore of an older checkpoint of the lineage, the marker is set back to it).
//   batch:  'B', int64 checkpoint id, int32 origin, then per record: uint32 topic length, topic,
//           int32 key length (-1: no key), key, uint32 value length, value.
// A restore hands origin o to subtask o % parallelism, which fences o's transactional id and
// commits the batches of o that o's marker does not cover, in checkpoint order.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "kafka_common.h"
#include "sluice/connectors/kafka.h"

namespace sluice::kafka {

namespace {
// The value of kMarkerOutsideTransaction in `c` (false when unset); throws
// std::invalid_argument on a value other than true or false.
bool MarkerOutsideTransaction(const KafkaSinkConfig& c) {
  auto it = c.properties.find(kMarkerOutsideTransaction);
  if (it == c.properties.end() || it->second == "false") return false;
  if (it->second == "true") return true;
  throw std::invalid_argument(std::string("Kafka sink: property '") + kMarkerOutsideTransaction +
                              "' must be true or false, got '" + it->second + "'");
}
}  // namespace

void validate_sink_config(const KafkaSinkConfig& c, bool has_value_serializer,
                          bool has_topic_selector) {
  if (c.bootstrap_servers.empty()) {
    throw std::invalid_argument("Kafka sink: set_bootstrap_servers() is required");
  }
  if (c.topic.empty() == !has_topic_selector) {
    throw std::invalid_argument(
        "Kafka sink: give either set_topic() or set_topic_selector(), not both or neither");
  }
  if (!has_value_serializer) {
    throw std::invalid_argument("Kafka sink: set_value_serializer() is required");
  }
  MarkerOutsideTransaction(c);
  if (c.guarantee == DeliveryGuarantee::kExactlyOnce) {
    if (c.transactional_id_prefix.empty()) {
      throw std::invalid_argument(
          "Kafka sink: the EXACTLY_ONCE delivery guarantee requires a transactional id prefix "
          "(set_transactional_id_prefix())");
    }
    if (c.topic.empty() && c.marker_topic.empty()) {
      throw std::invalid_argument(
          "Kafka sink: EXACTLY_ONCE with a topic per record requires set_marker_topic()");
    }
  }
}

namespace internal {

namespace {

template <class I>
void Put(std::string& out, I v) {
  char b[sizeof(I)];
  std::memcpy(b, &v, sizeof(I));
  out.append(b, sizeof(I));
}

template <class I>
I Get(std::string_view& in, const char* what) {
  if (in.size() < sizeof(I)) {
    throw std::runtime_error(std::string("restoring the Kafka sink: a batch ends inside ") + what);
  }
  I v;
  std::memcpy(&v, in.data(), sizeof(I));
  in.remove_prefix(sizeof(I));
  return v;
}

std::string_view GetBytes(std::string_view& in, size_t n, const char* what) {
  if (in.size() < n) {
    throw std::runtime_error(std::string("restoring the Kafka sink: a batch ends inside ") + what);
  }
  std::string_view v = in.substr(0, n);
  in.remove_prefix(n);
  return v;
}

std::string ErrorText(rd_kafka_error_t* e) {
  return std::string(rd_kafka_error_name(e)) + ": " + rd_kafka_error_string(e);
}

}  // namespace

namespace {
void OnDelivery(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
  if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) return;
  auto* s = static_cast<std::string*>(opaque);
  if (s->empty()) {
    *s = std::string("Kafka delivery to topic '") + rd_kafka_topic_name(m->rkt) +
         "' failed: " + rd_kafka_err2str(m->err);
  }
}
}  // namespace

struct RecordProducer::State {
  // A transactional producer under `<prefix>-<origin>`, or the plain producer. A topic handle
  // must not outlive the producer it belongs to: destruction and move assignment destroy the
  // topic handles first (the defaulted assignment would replace rk, destroying the old
  // producer, while its topic handles were still held).
  struct Producer {
    KafkaHandle rk;
    int origin = 0;
    // Handles of the topics produced to, by name, and the last one used. Producing by handle
    // spares librdkafka a look-up of the name under its client-wide lock, and this a copy of the
    // name, for every record.
    std::map<std::string, TopicHandle, std::less<>> topics;
    const std::pair<const std::string, TopicHandle>* last_topic = nullptr;

    Producer() = default;
    Producer(KafkaHandle handle, int origin_of) : rk(std::move(handle)), origin(origin_of) {}
    // The map's nodes move with it, so last_topic stays valid in the new owner.
    Producer(Producer&& o) noexcept
        : rk(std::move(o.rk)),
          origin(o.origin),
          topics(std::move(o.topics)),
          last_topic(std::exchange(o.last_topic, nullptr)) {}
    Producer& operator=(Producer&& o) noexcept {
      if (this != &o) {
        destroy();
        rk = std::move(o.rk);
        origin = o.origin;
        topics = std::move(o.topics);
        last_topic = std::exchange(o.last_topic, nullptr);
      }
      return *this;
    }
    Producer(const Producer&) = delete;
    Producer& operator=(const Producer&) = delete;
    ~Producer() { destroy(); }

    rd_kafka_topic_t* topic_handle(std::string_view topic) {
      if (last_topic && last_topic->first == topic) return last_topic->second.get();
      auto it = topics.find(topic);
      if (it == topics.end()) {
        std::string name(topic);
        TopicHandle t(rd_kafka_topic_new(rk.get(), name.c_str(), nullptr));
        if (!t) {
          throw std::runtime_error("producing to Kafka topic '" + name +
                                   "': " + rd_kafka_err2str(rd_kafka_last_error()));
        }
        it = topics.emplace(std::move(name), std::move(t)).first;
      }
      last_topic = &*it;
      return it->second.get();
    }
    // The topic handles, then the producer.
    void destroy() {
      last_topic = nullptr;
      topics.clear();
      rk.reset();
    }
  };

  KafkaSinkConfig config;
  // The first failed delivery, reported by librdkafka's callback on this thread. The producers'
  // callbacks write it (it is their opaque), so it is declared before them: destroyed after
  // every producer that may still call back into it.
  std::string delivery_error;
  // kMarkerOutsideTransaction: the marker is also committed plainly after each transaction.
  bool marker_outside_transaction = false;
  Producer main;
  int subtask = 0;
  std::string task;  // task_label() of the subtask, for the log
  uint64_t token = 0;
  uint64_t sent = 0;
  // Exactly once: the records since the last checkpoint, and the sealed batches not committed.
  std::string staged;
  std::map<int64_t, std::string> sealed;
  std::map<int, KafkaHandle> marker_clients;

  bool exactly_once() const { return config.guarantee == DeliveryGuarantee::kExactlyOnce; }
  std::string marker_topic() const {
    return config.marker_topic.empty() ? config.topic : config.marker_topic;
  }
  std::string id_of(int origin) const {
    return config.transactional_id_prefix + "-" + std::to_string(origin);
  }

  void check_delivery() {
    if (!delivery_error.empty()) throw std::runtime_error(delivery_error);
  }

  // A producer; transactional under `<prefix>-<origin>` for exactly once, its id taken over
  // (init_transactions aborts a transaction a failed attempt left open and fences a zombie).
  Producer new_producer(int origin) {
    std::unique_ptr<rd_kafka_conf_t, RdKafkaDeleter> conf(rd_kafka_conf_new());
    SetProperty(conf.get(), "bootstrap.servers", config.bootstrap_servers);
    if (exactly_once()) {
      SetProperty(conf.get(), "transactional.id", id_of(origin));
    } else if (config.guarantee == DeliveryGuarantee::kAtLeastOnce) {
      SetProperty(conf.get(), "enable.idempotence", "true");
    }
    for (const auto& [k, v] : config.properties) SetProperty(conf.get(), k, v);
    rd_kafka_conf_set_dr_msg_cb(conf.get(), OnDelivery);
    rd_kafka_conf_set_opaque(conf.get(), &delivery_error);
    char err[512];
    rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf.get(), err, sizeof(err));
    if (!rk) throw std::runtime_error(std::string("cannot create a Kafka producer: ") + err);
    conf.release();
    Producer p(KafkaHandle(rk), origin);
    if (exactly_once()) {
      KafkaError e(rd_kafka_init_transactions(rk, static_cast<int>(config.request_timeout_ms)));
      if (e) {
        throw std::runtime_error("initializing Kafka transactions for transactional id '" +
                                 id_of(origin) + "' at '" + config.bootstrap_servers +
                                 "': " + ErrorText(e.get()));
      }
    }
    return p;
  }

  // Produces one record, waiting while librdkafka's queue is full.
  void produce(Producer& p, std::string_view topic, const std::string_view* key,
               std::string_view value) {
    rd_kafka_t* rk = p.rk.get();
    rd_kafka_topic_t* rkt = p.topic_handle(topic);
    for (;;) {
      rd_kafka_resp_err_t err = rd_kafka_producev(
          rk, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
          RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
          RD_KAFKA_V_KEY(key ? const_cast<char*>(key->data()) : nullptr, key ? key->size() : 0),
          RD_KAFKA_V_END);
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR) break;
      if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        throw std::runtime_error("producing to Kafka topic '" + std::string(topic) +
                                 "': " + rd_kafka_err2str(err));
      }
      rd_kafka_poll(rk, 10);  // deliveries free room
      check_delivery();
    }
    if ((++sent & 255) == 0) rd_kafka_poll(rk, 0);
  }

  void flush() {
    rd_kafka_resp_err_t err =
        rd_kafka_flush(main.rk.get(), static_cast<int>(config.request_timeout_ms));
    check_delivery();
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      throw std::runtime_error("Kafka did not acknowledge " +
                               std::to_string(rd_kafka_outq_len(main.rk.get())) +
                               " records within " + std::to_string(config.request_timeout_ms) +
                               " ms (" + config.bootstrap_servers + "): " + rd_kafka_err2str(err));
    }
  }

  // A consumer of the marker group of `origin`, made when first needed.
  rd_kafka_t* marker_client(int origin) {
    KafkaHandle& c = marker_clients[origin];
    if (c) return c.get();
    std::map<std::string, std::string> props;
    props["bootstrap.servers"] = config.bootstrap_servers;
    props["group.id"] = id_of(origin);
    props["enable.auto.commit"] = "false";
    for (const auto& [k, v] : config.properties) {
      if (k.rfind("security.", 0) == 0 || k.rfind("sasl.", 0) == 0 || k.rfind("ssl.", 0) == 0) {
        props[k] = v;
      }
    }
    c = NewClient(RD_KAFKA_CONSUMER, props);
    return c.get();
  }

  // The marker entry: checkpoint `id` of lineage `token_of_origin`, on partition 0 of the marker
  // topic.
  PartitionList marker_list(int64_t id, uint64_t origin_token) {
    PartitionList list = NewPartitionList();
    rd_kafka_topic_partition_t* e =
        rd_kafka_topic_partition_list_add(list.get(), marker_topic().c_str(), 0);
    e->offset = id;
    std::string meta = std::to_string(origin_token);
    e->metadata = std::malloc(meta.size());  // freed with the list
    std::memcpy(e->metadata, meta.data(), meta.size());
    e->metadata_size = meta.size();
    return list;
  }

  // The checkpoint id last committed under the marker of `origin` in lineage `origin_token`, or
  // -1 (none, or another lineage's).
  int64_t committed_marker(int origin, uint64_t origin_token) {
    PartitionList list = NewPartitionList();
    rd_kafka_topic_partition_list_add(list.get(), marker_topic().c_str(), 0);
    rd_kafka_resp_err_t err = rd_kafka_committed(marker_client(origin), list.get(),
                                                 static_cast<int>(config.request_timeout_ms));
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      throw std::runtime_error("reading the Kafka sink's commit marker (group '" + id_of(origin) +
                               "', topic '" + marker_topic() + "'): " + rd_kafka_err2str(err));
    }
    const rd_kafka_topic_partition_t& e = list->elems[0];
    std::string meta =
        e.metadata ? std::string(static_cast<const char*>(e.metadata), e.metadata_size) : "";
    if (e.offset < 0 || meta != std::to_string(origin_token)) return -1;
    return e.offset;
  }

  // Commits batch `batch` (of `origin`, lineage `origin_token`) in one transaction of `p` with
  // its marker. The marker goes first, so that a transaction that fails before its commit has
  // written no record the mock cluster would show (it writes no abort markers).
  void commit_batch(Producer& p, std::string_view batch, uint64_t origin_token) {
    Get<char>(batch, "its kind");  // 'B'
    int64_t id = Get<int64_t>(batch, "its header");
    Get<int32_t>(batch, "its header");
    rd_kafka_t* rk = p.rk.get();
    KafkaError e(rd_kafka_begin_transaction(rk));
    if (e) throw std::runtime_error("beginning a Kafka transaction: " + ErrorText(e.get()));
    try {
      PartitionList offsets = marker_list(id, origin_token);
      std::unique_ptr<rd_kafka_consumer_group_metadata_t, RdKafkaDeleter> group(
          rd_kafka_consumer_group_metadata_new(id_of(p.origin).c_str()));
      e.reset(rd_kafka_send_offsets_to_transaction(rk, offsets.get(), group.get(),
                                                   static_cast<int>(config.request_timeout_ms)));
      if (e) throw std::runtime_error("adding the commit marker: " + ErrorText(e.get()));
      while (!batch.empty()) {
        uint32_t tl = Get<uint32_t>(batch, "a topic");
        std::string_view topic = GetBytes(batch, tl, "a topic");
        int32_t kl = Get<int32_t>(batch, "a key");
        std::string_view key = kl >= 0 ? GetBytes(batch, static_cast<size_t>(kl), "a key") : "";
        uint32_t vl = Get<uint32_t>(batch, "a value");
        std::string_view value = GetBytes(batch, vl, "a value");
        produce(p, topic, kl >= 0 ? &key : nullptr, value);
      }
      e.reset(rd_kafka_commit_transaction(rk, static_cast<int>(config.request_timeout_ms)));
      if (e) throw std::runtime_error("committing: " + ErrorText(e.get()));
      check_delivery();
    } catch (const std::runtime_error& ex) {
      KafkaError abort(rd_kafka_abort_transaction(rk, static_cast<int>(config.request_timeout_ms)));
      throw std::runtime_error("the Kafka transaction of checkpoint " + std::to_string(id) +
                               " (transactional id '" + id_of(p.origin) +
                               "') failed: " + ex.what());
    }
    // With kMarkerOutsideTransaction, the marker once more outside the transaction. A broker has
    // it already (the transaction committed it with the records); librdkafka 2.0.2's mock
    // cluster acknowledges transactional offset commits without storing them, and reads this
    // one. The records are committed whatever happens here.
    if (!marker_outside_transaction) return;
    rd_kafka_resp_err_t err =
        rd_kafka_commit(marker_client(p.origin), marker_list(id, origin_token).get(), 0);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      std::fprintf(stderr,
                   "Kafka sink of %s: committing the marker of group '%s' outside the "
                   "transaction: %s\n",
                   task.c_str(), id_of(p.origin).c_str(), rd_kafka_err2str(err));
    }
  }
};

RecordProducer::RecordProducer(KafkaSinkConfig config) : s_(std::make_unique<State>()) {
  // The sink's own property is not librdkafka's: it is taken out before the producers see them.
  s_->marker_outside_transaction = MarkerOutsideTransaction(config);
  config.properties.erase(kMarkerOutsideTransaction);
  s_->config = std::move(config);
}

RecordProducer::~RecordProducer() = default;

void RecordProducer::open(int subtask, int parallelism, const std::vector<std::string>& restored,
                          bool checkpointing, const std::string& task) {
  State& s = *s_;
  s.subtask = subtask;
  s.task = task.empty() ? "subtask " + std::to_string(subtask) : "task " + task;
  if (!s.exactly_once()) {
    s.main = s.new_producer(subtask);
    return;
  }
  if (!checkpointing) {
    throw std::invalid_argument(
        "the Kafka sink's EXACTLY_ONCE delivery guarantee commits at checkpoints: turn "
        "checkpointing on (execution.checkpointing.interval)");
  }
  // The origins of the restored state this subtask takes over, with their lineage tokens and
  // batches, oldest first.
  struct Origin {
    uint64_t token = 0;
    int64_t checkpoint = 0;
  };
  std::map<int32_t, Origin> origins;
  std::map<int32_t, std::map<int64_t, std::string_view>> batches;
  for (const std::string& element : restored) {
    std::string_view v = element;
    char kind = Get<char>(v, "its kind");
    if (kind == 'O') {
      int32_t origin = Get<int32_t>(v, "an origin");
      uint64_t token = Get<uint64_t>(v, "an origin");
      int64_t checkpoint = Get<int64_t>(v, "an origin");
      if (origin % parallelism == subtask) origins[origin] = {token, checkpoint};
    } else if (kind == 'B') {
      std::string_view b = element;
      int64_t id = Get<int64_t>(v, "its header");
      int32_t origin = Get<int32_t>(v, "its header");
      if (origin % parallelism == subtask) batches[origin][id] = b;
    } else {
      throw std::runtime_error("restoring the Kafka sink: an element of unknown kind");
    }
  }
  // This subtask's own lineage goes on where its origin left off, or starts.
  auto own = origins.find(subtask);
  if (own != origins.end()) {
    s.token = own->second.token;
  } else {
    std::random_device rd;
    s.token = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  }
  s.main = s.new_producer(subtask);
  for (const auto& [origin, o] : origins) {
    const uint64_t token = o.token;
    State::Producer other;
    State::Producer& p = origin == subtask ? s.main : (other = s.new_producer(origin));
    const int64_t marker = s.committed_marker(origin, token);
    int committed = 0, skipped = 0;
    for (const auto& [id, bytes] : batches[origin]) {
      if (id <= marker) {
        ++skipped;
        continue;
      }
      s.commit_batch(p, bytes, token);
      ++committed;
    }
    // A marker beyond the restored checkpoint: this lineage ran on past it before (a restore of
    // an older retained checkpoint). The checkpoints after it are numbered again from it, so the
    // marker goes back to it, lest their batches be taken for committed ones.
    if (marker > o.checkpoint) {
      std::string empty;
      Put<char>(empty, 'B');
      Put<int64_t>(empty, o.checkpoint);
      Put<int32_t>(empty, origin);
      s.commit_batch(p, empty, token);
    }
    std::fprintf(stderr,
                 "Kafka sink of %s: origin %d (transactional id '%s') taken over; of its %zu "
                 "restored batches %d were in Kafka already (marker %lld) and %d were committed "
                 "now\n",
                 s.task.c_str(), origin, s.id_of(origin).c_str(), batches[origin].size(), skipped,
                 static_cast<long long>(marker), committed);
  }
}

void RecordProducer::send(std::string_view topic, const std::string_view* key,
                          std::string_view value) {
  State& s = *s_;
  if (!s.exactly_once()) {
    s.check_delivery();
    s.produce(s.main, topic, key, value);
    return;
  }
  if (s.staged.empty()) {
    Put<char>(s.staged, 'B');
    Put<int64_t>(s.staged, 0);  // the id, set when sealed
    Put<int32_t>(s.staged, s.subtask);
  }
  Put<uint32_t>(s.staged, static_cast<uint32_t>(topic.size()));
  s.staged.append(topic);
  Put<int32_t>(s.staged, key ? static_cast<int32_t>(key->size()) : -1);
  if (key) s.staged.append(*key);
  Put<uint32_t>(s.staged, static_cast<uint32_t>(value.size()));
  s.staged.append(value);
}

std::vector<std::string> RecordProducer::snapshot(int64_t id) {
  State& s = *s_;
  std::vector<std::string> out;
  switch (s.config.guarantee) {
    case DeliveryGuarantee::kNone:
      s.check_delivery();
      return out;
    case DeliveryGuarantee::kAtLeastOnce:
      s.flush();
      return out;
    case DeliveryGuarantee::kExactlyOnce:
      break;
  }
  if (!s.staged.empty()) {
    std::memcpy(s.staged.data() + 1, &id, sizeof(id));
    s.sealed[id] = std::move(s.staged);
    s.staged.clear();
  }
  std::string origin;
  Put<char>(origin, 'O');
  Put<int32_t>(origin, s.subtask);
  Put<uint64_t>(origin, s.token);
  Put<int64_t>(origin, id);
  out.push_back(std::move(origin));
  for (const auto& [_, b] : s.sealed) out.push_back(b);
  return out;
}

void RecordProducer::commit(int64_t id) {
  State& s = *s_;
  if (!s.exactly_once()) return;
  while (!s.sealed.empty() && s.sealed.begin()->first <= id) {
    s.commit_batch(s.main, s.sealed.begin()->second, s.token);
    s.sealed.erase(s.sealed.begin());
  }
}

void RecordProducer::close() {
  State& s = *s_;
  if (!s.main.rk) return;
  if (!s.exactly_once()) s.flush();
  for (auto& [_, c] : s.marker_clients) rd_kafka_consumer_close(c.get());
  s.marker_clients.clear();
  s.main.destroy();
}

}  // namespace internal
}  // namespace sluice::kafka
