// sluice-kafka-bench: records per second, and per CPU-second, from a Kafka topic through a
// stateless Sluice job into a Kafka topic, beside librdkafka's producer writing the same records
// alone and its consumer reading them alone, all in one run on the mock cluster of
// `sluice-kafka-dev` (a program that prints figures, never a test). See bench/README.md.
//
// Setup: sluice-kafka-dev (one broker) with the topics, its bootstrap servers read from its first
// line of output; --records records of --record-size bytes written to the topic `input` (not
// timed); a JobManager and a TaskManager of --parallelism slots (build/bin, 127.0.0.1, a free
// port, stopped by pid). Then --rounds rounds, each measuring in turn:
//   1. librdkafka's producer alone writing the same records to the topic `produced` (no key, the
//      default partitioner, as the Kafka sink), then flushing;
//   2. librdkafka's consumer alone reading `input` (every partition assigned from its start,
//      batches of 1,024 as the Kafka source fetches) until it has every record;
//   3. a hand-written loop on one thread: that consumer into that producer, to `output-loop` (what
//      the job does, without Sluice);
//   4. the job bench/jobs/kafka_pipeline.cc (Kafka source, bounded -> identity map -> Kafka sink,
//      chained into one task) once per delivery guarantee (--guarantees), into `output-<g>`, timed
//      from submission to FINISHED; and the same with each --compare-lib library.
// Every writer's output is checked: the end offsets must have grown by the record count, and the
// records the mock still keeps (it keeps the newest 5 MiB of a partition) are read back and must
// be records written, byte for byte, each once.
//
// CPU is read from getrusage and the calling thread's clock (this process: librdkafka alone, as
// nothing else runs in it then) and /proc/<pid>/stat (the TaskManager, its threads sampled every
// 20 ms while the job runs); the mock cluster's CPU (sluice-kafka-dev) and that of every other
// process on the machine are shown beside each measurement.
#include <dirent.h>
#include <librdkafka/rdkafka.h>
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "bench_util.h"
#include "client/job_client.h"
#include "common/job_graph.h"
#include "common/job_library.h"
#include "common/job_states.h"
#include "common/process.h"
#include "common/status_macros.h"

namespace sluice::bench {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

constexpr int kBatch = 1024;  // records per consume call, as the Kafka source fetches
// librdkafka 2.0.2's mock cluster keeps the newest 5 MiB of each partition (whole message sets)
// and drops older ones. The input topic must keep all its records: at most this many bytes of
// records a partition, at about record size + kRecordOverhead bytes each (a v2 record's framing
// and the batches' headers).
constexpr int64_t kPartitionBudget = 4'500'000;
constexpr int64_t kRecordOverhead = 20;

struct Options {
  int64_t records = 2'000'000;
  int record_size = 100;
  int partitions = 0;  // 0: enough for the mock to keep the input, at least 2
  int parallelism = 1;
  int rounds = 3;
  std::vector<std::string> guarantees = {"none", "at-least-once"};
  std::string checkpoint_interval = "10s";
  bool loop = true;
  std::vector<std::string> producer_props;  // key=value, for every producer and the sink
  std::vector<std::string> consumer_props;  // key=value, for every consumer and the source
  std::vector<std::string> overrides;       // -D key=value for the daemons
  // LABEL=PATH: the job also run with another build of libbench_kafka_pipeline.so.
  std::vector<std::string> compare_libs;
  std::string bin_dir, lib_dir;
  bool keep_dir = false;
};

// ---------------------------------------------------------------------------------------------
// Records.

// Record i: its index in 12 digits, then letters that depend on i (the same bytes every run).
class RecordMaker {
 public:
  explicit RecordMaker(int size) : size_(static_cast<size_t>(size)), buf_(size_, ' ') {
    for (size_t j = 0; j < size_ + 26; ++j) pattern_.push_back(static_cast<char>('a' + j % 26));
  }
  std::string_view Make(int64_t i) {
    const size_t digits = std::min<size_t>(12, size_);
    std::memcpy(buf_.data() + digits, pattern_.data() + i % 26, size_ - digits);
    uint64_t v = static_cast<uint64_t>(i);
    for (size_t d = digits; d-- > 0;) {
      buf_[d] = static_cast<char>('0' + v % 10);
      v /= 10;
    }
    return buf_;
  }
  // The index of a record Make() made, or -1.
  int64_t IndexOf(std::string_view v) {
    if (v.size() != size_) return -1;
    int64_t i = 0;
    for (size_t d = 0; d < std::min<size_t>(12, size_); ++d) {
      if (v[d] < '0' || v[d] > '9') return -1;
      i = i * 10 + (v[d] - '0');
    }
    return Make(i) == v ? i : -1;
  }

