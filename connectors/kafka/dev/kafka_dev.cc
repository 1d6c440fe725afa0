// sluice-kafka-dev: a Kafka cluster for development and tests, on librdkafka's mock cluster.
//
// Debian ships no Kafka broker. librdkafka's mock cluster speaks the Kafka protocol over TCP on
// 127.0.0.1, so any Kafka client (librdkafka, kcat, the Kafka connector) can produce to it and
// consume from it. This program starts one, prints its bootstrap servers on the first line of
// standard output, and then takes fault-injection commands, one per line, from standard input
// and (with --control) from a FIFO, answering each with one line (`ok` or `error: ...`) on
// standard output. SIGINT or SIGTERM destroys the cluster and exits 0.
//
// The program is single-threaded apart from librdkafka's own threads: the signals are blocked
// before librdkafka starts any thread and read from a signalfd in the same poll() loop as the
// commands. Every mock call is thread-safe (librdkafka hands it to the mock cluster's thread).
#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

// The --help epilogue.
constexpr const char* kCommandsHelp = R"(
Commands: one per line, on standard input and on the --control FIFO. Each answers one line on
standard output: `ok`, or `error: <reason>` naming the bad part. Blank lines and lines starting
with # are ignored (no answer). At the end of standard input the program stops reading it and
keeps running. A command may take up to about a second (the mock's own poll interval).
  ping                                      answers ok
  create-topic NAME PARTITIONS              a new topic, replication factor min(brokers, 3)
  broker-down ID                            broker ID (1..N) drops its connections and refuses
                                            new ones
  broker-up ID                              broker ID accepts connections again (same port)
  leader TOPIC PARTITION BROKER             moves the partition's leader (BROKER -1: none)
  coordinator group|transaction KEY BROKER  the coordinator of a group id or transactional id
  rtt BROKER MS                             delays every response of BROKER by MS ms (0: none)
  request-errors API ERR [COUNT]            the next COUNT (default 1) requests of API, to any
                                            broker, fail with ERR
  clear-errors [API]                        drops the request errors not yet used (every API's,
                                            or API's)
  topic-error TOPIC ERR                     Metadata answers ERR for TOPIC (ERR 0 clears it)
API is a Kafka API key number (0 Produce, 1 Fetch, 3 Metadata, 22 InitProducerId, ...) or its
name (Produce, Fetch, ...). ERR is a Kafka error code number (e.g. 6) or librdkafka's name for it
(NOT_LEADER_FOR_PARTITION, ...); -195 (_TRANSPORT) makes the broker close the connection.
A topic that does not exist is created by the mock, with 4 partitions, when a client asks for it
and when `leader` names it.

Ports: every mock broker listens on 127.0.0.1 at a port the kernel picks. The mock API of
librdkafka 2.0.2 takes no port (rd_kafka_mock_cluster_new(rk, broker_count) binds port 0), so
fixed ports are not possible: read the bootstrap servers from the first line of standard output
(or from --bootstrap-file). A broker keeps its port across broker-down and broker-up.

Limits of the mock (librdkafka 2.0.2):
  - Transactions are accepted (InitProducerId, AddPartitionsToTxn, EndTxn, TxnOffsetCommit) but
    no transaction markers are written: a read_committed consumer also sees the records of
    aborted transactions, so commit and abort cannot be told apart by reading the topic.
  - It serves Produce, Fetch, ListOffsets, Metadata, the consumer group and offset APIs,
    ApiVersions and the transaction APIs; not CreateTopics, CreatePartitions, DeleteTopics,
    DeleteRecords, OffsetForLeaderEpoch nor the other admin APIs (librdkafka's admin calls time
    out waiting for a controller). Create topics with --topic or create-topic; a topic's
    partition count cannot grow.
  - The data is in memory and lost at exit. A partition has one log whichever broker leads it:
    replicas are only reported in Metadata.)";

// ---- names of Kafka API keys and error codes ----

// The API keys of the Kafka protocol, by number.
constexpr const char* kApiNames[] = {"Produce",
                                     "Fetch",
                                     "ListOffsets",
                                     "Metadata",
                                     "LeaderAndIsr",
                                     "StopReplica",
                                     "UpdateMetadata",
                                     "ControlledShutdown",
                                     "OffsetCommit",
                                     "OffsetFetch",
                                     "FindCoordinator",
                                     "JoinGroup",
                                     "Heartbeat",
                                     "LeaveGroup",
                                     "SyncGroup",
                                     "DescribeGroups",
                                     "ListGroups",
                                     "SaslHandshake",
                                     "ApiVersions",
                                     "CreateTopics",
                                     "DeleteTopics",
                                     "DeleteRecords",
                                     "InitProducerId",
                                     "OffsetForLeaderEpoch",
                                     "AddPartitionsToTxn",
                                     "AddOffsetsToTxn",
                                     "EndTxn",
                                     "WriteTxnMarkers",
                                     "TxnOffsetCommit",
                                     "DescribeAcls",
                                     "CreateAcls",
                                     "DeleteAcls",
                                     "DescribeConfigs",
                                     "AlterConfigs",
                                     "AlterReplicaLogDirs",
                                     "DescribeLogDirs",
                                     "SaslAuthenticate",
                                     "CreatePartitions",
                                     "CreateDelegationToken",
                                     "RenewDelegationToken",
                                     "ExpireDelegationToken",
                                     "DescribeDelegationToken",
                                     "DeleteGroups",
                                     "ElectLeaders",
                                     "IncrementalAlterConfigs",
                                     "AlterPartitionReassignments",
                                     "ListPartitionReassignments",
                                     "OffsetDelete"};
constexpr int kNumApiNames = static_cast<int>(sizeof kApiNames / sizeof kApiNames[0]);
// Numbers above the named ones are accepted up to this (the newest keys librdkafka 2.0.2 knows).
constexpr int kMaxApiKey = 67;

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// The whole token as a decimal integer in [lo, hi].
std::optional<long> ParseInt(std::string_view s, long lo, long hi) {
  long v = 0;
  const char* end = s.data() + s.size();
  auto [ptr, ec] = std::from_chars(s.data(), end, v);
  if (s.empty() || ec != std::errc() || ptr != end || v < lo || v > hi) return std::nullopt;
  return v;
}

std::optional<int16_t> ParseApiKey(std::string_view s) {
  if (auto n = ParseInt(s, 0, kMaxApiKey)) return static_cast<int16_t>(*n);
  for (int i = 0; i < kNumApiNames; ++i) {
    if (EqualsIgnoreCase(s, kApiNames[i])) return static_cast<int16_t>(i);
  }
  return std::nullopt;
}

// A code librdkafka knows (it has a name for it), by number or name; names are librdkafka's
// (NOT_LEADER_FOR_PARTITION, _TRANSPORT), with or without the RD_KAFKA_RESP_ERR_ prefix.
std::optional<rd_kafka_resp_err_t> ParseErrorCode(std::string_view s) {
  const rd_kafka_err_desc* descs = nullptr;
  size_t count = 0;
  rd_kafka_get_err_descs(&descs, &count);
  if (auto n = ParseInt(s, -100000, 100000)) {
    for (size_t i = 0; i < count; ++i) {
      if (descs[i].name && descs[i].code == *n) return descs[i].code;
    }
    return std::nullopt;
  }
  constexpr std::string_view kPrefix = "RD_KAFKA_RESP_ERR_";
  if (s.size() > kPrefix.size() && EqualsIgnoreCase(s.substr(0, kPrefix.size()), kPrefix)) {
    s.remove_prefix(kPrefix.size());
  }
  // The name newer Kafka versions use for code 6.
  if (EqualsIgnoreCase(s, "NOT_LEADER_OR_FOLLOWER")) {
    return RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION;
  }
  for (size_t i = 0; i < count; ++i) {
    if (descs[i].name && EqualsIgnoreCase(s, descs[i].name)) return descs[i].code;
  }
  return std::nullopt;
}

// Kafka's rule for topic names: 1 to 249 of [A-Za-z0-9._-], not "." or "..".
bool ValidTopicName(std::string_view s) {
  if (s.empty() || s.size() > 249 || s == "." || s == "..") return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
}

std::string Quote(std::string_view s) { return "'" + std::string(s) + "'"; }

// ---- the cluster and its commands ----

class DevCluster {
 public:
  DevCluster(rd_kafka_mock_cluster_t* mcluster, int brokers)
      : mcluster_(mcluster), brokers_(brokers) {}

  int replication_factor() const { return std::min(brokers_, 3); }

  // Creates a topic; "" on success, else the reason.
  std::string CreateTopic(std::string_view name, std::string_view partitions) {
    if (!ValidTopicName(name)) {
      return "topic name " + Quote(name) +
             " is not 1-249 characters of letters, digits, '.', '_' and '-'";
    }
    auto n = ParseInt(partitions, 1, 100000);
    if (!n) return "PARTITIONS " + Quote(partitions) + " is not an integer in 1..100000";
    rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(
        mcluster_, std::string(name).c_str(), static_cast<int>(*n), replication_factor());
    if (err) return "topic " + Quote(name) + ": " + rd_kafka_err2str(err);
    return "";
  }

  // Runs one command line; the answer line ("ok" or "error: ...").
  std::string Run(const std::string& line) {
    std::vector<std::string> t;
    {
      std::istringstream in(line);
      std::string word;
      while (in >> word) t.push_back(word);
    }
    const std::string& cmd = t[0];
    const size_t args = t.size() - 1;
    auto arity = [&](size_t lo, size_t hi, const char* usage) -> std::string {
      if (args >= lo && args <= hi) return "";
      return "error: " + cmd + " takes " + usage + ", got " + std::to_string(args) + " argument" +
             (args == 1 ? "" : "s");
    };
    auto answer = [](const std::string& problem) {
      return problem.empty() ? std::string("ok") : "error: " + problem;
    };
    auto mock_answer = [](rd_kafka_resp_err_t err, const std::string& what) {
      return err ? "error: " + what + ": " + rd_kafka_err2str(err) : std::string("ok");
    };

    if (cmd == "ping") {
      if (auto e = arity(0, 0, "no arguments"); !e.empty()) return e;
      return "ok";
    }
    if (cmd == "create-topic") {
      if (auto e = arity(2, 2, "NAME PARTITIONS"); !e.empty()) return e;
      return answer(CreateTopic(t[1], t[2]));
    }
    if (cmd == "broker-down" || cmd == "broker-up") {
      if (auto e = arity(1, 1, "ID"); !e.empty()) return e;
      auto id = Broker(t[1], "ID", false);
      if (!id) return id.error;
      rd_kafka_resp_err_t err = cmd == "broker-down"
                                    ? rd_kafka_mock_broker_set_down(mcluster_, id.value)
                                    : rd_kafka_mock_broker_set_up(mcluster_, id.value);
      return mock_answer(err, "broker " + t[1]);
    }
    if (cmd == "leader") {
      if (auto e = arity(3, 3, "TOPIC PARTITION BROKER"); !e.empty()) return e;
      auto partition = ParseInt(t[2], 0, INT32_MAX);
      if (!partition) return "error: PARTITION " + Quote(t[2]) + " is not an integer >= 0";
      auto id = Broker(t[3], "BROKER", true);
      if (!id) return id.error;
      return mock_answer(rd_kafka_mock_partition_set_leader(
                             mcluster_, t[1].c_str(), static_cast<int32_t>(*partition), id.value),
                         "partition " + t[1] + " [" + t[2] + "]");
    }
    if (cmd == "coordinator") {
      if (auto e = arity(3, 3, "group|transaction KEY BROKER"); !e.empty()) return e;
      if (t[1] != "group" && t[1] != "transaction") {
        return "error: key type " + Quote(t[1]) + " is neither 'group' nor 'transaction'";
      }
      auto id = Broker(t[3], "BROKER", false);
      if (!id) return id.error;
      return mock_answer(
          rd_kafka_mock_coordinator_set(mcluster_, t[1].c_str(), t[2].c_str(), id.value),
          t[1] + " coordinator of " + Quote(t[2]));
    }
    if (cmd == "rtt") {
      if (auto e = arity(2, 2, "BROKER MS"); !e.empty()) return e;
      auto id = Broker(t[1], "BROKER", false);
      if (!id) return id.error;
      auto ms = ParseInt(t[2], 0, 3600 * 1000);
      if (!ms) return "error: MS " + Quote(t[2]) + " is not an integer in 0..3600000";
      return mock_answer(rd_kafka_mock_broker_set_rtt(mcluster_, id.value, static_cast<int>(*ms)),
                         "broker " + t[1]);
    }
    if (cmd == "request-errors") {
      if (auto e = arity(2, 3, "API ERR [COUNT]"); !e.empty()) return e;
      auto api = ParseApiKey(t[1]);
      if (!api) {
        return "error: API " + Quote(t[1]) + " is neither a Kafka API key in 0.." +
               std::to_string(kMaxApiKey) + " nor a known API name";
      }
      auto err = ParseErrorCode(t[2]);
      if (!err) return "error: ERR " + Quote(t[2]) + " is not an error code librdkafka knows";
      long count = 1;
      if (args == 3) {
        auto c = ParseInt(t[3], 1, 100000);
        if (!c) return "error: COUNT " + Quote(t[3]) + " is not an integer in 1..100000";
        count = *c;
      }
      std::vector<rd_kafka_resp_err_t> errors(static_cast<size_t>(count), *err);
      rd_kafka_mock_push_request_errors_array(mcluster_, *api, errors.size(), errors.data());
      return "ok";
    }
    if (cmd == "clear-errors") {
      if (auto e = arity(0, 1, "[API]"); !e.empty()) return e;
      if (args == 1) {
        auto api = ParseApiKey(t[1]);
        if (!api) {
          return "error: API " + Quote(t[1]) + " is neither a Kafka API key in 0.." +
                 std::to_string(kMaxApiKey) + " nor a known API name";
        }
        rd_kafka_mock_clear_request_errors(mcluster_, *api);
      } else {
        for (int16_t api = 0; api <= kMaxApiKey; ++api) {
          rd_kafka_mock_clear_request_errors(mcluster_, api);
        }
      }
      return "ok";
    }
    if (cmd == "topic-error") {
      if (auto e = arity(2, 2, "TOPIC ERR"); !e.empty()) return e;
      if (!ValidTopicName(t[1])) return "error: TOPIC " + Quote(t[1]) + " is not a topic name";
      auto err = ParseErrorCode(t[2]);
      if (!err) return "error: ERR " + Quote(t[2]) + " is not an error code librdkafka knows";
      rd_kafka_mock_topic_set_error(mcluster_, t[1].c_str(), *err);
      return "ok";
    }
    return "error: unknown command " + Quote(cmd) +
           " (ping, create-topic, broker-down, broker-up, leader, coordinator, rtt, "
           "request-errors, clear-errors, topic-error)";
  }

 private:
  struct BrokerId {
    int32_t value = 0;
    std::string error;
    explicit operator bool() const { return error.empty(); }
  };
  // A broker id 1..N (or -1 when `none_ok`).
  BrokerId Broker(const std::string& token, const char* what, bool none_ok) const {
    BrokerId id;
    auto n = ParseInt(token, none_ok ? -1 : 1, brokers_);
    if (!n || *n == 0) {
      id.error = "error: " + std::string(what) + " " + Quote(token) + " is not a broker id (1.." +
                 std::to_string(brokers_) + (none_ok ? ", or -1 for none)" : ")");
    } else {
      id.value = static_cast<int32_t>(*n);
    }
    return id;
  }

  rd_kafka_mock_cluster_t* mcluster_;
  int brokers_;
};

// Answers go to standard output, one line each, flushed at once. A reader that went away
// (EPIPE: SIGPIPE is ignored) does not stop the cluster.
void Answer(const std::string& line) {
  std::fputs(line.c_str(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
  std::clearerr(stdout);
}

// A source of command lines: standard input or the control FIFO.
struct LineSource {
  LineSource(std::string n, int f) : name(std::move(n)), fd(f) {}
  std::string name;
  int fd;
  bool open = true;
  std::string pending;
  bool discarding = false;  // past an over-long line, until its newline
};

constexpr size_t kMaxLine = 64 * 1024;

void HandleLine(DevCluster& cluster, std::string line) {
  if (!line.empty() && line.back() == '\r') line.pop_back();
  size_t first = line.find_first_not_of(" \t");
  if (first == std::string::npos || line[first] == '#') return;
  Answer(cluster.Run(line));
}

// Reads what is there; runs every complete line. At end of input, a last unterminated line is
// run too and the source is closed.
void ReadCommands(DevCluster& cluster, LineSource& src) {
  char buf[4096];
  ssize_t n = ::read(src.fd, buf, sizeof buf);
  if (n < 0) {
    if (errno == EINTR || errno == EAGAIN) return;
    std::fprintf(stderr, "sluice-kafka-dev: reading %s: %s; no more commands from it\n",
                 src.name.c_str(), std::strerror(errno));
    n = 0;
  }
  if (n == 0) {
    if (!src.pending.empty() && !src.discarding) HandleLine(cluster, std::move(src.pending));
    src.pending.clear();
    src.open = false;
    return;
  }
  for (ssize_t i = 0; i < n; ++i) {
    char c = buf[i];
    if (c == '\n') {
      if (!src.discarding) HandleLine(cluster, std::move(src.pending));
      src.pending.clear();
      src.discarding = false;
    } else if (!src.discarding) {
      src.pending.push_back(c);
      if (src.pending.size() > kMaxLine) {
        Answer("error: command line longer than " + std::to_string(kMaxLine) + " bytes");
        src.pending.clear();
        src.discarding = true;
      }
    }
  }
}

// librdkafka's log (the mock's, with --debug) to standard error, as its default logger writes it,
// less the warning that the handle owning the cluster has no bootstrap.servers: it is never
// meant to connect anywhere.
void LogToStderr(const rd_kafka_t* rk, int level, const char* fac, const char* buf) {
  if (std::strcmp(fac, "CONFWARN") == 0 && std::strstr(buf, "bootstrap.servers")) return;
  std::fprintf(stderr, "%%%d|%s|%s| %s\n", level, fac, rd_kafka_name(rk), buf);
}

bool WriteFileAtomically(const std::string& path, const std::string& content) {
  std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "w");
  if (!f) return false;
  bool ok = std::fputs(content.c_str(), f) >= 0;
  ok = std::fclose(f) == 0 && ok;
  return ok && std::rename(tmp.c_str(), path.c_str()) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  int brokers = 1;
  std::vector<std::string> topic_specs;
  std::string control_path, bootstrap_file, debug;

  CLI::App app{
      "sluice-kafka-dev: a Kafka cluster on 127.0.0.1 for development and tests, on librdkafka's "
      "mock cluster (the Kafka protocol over TCP; the data is in memory). Prints the bootstrap "
      "servers (host:port,...) on the first line of standard output, then runs until SIGINT or "
      "SIGTERM (exit 0).",
      "sluice-kafka-dev"};
  app.add_option("--brokers", brokers, "Number of mock brokers (ids 1..N)")
      ->default_val(1)
      ->check(CLI::Range(1, 32));
  app.add_option("--topic", topic_specs,
                 "NAME:PARTITIONS, a topic to create at start (repeatable); replication factor "
                 "min(brokers, 3)");
  app.add_option("--control", control_path,
                 "A FIFO to read commands from as well as standard input (created if missing, "
                 "removed at exit if created); answers go to standard output. Kept open for "
                 "reading and writing, so writers may come and go");
  app.add_option("--bootstrap-file", bootstrap_file,
                 "Also write the bootstrap servers to this file (atomically, once the topics "
                 "exist; removed at exit)");
  app.add_option("--debug", debug, "librdkafka debug contexts for the mock's log (e.g. mock,all)");
  app.footer(kCommandsHelp);
  CLI11_PARSE(app, argc, argv);

  std::vector<std::pair<std::string, std::string>> topics;
  for (const std::string& spec : topic_specs) {
    size_t colon = spec.rfind(':');
    if (colon == std::string::npos) {
      std::fprintf(stderr, "sluice-kafka-dev: --topic %s: expected NAME:PARTITIONS\n",
                   spec.c_str());
      return 2;
    }
    topics.emplace_back(spec.substr(0, colon), spec.substr(colon + 1));
  }

  // Signals are read from a signalfd: blocked here, before librdkafka starts its threads (they
  // inherit the mask), so that no other thread takes them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  if (pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr) != 0) {
    std::fprintf(stderr, "sluice-kafka-dev: cannot block SIGINT/SIGTERM\n");
    return 1;
  }
  ::signal(SIGPIPE, SIG_IGN);
  int signal_fd = ::signalfd(-1, &stop_signals, SFD_CLOEXEC);
  if (signal_fd < 0) {
    std::fprintf(stderr, "sluice-kafka-dev: signalfd: %s\n", std::strerror(errno));
    return 1;
  }

  // The control FIFO, opened before the cluster exists so that a bad path fails fast.
  bool created_fifo = false;
  int control_fd = -1;
  if (!control_path.empty()) {
    struct stat st {};
    if (::stat(control_path.c_str(), &st) != 0) {
      if (::mkfifo(control_path.c_str(), 0600) != 0) {
        std::fprintf(stderr, "sluice-kafka-dev: --control %s: mkfifo: %s\n", control_path.c_str(),
                     std::strerror(errno));
        return 1;
      }
      created_fifo = true;
    } else if (!S_ISFIFO(st.st_mode)) {
      std::fprintf(stderr, "sluice-kafka-dev: --control %s exists and is not a FIFO\n",
                   control_path.c_str());
      return 1;
    }
    // Open for reading and writing: the FIFO never reports end of input when a writer closes.
    control_fd = ::open(control_path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (control_fd < 0) {
      std::fprintf(stderr, "sluice-kafka-dev: --control %s: %s\n", control_path.c_str(),
                   std::strerror(errno));
      if (created_fifo) ::unlink(control_path.c_str());
      return 1;
    }
  }

  char errstr[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  if (!debug.empty() &&
      rd_kafka_conf_set(conf, "debug", debug.c_str(), errstr, sizeof errstr) != RD_KAFKA_CONF_OK) {
    std::fprintf(stderr, "sluice-kafka-dev: --debug %s: %s\n", debug.c_str(), errstr);
    rd_kafka_conf_destroy(conf);
    return 2;
  }
  rd_kafka_conf_set_log_cb(conf, LogToStderr);
  // The handle only owns the mock cluster; it never connects anywhere.
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
  if (!rk) {
    std::fprintf(stderr, "sluice-kafka-dev: rd_kafka_new: %s\n", errstr);
    rd_kafka_conf_destroy(conf);
    return 1;
  }
  rd_kafka_mock_cluster_t* mcluster = rd_kafka_mock_cluster_new(rk, brokers);
  if (!mcluster) {
    std::fprintf(stderr, "sluice-kafka-dev: cannot create a mock cluster of %d brokers\n", brokers);
    rd_kafka_destroy(rk);
    return 1;
  }
  DevCluster cluster(mcluster, brokers);

  int exit_code = 0;
  for (const auto& [name, partitions] : topics) {
    std::string problem = cluster.CreateTopic(name, partitions);
    if (!problem.empty()) {
      std::fprintf(stderr, "sluice-kafka-dev: --topic %s:%s: %s\n", name.c_str(),
                   partitions.c_str(), problem.c_str());
      exit_code = 2;
      break;
    }
  }

  const std::string bootstrap = rd_kafka_mock_cluster_bootstraps(mcluster);
  if (exit_code == 0 && !bootstrap_file.empty() &&
      !WriteFileAtomically(bootstrap_file, bootstrap + "\n")) {
    std::fprintf(stderr, "sluice-kafka-dev: --bootstrap-file %s: %s\n", bootstrap_file.c_str(),
                 std::strerror(errno));
    exit_code = 1;
  }

  if (exit_code == 0) {
    Answer(bootstrap);
    std::fprintf(stderr, "sluice-kafka-dev: %d broker%s at %s, %zu topic%s\n", brokers,
                 brokers == 1 ? "" : "s", bootstrap.c_str(), topics.size(),
                 topics.size() == 1 ? "" : "s");

    std::vector<LineSource> sources;
    sources.emplace_back("standard input", STDIN_FILENO);
    if (control_fd >= 0) sources.emplace_back("--control " + control_path, control_fd);
    bool stop = false;
    while (!stop) {
      std::vector<pollfd> fds{{signal_fd, POLLIN, 0}};
      std::vector<LineSource*> polled;
      for (auto& s : sources) {
        if (!s.open) continue;
        fds.push_back({s.fd, POLLIN, 0});
        polled.push_back(&s);
      }
      if (::poll(fds.data(), fds.size(), -1) < 0) {
        if (errno == EINTR) continue;
        std::fprintf(stderr, "sluice-kafka-dev: poll: %s\n", std::strerror(errno));
        exit_code = 1;
        break;
      }
      if (fds[0].revents & POLLIN) {
        signalfd_siginfo info{};
        if (::read(signal_fd, &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
          std::fprintf(stderr, "sluice-kafka-dev: %s, stopping\n", strsignal(info.ssi_signo));
          stop = true;
        }
      }
      for (size_t i = 0; i < polled.size() && !stop; ++i) {
        const short ev = fds[i + 1].revents;
        if (ev & POLLNVAL) {
          polled[i]->open = false;  // e.g. standard input closed
        } else if (ev & (POLLIN | POLLHUP | POLLERR)) {
          ReadCommands(cluster, *polled[i]);
        }
      }
    }
  }

  rd_kafka_mock_cluster_destroy(mcluster);
  rd_kafka_destroy(rk);
  if (control_fd >= 0) ::close(control_fd);
  if (created_fifo) ::unlink(control_path.c_str());
  if (exit_code == 0 && !bootstrap_file.empty()) ::unlink(bootstrap_file.c_str());
  ::close(signal_fd);
  return exit_code;
}
