#include "common/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <set>
#include <string_view>

#include "absl/base/const_init.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "common/status_macros.h"
#include "spdlog/spdlog.h"

namespace sluice {
namespace {

// Every configuration key, its type and default. Names follow Flink's where the concept is the
// same.
const std::vector<ConfigOption> kOptions = {
    {"jobmanager.rpc.address", OptionType::kString, "localhost",
     "Host name or address where clients and TaskManagers reach the JobManager."},
    {"jobmanager.rpc.port", OptionType::kInt, "6123",
     "The JobManager's gRPC port (0: any free port)."},
    {"jobmanager.bind-host", OptionType::kString, "localhost",
     "Host name or address the JobManager listens on, on every address a name resolves to (0.0.0.0 "
     "for all interfaces)."},
    {"rest.port", OptionType::kInt, "8081",
     "Port of the REST API and web dashboard (0: any free port, -1: off)."},
    {"rest.bind-address", OptionType::kString, "localhost",
     "Host name or address the REST server listens on, on every address a name resolves to."},
    {"rest.address", OptionType::kString, "",
     "Host name or address where clients reach the REST API (default: jobmanager.rpc.address). "
     "The CLI's -m takes this address with rest.port and finds the JobManager's RPC port "
     "through it."},
    {"rest.server.numThreads", OptionType::kInt, "4",
     "Threads that run REST handlers. Connections are read and written on one thread of their "
     "own, however many there are, so this bounds only how many requests are answered at once."},
    {"rest.server.max-connections", OptionType::kInt, "10000",
     "Open connections the REST server keeps; more are closed as soon as they are accepted."},
    {"rest.server.max-header-size", OptionType::kMemory, "16 kb",
     "Largest request line and headers the REST server reads (431 above; at most 60 kb)."},
    {"rest.server.read-timeout", OptionType::kDuration, "60 s",
     "How long the REST server waits from a request's first byte to its last (408 after)."},
    {"rest.server.idle-timeout", OptionType::kDuration, "60 s",
     "How long an open REST connection may wait for its next request before it is closed."},
    {"security.ssl.internal.enabled", OptionType::kBool, "false",
     "Mutual TLS on every connection between daemons (control calls and the data exchange) and "
     "from the CLI: each side presents a certificate signed by the trusted CA and refuses a peer "
     "without one."},
    {"security.ssl.internal.key", OptionType::kString, "",
     "With internal TLS: this process's private key (a PEM file, unencrypted)."},
    {"security.ssl.internal.cert", OptionType::kString, "",
     "With internal TLS: this process's certificate (a PEM file), signed by the trusted CA."},
    {"security.ssl.internal.trust-cert", OptionType::kString, "",
     "With internal TLS: the CA certificate (a PEM file) a peer's certificate must be signed by."},
    {"security.ssl.rest.enabled", OptionType::kBool, "false",
     "HTTPS on the REST port (the API, the dashboard, the standby's redirects)."},
    {"security.ssl.rest.key", OptionType::kString, "",
     "With REST TLS: the server's private key (a PEM file)."},
    {"security.ssl.rest.cert", OptionType::kString, "",
     "With REST TLS: the server's certificate chain (a PEM file)."},
    {"security.ssl.rest.authentication-enabled", OptionType::kBool, "false",
     "With REST TLS: clients must present a certificate signed by security.ssl.rest.trust-cert."},
    {"security.ssl.rest.trust-cert", OptionType::kString, "",
     "With REST client authentication: the CA (a PEM file) clients' certificates are signed by."},
    {"security.rest.auth.token-file", OptionType::kString, "",
     "A file holding the bearer token REST requests must carry (Authorization: Bearer <token>); "
     "empty: no token. The token is never taken from the command line."},
    {"security.rest.auth.required-for", OptionType::kString, "all",
     "Which REST requests need the token: all, or changes (every method but GET and HEAD). The "
     "dashboard's own files never do.",
     "all|changes"},
    {"security.refuse-root", OptionType::kBool, "false",
     "Whether the daemons refuse to start as root."},
    {"taskmanager.host", OptionType::kString, "localhost",
     "Host name or address where other processes reach this TaskManager."},
    {"taskmanager.bind-host", OptionType::kString, "localhost",
     "Host name or address the TaskManager listens on, on every address a name resolves to."},
    {"taskmanager.rpc.port", OptionType::kInt, "0",
     "The TaskManager's gRPC port for control and data exchange (0: any free port)."},
    {"taskmanager.numberOfTaskSlots", OptionType::kInt, "1",
     "Task slots of one TaskManager; a slot runs one parallel pipeline of a job."},
    {"parallelism.default", OptionType::kInt, "1", "Parallelism of jobs that do not set one."},
    {"pipeline.auto-watermark-interval", OptionType::kDuration, "200 ms",
     "How often timestamp assigners emit periodic watermarks (0: never; watermarks then come only "
     "from the end of bounded inputs)."},
    {"pipeline.max-parallelism", OptionType::kInt, "128",
     "Number of key groups: the highest parallelism a keyed job can be scaled to."},
    {"jobmanager.execution.failover-strategy", OptionType::kString, "region",
     "Which tasks restart after a failure. Sluice restarts every task of the job; region (Flink's "
     "default) is accepted and does the same as full, since Sluice does not split jobs into "
     "pipelined regions.",
     "region|full"},
    {"env.log.dir", OptionType::kString, "",
     "deploy/ scripts: where the daemons' .log and .out files go (default: log/ of the "
     "installation; the environment variable SLUICE_LOG_DIR wins)."},
    {"env.pid.dir", OptionType::kString, "",
     "deploy/ scripts: where the daemons' pid files go (default: /tmp; SLUICE_PID_DIR wins)."},
    {"env.ssh.opts", OptionType::kString, "",
     "deploy/ scripts: extra options of ssh to the workers' hosts (SLUICE_SSH_OPTS wins)."},
    {"heartbeat.interval", OptionType::kDuration, "1000 ms",
     "How often a TaskManager sends a heartbeat to the JobManager."},
    {"heartbeat.timeout", OptionType::kDuration, "5000 ms",
     "Silence after which the JobManager declares a TaskManager lost (and a TaskManager its "
     "JobManager)."},
    {"execution.buffer-timeout", OptionType::kDuration, "5 ms",
     "Longest time a partly filled network buffer waits before it is sent."},
    {"taskmanager.memory.segment-size", OptionType::kMemory, "32 kb",
     "Size of a network buffer; records are packed into buffers of this size."},
    {"taskmanager.network.memory.buffers-per-channel", OptionType::kInt, "4",
     "Buffers a channel may hold (credits): bounds the memory between a producer and a consumer."},
    {"blob.storage.directory", OptionType::kString, "",
     "Where the JobManager keeps uploaded job libraries and TaskManagers cache them (default: "
     "a folder under the system's temporary directory)."},
    {"client.timeout", OptionType::kDuration, "60 s",
     "Deadline of a client's calls to the JobManager."},
    {"execution.checkpointing.interval", OptionType::kDuration, "0 ms",
     "How often the JobManager starts a checkpoint of each job (0: checkpointing off)."},
    {"execution.checkpointing.mode", OptionType::kString, "EXACTLY_ONCE",
     "EXACTLY_ONCE (tasks align barriers: every record affects state once) or AT_LEAST_ONCE (no "
     "alignment: lower latency, records may be counted again after a restore).",
     "EXACTLY_ONCE|AT_LEAST_ONCE"},
    {"execution.checkpointing.timeout", OptionType::kDuration, "10 min",
     "A checkpoint not complete after this long is aborted and its files removed."},
    {"execution.checkpointing.min-pause", OptionType::kDuration, "0 ms",
     "Least time between the end of one checkpoint and the start of the next."},
    {"execution.checkpointing.tolerable-failed-checkpoints", OptionType::kInt, "0",
     "Consecutive failed checkpoints a job survives; one more fails the job (and restarts it)."},
    {"execution.checkpointing.dir", OptionType::kString, "",
     "Where checkpoints are stored: <dir>/<job-id>/chk-<n>/. Must be reachable by the JobManager "
     "and every TaskManager (default: sluice-checkpoints under the system's temporary "
     "directory).",
     nullptr, "state.checkpoints.dir"},
    {"execution.checkpointing.savepoint-dir", OptionType::kString, "",
     "Where savepoints go when `sluice savepoint`, `sluice stop` or the REST request names no "
     "folder: <dir>/savepoint-<job>-<id>/. An absolute path every TaskManager and the "
     "JobManager can reach.",
     nullptr, "state.savepoints.dir"},
    {"job.autoscaler.enabled", OptionType::kBool, "false",
     "Rescales a running job's vertices to keep each at the target utilization (the model and "
     "keys of Flink's Kubernetes-operator autoscaler); needs checkpointing to rescale."},
    {"job.autoscaler.scaling.enabled", OptionType::kBool, "true",
     "false: the autoscaler evaluates and logs its decisions but does not rescale."},
    {"job.autoscaler.stabilization.interval", OptionType::kDuration, "5 min",
     "After a job starts or is rescaled, how long the autoscaler waits before it measures."},
    {"job.autoscaler.metrics.window", OptionType::kDuration, "15 min",
     "The span of measurements a decision averages over."},
    {"job.autoscaler.target.utilization", OptionType::kDouble, "0.7",
     "The share of its true processing rate a vertex should be asked to take."},
    {"job.autoscaler.target.utilization.boundary", OptionType::kDouble, "0.3",
     "How far a vertex's utilization may stray from the target before it is rescaled."},
    {"job.autoscaler.vertex.min-parallelism", OptionType::kInt, "1",
     "The least parallelism the autoscaler gives a vertex."},
    {"job.autoscaler.vertex.max-parallelism", OptionType::kInt, "200",
     "The most parallelism the autoscaler gives a vertex (the max parallelism bounds it too)."},
    {"job.autoscaler.scale-up.max-factor", OptionType::kDouble, "100000.0",
     "A scale-up multiplies a vertex's parallelism by at most 1 + this."},
    {"job.autoscaler.scale-down.max-factor", OptionType::kDouble, "0.6",
     "A scale-down lowers a vertex's parallelism by at most this share."},
    {"resourcemanager.taskmanager.request-command", OptionType::kString, "",
     "Run as `<command> request <count>` when jobs need more slots than the cluster has (e.g. "
     "deploy/taskmanager-provider.sh, which starts TaskManagers on spare hosts); the autoscaler "
     "runs it when a decision needs more slots."},
    {"resourcemanager.taskmanager.release-command", OptionType::kString, "",
     "Run as `<command> release <tm id> <address>` for a TaskManager idle for "
     "resourcemanager.taskmanager-timeout."},
    {"resourcemanager.taskmanager-timeout", OptionType::kDuration, "30 s",
     "How long a TaskManager without tasks stays before the release command gives it back."},
    {"resourcemanager.taskmanager-registration.timeout", OptionType::kDuration, "5 min",
     "How long requested TaskManagers have to register before they are asked for again."},
    {"taskmanager.resource-id", OptionType::kString, "",
     "This TaskManager's id (default: tm- and random characters); the provider script sets it."},
    {"execution.checkpointing.num-retained", OptionType::kInt, "1",
     "Completed checkpoints kept per job; older ones are deleted.", nullptr,
     "state.checkpoints.num-retained"},
    {"web.checkpoints.history", OptionType::kInt, "10",
     "Checkpoints per job whose statistics the REST API keeps in its history (the newest)."},
    {"web.submit.enable", OptionType::kBool, "true",
     "Whether job libraries may be uploaded and run over the REST API (/jars/*); false: those "
     "requests are refused with 403."},
    {"web.cancel.enable", OptionType::kBool, "true",
     "Whether jobs may be cancelled over the REST API (PATCH /jobs/:jobid); false: refused with "
     "403."},
    {"web.upload.dir", OptionType::kString, "",
     "Where libraries uploaded over the REST API are kept, each under the hash of its bytes; they "
     "survive a JobManager restart. It must belong to the JobManager's user (default: "
     "sluice-web-upload-<uid> under the system's temporary directory)."},
    {"web.upload.max-size", OptionType::kMemory, "100 mb",
     "Largest library the REST API accepts in an upload (POST /jars/upload; 413 above). Any "
     "other request body stops at 1 MiB."},
    {"web.submit.timeout", OptionType::kDuration, "30 s",
     "How long the child process that loads an uploaded library and builds its job graph (for "
     "/jars/:jarid/plan and /run) may take before it is killed."},
    {"state.backend.type", OptionType::kString, "hashmap",
     "Where keyed state lives: hashmap (objects on the heap, full snapshots) or rocksdb (an "
     "embedded RocksDB per keyed operator and subtask: state larger than memory, incremental "
     "checkpoints). Per cluster; a job may override it with -D.",
     "hashmap|rocksdb"},
    {"execution.checkpointing.incremental", OptionType::kBool, "true",
     "rocksdb: checkpoints store only the files the last completed checkpoint did not have "
     "(false: every checkpoint writes the whole state).",
     nullptr, "state.backend.incremental"},
    {"state.backend.rocksdb.localdir", OptionType::kString, "",
     "rocksdb: where instances keep their working files, removed when the task ends (default: "
     "the system's temporary directory)."},
    {"taskmanager.memory.managed.size", OptionType::kMemory, "128 mb",
     "rocksdb: memory shared by all RocksDB instances of a TaskManager (all its slots): the "
     "block cache, which the write buffers are charged to."},
    {"state.backend.rocksdb.memory.write-buffer-ratio", OptionType::kDouble, "0.5",
     "rocksdb: share of taskmanager.memory.managed.size that write buffers may take."},
    {"state.backend.rocksdb.writebuffer.size", OptionType::kMemory, "16 mb",
     "rocksdb: write buffer (memtable) size of one state's column family."},
    {"state.backend.rocksdb.writebuffer.hash", OptionType::kBool, "false",
     "rocksdb: keep states' write buffers in hash tables and overwrite a value in place: "
     "updates of keys in the buffer cost a fraction (see bench/README.md), but state much "
     "larger than the write buffers was slower in our runs."},
    {"state.backend.rocksdb.cache.entries", OptionType::kInt, "16384",
     "rocksdb: values each state keeps deserialized per subtask, for the keys used last; their "
     "changes are written to RocksDB together when the cache is full and before a checkpoint "
     "(0: the current key's value only, every change written at once). At most 8 MiB of values "
     "as last serialized are kept.",
     nullptr, nullptr, 0, int64_t{1} << 24},
    {"state.backend.rocksdb.block.blocksize", OptionType::kMemory, "4 kb",
     "rocksdb: size of the data blocks in SST files (the unit of the block cache)."},
    {"restart-strategy.type", OptionType::kString, "",
     "none, fixed-delay, exponential-delay or failure-rate (default: exponential-delay when "
     "checkpointing is on, none otherwise).",
     "none|fixed-delay|exponential-delay|failure-rate"},
    {"restart-strategy.fixed-delay.attempts", OptionType::kInt, "1",
     "fixed-delay: restarts before the job fails."},
    {"restart-strategy.fixed-delay.delay", OptionType::kDuration, "1 s",
     "fixed-delay: wait before each restart."},
    {"restart-strategy.exponential-delay.initial-backoff", OptionType::kDuration, "1 s",
     "exponential-delay: wait before the first restart."},
    {"restart-strategy.exponential-delay.max-backoff", OptionType::kDuration, "1 min",
     "exponential-delay: the longest wait."},
    {"restart-strategy.exponential-delay.backoff-multiplier", OptionType::kDouble, "1.5",
     "exponential-delay: factor of each wait over the previous one."},
    {"restart-strategy.exponential-delay.jitter-factor", OptionType::kDouble, "0.1",
     "exponential-delay: random share added or taken from each wait."},
    {"restart-strategy.exponential-delay.reset-backoff-threshold", OptionType::kDuration, "1 h",
     "exponential-delay: running this long without failure resets the wait."},
    {"restart-strategy.failure-rate.max-failures-per-interval", OptionType::kInt, "1",
     "failure-rate: failures within the interval that still restart the job."},
    {"restart-strategy.failure-rate.failure-rate-interval", OptionType::kDuration, "1 min",
     "failure-rate: the interval failures are counted in."},
    {"restart-strategy.failure-rate.delay", OptionType::kDuration, "1 s",
     "failure-rate: wait before each restart."},
    {"jobmanager.scheduler", OptionType::kString, "default",
     "default: a job needs free slots for its whole parallelism at submission and keeps it; "
     "adaptive: a job runs at the parallelism the free slots allow (each operator between 1 and "
     "its configured parallelism), waits in CREATED while too few are free, scales up when slots "
     "appear and restarts at a lower parallelism when a TaskManager is lost.",
     "default|adaptive"},
    {"scheduler-mode", OptionType::kString, "",
     "reactive: the adaptive scheduler, with every job's operators bounded by their max "
     "parallelism instead of their configured one, so each job uses all the cluster's slots and "
     "follows TaskManagers coming and going (empty: off).",
     "reactive"},
    {"jobmanager.adaptive-scheduler.resource-wait-timeout", OptionType::kString, "5 min",
     "adaptive: how long a submitted or restarting job waits for the slots its lowest "
     "parallelism needs before it fails; a negative duration waits forever (the default in "
     "reactive mode).",
     nullptr, "jobmanager.adaptive-scheduler.submission.resource-wait-timeout"},
    {"jobmanager.adaptive-scheduler.resource-stabilization-timeout", OptionType::kDuration, "10 s",
     "adaptive: with enough slots for a lower parallelism than configured, how long a job waits "
     "for more before it starts, and how long more slots must stay free before a running job "
     "scales up (default 0 in reactive mode).",
     nullptr, "jobmanager.adaptive-scheduler.submission.resource-stabilization-timeout"},
    {"jobmanager.adaptive-scheduler.min-parallelism-increase", OptionType::kInt, "1",
     "adaptive: a running job scales up only when one of its operators would gain at least this "
     "much parallelism."},
    {"high-availability.type", OptionType::kString, "NONE",
     "NONE (one JobManager; its loss loses the cluster's jobs) or zookeeper (JobManagers elect a "
     "leader through ZooKeeper; the others wait as standbys).",
     "NONE|zookeeper"},
    {"high-availability.storageDir", OptionType::kString, "",
     "zookeeper: a folder every JobManager can reach, for what is too large for ZooKeeper (job "
     "graphs, libraries, checkpoint metadata pointers). Required in HA mode."},
    {"high-availability.zookeeper.quorum", OptionType::kString, "",
     "zookeeper: the ZooKeeper servers as host:port,host:port,... Required in HA mode."},
    {"high-availability.zookeeper.path.root", OptionType::kString, "/sluice",
     "zookeeper: the node under which every Sluice cluster keeps its nodes."},
    {"high-availability.cluster-id", OptionType::kString, "/default",
     "zookeeper: this cluster's node under the root, so clusters can share a quorum."},
    {"high-availability.zookeeper.client.session-timeout", OptionType::kDuration, "6 s",
     "zookeeper: a JobManager silent this long loses its session and with it leadership; the "
     "time a standby waits before it takes over after a leader dies (Flink: 60 s)."},
    {"high-availability.zookeeper.client.connection-timeout", OptionType::kDuration, "3 s",
     "zookeeper: how long a process waits for its first connection to the quorum before it "
     "gives up with an error (Flink: 15 s)."},
    {"high-availability.jobmanager.port", OptionType::kString, "0",
     "zookeeper: the JobManager's RPC port, a range such as 50100-50200 (the first free one) or "
     "0 (any free port), so several JobManagers can share a host; TaskManagers and clients find "
     "it in ZooKeeper."},
    {"metrics.enabled", OptionType::kBool, "true",
     "false: tasks count nothing and no metric is kept or reported (to measure what metrics "
     "cost)."},
    {"metrics.reporters", OptionType::kString, "",
     "Comma-separated names of the reporters to start; empty: every configured one."},
    {"metrics.reporter.<name>.factory.class", OptionType::kString, "",
     "The kind of reporter <name>: prometheus (or Flink's "
     "org.apache.flink.metrics.prometheus.PrometheusReporterFactory) or log (or Flink's "
     "org.apache.flink.metrics.slf4j.Slf4jReporterFactory)."},
    {"metrics.reporter.<name>.port", OptionType::kString, "9249",
     "Prometheus reporter: a port or a range such as 9249-9259 (each daemon on a host takes the "
     "first free one)."},
    {"metrics.reporter.<name>.interval", OptionType::kDuration, "10 s",
     "Log reporter: how often it writes every metric to the daemon's log."},
    {"metrics.fetcher.update-interval", OptionType::kDuration, "1 s",
     "How old the TaskManagers' metrics that the REST API shows may be."},
};

std::string NormalizeChoice(std::string v) {
  for (auto& c : v)
    c = c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return v;
}

// `key` against a declared key in which a segment "<name>" stands for any one segment.
bool Matches(std::string_view declared, std::string_view key) {
  while (true) {
    size_t p = declared.find("<name>");
    if (p == std::string_view::npos) return declared == key;
    if (key.substr(0, p) != declared.substr(0, p)) return false;
    key.remove_prefix(p);
    declared.remove_prefix(p + 6);
    size_t end = key.find('.');
    if (end == 0 || end == std::string_view::npos) return false;
    key.remove_prefix(end);
  }
}

// True when `name` is one of `o`'s other names ("a|b").
bool IsOtherName(const ConfigOption& o, std::string_view name) {
  if (!o.other_names) return false;
  for (absl::string_view other : absl::StrSplit(o.other_names, '|')) {
    if (other == absl::string_view(name.data(), name.size())) return true;
  }
  return false;
}

// The option `key` names, by its key or one of its other names; null when none does.
const ConfigOption* Find(const std::string& key) {
  for (const auto& o : kOptions) {
    if (Matches(o.key, key) || IsOtherName(o, key)) return &o;
  }
  return nullptr;
}

// The name values are kept under: the option's key for another name, else `key` as given (a
// declared key with a <name> segment stands for many).
std::string CanonicalKey(const ConfigOption& o, const std::string& key) {
  return IsOtherName(o, key) ? std::string(o.key) : key;
}

// Keys of Flink's that only size or tune its JVM processes (heap, metaspace, JVM options, class
// loading, the actor system). A declared key wins over these prefixes (taskmanager.memory.
// segment-size and managed.size mean something to Sluice).
constexpr const char* kJvmOnlyPrefixes[] = {
    "env.java.",
    "jobmanager.memory.",
    "taskmanager.memory.",
    "taskmanager.network.memory.",
    "classloader.",
    "akka.",
    "pekko.",
    "jobmanager.heap.",
    "taskmanager.heap.",
};
constexpr const char* kJvmOnlyKeys[] = {
    "taskmanager.jvm-exit-on-oom",
    "cluster.intercept-user-system-exit",
    "cluster.processes.halt-on-fatal-error",
};

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1])});
      diagonal = up;
    }
  }
  return row[b.size()];
}