 private:
  size_t size_;
  std::string buf_, pattern_;
};

// ---------------------------------------------------------------------------------------------
// CPU clocks.

double SelfCpuSeconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// CPU seconds so far of this process, of its calling thread, of some processes and of the whole
// machine.
struct CpuSnapshot {
  static CpuSnapshot Take(const std::vector<pid_t>& pids) {
    CpuSnapshot s;
    s.self = SelfCpuSeconds();
    s.thread = ThreadCpuSeconds();
    s.machine = MachineBusySeconds();
    for (pid_t p : pids) s.procs[p] = ProcessCpuSeconds(p);
    return s;
  }
  double self = 0, thread = 0, machine = 0;
  std::map<pid_t, double> procs;
};

// CPU seconds between two snapshots.
struct CpuDelta {
  CpuDelta(const CpuSnapshot& a, const CpuSnapshot& b)
      : self(b.self - a.self), thread(b.thread - a.thread) {
    double ours = self;
    for (const auto& [pid, cpu] : b.procs) {
      auto it = a.procs.find(pid);
      procs[pid] = cpu - (it == a.procs.end() ? 0 : it->second);
      ours += procs[pid];
    }
    others = std::max(0.0, (b.machine - a.machine) - ours);
  }
  double of(pid_t p) const {
    auto it = procs.find(p);
    return it == procs.end() ? 0 : it->second;
  }
  double self, thread, others;
  std::map<pid_t, double> procs;
};

// The threads of a process: name and CPU seconds so far, by thread id.
struct ThreadCpu {
  std::string name;
  double cpu = 0;
};
std::map<pid_t, ThreadCpu> ReadThreads(pid_t pid) {
  std::map<pid_t, ThreadCpu> out;
  const std::string dir = absl::StrCat("/proc/", pid, "/task");
  DIR* d = ::opendir(dir.c_str());
  if (!d) return out;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    std::ifstream f(dir + "/" + e->d_name + "/stat");
    std::string stat((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    ThreadCpu t;
    t.cpu = StatCpuSeconds(stat, &t.name);
    if (!t.name.empty()) out[std::atoi(e->d_name)] = std::move(t);
  }
  ::closedir(d);
  return out;
}

// ---------------------------------------------------------------------------------------------
// librdkafka clients.

struct RdDeleter {
  void operator()(rd_kafka_t* rk) const { rd_kafka_destroy(rk); }
  void operator()(rd_kafka_conf_t* c) const { rd_kafka_conf_destroy(c); }
  void operator()(rd_kafka_topic_t* t) const { rd_kafka_topic_destroy(t); }
  void operator()(rd_kafka_topic_partition_list_t* l) const {
    rd_kafka_topic_partition_list_destroy(l);
  }
  void operator()(rd_kafka_queue_t* q) const { rd_kafka_queue_destroy(q); }
};
using Handle = std::unique_ptr<rd_kafka_t, RdDeleter>;
using TopicHandle = std::unique_ptr<rd_kafka_topic_t, RdDeleter>;
using Props = std::vector<std::pair<std::string, std::string>>;

Props SplitProperties(const std::vector<std::string>& kvs) {
  Props out;
  for (const std::string& kv : kvs) {
    size_t eq = kv.find('=');
    out.emplace_back(kv.substr(0, eq), eq == std::string::npos ? "" : kv.substr(eq + 1));
  }
  return out;
}

// Failed deliveries, counted by the delivery report callback (on the thread that polls).
struct Deliveries {
  int64_t failed = 0;
  std::string first_error;
};

void OnDelivery(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
  if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) return;
  auto* d = static_cast<Deliveries*>(opaque);
  if (d->failed++ == 0) d->first_error = rd_kafka_err2str(m->err);
}

absl::StatusOr<Handle> NewClient(rd_kafka_type_t type, const std::string& servers,
                                 const Props& props, Deliveries* deliveries = nullptr) {
  std::unique_ptr<rd_kafka_conf_t, RdDeleter> conf(rd_kafka_conf_new());
  char err[512];
  auto set = [&](const std::string& k, const std::string& v) -> absl::Status {
    if (rd_kafka_conf_set(conf.get(), k.c_str(), v.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
      return absl::InvalidArgumentError(absl::StrCat("Kafka property ", k, "=", v, ": ", err));
    }
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(set("bootstrap.servers", servers));
  if (type == RD_KAFKA_CONSUMER) {
    // As the Kafka source sets them.
    RETURN_IF_ERROR(set("group.id", "sluice-kafka-bench"));
    RETURN_IF_ERROR(set("enable.auto.commit", "false"));
    RETURN_IF_ERROR(set("enable.auto.offset.store", "false"));
    RETURN_IF_ERROR(set("enable.partition.eof", "false"));
  }
  for (const auto& [k, v] : props) RETURN_IF_ERROR(set(k, v));
  if (deliveries) {
    rd_kafka_conf_set_dr_msg_cb(conf.get(), OnDelivery);
    rd_kafka_conf_set_opaque(conf.get(), deliveries);
  }
  rd_kafka_t* rk = rd_kafka_new(type, conf.get(), err, sizeof err);
  if (!rk) return absl::InternalError(absl::StrCat("cannot create a Kafka client: ", err));
  conf.release();
  return Handle(rk);
}

// A producer and a handle of the topic it writes: librdkafka's fastest way to produce.
struct Producer {
  Deliveries deliveries;
  Handle rk;
  TopicHandle topic;
  uint64_t sent = 0;

  static absl::StatusOr<std::unique_ptr<Producer>> Open(const std::string& servers,
                                                        const std::string& topic,
                                                        const Props& props) {
    auto p = std::make_unique<Producer>();
    ASSIGN_OR_RETURN(p->rk, NewClient(RD_KAFKA_PRODUCER, servers, props, &p->deliveries));
    p->topic.reset(rd_kafka_topic_new(p->rk.get(), topic.c_str(), nullptr));
    if (!p->topic) {
      return absl::InternalError(
          absl::StrCat("topic ", topic, ": ", rd_kafka_err2str(rd_kafka_last_error())));
    }
    return p;
  }

  // One record, the value copied (as the Kafka sink produces), into `partition`
  // (RD_KAFKA_PARTITION_UA: the default partitioner's choice, as the sink leaves it). Polls for
  // deliveries every 256 records, and while librdkafka's queue is full.
  absl::Status Produce(int32_t partition, std::string_view value) {
    for (;;) {
      rd_kafka_resp_err_t err = rd_kafka_producev(
          rk.get(), RD_KAFKA_V_RKT(topic.get()), RD_KAFKA_V_PARTITION(partition),
          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
          RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()), RD_KAFKA_V_END);
      if (err == RD_KAFKA_RESP_ERR_NO_ERROR) break;
      if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
        return absl::InternalError(absl::StrCat("producing to ", rd_kafka_topic_name(topic.get()),
                                                ": ", rd_kafka_err2str(err)));
      }
      rd_kafka_poll(rk.get(), 10);
    }
    if ((++sent & 255) == 0) rd_kafka_poll(rk.get(), 0);
    return absl::OkStatus();
  }

  absl::Status Flush() {
    rd_kafka_resp_err_t err = rd_kafka_flush(rk.get(), 120'000);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return absl::DeadlineExceededError(
          absl::StrCat(rd_kafka_outq_len(rk.get()),
                       " records not acknowledged within 120 s: ", rd_kafka_err2str(err)));
    }
    if (deliveries.failed > 0) {
      return absl::InternalError(absl::StrCat(
          deliveries.failed, " deliveries failed, the first with: ", deliveries.first_error));
    }
    return absl::OkStatus();
  }

  ~Producer() {
    topic.reset();
    rk.reset();
  }
};

// A consumer with every partition of `topic` assigned (from `start`, one offset a partition, or
// from the first offset), and its queue.
struct AssignedConsumer {
  Handle rk;
  std::unique_ptr<rd_kafka_queue_t, RdDeleter> queue;

