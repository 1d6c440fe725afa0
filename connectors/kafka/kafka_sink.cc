// The Kafka sink's type-free core: the producer, delivery errors, and the exactly-once batches.
//
// A staged batch, as stored in the checkpoint (integers little-endian):
//   int64 checkpoint id, int32 subtask that staged it, then per record:
//   uint32 topic length, topic, int32 key length (-1: no key), key, uint32 value length, value
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "kafka_common.h"
#include "sluice/connectors/kafka.h"

namespace sluice::kafka {

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

struct RecordProducer::State {
  KafkaSinkConfig config;
  KafkaHandle rk;
  // Handles of the topics produced to, by name (destroyed before rk, declared after it), and
  // the last one used. Producing by handle spares librdkafka a look-up of the name under its
  // client-wide lock, and this a copy of the name, for every record.
  std::map<std::string, TopicHandle, std::less<>> topics;
  const std::pair<const std::string, TopicHandle>* last_topic = nullptr;
  int subtask = 0;
  uint64_t sent = 0;
  // The first failed delivery, reported by librdkafka's callback on this thread.
  std::string delivery_error;
  // Exactly once: the records since the last checkpoint, and the sealed batches not committed.
  std::string staged;
  std::map<int64_t, std::string> sealed;
  std::map<int, KafkaHandle> marker_clients;

  std::string marker_topic() const {
    return config.marker_topic.empty() ? config.topic : config.marker_topic;
  }
  std::string marker_group(int origin) const {
    return config.transactional_id_prefix + "-" + std::to_string(origin);
  }

  void check_delivery() {
    if (!delivery_error.empty()) throw std::runtime_error(delivery_error);
  }

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

  // The producer and the topic handles, in that order.
  void destroy() {
    last_topic = nullptr;
    topics.clear();
    rk.reset();
  }