// The declared key (or other name) nearest to `key`, when it is near enough to be a typo.
std::string ClosestKey(const std::string& key) {
  std::string best;
  size_t best_distance = std::max<size_t>(2, key.size() / 4) + 1;
  auto consider = [&](std::string_view candidate) {
    if (candidate.find('<') != std::string_view::npos) return;
    size_t d = EditDistance(key, candidate);
    if (d < best_distance) {
      best_distance = d;
      best = std::string(candidate);
    }
  };
  for (const auto& o : kOptions) {
    consider(o.key);
    if (o.other_names) {
      for (absl::string_view other : absl::StrSplit(o.other_names, '|'))
        consider(std::string_view(other.data(), other.size()));
    }
  }
  return best;
}

absl::Status UnknownKey(const std::string& key) {
  std::string closest = ClosestKey(key);
  return absl::InvalidArgumentError(
      absl::StrCat("unknown configuration key '", key, "'",
                   closest.empty() ? "" : absl::StrCat(" (did you mean '", closest, "'?)")));
}

std::string Trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

// `key` is the key as set: a declared key may have a <name> segment, and messages name the key
// given.
absl::Status Validate(const std::string& key, const ConfigOption& o, const std::string& value) {
  switch (o.type) {
    case OptionType::kString: {
      if (!o.choices) return absl::OkStatus();
      std::string v = NormalizeChoice(Trim(value));
      if (v.empty() && !*o.default_value) return absl::OkStatus();
      std::string choices = "|" + NormalizeChoice(o.choices) + "|";
      if (choices.find("|" + v + "|") != std::string::npos) return absl::OkStatus();
      return absl::InvalidArgumentError(
          absl::StrCat("configuration key '", key, "': '", value, "' is not one of ", o.choices));
    }
    case OptionType::kDouble:
      return ParseDouble(key, value).status();
    case OptionType::kInt: {
      absl::StatusOr<int64_t> n = ParseInt(key, value);
      if (!n.ok()) return n.status();
      if (*n < o.min_int || *n > o.max_int) {
        return absl::InvalidArgumentError(absl::StrCat(
            "configuration key '", key, "': ", *n, " is not from ", o.min_int, " to ", o.max_int));
      }
      return absl::OkStatus();
    }
    case OptionType::kDuration:
      return ParseDurationMs(key, value).status();
    case OptionType::kMemory:
      return ParseBytes(key, value).status();
    case OptionType::kBool:
      return ParseBool(key, value).status();
  }
  return absl::OkStatus();
}