  static absl::StatusOr<std::unique_ptr<AssignedConsumer>> Open(
      const std::string& servers, const std::string& topic, int partitions, const Props& props,
      const std::vector<int64_t>& start = {}) {
    auto c = std::make_unique<AssignedConsumer>();
    ASSIGN_OR_RETURN(c->rk, NewClient(RD_KAFKA_CONSUMER, servers, props));
    std::unique_ptr<rd_kafka_topic_partition_list_t, RdDeleter> list(
        rd_kafka_topic_partition_list_new(partitions));
    for (int p = 0; p < partitions; ++p) {
      rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), p)->offset =
          start.empty() ? RD_KAFKA_OFFSET_BEGINNING : start[static_cast<size_t>(p)];
    }
    rd_kafka_resp_err_t err = rd_kafka_assign(c->rk.get(), list.get());
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return absl::InternalError(absl::StrCat("assigning ", topic, ": ", rd_kafka_err2str(err)));
    }
    c->queue.reset(rd_kafka_queue_get_consumer(c->rk.get()));
    return c;
  }

  // Calls `f` for every record until `n` records were seen; fails after 30 s without a record.
  template <class F>
  absl::Status Consume(int64_t n, F&& f) {
    std::vector<rd_kafka_message_t*> batch(kBatch);
    int64_t seen = 0;
    auto last = Clock::now();
    while (seen < n) {
      ssize_t got = rd_kafka_consume_batch_queue(queue.get(), 100, batch.data(), batch.size());
      if (got < 0) return absl::InternalError(rd_kafka_err2str(rd_kafka_last_error()));
      for (ssize_t i = 0; i < got; ++i) {
        rd_kafka_message_t* m = batch[static_cast<size_t>(i)];
        if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
          ++seen;
          f(m);
        }
        rd_kafka_message_destroy(m);
      }
      if (got > 0) {
        last = Clock::now();
      } else if (SecondsSince(last) > 30) {
        return absl::DeadlineExceededError(
            absl::StrCat("read ", seen, " of ", n, " records, then nothing for 30 s"));
      }
    }
    return absl::OkStatus();
  }

  ~AssignedConsumer() {
    queue.reset();
    if (rk) rd_kafka_consumer_close(rk.get());
  }
};

