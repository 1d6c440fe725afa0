// Figures 4 (checkpoint overhead) and 5 (recovery from kill -9) of sluice-bench; see
// checkpoint_bench.h.
#include "checkpoint_bench.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "bench_util.h"
#include "client/job_client.h"
#include "common/job_graph.h"
#include "common/job_library.h"
#include "common/job_states.h"
#include "common/status_macros.h"
#include "process_cluster.h"
#include "progress_files.h"

namespace sluice::bench {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

constexpr int kParallelism = 2;   // of every operator of the job: it takes 2 slots
constexpr int kTaskManagers = 3;  // of 1 slot each: the job's 2 and a spare
// Figure 4: a run during which other processes used less CPU than this (cores) was quiet.
constexpr double kQuietCores = 0.25;

// ---------------------------------------------------------------------------------------------
// The daemons' CPU.

// CPU seconds consumed so far by each daemon, by this program and by the whole machine.
struct CpuClock {
  explicit CpuClock(const ProcessCluster& c)
      : self(ProcessCpuSeconds(::getpid())), machine(MachineBusySeconds()) {
    for (pid_t p : c.pids()) daemons[p] = ProcessCpuSeconds(p);
  }
  // CPU seconds of the daemons since `before`; a daemon started since counts whole, one killed
  // since not at all.
  double Daemons(const CpuClock& before) const {
    double s = 0;
    for (const auto& [pid, cpu] : daemons) {
      auto it = before.daemons.find(pid);
      s += cpu - (it == before.daemons.end() ? 0 : it->second);
    }
    return s;
  }
  // CPU seconds of every other process since `before`.
  double Others(const CpuClock& before) const {
    return std::max(0.0, (machine - before.machine) - Daemons(before) - (self - before.self));
  }
  std::map<pid_t, double> daemons;
  double self, machine;
};

// ---------------------------------------------------------------------------------------------
// The job and its progress.

class KeyedJobRunner {
 public:
  KeyedJobRunner(ProcessCluster& cluster, const CheckpointBenchOptions& o, std::string dir)
      : cluster_(cluster), o_(o), dir_(std::move(dir)) {}

  // Submits the job; `config` becomes its own configuration (SubmitJobRequest.config).
  // `progress` gets its progress files.
  absl::StatusOr<std::string> Submit(double rate, const std::map<std::string, std::string>& config,
                                     std::unique_ptr<ProgressFiles>* progress) {
    const std::string library = o_.lib_dir + "/libbench_keyed_state.so";
    std::string pdir = absl::StrCat(dir_, "/progress-", ++jobs_);
    ASSIGN_OR_RETURN(*progress, ProgressFiles::Create(pdir, kParallelism));
    std::vector<std::string> args = {"--keys",         std::to_string(o_.keys),
                                     "--rate",         absl::StrFormat("%.0f", rate),
                                     "--parallelism",  std::to_string(kParallelism),
                                     "--progress-dir", pdir};
    if (o_.stateless) args.push_back("--stateless");
    ASSIGN_OR_RETURN(std::shared_ptr<JobLibrary> lib, JobLibrary::Load(library));
    ASSIGN_OR_RETURN(std::unique_ptr<StreamExecutionEnvironment> env, lib->BuildEnvironment(args));
    ASSIGN_OR_RETURN(proto::JobGraph graph, BuildJobGraph(*env, JobGraphOptions{}));
    if (sha_.empty()) {
      std::ifstream f(library, std::ios::binary);
      std::ostringstream ss;
      ss << f.rdbuf();
      ASSIGN_OR_RETURN(sha_, cluster_.client().UploadLibrary(ss.str()));
    }
    proto::SubmitJobRequest req;
    *req.mutable_graph() = std::move(graph);
    req.set_library_sha256(sha_);
    for (const auto& a : args) req.add_args(a);
    for (const auto& [k, v] : config) (*req.mutable_config())[k] = v;
    return cluster_.client().Submit(req);
  }

  // Until the job is RUNNING with every task RUNNING (and `pred` holds).
  absl::StatusOr<proto::JobStatus> WaitAllRunning(
      const std::string& job_id, std::chrono::milliseconds timeout,
      const std::function<bool(const proto::JobStatus&)>& pred = nullptr) {
    auto t0 = Clock::now();
    std::string last = "(no answer)";
    while (SecondsSince(t0) < std::chrono::duration<double>(timeout).count()) {
      auto st = cluster_.client().GetJob(job_id);
      if (st.ok()) {
        last = std::string(JobStateName(st->state()));
        if (AllRunning(*st) && (!pred || pred(*st))) return *st;
        if (IsTerminalJobState(st->state())) break;
      }
      std::this_thread::sleep_for(10ms);
    }
    return absl::DeadlineExceededError(absl::StrCat("job ", job_id, " is not RUNNING (last state ",
                                                    last, ")\n", cluster_.LogTails()));
  }