// Doubles below this convert to int64_t exactly enough (2^63 is about 9.22e18).
constexpr double kInt64Limit = 9.2e18;

// Splits "<number><unit>" into its parts; InvalidArgument when there is no number.
absl::StatusOr<std::pair<double, std::string>> NumberAndUnit(const std::string& key,
                                                             const std::string& value,
                                                             const char* what) {
  std::string v = Trim(value);
  size_t i = 0;
  while (i < v.size() && (std::isdigit(static_cast<unsigned char>(v[i])) || v[i] == '.')) ++i;
  char* end = nullptr;
  double n = i == 0 ? 0 : std::strtod(v.c_str(), &end);
  // One number (at most one dot), not too large for int64_t once scaled to ms or bytes.
  if (i == 0 || end != v.c_str() + i || !(n >= 0 && n < 1e15)) {
    return absl::InvalidArgumentError(
        absl::StrCat("configuration key '", key, "': '", value, "' is not a ", what));
  }
  std::string unit = Trim(v.substr(i));
  std::transform(unit.begin(), unit.end(), unit.begin(), ::tolower);
  return std::make_pair(n, unit);
}

// A file's keys and maps, counted as Flatten visits them: YAML aliases let a file of a few lines
// repeat a map exponentially often (a "billion laughs" file), which would otherwise take Flatten
// unbounded time and memory.
constexpr size_t kMaxFlattenedNodes = 100000;