  // Produces one record, waiting while librdkafka's queue is full.
  void produce(std::string_view topic, const std::string_view* key, std::string_view value) {
    rd_kafka_topic_t* rkt = topic_handle(topic);
    for (;;) {
      rd_kafka_resp_err_t err = rd_kafka_producev(
          rk.get(), RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
          RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
          RD_KAFKA_V_KEY(key ? const_cast<char*>(key->data()) : nullptr, key ? key->size() : 0),
          RD_KAFKA_V_END);
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR) break;
      if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        throw std::runtime_error("producing to Kafka topic '" + std::string(topic) +
                                 "': " + rd_kafka_err2str(err));
      }
      rd_kafka_poll(rk.get(), 10);  // deliveries free room
      check_delivery();
    }
    if ((++sent & 255) == 0) rd_kafka_poll(rk.get(), 0);
  }

  void flush() {
    rd_kafka_resp_err_t err = rd_kafka_flush(rk.get(), static_cast<int>(config.request_timeout_ms));
    check_delivery();
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      throw std::runtime_error("Kafka did not acknowledge " +
                               std::to_string(rd_kafka_outq_len(rk.get())) + " records within " +
                               std::to_string(config.request_timeout_ms) + " ms (" +
                               config.bootstrap_servers + "): " + rd_kafka_err2str(err));
    }
  }

  // A consumer of the marker group of `origin`, made when first needed.
  rd_kafka_t* marker_client(int origin) {
    KafkaHandle& c = marker_clients[origin];
    if (c) return c.get();
    std::map<std::string, std::string> props;
    props["bootstrap.servers"] = config.bootstrap_servers;
    props["group.id"] = marker_group(origin);
    props["enable.auto.commit"] = "false";
    for (const auto& [k, v] : config.properties) {
      if (k.rfind("security.", 0) == 0 || k.rfind("sasl.", 0) == 0 || k.rfind("ssl.", 0) == 0) {
        props[k] = v;
      }
    }
    c = NewClient(RD_KAFKA_CONSUMER, props);
    return c.get();
  }

  void commit_marker_plainly(int origin, int64_t id) {
    PartitionList list = NewPartitionList();
    rd_kafka_topic_partition_list_add(list.get(), marker_topic().c_str(), 0)->offset = id;
    rd_kafka_resp_err_t err = rd_kafka_commit(marker_client(origin), list.get(), 0);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      throw std::runtime_error("committing the Kafka sink's marker (group '" +
                               marker_group(origin) + "'): " + rd_kafka_err2str(err));
    }
  }

  // The checkpoint id last committed under the marker group of `origin`, or -1.
  int64_t committed_marker(int origin) {
    rd_kafka_t* consumer = marker_client(origin);
    PartitionList list = NewPartitionList();
    rd_kafka_topic_partition_list_add(list.get(), marker_topic().c_str(), 0);
    rd_kafka_resp_err_t err =
        rd_kafka_committed(consumer, list.get(), static_cast<int>(config.request_timeout_ms));
    int64_t out = list->elems[0].offset;
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      throw std::runtime_error("reading the Kafka sink's commit marker (group '" +
                               marker_group(origin) + "', topic '" + marker_topic() +
                               "'): " + rd_kafka_err2str(err));
    }
    return out < 0 ? -1 : out;
  }

  // Produces a sealed batch in one transaction with its marker, and commits it.
  void commit_batch(std::string_view batch) {
    int64_t id = Get<int64_t>(batch, "its header");
    int32_t origin = Get<int32_t>(batch, "its header");
    KafkaError e(rd_kafka_begin_transaction(rk.get()));
    if (e) throw std::runtime_error("beginning a Kafka transaction: " + ErrorText(e.get()));
    try {
      while (!batch.empty()) {
        uint32_t tl = Get<uint32_t>(batch, "a topic");
        std::string_view topic = GetBytes(batch, tl, "a topic");
        int32_t kl = Get<int32_t>(batch, "a key");
        std::string_view key = kl >= 0 ? GetBytes(batch, static_cast<size_t>(kl), "a key") : "";
        uint32_t vl = Get<uint32_t>(batch, "a value");
        std::string_view value = GetBytes(batch, vl, "a value");
        produce(topic, kl >= 0 ? &key : nullptr, value);
      }
      PartitionList offsets = NewPartitionList();
      rd_kafka_topic_partition_list_add(offsets.get(), marker_topic().c_str(), 0)->offset = id;
      std::unique_ptr<rd_kafka_consumer_group_metadata_t, RdKafkaDeleter> group(
          rd_kafka_consumer_group_metadata_new(marker_group(origin).c_str()));
      e.reset(rd_kafka_send_offsets_to_transaction(rk.get(), offsets.get(), group.get(),
                                                   static_cast<int>(config.request_timeout_ms)));
      if (e) throw std::runtime_error("adding the commit marker: " + ErrorText(e.get()));
      e.reset(rd_kafka_commit_transaction(rk.get(), static_cast<int>(config.request_timeout_ms)));
      if (e) throw std::runtime_error("committing: " + ErrorText(e.get()));
      check_delivery();
      // The same marker once more outside the transaction. A broker has it already (the
      // transaction committed it atomically with the records); librdkafka 2.0.2's mock cluster
      // acknowledges transactional offset commits without storing them, and reads this one.
      commit_marker_plainly(origin, id);
    } catch (const std::runtime_error& ex) {
      KafkaError abort(
          rd_kafka_abort_transaction(rk.get(), static_cast<int>(config.request_timeout_ms)));
      throw std::runtime_error("the Kafka transaction of checkpoint " + std::to_string(id) +
                               " (transactional id '" + config.transactional_id_prefix + "-" +
                               std::to_string(subtask) + "') failed: " + ex.what());
    }
  }
};

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

RecordProducer::RecordProducer(KafkaSinkConfig config) : s_(std::make_unique<State>()) {
  s_->config = std::move(config);
}

RecordProducer::~RecordProducer() {
  if (s_) s_->destroy();
}