  // Cancels the job, waits for CANCELED and for the cluster's slots to be free again.
  absl::Status Cancel(const std::string& job_id) {
    RETURN_IF_ERROR(cluster_.client().Cancel(job_id));
    auto t0 = Clock::now();
    while (SecondsSince(t0) < 30) {
      auto st = cluster_.client().GetJob(job_id);
      auto ov = cluster_.client().Overview();
      if (st.ok() && IsTerminalJobState(st->state()) && ov.ok() &&
          ov->free_slots() == ov->total_slots()) {
        return absl::OkStatus();
      }
      std::this_thread::sleep_for(20ms);
    }
    return absl::DeadlineExceededError(
        absl::StrCat("job ", job_id, " did not end after cancel\n", cluster_.LogTails()));
  }

  static bool AllRunning(const proto::JobStatus& st) {
    if (st.state() != proto::JOB_RUNNING || st.tasks_size() == 0) return false;
    for (const auto& t : st.tasks()) {
      if (t.state() != proto::TASK_RUNNING) return false;
    }
    return true;
  }

 private:
  ProcessCluster& cluster_;
  const CheckpointBenchOptions& o_;
  std::string dir_;
  std::string sha_;
  int jobs_ = 0;
};

// ---------------------------------------------------------------------------------------------
// The JobManager's log.

struct LogLine {
  int64_t wall_ms = 0;  // from the line's local-time stamp
  std::string text;
};

std::vector<LogLine> ReadLog(const std::string& path) {
  std::vector<LogLine> out;
  std::ifstream f(path);
  std::string line;
  while (std::getline(f, line)) {
    std::tm tm{};
    int ms = 0;
    if (line.size() < 23 ||
        std::sscanf(line.c_str(), "%d-%d-%d %d:%d:%d.%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                    &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) != 7) {
      continue;
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    tm.tm_isdst = -1;
    out.push_back({static_cast<int64_t>(std::mktime(&tm)) * 1000 + ms, line.substr(23)});
  }
  return out;
}

struct CheckpointRecord {
  int64_t id = 0;
  int64_t complete_ms = 0;  // the log line's time
  int64_t duration_ms = 0;  // trigger to _metadata written, as the JobManager logs it
  int files = 0;
  int64_t bytes = -1;  // sum of the chk-<id> folder's files; -1 when not seen
};

// "job <id>: checkpoint N complete (F state files, T ms)" lines of `job_id`, by checkpoint id.
std::map<int64_t, CheckpointRecord> CompletedCheckpoints(const std::vector<LogLine>& log,
                                                         const std::string& job_id) {
  static const std::regex kComplete(
      R"(checkpoint (\d+) complete \((\d+) state files, (\d+) ms[;)])");
  std::map<int64_t, CheckpointRecord> out;
  for (const auto& l : log) {
    if (!absl::StrContains(l.text, "job " + job_id + ": checkpoint")) continue;
    std::smatch m;
    if (!std::regex_search(l.text, m, kComplete)) continue;
    CheckpointRecord c;
    c.id = std::stoll(m[1]);
    c.files = std::stoi(m[2]);
    c.duration_ms = std::stoll(m[3]);
    c.complete_ms = l.wall_ms;
    out[c.id] = c;
  }
  return out;
}

// The first line at or after `from_ms` that contains every one of `parts`.
const LogLine* FindLine(const std::vector<LogLine>& log, int64_t from_ms,
                        const std::vector<std::string>& parts) {
  for (const auto& l : log) {
    if (l.wall_ms < from_ms) continue;
    bool all = true;
    for (const auto& p : parts) all &= absl::StrContains(l.text, p);
    if (all) return &l;
  }
  return nullptr;
}

// Records the size of every complete chk-<n> folder (one with _metadata) of a job's checkpoint
// folder not seen before. With state.checkpoints.num-retained 1 a folder lives until the next
// checkpoint completes, so a scan every 100 ms sees each one.
void ScanCheckpointSizes(const std::string& job_dir, std::map<int64_t, int64_t>& sizes) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(job_dir, ec)) {
    std::string name = e.path().filename().string();
    if (name.rfind("chk-", 0) != 0) continue;
    int64_t id = std::atoll(name.c_str() + 4);
    if (sizes.count(id) || !fs::exists(e.path() / "_metadata", ec)) continue;
    int64_t bytes = 0;
    for (const auto& f : fs::directory_iterator(e.path(), ec)) {
      if (f.is_regular_file(ec)) bytes += static_cast<int64_t>(f.file_size(ec));
    }
    if (!ec) sizes[id] = bytes;
  }
}

// ---------------------------------------------------------------------------------------------
// 4. Checkpoint overhead.

struct RunSample {
  double rate = 0;          // records / wall second, over the window
  double cpu_cores = 0;     // daemons' CPU seconds / wall second
  double other_cores = 0;   // CPU seconds / wall second of every other process of the machine
  double per_cpu = 0;       // records / daemons' CPU second
  int64_t checkpoints = 0;  // completed within the window
};

struct Figure4Result {
  double median_rate_without = 0;
};

absl::StatusOr<Figure4Result> BenchCheckpointOverhead(const CheckpointBenchOptions& o,
                                                      ProcessCluster& cluster,
                                                      KeyedJobRunner& runner) {
  const std::string title =
      o.stateless ? "a stateless chained pipeline"
                  : absl::StrCat("a keyed count and sum over ", Count(o.keys), " keys");
  const char* shape =
      o.stateless
          ? "source (as fast as it goes) -> map (a copy) -> sink counting records, chained\n"
            "   into one task per subtask (--stateless; the source's position is its only state)"
          : "source (as fast as it goes) -> key_by -> count and sum per key in two ValueStates\n"
            "   -> sink counting records";
  std::printf(
      "\n4. Checkpoint overhead: %s, without (A) and with (B) checkpoints.\n"
      "   Real daemons on 127.0.0.1: a JobManager (port %d, picked at run time) and %d\n"
      "   TaskManagers x 1 slot; the job takes 2 (the third idles). Job "
      "(bench/jobs/keyed_state.cc,\n"
      "   every operator at parallelism %d): %s.\n"
      "   Each run: submit, all tasks RUNNING, %.1f s warm-up, then the records the sinks\n"
      "   received over %.1f s, then cancel.\n"
      "   B: execution.checkpointing.interval=%s (EXACTLY_ONCE, 1 checkpoint retained, the\n"
      "   state on the local disk). Rounds alternate A B A B ...; cores: CPU seconds per second\n"
      "   of the daemons (the three TaskManagers and the JobManager, /proc/<pid>/stat) over the\n"
      "   window; others: of every other process on the machine (/proc/stat minus the daemons\n"
      "   and this program), the noise; chks: checkpoints completed in the window.\n",
      title.c_str(), cluster.jm_port(), kTaskManagers, kParallelism, shape, o.warmup_s, o.window_s,
      o.interval.c_str());
  std::printf("\n   %-5s %-20s %11s %6s %6s %13s %5s  %s\n", "round", "run", "records/s", "cores",
              "others", "rec per CPU-s", "chks", "B / A: records/s, per CPU-s");
  std::fflush(stdout);

  std::vector<double> ratio_wall, ratio_cpu, rate_a, rate_b, cpu_a, quiet_wall, quiet_cpu;
  std::map<int64_t, CheckpointRecord> all_checkpoints;
  int64_t failed_checkpoints = 0;
  for (int r = 1; r <= o.rounds; ++r) {
    RunSample a, b;
    for (bool with : {false, true}) {
      std::map<std::string, std::string> config;
      if (with) config["execution.checkpointing.interval"] = o.interval;
      std::unique_ptr<ProgressFiles> progress;
      ASSIGN_OR_RETURN(std::string job, runner.Submit(0, config, &progress));
      RETURN_IF_ERROR(runner.WaitAllRunning(job, 60s).status());
      std::this_thread::sleep_for(std::chrono::duration<double>(o.warmup_s));
      std::map<int64_t, int64_t> sizes;
      const std::string job_dir = cluster.checkpoint_root() + "/" + job;
      ASSIGN_OR_RETURN(proto::JobStatus st0, cluster.client().GetJob(job));
      int64_t n0 = progress->Records();
      CpuClock cpu0(cluster);
      auto t0 = Clock::now();
      // Both runs poll the same way; only B finds checkpoints.
      while (SecondsSince(t0) < o.window_s) {
        ScanCheckpointSizes(job_dir, sizes);
        std::this_thread::sleep_for(100ms);
      }
      int64_t n1 = progress->Records();
      CpuClock cpu1(cluster);
      double wall = SecondsSince(t0);
      ASSIGN_OR_RETURN(proto::JobStatus st1, cluster.client().GetJob(job));
      if (!KeyedJobRunner::AllRunning(st1)) {
        return absl::InternalError(
            absl::StrCat("job ", job, " is ", std::string(JobStateName(st1.state())),
                         " during the measurement: ", st1.failure(), "\n", cluster.LogTails()));
      }
      RETURN_IF_ERROR(runner.Cancel(job));
      RunSample s;
      s.rate = static_cast<double>(n1 - n0) / wall;
      double cpu = cpu1.Daemons(cpu0);
      s.cpu_cores = cpu / wall;
      s.other_cores = cpu1.Others(cpu0) / wall;
      s.per_cpu = cpu > 0 ? static_cast<double>(n1 - n0) / cpu : 0;
      s.checkpoints = st1.completed_checkpoints() - st0.completed_checkpoints();
      if (with) {
        failed_checkpoints += st1.failed_checkpoints();
        auto done = CompletedCheckpoints(ReadLog(cluster.jm_log()), job);
        for (auto& [id, c] : done) {
          auto it = sizes.find(id);
          if (it != sizes.end()) c.bytes = it->second;
          // Ids restart at 1 for every job: key them apart.
          all_checkpoints[static_cast<int64_t>(r) * 1'000'000 + id] = c;
        }
        b = s;
      } else {
        a = s;
      }
      std::printf("   %-5d %-20s %11s %6.2f %6.2f %13s %5s", r,
                  with ? absl::StrCat("B checkpoints ", o.interval).c_str() : "A no checkpoints",
                  Rate(s.rate).c_str(), s.cpu_cores, s.other_cores, Rate(s.per_cpu).c_str(),
                  with ? std::to_string(s.checkpoints).c_str() : "-");
      if (with && a.rate > 0 && a.per_cpu > 0) {
        std::printf("  %.3f, %.3f", s.rate / a.rate, s.per_cpu / a.per_cpu);
      }
      std::printf("\n");
      std::fflush(stdout);
    }
    rate_a.push_back(a.rate);
    rate_b.push_back(b.rate);
    cpu_a.push_back(a.per_cpu);
    ratio_wall.push_back(b.rate / a.rate);
    ratio_cpu.push_back(b.per_cpu / a.per_cpu);
    if (std::max(a.other_cores, b.other_cores) < kQuietCores) {
      quiet_wall.push_back(b.rate / a.rate);
      quiet_cpu.push_back(b.per_cpu / a.per_cpu);
    }
  }
  double rw = Median(ratio_wall), rc = Median(ratio_cpu);
  // Consecutive A runs are an A/A control: how much two runs of the same job differ here.
  std::vector<double> aa_wall, aa_cpu;
  for (size_t i = 1; i < rate_a.size(); ++i) {
    aa_wall.push_back(std::abs(rate_a[i] / rate_a[i - 1] - 1));
    aa_cpu.push_back(std::abs(cpu_a[i] / cpu_a[i - 1] - 1));
  }
  std::printf(
      "\n   median A %s, median B %s; median of the rounds' B/A: %.3f records/s (%.1f%% lost),\n"
      "   %.3f records per CPU-second (%.1f%% lost). Target under 5%% lost: %s\n",
      Rate(Median(rate_a)).c_str(), Rate(Median(rate_b)).c_str(), rw, (1 - rw) * 100, rc,
      (1 - rc) * 100, 1 - rw < 0.05 ? "MET" : "NOT MET");
  if (!aa_wall.empty()) {
    double nw = Median(aa_wall), nc = Median(aa_cpu);
    std::printf(
        "   Noise: A runs from %s to %s; two consecutive A runs (an A/A control) differ by a\n"
        "   median %.1f%% in records/s, %.1f%% in records per CPU-second.%s\n",
        Rate(*std::min_element(rate_a.begin(), rate_a.end())).c_str(),
        Rate(*std::max_element(rate_a.begin(), rate_a.end())).c_str(), nw * 100, nc * 100,
        nw > 0.05 ? "\n   That is more than the 5% target: the verdict is within the noise (more\n"
                    "   --rounds, or a quieter machine, narrow it)."
                  : "");
  }
  if (quiet_wall.empty()) {
    std::printf("   No round had both runs with others under %.2f cores.\n", kQuietCores);
  } else {
    double qw = Median(quiet_wall), qc = Median(quiet_cpu);
    std::printf(
        "   The %zu round(s) whose runs both had others under %.2f cores: median B/A %.3f\n"
        "   records/s (%.1f%% lost), %.3f per CPU-second (%.1f%% lost).\n",
        quiet_wall.size(), kQuietCores, qw, (1 - qw) * 100, qc, (1 - qc) * 100);
  }

  std::vector<double> durations, bytes, files;
  for (const auto& [key, c] : all_checkpoints) {
    durations.push_back(static_cast<double>(c.duration_ms));
    files.push_back(c.files);
    if (c.bytes >= 0) bytes.push_back(static_cast<double>(c.bytes));
  }
  auto minmax = [](const std::vector<double>& v) {
    if (v.empty()) return std::make_pair(0.0, 0.0);
    return std::make_pair(*std::min_element(v.begin(), v.end()),
                          *std::max_element(v.begin(), v.end()));
  };
  auto [dmin, dmax] = minmax(durations);
  auto [bmin, bmax] = minmax(bytes);
  std::printf(
      "\n   Checkpoints of the B runs: %zu completed (%lld failed), %.0f state files each.\n"
      "   duration: median %.0f ms (min %.0f, max %.0f), from the JobManager's log line\n"
      "             \"checkpoint N complete (F state files, T ms)\": trigger sent to _metadata\n"
      "             written (barriers through the job, snapshot, state files written, acks);\n"
      "   size:     median %s (min %s, max %s) over %zu checkpoints: the files\n"
      "             of chk-N (state files and _metadata), read while the checkpoint was\n"
      "             retained; %s.\n",
      all_checkpoints.size(), static_cast<long long>(failed_checkpoints), Median(files),
      Median(durations), dmin, dmax, Bytes(Median(bytes)).c_str(), Bytes(bmin).c_str(),
      Bytes(bmax).c_str(), bytes.size(),
      o.stateless
          ? "no keyed state, only the sources' positions"
          : absl::StrFormat("%.1f bytes per key (each key holds two int64 ValueStates)",
                            Median(bytes) / static_cast<double>(std::max<int64_t>(o.keys, 1)))
                .c_str());
  std::fflush(stdout);
  Figure4Result res;
  res.median_rate_without = Median(rate_a);
  return res;
}

// ---------------------------------------------------------------------------------------------
// 5. Recovery.

// The (sink subtask, source subtask) pairs that records flow through: those that have carried a
// record so far. With many keys every sink subtask receives records of every source subtask.
using Pairs = std::vector<std::pair<int, int>>;
Pairs ActivePairs(const ProgressFiles& p) {
  Pairs pairs;
  auto recs = p.Read();
  for (int sink = 0; sink < static_cast<int>(recs.size()); ++sink) {
    for (int src = 0; src < kMaxProgressSources; ++src) {
      if (recs[sink].max_due_us[src] > 0) pairs.emplace_back(sink, src);
    }
  }
  return pairs;
}

// The output's lag: now minus the oldest, over `pairs`, of the newest due time a sink subtask
// has received from a source subtask, in ms: how far the slowest path of the job's output is
// behind its schedule. Sink subtasks of an attempt before `min_attempt` count as not started.
struct Lag {
  bool all_started = false;  // every pair has carried a record of `min_attempt` or later
  double ms = 0;
};
Lag OutputLag(const ProgressFiles& p, const Pairs& pairs, int64_t min_attempt) {
  Lag lag;
  lag.all_started = !pairs.empty();
  int64_t oldest = INT64_MAX;
  auto recs = p.Read();
  for (const auto& [sink, src] : pairs) {
    const ProgressRecord& r = recs[static_cast<size_t>(sink)];
    if (r.attempt < min_attempt || r.max_due_us[src] == 0) {
      lag.all_started = false;
      continue;
    }
    oldest = std::min(oldest, r.max_due_us[src]);
  }
  lag.ms = lag.all_started ? static_cast<double>(WallMicros() - oldest) / 1e3 : 0;
  return lag;
}

struct KillSample {
  std::string victim;
  int source_subtask = 0;
  int64_t kill_ms = 0;
  double lag_before_median = 0, lag_before_max = 0;
  double since_trigger = -1;  // kill - trigger of the checkpoint restored (from the log)
  int64_t restored_from = 0;
  double lost = -1, failover = -1, redeployed = -1;  // from the JobManager's log
  double running = -1;                               // GetJob
  double first_output = -1, lag_at_first_output = -1, caught_up = -1;
  double cores = 0, other_cores = 0;  // from the kill to caught up: the daemons', the others'
  std::string cause;
};

// The value of `key` among the -D settings, or `fallback` (the default) when none sets it.
std::string Setting(const CheckpointBenchOptions& o, const std::string& key,
                    const std::string& fallback) {
  std::string value = fallback + " (default)";
  for (const auto& kv : o.overrides) {
    if (absl::StartsWith(kv, key + "=")) value = kv.substr(key.size() + 1);
  }
  return value;
}

absl::Status BenchRecovery(const CheckpointBenchOptions& o, ProcessCluster& cluster,
                           KeyedJobRunner& runner, double rate) {
  std::printf(
      "\n5. Recovery from kill -9 of a TaskManager, a spare TaskManager ready.\n"
      "   The job of figure 4, its source paced at %s records\n"
      "   (%s), with execution.checkpointing.interval=%s,\n"
      "   restart-strategy.type=fixed-delay, restart-strategy.fixed-delay.delay=%s;\n"
      "   heartbeat.interval=%s, heartbeat.timeout=%s.\n"
      "   %d TaskManagers x 1 slot: the job on 2, one spare; after each kill a new TaskManager is\n"
      "   started to be the next spare. Each kill: SIGKILL to the TaskManager running source\n"
      "   subtask k (alternating), %lld ms after GetJob showed a new completed checkpoint.\n"
      "   Output lag = now - the newest due time the slowest sink subtask has received (each\n"
      "   record is due at a fixed time from the job's start, so this is how far the output is\n"
      "   behind where it would be without the failure); caught up = lag <= %lld ms again, with\n"
      "   every sink subtask of the new attempt.\n",
      Rate(rate).c_str(), o.rate > 0 ? "--rate" : "a third of the median rate without checkpoints",
      o.interval.c_str(), o.restart_delay.c_str(), Setting(o, "heartbeat.interval", "1s").c_str(),
      Setting(o, "heartbeat.timeout", "5s").c_str(), kTaskManagers,
      static_cast<long long>(o.kill_phase_ms), static_cast<long long>(o.catch_up_lag_ms));
  std::fflush(stdout);

  std::map<std::string, std::string> config = {
      {"execution.checkpointing.interval", o.interval},
      {"restart-strategy.type", "fixed-delay"},
      {"restart-strategy.fixed-delay.delay", o.restart_delay},
      {"restart-strategy.fixed-delay.attempts", "1000"},
  };
  std::unique_ptr<ProgressFiles> progress;
  ASSIGN_OR_RETURN(std::string job, runner.Submit(rate, config, &progress));
  RETURN_IF_ERROR(runner.WaitAllRunning(job, 60s).status());
  std::this_thread::sleep_for(1s);
  const Pairs pairs = ActivePairs(*progress);
  if (pairs.empty()) {
    return absl::InternalError(
        absl::StrCat("job ", job, " has output nothing 1 s after it ran\n", cluster.LogTails()));
  }

  std::vector<KillSample> samples;
  for (int k = 0; k < o.kills; ++k) {
    KillSample s;
    s.source_subtask = k % kParallelism;
    // Steady: every task RUNNING, a checkpoint completed since the last restart, the output on
    // time; then a new checkpoint, then the kill phase.
    ASSIGN_OR_RETURN(proto::JobStatus st, runner.WaitAllRunning(job, 60s, [](const auto& st) {
      return st.last_checkpoint_id() > 0;
    }));
    auto t0 = Clock::now();
    while (true) {
      Lag lag = OutputLag(*progress, pairs, st.restarts());
      if (lag.all_started && lag.ms <= static_cast<double>(o.catch_up_lag_ms)) break;
      if (SecondsSince(t0) > 60) {
        return absl::DeadlineExceededError(absl::StrCat("the job's output is ", lag.ms,
                                                        " ms late before kill ", k + 1, "\n",
                                                        cluster.LogTails()));
      }
      std::this_thread::sleep_for(10ms);
    }
    ASSIGN_OR_RETURN(st, runner.WaitAllRunning(job, 60s, [&](const auto& now) {
      return now.last_checkpoint_id() > st.last_checkpoint_id();
    }));
    std::vector<double> lags;
    auto phase0 = Clock::now();
    while (SecondsSince(phase0) * 1e3 < static_cast<double>(o.kill_phase_ms)) {
      lags.push_back(OutputLag(*progress, pairs, st.restarts()).ms);
      std::this_thread::sleep_for(10ms);
    }
    s.lag_before_median = Median(lags);
    s.lag_before_max = lags.empty() ? 0 : *std::max_element(lags.begin(), lags.end());
    ASSIGN_OR_RETURN(st, cluster.client().GetJob(job));
    for (const auto& t : st.tasks()) {
      if (t.vertex_id() == 0 && t.subtask() == s.source_subtask) s.victim = t.tm_id();
    }
    if (s.victim.empty()) return absl::InternalError("no TaskManager runs the source");
    const int restarts_before = st.restarts();

    // The kill, then GetJob and the progress files polled together until RUNNING and caught up.
    CpuClock cpu0(cluster);
    auto kill_t = Clock::now();
    s.kill_ms = cluster.KillTaskManager(s.victim);
    auto ms_since_kill = [&] { return SecondsSince(kill_t) * 1e3; };
    double last_trace = -1e9;
    while (s.running < 0 || s.caught_up < 0) {
      if (s.running < 0) {
        auto now = cluster.client().GetJob(job);
        if (now.ok()) {
          if (now->restarts() > restarts_before && KeyedJobRunner::AllRunning(*now)) {
            s.running = ms_since_kill();
          }
          if (IsTerminalJobState(now->state())) {
            return absl::InternalError(absl::StrCat(
                "job ", job, " ", std::string(JobStateName(now->state())), " after kill ", k + 1,
                ": ", now->failure(), "\n", cluster.LogTails()));
          }
        }
      }
      Lag lag = OutputLag(*progress, pairs, restarts_before + 1);
      if (o.trace_recovery && ms_since_kill() - last_trace >= 100) {
        last_trace = ms_since_kill();
        std::string line = absl::StrFormat("   kill %d +%5.0f ms: ", k + 1, last_trace);
        if (lag.all_started) {
          absl::StrAppendFormat(&line, "output lag %5.0f ms", lag.ms);
        } else {
          absl::StrAppend(&line, "output of the new attempt not started");
        }
        for (const auto& r : progress->Read()) {
          absl::StrAppendFormat(&line, "; sink attempt %d: %s records", r.attempt,
                                Count(r.records));
        }
        std::printf("%s\n", line.c_str());
      }
      if (lag.all_started) {
        if (s.first_output < 0) {
          s.first_output = ms_since_kill();
          s.lag_at_first_output = lag.ms;
        }
        if (s.caught_up < 0 && lag.ms <= static_cast<double>(o.catch_up_lag_ms)) {
          s.caught_up = ms_since_kill();
        }
      }
      if (ms_since_kill() > 60'000) {
        return absl::DeadlineExceededError(
            absl::StrCat("the job did not recover within 60 s of kill ", k + 1, " (RUNNING after ",
                         s.running, " ms, output lag ", lag.ms, " ms)\n", cluster.LogTails()));
      }
      std::this_thread::sleep_for(s.running < 0 ? 5ms : 2ms);
    }

    CpuClock cpu1(cluster);
    double recovery_s = SecondsSince(kill_t);
    s.cores = cpu1.Daemons(cpu0) / recovery_s;
    s.other_cores = cpu1.Others(cpu0) / recovery_s;

    // The JobManager's side, from its log.
    std::vector<LogLine> log = ReadLog(cluster.jm_log());
    const int64_t from = s.kill_ms - 1;  // the log's stamps have millisecond resolution
    if (auto* l = FindLine(log, from, {"TaskManager " + s.victim, "was lost"})) {
      s.lost = static_cast<double>(l->wall_ms - s.kill_ms);
    }
    if (auto* l = FindLine(log, from, {"job " + job + " restarting in"})) {
      s.failover = static_cast<double>(l->wall_ms - s.kill_ms);
      auto colon = l->text.find(" ms: ");
      if (colon != std::string::npos) s.cause = l->text.substr(colon + 5);
    }
    static const std::regex kFrom(R"(from checkpoint (\d+))");
    if (auto* l = FindLine(log, from, {"job " + job + " restarted (attempt"})) {
      s.redeployed = static_cast<double>(l->wall_ms - s.kill_ms);
      std::smatch m;
      if (std::regex_search(l->text, m, kFrom)) s.restored_from = std::stoll(m[1]);
    }
    auto done = CompletedCheckpoints(log, job);
    if (auto it = done.find(s.restored_from); it != done.end()) {
      s.since_trigger =
          static_cast<double>(s.kill_ms - (it->second.complete_ms - it->second.duration_ms));
    }
    samples.push_back(s);

    // The next spare.
    RETURN_IF_ERROR(cluster.AddTaskManager().status());
  }
  RETURN_IF_ERROR(runner.Cancel(job));

  auto cell = [](double v) { return v < 0 ? std::string("?") : absl::StrFormat("%.0f", v); };
  std::printf(
      "\n   Milliseconds from the SIGKILL to: lost, the JobManager's log line \"TaskManager <id> "
      "...\n"
      "   was lost\" (the detection); failover, its line \"job <id> restarting in <delay> ms\" "
      "(the\n"
      "   first failure it heard of, often a consumer's lost connection); redeployed, its line\n"
      "   \"job <id> restarted (attempt n) from checkpoint m\"; RUNNING, GetJob showing the job "
      "and\n"
      "   all its tasks RUNNING with restarts + 1 (polled every 5 ms); 1st output, every sink\n"
      "   subtask of the new attempt has output a record; caught up, the output lag is <= %lld "
      "ms.\n"
      "   The last two columns are the part beyond detection.\n",
      static_cast<long long>(o.catch_up_lag_ms));
  std::printf("\n   %-5s %6s %9s %11s %8s %11s %10s   %15s %17s\n", "kill", "lost", "failover",
              "redeployed", "RUNNING", "1st output", "caught up", "RUNNING - lost",
              "caught up - lost");
  std::vector<double> lost, failover, redeployed, running, first, caught, beyond, beyond_caught;
  for (size_t i = 0; i < samples.size(); ++i) {
    const KillSample& s = samples[i];
    double b = s.lost >= 0 ? s.running - s.lost : -1;
    double bc = s.lost >= 0 ? s.caught_up - s.lost : -1;
    std::printf("   %-5zu %6s %9s %11s %8s %11s %10s   %15s %17s\n", i + 1, cell(s.lost).c_str(),
                cell(s.failover).c_str(), cell(s.redeployed).c_str(), cell(s.running).c_str(),
                cell(s.first_output).c_str(), cell(s.caught_up).c_str(), cell(b).c_str(),
                cell(bc).c_str());
    if (s.lost >= 0) lost.push_back(s.lost);
    if (s.failover >= 0) failover.push_back(s.failover);
    if (s.redeployed >= 0) redeployed.push_back(s.redeployed);
    running.push_back(s.running);
    first.push_back(s.first_output);
    caught.push_back(s.caught_up);
    if (b >= 0) beyond.push_back(b);
    if (bc >= 0) beyond_caught.push_back(bc);
  }
  std::printf("   %-5s %6.0f %9.0f %11.0f %8.0f %11.0f %10.0f   %15.0f %17.0f\n", "median",
              Median(lost), Median(failover), Median(redeployed), Median(running), Median(first),
              Median(caught), Median(beyond), Median(beyond_caught));

  std::printf(
      "\n   Per kill: the TaskManager killed (the source subtask it ran); the checkpoint "
      "restored;\n"
      "   its age at the kill (kill - its trigger, i.e. its completion line's time minus its\n"
      "   duration: the input span replayed); the output lag when the new attempt's first output\n"
      "   was seen (backlog); the output lag in the %lld ms before the kill (median/max); CPU\n"
      "   cores used from the kill to caught up by the daemons and by every other process.\n",
      static_cast<long long>(o.kill_phase_ms));
  std::printf("\n   %-5s %-26s %9s %8s %8s %12s %14s\n", "kill", "TaskManager killed", "restored",
              "chk age", "backlog", "lag before", "cores: job/other");
  for (size_t i = 0; i < samples.size(); ++i) {
    const KillSample& s = samples[i];
    std::printf("   %-5zu %-26s %9s %8s %8s %6.0f/%-5.0f %8.2f/%.2f\n", i + 1,
                absl::StrFormat("%s (source %d)", s.victim, s.source_subtask + 1).c_str(),
                absl::StrCat("chk ", s.restored_from).c_str(), cell(s.since_trigger).c_str(),
                cell(s.lag_at_first_output).c_str(), s.lag_before_median, s.lag_before_max, s.cores,
                s.other_cores);
  }
  for (size_t i = 0; i < samples.size(); ++i) {
    std::printf("   kill %zu cause: %s\n", i + 1, samples[i].cause.c_str());
  }
  std::fflush(stdout);
  return absl::OkStatus();
}

// A short run without checkpoints, for figure 5's rate when figure 4 is not run.
absl::StatusOr<double> CalibrateRate(KeyedJobRunner& runner) {
  std::unique_ptr<ProgressFiles> progress;
  ASSIGN_OR_RETURN(std::string job, runner.Submit(0, {}, &progress));
  RETURN_IF_ERROR(runner.WaitAllRunning(job, 60s).status());
  std::this_thread::sleep_for(1s);
  int64_t n0 = progress->Records();
  auto t0 = Clock::now();
  std::this_thread::sleep_for(2s);
  double r = static_cast<double>(progress->Records() - n0) / SecondsSince(t0);
  RETURN_IF_ERROR(runner.Cancel(job));
  return r;
}

}  // namespace