// Maps nested in maps. Real keys have a handful of segments; the bound keeps Flatten's recursion
// shallow, including for a map that holds an alias of itself (`a: &x {b: *x}`), a cycle yaml-cpp
// builds without complaint.
constexpr size_t kMaxMapDepth = 64;

// Nested maps as dotted keys, in `out`. InvalidArgument for a key that is a list or a map (which
// yaml-cpp throws converting to a string), past kMaxFlattenedNodes and past kMaxMapDepth.
absl::Status Flatten(const YAML::Node& node, const std::string& prefix,
                     std::vector<std::pair<std::string, YAML::Node>>& out, size_t& visited,
                     size_t depth = 0) {
  if (++visited > kMaxFlattenedNodes) {
    return absl::InvalidArgumentError(absl::StrCat("has more than ", kMaxFlattenedNodes,
                                                   " keys and maps (its aliases expanded)"));
  }
  if (depth > kMaxMapDepth) {
    return absl::InvalidArgumentError(absl::StrCat("nests maps more than ", kMaxMapDepth,
                                                   " deep (key '", prefix.substr(0, 80),
                                                   "...'; a map that holds an alias of itself?)"));
  }
  if (node.IsMap()) {
    for (const auto& kv : node) {
      if (!kv.first.IsScalar() && !kv.first.IsNull()) {
        return absl::InvalidArgumentError(absl::StrCat("has a key that is a list or a map (line ",
                                                       kv.first.Mark().line + 1, ")"));
      }
      std::string k = kv.first.as<std::string>();
      RETURN_IF_ERROR(
          Flatten(kv.second, prefix.empty() ? k : prefix + "." + k, out, visited, depth + 1));
    }
  } else {
    out.emplace_back(prefix, node);
  }
  return absl::OkStatus();
}

}  // namespace