void RecordProducer::open(int subtask, const std::vector<std::string>& restored_batches) {
  State& s = *s_;
  s.subtask = subtask;
  std::unique_ptr<rd_kafka_conf_t, RdKafkaDeleter> conf(rd_kafka_conf_new());
  SetProperty(conf.get(), "bootstrap.servers", s.config.bootstrap_servers);
  const bool exactly_once = s.config.guarantee == DeliveryGuarantee::kExactlyOnce;
  if (exactly_once) {
    SetProperty(conf.get(), "transactional.id",
                s.config.transactional_id_prefix + "-" + std::to_string(subtask));
  } else if (s.config.guarantee == DeliveryGuarantee::kAtLeastOnce) {
    SetProperty(conf.get(), "enable.idempotence", "true");
  }
  for (const auto& [k, v] : s.config.properties) SetProperty(conf.get(), k, v);
  rd_kafka_conf_set_dr_msg_cb(conf.get(), OnDelivery);
  rd_kafka_conf_set_opaque(conf.get(), &s.delivery_error);
  char err[512];
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf.get(), err, sizeof(err));
  if (!rk) throw std::runtime_error(std::string("cannot create a Kafka producer: ") + err);
  conf.release();
  s.rk.reset(rk);
  if (!exactly_once) return;

  // Takes the transactional id over: a transaction a failed attempt left open is aborted, and
  // a zombie producer with the same id is fenced.
  KafkaError e(rd_kafka_init_transactions(rk, static_cast<int>(s.config.request_timeout_ms)));
  if (e) {
    throw std::runtime_error("initializing Kafka transactions at '" + s.config.bootstrap_servers +
                             "': " + ErrorText(e.get()));
  }
  // The restored batches, oldest first; those whose marker is there are already in Kafka.
  std::vector<std::pair<std::pair<int64_t, int32_t>, std::string_view>> batches;
  for (const std::string& b : restored_batches) {
    std::string_view v = b;
    int64_t id = Get<int64_t>(v, "its header");
    int32_t origin = Get<int32_t>(v, "its header");
    batches.push_back({{id, origin}, b});
  }
  std::sort(batches.begin(), batches.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  std::map<int32_t, int64_t> markers;
  int skipped = 0, committed = 0;
  for (const auto& [key, bytes] : batches) {
    auto m = markers.find(key.second);
    if (m == markers.end()) m = markers.emplace(key.second, s.committed_marker(key.second)).first;
    if (key.first <= m->second) {
      ++skipped;
      continue;
    }
    s.commit_batch(bytes);
    ++committed;
    m->second = key.first;
  }
  if (!batches.empty()) {
    std::fprintf(stderr,
                 "Kafka sink subtask %d: of %zu restored batches, %d were in Kafka already and %d "
                 "were committed now\n",
                 subtask, batches.size(), skipped, committed);
  }
}

void RecordProducer::send(std::string_view topic, const std::string_view* key,
                          std::string_view value) {
  State& s = *s_;
  if (s.config.guarantee != DeliveryGuarantee::kExactlyOnce) {
    s.check_delivery();
    s.produce(topic, key, value);
    return;
  }
  if (s.staged.empty()) {
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
    std::memcpy(s.staged.data(), &id, sizeof(id));
    s.sealed[id] = std::move(s.staged);
    s.staged.clear();
  }
  for (const auto& [_, b] : s.sealed) out.push_back(b);
  return out;
}

void RecordProducer::commit(int64_t id) {
  State& s = *s_;
  if (s.config.guarantee != DeliveryGuarantee::kExactlyOnce) return;
  while (!s.sealed.empty() && s.sealed.begin()->first <= id) {
    s.commit_batch(s.sealed.begin()->second);
    s.sealed.erase(s.sealed.begin());
  }
}

void RecordProducer::close() {
  State& s = *s_;
  if (!s.rk) return;
  if (s.config.guarantee != DeliveryGuarantee::kExactlyOnce) s.flush();
  for (auto& [_, c] : s.marker_clients) rd_kafka_consumer_close(c.get());
  s.marker_clients.clear();
  s.destroy();
}

}  // namespace internal
}  // namespace sluice::kafka