absl::Status RunCheckpointFigures(const CheckpointBenchOptions& o, bool figure4, bool figure5) {
  ASSIGN_OR_RETURN(
      std::unique_ptr<TempDir> temp,
      TempDir::Make("sluice-bench-checkpoints-", o.keep_dir ? "Logs and checkpoints" : ""));
  const std::string dir = temp->path();

  auto t0 = Clock::now();
  ASSIGN_OR_RETURN(auto cluster, ProcessCluster::Start(o.bin_dir, o.overrides, dir, kTaskManagers));
  std::printf(
      "\nCluster of real daemons up in %.2f s (JobManager 127.0.0.1:%d, %d TaskManagers).\n",
      SecondsSince(t0), cluster->jm_port(), kTaskManagers);
  KeyedJobRunner runner(*cluster, o, dir);
  double rate = o.rate;
  if (figure4) {
    ASSIGN_OR_RETURN(Figure4Result r, BenchCheckpointOverhead(o, *cluster, runner));
    if (rate <= 0) rate = r.median_rate_without / 3;
  }
  if (figure5) {
    if (rate <= 0) {
      ASSIGN_OR_RETURN(double full, CalibrateRate(runner));
      std::printf("Calibration: the job without checkpoints, unpaced, ran at %s over 2 s.\n",
                  Rate(full).c_str());
      rate = full / 3;
    }
    RETURN_IF_ERROR(BenchRecovery(o, *cluster, runner, rate));
  }
  cluster->Stop();
  return absl::OkStatus();
}

}  // namespace sluice::bench