const std::vector<ConfigOption>& AllConfigOptions() { return kOptions; }

absl::StatusOr<int64_t> ParseInt(const std::string& key, const std::string& value) {
  std::string v = Trim(value);
  char* end = nullptr;
  errno = 0;
  long long n = std::strtoll(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0' || errno == ERANGE) {
    return absl::InvalidArgumentError(
        absl::StrCat("configuration key '", key, "': '", value, "' is not an integer"));
  }
  return static_cast<int64_t>(n);
}

absl::StatusOr<double> ParseDouble(const std::string& key, const std::string& value) {
  std::string v = Trim(value);
  char* end = nullptr;
  double d = std::strtod(v.c_str(), &end);
  if (v.empty() || *end != '\0' || !(d >= 0 && d < 1e15)) {
    return absl::InvalidArgumentError(
        absl::StrCat("configuration key '", key, "': '", value, "' is not a non-negative number"));
  }
  return d;
}

absl::StatusOr<int64_t> ParseDurationMs(const std::string& key, const std::string& value) {
  ASSIGN_OR_RETURN(auto nu, NumberAndUnit(key, value, "duration (e.g. 500 ms, 10 s, 1 min)"));
  auto [n, unit] = nu;
  double ms;
  if (unit.empty() || unit == "ms" || unit == "milli" || unit == "millis" ||
      unit == "milliseconds") {
    ms = n;
  } else if (unit == "s" || unit == "sec" || unit == "secs" || unit == "second" ||
             unit == "seconds") {
    ms = n * 1000;
  } else if (unit == "min" || unit == "m" || unit == "minute" || unit == "minutes") {
    ms = n * 60000;
  } else if (unit == "h" || unit == "hour" || unit == "hours") {
    ms = n * 3600000;
  } else {
    return absl::InvalidArgumentError(absl::StrCat("configuration key '", key,
                                                   "': unknown time unit '", unit, "' in '", value,
                                                   "' (use ms, s, min or h)"));
  }
  // NumberAndUnit's bound is in the unit given: 1e14 h is more milliseconds than an int64_t
  // holds, and converting such a double to one is undefined behaviour.
  if (!(ms < kInt64Limit)) {
    return absl::InvalidArgumentError(
        absl::StrCat("configuration key '", key, "': '", value, "' is too long a duration"));
  }
  return static_cast<int64_t>(ms);
}