// The low and high offsets of every partition of `topic`.
absl::StatusOr<std::vector<std::pair<int64_t, int64_t>>> Offsets(rd_kafka_t* rk,
                                                                 const std::string& topic,
                                                                 int partitions) {
  std::vector<std::pair<int64_t, int64_t>> out;
  for (int p = 0; p < partitions; ++p) {
    int64_t lo = 0, hi = 0;
    rd_kafka_resp_err_t err =
        rd_kafka_query_watermark_offsets(rk, topic.c_str(), p, &lo, &hi, 10'000);
    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return absl::InternalError(
          absl::StrCat("the offsets of ", topic, "-", p, ": ", rd_kafka_err2str(err)));
    }
    out.emplace_back(lo, hi);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The processes: sluice-kafka-dev, a JobManager and a TaskManager.

// Starts sluice-kafka-dev with `topics` (name:partitions) and returns it with its bootstrap list,
// the first line of its standard output.
absl::StatusOr<std::pair<std::unique_ptr<Daemon>, std::string>> StartKafka(
    const Options& o, const std::string& dir, const std::vector<std::string>& topics) {
  std::vector<std::string> args;
  for (const std::string& t : topics) args.insert(args.end(), {"--topic", t});
  ASSIGN_OR_RETURN(auto dev,
                   Daemon::Spawn(o.bin_dir + "/sluice-kafka-dev", args, dir + "/kafka-dev.log"));
  static const std::regex kBootstrap(R"(^(127\.0\.0\.1:\d+(,127\.0\.0\.1:\d+)*)$)");
  auto t0 = Clock::now();
  while (SecondsSince(t0) < 20 && dev->Alive()) {
    std::istringstream text(dev->LogText());
    std::string line;
    while (std::getline(text, line)) {
      std::smatch m;
      if (std::regex_match(line, m, kBootstrap)) return std::make_pair(std::move(dev), m[1].str());
    }
    std::this_thread::sleep_for(10ms);
  }
  return absl::UnavailableError("sluice-kafka-dev printed no bootstrap servers:\n" +
                                dev->LogTail());
}

// A JobManager and one TaskManager of `slots` slots on 127.0.0.1.
class LocalCluster {
 public:
  static absl::StatusOr<std::unique_ptr<LocalCluster>> Start(const Options& o,
                                                             const std::string& dir, int slots) {
    std::unique_ptr<LocalCluster> c(new LocalCluster());
    std::string last;
    for (int attempt = 0; attempt < 3 && !c->client_; ++attempt) {
      ASSIGN_OR_RETURN(c->port_, FreePort());
      std::vector<std::string> args = c->Settings(o, dir);
      args.insert(args.end(), {"-D", "jobmanager.bind-host=127.0.0.1", "-D", "rest.port=0"});
      ASSIGN_OR_RETURN(
          c->jm_, Daemon::Spawn(o.bin_dir + "/sluice-jobmanager", args, dir + "/jobmanager.log"));
      // Plain TCP connects first: a gRPC channel that failed to connect backs off for seconds.
      auto t0 = Clock::now();
      while (c->jm_->Alive() && !PortAccepts(c->port_) && SecondsSince(t0) < 20) {
        std::this_thread::sleep_for(10ms);
      }
      if (c->jm_->Alive() && PortAccepts(c->port_)) {
        c->client_ = std::make_unique<JobClient>(absl::StrCat("127.0.0.1:", c->port_), 10s);
        if (c->client_->Overview().ok()) break;
        c->client_.reset();
      }
      last = c->jm_->LogTail();
      c->jm_->Stop();
    }
    if (!c->client_) return absl::UnavailableError("sluice-jobmanager did not start:\n" + last);

    std::vector<std::string> args = c->Settings(o, dir);
    for (const std::string& s :
         {std::string("taskmanager.host=127.0.0.1"), std::string("taskmanager.bind-host=127.0.0.1"),
          std::string("taskmanager.rpc.port=0"),
          absl::StrCat("taskmanager.numberOfTaskSlots=", slots),
          absl::StrCat("blob.storage.directory=", dir, "/blobs-tm")}) {
      args.insert(args.end(), {"-D", s});
    }
    ASSIGN_OR_RETURN(
        c->tm_, Daemon::Spawn(o.bin_dir + "/sluice-taskmanager", args, dir + "/taskmanager.log"));
    auto t0 = Clock::now();
    while (true) {
      auto ov = c->client_->Overview();
      if (ov.ok() && ov->total_slots() >= slots) break;
      if (!c->tm_->Alive() || SecondsSince(t0) > 20) {
        return absl::UnavailableError(
            absl::StrCat("the TaskManager did not register within 20 s.\n", c->LogTails()));
      }
      std::this_thread::sleep_for(10ms);
    }
    return c;
  }
  ~LocalCluster() {
    client_.reset();  // a connected client delays the JobManager's shutdown
    if (tm_) tm_->Stop();
    if (jm_) jm_->Stop();
  }

  JobClient& client() { return *client_; }
  pid_t jm_pid() const { return jm_->pid(); }
  pid_t tm_pid() const { return tm_->pid(); }
  std::string LogTails() const {
    return absl::StrCat("--- jobmanager log ---\n", jm_->LogTail(), "\n--- taskmanager log ---\n",
                        tm_ ? tm_->LogTail() : "");
  }

 private:
  LocalCluster() = default;
  std::vector<std::string> Settings(const Options& o, const std::string& dir) const {
    std::vector<std::string> s;
    for (const std::string& kv : {std::string("jobmanager.rpc.address=127.0.0.1"),
                                  absl::StrCat("jobmanager.rpc.port=", port_),
                                  absl::StrCat("state.checkpoints.dir=", dir, "/checkpoints")}) {
      s.insert(s.end(), {"-D", kv});
    }
    for (const auto& kv : o.overrides) s.insert(s.end(), {"-D", kv});
    return s;
  }

  int port_ = 0;
  std::unique_ptr<Daemon> jm_, tm_;
  std::unique_ptr<JobClient> client_;
};

// ---------------------------------------------------------------------------------------------
// Measurements.

struct Measurement {
  std::string name;
  int64_t records = 0;
  double wall_s = 0;      // client created (job submitted) to the last record read or acknowledged
  double active_s = 0;    // from the first record (the job: every task RUNNING) to the end
  double cpu_s = 0;       // the client's CPU: this process, or the TaskManager
  double app_s = 0;       // of that, the thread running the loop (the job: its task thread)
  double rdk_s = 0;       // of that, librdkafka's threads
  double mock_s = 0;      // sluice-kafka-dev's CPU
  double jm_s = 0;        // the JobManager's CPU (the job only)
  double others_s = 0;    // every other process on the machine
  int64_t read_back = 0;  // output records read back and checked
  int64_t checkpoints = 0;
  double rate() const { return wall_s > 0 ? static_cast<double>(records) / wall_s : 0; }
  double per_cpu() const { return cpu_s > 0 ? static_cast<double>(records) / cpu_s : 0; }
  double per_cpu_with_mock() const {
    return cpu_s + mock_s > 0 ? static_cast<double>(records) / (cpu_s + mock_s) : 0;
  }
};

// A build of the job library, uploaded to the cluster.
struct JobLib {
  std::string label;  // empty: the one from --lib-dir
  std::string path, sha;
  std::shared_ptr<JobLibrary> lib;
};

class Bench {
 public:
  Bench(const Options& o, std::string dir) : o_(o), dir_(std::move(dir)) {}

  absl::Status Run() {
    producer_props_ = SplitProperties(o_.producer_props);
    consumer_props_ = SplitProperties(o_.consumer_props);
    // The loop's consumer is set as the Kafka source sets its own (kafka_source.cc).
    loop_consumer_props_ = {{"queued.min.messages", "1000000"}};
    loop_consumer_props_.insert(loop_consumer_props_.end(), consumer_props_.begin(),
                                consumer_props_.end());
    std::vector<std::string> topics = {"input", "produced"};
    if (o_.loop) topics.push_back("output-loop");
    for (const std::string& g : o_.guarantees) topics.push_back("output-" + g);
    for (std::string& t : topics) t = absl::StrCat(t, ":", o_.partitions);
    ASSIGN_OR_RETURN(auto kafka, StartKafka(o_, dir_, topics));
    kafka_ = std::move(kafka.first);
    servers_ = kafka.second;
    ASSIGN_OR_RETURN(admin_, NewClient(RD_KAFKA_PRODUCER, servers_, {}));
    RETURN_IF_ERROR(FillInput());
    ASSIGN_OR_RETURN(cluster_, LocalCluster::Start(o_, dir_, o_.parallelism));
    RETURN_IF_ERROR(LoadLibraries());

    PrintHeader();
    for (int round = 1; round <= o_.rounds; ++round) {
      std::printf("round %d\n", round);
      ASSIGN_OR_RETURN(Measurement p, ProducerAlone());
      Record(p);
      ASSIGN_OR_RETURN(Measurement c, ConsumerAlone());
      Record(c);
      if (o_.loop) {
        ASSIGN_OR_RETURN(Measurement l, HandWrittenLoop());
        Record(l);
      }
      for (const std::string& g : o_.guarantees) {
        // With --compare-lib, the libraries take turns at going first.
        for (size_t k = 0; k < libs_.size(); ++k) {
          const JobLib& lib = libs_[(k + static_cast<size_t>(round - 1)) % libs_.size()];
          ASSIGN_OR_RETURN(Measurement j, Pipeline(g, lib));
          Record(j);
        }
      }
    }
    PrintSummary();
    return absl::OkStatus();
  }

 private:
  std::vector<pid_t> Pids() const {
    std::vector<pid_t> p = {kafka_->pid()};
    if (cluster_) p.insert(p.end(), {cluster_->jm_pid(), cluster_->tm_pid()});
    return p;
  }

  // Writes the records to `input`, record i to partition i * P / N: as many to each, one
  // partition after the other, so that the mock keeps them all. Not timed.
  absl::Status FillInput() {
    ASSIGN_OR_RETURN(auto p, Producer::Open(servers_, "input", producer_props_));
    RecordMaker maker(o_.record_size);
    for (int64_t i = 0; i < o_.records; ++i) {
      RETURN_IF_ERROR(
          p->Produce(static_cast<int32_t>(i * o_.partitions / o_.records), maker.Make(i)));
    }
    RETURN_IF_ERROR(p->Flush());
    ASSIGN_OR_RETURN(auto offsets, Offsets(admin_.get(), "input", o_.partitions));
    int64_t kept = 0;
    for (const auto& [lo, hi] : offsets) kept += lo == 0 ? hi : 0;
    if (kept != o_.records) {
      return absl::DataLossError(absl::StrCat("the mock cluster kept ", kept, " of the ",
                                              o_.records, " records written to topic input"));
    }
    return absl::OkStatus();
  }

  // Checks what a writer added to `topic` since `before` (its offsets then): the end offsets must
  // have grown by the record count (the mock writes no transaction markers, so an offset is a
  // record), and the records the mock still keeps must be records written, byte for byte, each
  // once. Returns how many were read back.
  absl::StatusOr<int64_t> Verify(const std::string& topic,
                                 const std::vector<std::pair<int64_t, int64_t>>& before,
                                 bool read_back) {
    ASSIGN_OR_RETURN(auto after, Offsets(admin_.get(), topic, o_.partitions));
    int64_t written = 0, kept = 0;
    std::vector<int64_t> start;
    for (size_t p = 0; p < after.size(); ++p) {
      written += after[p].second - before[p].second;
      start.push_back(std::max(after[p].first, before[p].second));
      kept += after[p].second - start.back();
    }
    if (written != o_.records) {
      return absl::DataLossError(
          absl::StrCat("topic ", topic, " got ", written, " records, not ", o_.records));
    }
    if (!read_back) return 0;
    ASSIGN_OR_RETURN(
        auto c, AssignedConsumer::Open(servers_, topic, o_.partitions, consumer_props_, start));
    RecordMaker maker(o_.record_size);
    std::vector<bool> seen(static_cast<size_t>(o_.records));
    std::string bad;
    RETURN_IF_ERROR(c->Consume(kept, [&](const rd_kafka_message_t* m) {
      std::string_view v(static_cast<const char*>(m->payload), m->len);
      int64_t i = maker.IndexOf(v);
      if (!bad.empty()) return;
      if (i < 0 || i >= o_.records) {
        bad = absl::StrCat("a record of topic ", topic, " is not one written: '", std::string(v),
                           "'");
      } else if (seen[static_cast<size_t>(i)]) {
        bad = absl::StrCat("record ", i, " is twice in topic ", topic);
      } else {
        seen[static_cast<size_t>(i)] = true;
      }
    }));
    if (!bad.empty()) return absl::DataLossError(bad);
    return kept;
  }

  void Fill(Measurement& m, const CpuDelta& c) const {
    m.mock_s = c.of(kafka_->pid());
    m.others_s = c.others;
  }

  absl::StatusOr<Measurement> ProducerAlone() {
    Measurement m{"librdkafka producer alone"};
    m.records = o_.records;
    ASSIGN_OR_RETURN(auto before, Offsets(admin_.get(), "produced", o_.partitions));
    RecordMaker maker(o_.record_size);
    CpuSnapshot c0 = CpuSnapshot::Take(Pids());
    auto t0 = Clock::now();
    ASSIGN_OR_RETURN(auto p, Producer::Open(servers_, "produced", producer_props_));
    auto first = Clock::now();
    for (int64_t i = 0; i < o_.records; ++i) {
      RETURN_IF_ERROR(p->Produce(RD_KAFKA_PARTITION_UA, maker.Make(i)));
    }
    RETURN_IF_ERROR(p->Flush());
    m.wall_s = SecondsSince(t0);
    m.active_s = SecondsSince(first);
    CpuDelta c(c0, CpuSnapshot::Take(Pids()));
    Fill(m, c);
    m.cpu_s = c.self;
    m.app_s = c.thread;
    m.rdk_s = c.self - c.thread;
    p.reset();
    ASSIGN_OR_RETURN(m.read_back, Verify("produced", before, false));
    return m;
  }

  absl::StatusOr<Measurement> ConsumerAlone() {
    Measurement m{"librdkafka consumer alone"};
    m.records = o_.records;
    CpuSnapshot c0 = CpuSnapshot::Take(Pids());
    auto t0 = Clock::now();
    ASSIGN_OR_RETURN(auto c,
                     AssignedConsumer::Open(servers_, "input", o_.partitions, consumer_props_));
    uint64_t bytes = 0;
    std::optional<Clock::time_point> first;
    RETURN_IF_ERROR(c->Consume(o_.records, [&](const rd_kafka_message_t* msg) {
      if (!first) first = Clock::now();
      bytes += msg->len;
    }));
    m.wall_s = SecondsSince(t0);
    m.active_s = SecondsSince(*first);
    CpuDelta cpu(c0, CpuSnapshot::Take(Pids()));
    Fill(m, cpu);
    m.cpu_s = cpu.self;
    m.app_s = cpu.thread;
    m.rdk_s = cpu.self - cpu.thread;
    c.reset();
    if (bytes != static_cast<uint64_t>(o_.records) * static_cast<uint64_t>(o_.record_size)) {
      return absl::DataLossError(absl::StrCat("the consumer read ", bytes, " bytes"));
    }
    return m;
  }

  absl::StatusOr<Measurement> HandWrittenLoop() {
    Measurement m{"loop: consumer -> producer"};
    m.records = o_.records;
    ASSIGN_OR_RETURN(auto before, Offsets(admin_.get(), "output-loop", o_.partitions));
    CpuSnapshot c0 = CpuSnapshot::Take(Pids());
    auto t0 = Clock::now();
    ASSIGN_OR_RETURN(
        auto c, AssignedConsumer::Open(servers_, "input", o_.partitions, loop_consumer_props_));
    ASSIGN_OR_RETURN(auto p, Producer::Open(servers_, "output-loop", producer_props_));
    absl::Status produced = absl::OkStatus();
    std::optional<Clock::time_point> first;
    RETURN_IF_ERROR(c->Consume(o_.records, [&](const rd_kafka_message_t* msg) {
      if (!first) first = Clock::now();
      if (produced.ok()) {
        produced = p->Produce(RD_KAFKA_PARTITION_UA,
                              std::string_view(static_cast<const char*>(msg->payload), msg->len));
      }
    }));
    RETURN_IF_ERROR(produced);
    RETURN_IF_ERROR(p->Flush());
    m.wall_s = SecondsSince(t0);
    m.active_s = SecondsSince(*first);
    CpuDelta cpu(c0, CpuSnapshot::Take(Pids()));
    Fill(m, cpu);
    m.cpu_s = cpu.self;
    m.app_s = cpu.thread;
    m.rdk_s = cpu.self - cpu.thread;
    c.reset();
    p.reset();
    ASSIGN_OR_RETURN(m.read_back, Verify("output-loop", before, true));
    return m;
  }

  // Loads the job libraries and uploads them.
  absl::Status LoadLibraries() {
    std::vector<std::pair<std::string, std::string>> specs = {
        {"", o_.lib_dir + "/libbench_kafka_pipeline.so"}};
    for (const std::string& s : o_.compare_libs) {
      size_t eq = s.find('=');
      specs.emplace_back(s.substr(0, eq), s.substr(eq + 1));
    }
    for (const auto& [label, path] : specs) {
      JobLib l;
      l.label = label;
      l.path = path;
      ASSIGN_OR_RETURN(l.lib, JobLibrary::Load(path));
      std::ifstream f(path, std::ios::binary);
      std::ostringstream ss;
      ss << f.rdbuf();
      ASSIGN_OR_RETURN(l.sha, cluster_->client().UploadLibrary(ss.str()));
      libs_.push_back(std::move(l));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<Measurement> Pipeline(const std::string& guarantee, const JobLib& lib) {
    const bool checkpoints = guarantee != "none";
    Measurement m{absl::StrCat("Sluice job, ", guarantee,
                               lib.label.empty() ? "" : absl::StrCat(" [", lib.label, "]"))};
    m.records = o_.records;
    const std::string output = "output-" + guarantee;
    std::vector<std::string> args = {"--bootstrap-servers",  servers_,
                                     "--input-topic",        "input",
                                     "--output-topic",       output,
                                     "--delivery-guarantee", guarantee,
                                     "--parallelism",        std::to_string(o_.parallelism)};
    if (!o_.producer_props.empty()) {
      args.insert(args.end(), {"--producer-property", absl::StrJoin(o_.producer_props, ",")});
    }
    if (!o_.consumer_props.empty()) {
      args.insert(args.end(), {"--consumer-property", absl::StrJoin(o_.consumer_props, ",")});
    }
    ASSIGN_OR_RETURN(std::unique_ptr<StreamExecutionEnvironment> env,
                     lib.lib->BuildEnvironment(args));
    ASSIGN_OR_RETURN(proto::JobGraph graph, BuildJobGraph(*env, JobGraphOptions{}));
    proto::SubmitJobRequest req;
    *req.mutable_graph() = std::move(graph);
    req.set_library_sha256(lib.sha);
    for (const auto& a : args) req.add_args(a);
    if (checkpoints) {
      (*req.mutable_config())["execution.checkpointing.interval"] = o_.checkpoint_interval;
    }
    ASSIGN_OR_RETURN(auto before, Offsets(admin_.get(), output, o_.partitions));

    const pid_t tm = cluster_->tm_pid();
    // The TaskManager's threads: those there before the job are its own; of the new ones, the
    // task threads (named t<vertex>.<subtask>) and librdkafka's (rdk:...). A thread's figure is
    // its last sample: up to 20 ms of a thread that ends with the job are missed.
    const std::map<pid_t, ThreadCpu> threads0 = ReadThreads(tm);
    std::map<pid_t, ThreadCpu> threads = threads0;
    auto sample = [&] {
      for (auto& [tid, t] : ReadThreads(tm)) threads[tid] = t;
    };
    CpuSnapshot c0 = CpuSnapshot::Take(Pids());
    auto t0 = Clock::now();
    ASSIGN_OR_RETURN(std::string job, cluster_->client().Submit(req));
    proto::JobStatus st;
    std::optional<Clock::time_point> running;  // every task RUNNING
    for (int poll = 0;; ++poll) {
      auto s = cluster_->client().GetJob(job);
      if (s.ok()) {
        st = *s;
        if (!running && st.state() == proto::JOB_RUNNING && st.tasks_size() > 0 &&
            std::all_of(st.tasks().begin(), st.tasks().end(),
                        [](const auto& t) { return t.state() == proto::TASK_RUNNING; })) {
          running = Clock::now();
        }
        if (IsTerminalJobState(st.state())) break;
      }
      if (SecondsSince(t0) > 600) {
        return absl::DeadlineExceededError(
            absl::StrCat("job ", job, " did not end within 600 s\n", cluster_->LogTails()));
      }
      if (poll % 2 == 1) sample();
      std::this_thread::sleep_for(10ms);
    }
    m.wall_s = SecondsSince(t0);
    if (running) m.active_s = SecondsSince(*running);
    CpuDelta cpu(c0, CpuSnapshot::Take(Pids()));
    sample();
    if (st.state() != proto::JOB_FINISHED) {
      return absl::InternalError(absl::StrCat("job ", job, " ended ",
                                              std::string(JobStateName(st.state())), ": ",
                                              st.failure(), "\n", cluster_->LogTails()));
    }
    Fill(m, cpu);
    m.others_s += cpu.self;  // this process, polling the JobManager and sampling threads
    m.cpu_s = cpu.of(tm);
    m.jm_s = cpu.of(cluster_->jm_pid());
    static const std::regex kTaskThread(R"(t\d+\.\d+)");
    for (const auto& [tid, t] : threads) {
      auto it = threads0.find(tid);
      const bool fresh = it == threads0.end() || it->second.name != t.name;
      const double used = t.cpu - (fresh ? 0 : it->second.cpu);
      if (t.name.rfind("rdk:", 0) == 0) {
        m.rdk_s += used;
      } else if (std::regex_match(t.name, kTaskThread)) {
        m.app_s += used;
      }
    }
    m.checkpoints = st.completed_checkpoints();
    ASSIGN_OR_RETURN(m.read_back, Verify(output, before, true));
    return m;
  }

  // ---- printing ----

  void Record(const Measurement& m) {
    if (!by_name_.count(m.name)) order_.push_back(m.name);
    by_name_[m.name].push_back(m);
    PrintLine(m, absl::StrCat("  ", m.name));
  }

  static constexpr const char* kLineFormat =
      "%-44s %7.2f %10s %7.2f %7.2f %10s %7.2f %7.2f %7.2f %10s %7.2f\n";

  void PrintHeader() const {
    std::printf(
        "sluice-kafka-bench: %s records of %d bytes (no key), topics of %d partitions on "
        "sluice-kafka-dev (1 broker), job parallelism %d, %d round%s, %ld cores, librdkafka %s\n",
        Count(o_.records).c_str(), o_.record_size, o_.partitions, o_.parallelism, o_.rounds,
        o_.rounds == 1 ? "" : "s", ::sysconf(_SC_NPROCESSORS_ONLN), rd_kafka_version_str());
    if (!o_.producer_props.empty()) {
      std::printf("producer properties: %s\n", absl::StrJoin(o_.producer_props, ",").c_str());
    }
    if (!o_.consumer_props.empty()) {
      std::printf("consumer properties: %s\n", absl::StrJoin(o_.consumer_props, ",").c_str());
    }
    for (const JobLib& l : libs_) {
      if (!l.label.empty()) std::printf("[%s]: %s\n", l.label.c_str(), l.path.c_str());
    }
    PrintColumns();
  }

  static void PrintColumns() {
    std::printf("\n%-44s %7s %10s %7s %7s %10s %7s %7s %7s %10s %7s\n", "", "wall s", "records/s",
                "active", "CPU s", "per CPU-s", "app thr", "rdk thr", "mock s", "incl. mock",
                "others");
  }

  static void PrintLine(const Measurement& m, const std::string& label) {
    std::printf(kLineFormat, label.c_str(), m.wall_s, Rate(m.rate()).c_str(), m.active_s, m.cpu_s,
                Rate(m.per_cpu()).c_str(), m.app_s, m.rdk_s, m.mock_s,
                Rate(m.per_cpu_with_mock()).c_str(), m.others_s);
    std::fflush(stdout);
  }

  // The median of `f` over the rounds of measurement `name`.
  double MedianOf(const std::string& name, const std::function<double(const Measurement&)>& f) {
    std::vector<double> v;
    for (const Measurement& m : by_name_[name]) v.push_back(f(m));
    return Median(v);
  }

  void PrintSummary() {
    const std::string kProducer = "librdkafka producer alone",
                      kConsumer = "librdkafka consumer alone";
    std::printf("\nmedians of %d round%s", o_.rounds, o_.rounds == 1 ? "" : "s");
    PrintColumns();
    for (const std::string& name : order_) {
      Measurement med{name};
      med.records = o_.records;
      med.wall_s = MedianOf(name, [](const Measurement& m) { return m.wall_s; });
      med.active_s = MedianOf(name, [](const Measurement& m) { return m.active_s; });
      med.cpu_s = MedianOf(name, [](const Measurement& m) { return m.cpu_s; });
      med.app_s = MedianOf(name, [](const Measurement& m) { return m.app_s; });
      med.rdk_s = MedianOf(name, [](const Measurement& m) { return m.rdk_s; });
      med.mock_s = MedianOf(name, [](const Measurement& m) { return m.mock_s; });
      med.others_s = MedianOf(name, [](const Measurement& m) { return m.others_s; });
      PrintLine(med, name);
    }
    std::printf(
        "\nwall s: from creating the clients (submitting the job) to the last record read or "
        "acknowledged. active: from the first record\n(the job: every task RUNNING) to the end. "
        "CPU s: this process for librdkafka alone and the loop, the TaskManager for the job;\n"
        "app thr: of that, the thread that consumes and produces (the job: its task thread); rdk "
        "thr: librdkafka's own threads. mock s:\nsluice-kafka-dev (the broker). incl. mock: "
        "records per CPU-second of the client and the mock together. others: every other "
        "process\non the machine (for the job, this one too). Per CPU-s and records/s in this "
        "table are from the median times.\n");
    for (const std::string& name : order_) {
      const Measurement& m0 = by_name_[name].front();
      if (m0.name.rfind("Sluice job", 0) == 0) {
        std::vector<std::string> cps;
        for (const Measurement& m : by_name_[name]) cps.push_back(std::to_string(m.checkpoints));
        std::printf("%s: JobManager %.2f CPU s (median), checkpoints completed %s\n", name.c_str(),
                    MedianOf(name, [](const Measurement& m) { return m.jm_s; }),
                    absl::StrJoin(cps, ", ").c_str());
      }
      if (m0.name != kProducer && m0.name != kConsumer) {
        std::vector<std::string> back;
        for (const Measurement& m : by_name_[name]) back.push_back(Count(m.read_back));
        std::printf("%s: %s records out each round (end offsets); read back and checked: %s\n",
                    name.c_str(), Count(o_.records).c_str(), absl::StrJoin(back, ", ").c_str());
      }
    }

    // Each round's figures against that round's limit; the medians of those ratios.
    const std::vector<Measurement>& ps = by_name_[kProducer];
    const std::vector<Measurement>& cs = by_name_[kConsumer];
    auto limit = [&](size_t r, const std::function<double(const Measurement&)>& f) {
      return std::min(f(ps[r]), f(cs[r]));
    };
    auto rate = [](const Measurement& m) { return m.rate(); };
    auto per_cpu = [](const Measurement& m) { return m.per_cpu(); };
    auto with_mock = [](const Measurement& m) { return m.per_cpu_with_mock(); };
    std::vector<double> lw, lc, lm, composed;
    for (size_t r = 0; r < ps.size(); ++r) {
      lw.push_back(limit(r, rate));
      lc.push_back(limit(r, per_cpu));
      lm.push_back(limit(r, with_mock));
      // A pipeline consumes and produces every record: per record it costs at least what both
      // clients cost alone.
      composed.push_back(1.0 / (1.0 / ps[r].per_cpu() + 1.0 / cs[r].per_cpu()));
    }
    std::printf(
        "\nlimit: the slower of librdkafka's producer and consumer alone, each round; medians: %s "
        "wall, %s per CPU-s, %s per CPU-s incl. mock\n"
        "consume + produce composed, 1 / (1/producer + 1/consumer) per CPU-s: %s median, %.3f of "
        "the limit\n",
        Rate(Median(lw)).c_str(), Rate(Median(lc)).c_str(), Rate(Median(lm)).c_str(),
        Rate(Median(composed)).c_str(), Median(composed) / Median(lc));

    std::printf("\n%-44s %9s %10s %11s %10s   %s\n", "ratio to the limit (median of the rounds)",
                "wall", "per CPU-s", "incl. mock", "target", "per CPU-s, each round");
    for (const std::string& name : order_) {
      if (name == kProducer || name == kConsumer) continue;
      const std::vector<Measurement>& ms = by_name_[name];
      std::vector<double> w, c, k;
      std::vector<std::string> each;
      for (size_t r = 0; r < ms.size() && r < ps.size(); ++r) {
        w.push_back(ms[r].rate() / lw[r]);
        c.push_back(ms[r].per_cpu() / lc[r]);
        k.push_back(ms[r].per_cpu_with_mock() / lm[r]);
        each.push_back(absl::StrFormat("%.3f", c.back()));
      }
      std::printf("%-44s %9.3f %10.3f %11.3f %10s   %s\n", name.c_str(), Median(w), Median(c),
                  Median(k), Median(c) >= 0.5 ? "met" : "NOT met",
                  absl::StrJoin(each, " ").c_str());
    }
    std::printf(
        "target: the Sluice job at >= 0.5 of the limit per CPU-second (records per second "
        "per core); the wall figures depend on how busy the machine is\n");

    if (o_.loop) {
      const std::vector<Measurement>& ls = by_name_["loop: consumer -> producer"];
      std::printf("\n%-44s %9s %10s %22s\n", "Sluice job / loop (median of the rounds)", "wall",
                  "per CPU-s", "app thread ns/record");
      for (const std::string& name : order_) {
        if (name.rfind("Sluice job", 0) != 0) continue;
        const std::vector<Measurement>& ms = by_name_[name];
        std::vector<double> w, c;
        for (size_t r = 0; r < ms.size() && r < ls.size(); ++r) {
          w.push_back(ms[r].rate() / ls[r].rate());
          c.push_back(ms[r].per_cpu() / ls[r].per_cpu());
        }
        const double ns = 1e9 / static_cast<double>(o_.records);
        std::printf("%-44s %9.3f %10.3f %11.0f vs %.0f\n", name.c_str(), Median(w), Median(c),
                    MedianOf(name, [](const Measurement& m) { return m.app_s; }) * ns,
                    MedianOf("loop: consumer -> producer", [](const Measurement& m) {
                      return m.app_s;
                    }) * ns);
      }
    }

    if (libs_.size() > 1) {
      std::printf("\n%-44s %9s %10s\n", "this build / the other (median of the rounds)", "wall",
                  "per CPU-s");
      for (const std::string& g : o_.guarantees) {
        const std::string base = "Sluice job, " + g;
        for (size_t k = 1; k < libs_.size(); ++k) {
          const std::string other = absl::StrCat(base, " [", libs_[k].label, "]");
          const std::vector<Measurement>& a = by_name_[base];
          const std::vector<Measurement>& b = by_name_[other];
          std::vector<double> w, c;
          for (size_t r = 0; r < a.size() && r < b.size(); ++r) {
            w.push_back(a[r].rate() / b[r].rate());
            c.push_back(a[r].per_cpu() / b[r].per_cpu());
          }
          std::printf("%-44s %9.3f %10.3f\n",
                      absl::StrCat(g, ": this / [", libs_[k].label, "]").c_str(), Median(w),
                      Median(c));
        }
      }
    }
  }

  const Options& o_;
  std::string dir_;
  std::unique_ptr<Daemon> kafka_;
  std::string servers_;
  Handle admin_;  // for offset queries
  Props producer_props_, consumer_props_, loop_consumer_props_;
  std::unique_ptr<LocalCluster> cluster_;
  std::vector<JobLib> libs_;
  std::vector<std::string> order_;
  std::map<std::string, std::vector<Measurement>> by_name_;
};

std::string SelfDir() {
  std::error_code ec;
  auto exe = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string(".") : exe.parent_path().string();
}

}  // namespace
}  // namespace sluice::bench

int main(int argc, char** argv) {
  sluice::bench::Options o;
  std::string guarantees = "none,at-least-once";
  CLI::App app{
      "sluice-kafka-bench: a Kafka-to-Kafka Sluice job beside librdkafka's producer and consumer "
      "alone, on sluice-kafka-dev's mock cluster, in one run"};
  app.add_option("--records", o.records, "records written and read (default 2,000,000)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 32));
  app.add_option("--record-size", o.record_size, "bytes per record value, 12 or more (default 100)")
      ->check(CLI::Range(12, 1 << 20));
  app.add_option("--partitions", o.partitions,
                 "partitions of every topic (default: enough for the mock cluster, which keeps "
                 "5 MiB of a partition, to keep every input record; at least 2)")
      ->check(CLI::Range(1, 1024));
  app.add_option("--parallelism", o.parallelism, "of the job, and the TaskManager's slots (1)")
      ->check(CLI::Range(1, 64));
  app.add_option("--rounds", o.rounds, "rounds of every measurement (default 3)")
      ->check(CLI::Range(1, 100));
  app.add_option("--guarantees", guarantees,
                 "the job's delivery guarantees, comma separated: none, at-least-once (default "
                 "both)");
  app.add_option("--checkpoint-interval", o.checkpoint_interval,
                 "execution.checkpointing.interval of the at-least-once job (default 10s)");
  app.add_flag("!--no-loop", o.loop, "skip the hand-written consume -> produce loop");
  app.add_option("--producer-property", o.producer_props,
                 "key=value for every librdkafka producer: alone, the loop's and the job's sink "
                 "(repeatable)");
  app.add_option("--consumer-property", o.consumer_props,
                 "key=value for every librdkafka consumer: alone, the loop's and the job's "
                 "source (repeatable)");
  app.add_option("--compare-lib", o.compare_libs,
                 "LABEL=PATH: also run the job from another build of libbench_kafka_pipeline.so "
                 "(e.g. before a change), taking turns with this one (repeatable)");
  app.add_option("-D", o.overrides, "a configuration key=value for the JobManager and TaskManager");
  app.add_option("--bin-dir", o.bin_dir,
                 "folder of sluice-kafka-dev, sluice-jobmanager and sluice-taskmanager (default: "
                 "this binary's folder)");
  app.add_option("--lib-dir", o.lib_dir,
                 "folder of libbench_kafka_pipeline.so (default: ../bench from this binary's "
                 "folder)");
  app.add_flag("--keep-dir", o.keep_dir, "keep the daemons' logs and print their folder");
  CLI11_PARSE(app, argc, argv);
  o.guarantees = absl::StrSplit(guarantees, ',', absl::SkipEmpty());
  for (const std::string& g : o.guarantees) {
    if (g != "none" && g != "at-least-once") {
      std::fprintf(stderr, "--guarantees: none or at-least-once, not '%s'\n", g.c_str());
      return 2;
    }
  }
  for (const auto* list : {&o.producer_props, &o.consumer_props}) {
    for (const std::string& kv : *list) {
      if (kv.find('=') == std::string::npos || kv.find(',') != std::string::npos) {
        std::fprintf(stderr, "a property is key=value without a comma, not '%s'\n", kv.c_str());
        return 2;
      }
    }
  }
  for (const std::string& s : o.compare_libs) {
    if (s.find('=') == std::string::npos || s.find('=') == 0) {
      std::fprintf(stderr, "--compare-lib is LABEL=PATH, not '%s'\n", s.c_str());
      return 2;
    }
  }
  const int64_t per_partition = std::max<int64_t>(
      1, sluice::bench::kPartitionBudget / (o.record_size + sluice::bench::kRecordOverhead));
  const int64_t needed = (o.records + per_partition - 1) / per_partition;
  if (o.partitions == 0) {
    o.partitions = static_cast<int>(std::max<int64_t>(2, needed));
  } else if (o.partitions < needed) {
    std::fprintf(stderr,
                 "the mock cluster keeps the newest 5 MiB of a partition: %lld records of %d bytes "
                 "need --partitions %lld or more (or at most %lld records in %d partitions)\n",
                 static_cast<long long>(o.records), o.record_size, static_cast<long long>(needed),
                 static_cast<long long>(per_partition * o.partitions), o.partitions);
    return 2;
  }
  std::string self = sluice::bench::SelfDir();
  if (o.bin_dir.empty()) o.bin_dir = self;
  if (o.lib_dir.empty()) {
    std::error_code ec;
    auto dir = std::filesystem::weakly_canonical(self + "/../bench", ec);
    o.lib_dir = ec ? self + "/../bench" : dir.string();
  }
  sluice::InitLogging("sluice-kafka-bench");

  std::string tmpl_s = std::filesystem::temp_directory_path() / "sluice-kafka-bench-XXXXXX";
  std::vector<char> tmpl(tmpl_s.begin(), tmpl_s.end());
  tmpl.push_back('\0');
  if (!::mkdtemp(tmpl.data())) {
    std::perror("mkdtemp");
    return 1;
  }
  const std::string dir = tmpl.data();
  int rc = 0;
  {
    sluice::bench::Bench bench(o, dir);
    absl::Status st = bench.Run();
    if (!st.ok()) {
      std::fprintf(stderr, "sluice-kafka-bench: %s\n", std::string(st.message()).c_str());
      rc = 1;
    }
  }
  if (o.keep_dir || rc != 0) {
    std::printf("logs kept in %s\n", dir.c_str());
  } else {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  return rc;
}