absl::StatusOr<int64_t> ParseBytes(const std::string& key, const std::string& value) {
  ASSIGN_OR_RETURN(auto nu, NumberAndUnit(key, value, "memory size (e.g. 32 kb, 64 mb)"));
  auto [n, unit] = nu;
  double mult;
  if (unit.empty() || unit == "b" || unit == "bytes") {
    mult = 1;
  } else if (unit == "k" || unit == "kb" || unit == "kib") {
    mult = 1024;
  } else if (unit == "m" || unit == "mb" || unit == "mib") {
    mult = 1024.0 * 1024;
  } else if (unit == "g" || unit == "gb" || unit == "gib") {
    mult = 1024.0 * 1024 * 1024;
  } else {
    return absl::InvalidArgumentError(absl::StrCat("configuration key '", key,
                                                   "': unknown size unit '", unit, "' in '", value,
                                                   "' (use b, kb, mb or gb)"));
  }
  if (!(n * mult < kInt64Limit)) {  // as for durations: 1e14 gb overflows int64_t
    return absl::InvalidArgumentError(
        absl::StrCat("configuration key '", key, "': '", value, "' is too large a memory size"));
  }
  return static_cast<int64_t>(n * mult);
}

absl::StatusOr<bool> ParseBool(const std::string& key, const std::string& value) {
  std::string v = Trim(value);
  std::transform(v.begin(), v.end(), v.begin(), ::tolower);
  if (v == "true" || v == "yes" || v == "1") return true;
  if (v == "false" || v == "no" || v == "0") return false;
  return absl::InvalidArgumentError(
      absl::StrCat("configuration key '", key, "': '", value, "' is not true or false"));
}

absl::StatusOr<Configuration> Configuration::LoadDir(const std::string& dir, bool optional) {
  std::string path = dir + "/config.yaml";
  if (optional && !std::filesystem::exists(path)) return Configuration();
  return LoadFile(path);
}

absl::StatusOr<Configuration> Configuration::LoadFile(const std::string& path) {
  if (!std::filesystem::exists(path)) {
    return absl::NotFoundError(absl::StrCat("configuration file '", path, "' does not exist"));
  }
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("configuration file '", path, "' is not valid YAML: ", e.what()));
  }
  Configuration conf;
  if (root.IsNull()) return conf;
  if (!root.IsMap()) {
    return absl::InvalidArgumentError(
        absl::StrCat("configuration file '", path, "' must be a map of keys to values"));
  }
  std::vector<std::pair<std::string, YAML::Node>> flat;
  size_t visited = 0;
  if (absl::Status s = Flatten(root, "", flat, visited); !s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("configuration file '", path, "' ", s.message()));
  }
  SourceNames names;
  for (const auto& [key, node] : flat) {
    // A list is a value of a JVM-only key (env.java.opts.all may be one); others need a scalar.
    if (!node.IsScalar() && !(node.IsSequence() && IsJvmOnlyKey(key))) {
      return absl::InvalidArgumentError(absl::StrCat("configuration file '", path, "': key '", key,
                                                     "' must have a single value"));
    }
    absl::Status s = conf.SetChecked(key, node.IsScalar() ? node.as<std::string>() : "", names);
    if (!s.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("configuration file '", path, "': ", s.message()));
    }
  }
  return conf;
}

bool IsJvmOnlyKey(const std::string& key) {
  if (Find(key)) return false;
  // Within two edits of a declared key it is taken for a typo of that key (taskmanager.memory.
  // segment-sise), not for a JVM key.
  std::string closest = ClosestKey(key);
  if (!closest.empty() && EditDistance(key, closest) <= 2) return false;
  for (const char* k : kJvmOnlyKeys) {
    if (key == k) return true;
  }
  for (const char* prefix : kJvmOnlyPrefixes) {
    if (absl::StartsWith(key, prefix) && key.size() > std::strlen(prefix)) return true;
  }
  return false;
}

bool WarnOnceAboutJvmOnlyKey(const std::string& key) {
  ABSL_CONST_INIT static absl::Mutex mu(absl::kConstInit);
  static auto* warned = new std::set<std::string>();
  {
    absl::MutexLock lock(&mu);
    if (!warned->insert(key).second) return false;
  }
  spdlog::warn(
      "configuration key '{}' configures Flink's JVM and does not apply to Sluice (a native "
      "process); ignored",
      key);
  return true;
}

absl::Status Configuration::Set(const std::string& key, const std::string& value) {
  const ConfigOption* o = Find(key);
  if (!o) {
    if (!IsJvmOnlyKey(key)) return UnknownKey(key);
    WarnOnceAboutJvmOnlyKey(key);
    ignored_[key] = Trim(value);
    return absl::OkStatus();
  }
  RETURN_IF_ERROR(Validate(key, *o, value));
  values_[CanonicalKey(*o, key)] = Trim(value);
  return absl::OkStatus();
}

absl::Status Configuration::SetChecked(const std::string& key, const std::string& value,
                                       SourceNames& names) {
  RETURN_IF_ERROR(Set(key, value));
  const ConfigOption* o = Find(key);
  if (!o) return absl::OkStatus();
  auto [it, fresh] = names.emplace(CanonicalKey(*o, key), std::make_pair(key, Trim(value)));
  if (fresh) return absl::OkStatus();
  auto& [before, before_value] = it->second;
  if (before != key && before_value != Trim(value)) {
    return absl::InvalidArgumentError(
        absl::StrCat("configuration keys '", before, "' and '", key,
                     "' name the same setting and are set to different values ('", before_value,
                     "' and '", Trim(value), "'); keep one of them"));
  }
  it->second = {key, Trim(value)};
  return absl::OkStatus();
}

absl::Status Configuration::ApplyOverrides(const std::vector<std::string>& overrides) {
  SourceNames names;
  for (const std::string& kv : overrides) {
    auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      return absl::InvalidArgumentError(absl::StrCat("-D expects key=value, got '", kv, "'"));
    }
    RETURN_IF_ERROR(SetChecked(Trim(kv.substr(0, eq)), kv.substr(eq + 1), names));
  }
  return absl::OkStatus();
}

namespace {
const std::string& Raw(const std::map<std::string, std::string>& values, const std::string& key) {
  const ConfigOption* o = Find(key);
  if (o) {
    auto it = values.find(CanonicalKey(*o, key));
    if (it != values.end()) return it->second;
  }
  if (!o) {
    std::fprintf(stderr, "internal error: configuration key '%s' is not declared\n", key.c_str());
    std::abort();
  }
  static thread_local std::string def;
  def = o->default_value;
  return def;
}
}  // namespace

bool Configuration::IsSet(const std::string& key) const {
  const ConfigOption* o = Find(key);
  return o && values_.count(CanonicalKey(*o, key)) > 0;
}

std::string Configuration::GetString(const std::string& key) const { return Raw(values_, key); }
int64_t Configuration::GetInt(const std::string& key) const {
  return *ParseInt(key, Raw(values_, key));
}
int64_t Configuration::GetDurationMs(const std::string& key) const {
  return *ParseDurationMs(key, Raw(values_, key));
}
int64_t Configuration::GetBytes(const std::string& key) const {
  return *ParseBytes(key, Raw(values_, key));
}
bool Configuration::GetBool(const std::string& key) const {
  return *ParseBool(key, Raw(values_, key));
}

double Configuration::GetDouble(const std::string& key) const {
  return *ParseDouble(key, Raw(values_, key));
}

std::string Configuration::GetChoice(const std::string& key) const {
  return NormalizeChoice(Trim(Raw(values_, key)));
}

}  // namespace sluice
