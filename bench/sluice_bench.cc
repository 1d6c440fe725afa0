// sluice-bench: throughput and memory figures of Sluice, each beside a hand-written C++ baseline
// measured in the same run (the machine may be shared and noisy: compare the ratios).
//
//   1. Chained pipeline generate -> map -> filter -> discard at parallelism 1 (one task), on an
//      in-process MiniCluster, beside a single-threaded loop doing the same map and filter.
//   2. Keyed shuffle generate -> key_by -> sum -> discard between two TaskManagers of one slot
//      each (in-process MiniCluster), beside a single-threaded unordered_map running sum.
//   3. Resident memory of an idle sluice-jobmanager and sluice-taskmanager (the real binaries).
//   4. Checkpoint overhead: a keyed job's throughput without and with 1 s checkpoints, runs
//      alternating, and the checkpoints' durations and sizes (real daemons; checkpoint_bench.h);
//      with --stateless, a stateless chained job's.
//   5. Recovery from kill -9 of a TaskManager: detection, job RUNNING again, output caught up.
//   6. Window aggregation cost: a keyed sliding (10 s / 1 s) and a tumbling (10 s) event-time
//      window's count and sum per record and per core, beside a hand-written loop computing the
//      sliding windows' results; the window task's chain driven in-process (window_bench.h).
//   7. Keyed-state updates per core, heap beside RocksDB, at 100 thousand and 10 million keys.
//   8. Checkpoints of 1 GiB of RocksDB state with 1% churn: full beside incremental, duration
//      and bytes stored (state_bench.h).
//   9. Event-time timers per core, registered and fired, heap beside RocksDB, and how many
//      RocksDB holds in memory (state_bench.h).
//  10. Metrics overhead: figures 1 and 2 (the spread layout) on two in-process MiniClusters alike
//      but for metrics.enabled, runs on and off alternating in pairs, and the ratio off / on.
//  11. Rescale: `sluice rescale -p N` of a checkpointed keyed job on real daemons, 1 -> 2 -> 4 ->
//      2 -> 1, to every task RUNNING at N and restored, heap beside RocksDB (rescale_bench.h).
//  12. Internal TLS: figure 2's keyed shuffle (every record crossing between two TaskManagers)
//      on two clusters of real daemons alike but for security.ssl.internal.*, runs with and
//      without TLS alternating in pairs, and the ratio plain / TLS per TaskManager CPU-second.
//
//   sluice-bench --quick                a smoke run of figures 1-3, under 20 s
//   sluice-bench                        figures 1-3 in full, about a minute
//   sluice-bench checkpoints --quick    a smoke run of figures 4-5, about 15 s
//   sluice-bench checkpoints            figures 4-5 in full, about a minute
//   sluice-bench windows --quick        a smoke run of figure 6, a few seconds
//   sluice-bench windows                figure 6 in full, under a minute
//   sluice-bench state --quick          a smoke run of figures 7-9, under a minute
//   sluice-bench state                  figures 7-9 in full, a few minutes
//   sluice-bench metrics --quick        a smoke run of figure 10, a few seconds
//   sluice-bench metrics                figure 10 in full, 5 pairs, about a minute
//   sluice-bench rescale --quick        a smoke run of figure 11, about 15 s
//   sluice-bench rescale                figure 11 in full, 3 rounds, about a minute
//   sluice-bench tls --quick            a smoke run of figure 12, a few seconds
//   sluice-bench tls                    figure 12 in full, 5 pairs, about 75 s
//   sluice-bench --help                 record counts, runs, layouts, -D settings of the clusters
//
// The job libraries (bench/jobs/) are looked up in ../bench from this binary's folder
// (build/bench), the daemons in this binary's folder (build/bin), deploy/gen-certs.sh in the
// source tree it was built from. Threads: the main thread runs the loops and drives the
// clusters; the clusters and daemons have their own.
// A benchmark is a program that prints figures, never a test.
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "bench_util.h"
#include "checkpoint_bench.h"
#include "client/job_client.h"
#include "client/mini_cluster.h"
#include "common/config.h"
#include "common/internal_tls.h"
#include "common/job_graph.h"
#include "common/job_library.h"
#include "common/job_states.h"
#include "common/process.h"
#include "common/status_macros.h"
#include "process_cluster.h"
#include "rescale_bench.h"
#include "spdlog/spdlog.h"
#include "state_bench.h"
#include "window_bench.h"
#include "workload.h"

namespace sluice::bench {
namespace {

using namespace std::chrono_literals;

struct Options {
  // Small record counts and one run of each measurement.
  bool quick = false;
  // Records per run of figure 1. Default: 600 M (30 M with --quick).
  int64_t pipeline_records = 0;
  // Records per run of figure 2. Default: 60 M (3 M with --quick).
  int64_t shuffle_records = 0;
  // Distinct keys of figure 2. Default: 1024.
  int keys = 1024;
  // Runs of every measurement; the median is shown. Default: 3 (1 with --quick).
  int runs = 0;
  // The figures to measure. Default: all.
  std::string only = "1,2,3";
  // Where sluice-jobmanager and sluice-taskmanager are. Default: this binary's folder.
  std::string bin_dir;
  // Where the benchmark job libraries are. Default: ../bench from this binary's folder.
  std::string lib_dir;
  // Seconds the idle daemons run after the TaskManager registered. Default: 2.
  double idle_wait_s = 2.0;
  // key=value settings for the in-process clusters. Default: none.
  std::vector<std::string> overrides;
  // The layouts of figure 2. Default: all three.
  std::string layouts = "spread,remote,local";
  // What to run: "throughput" (figures 1-3), "checkpoints" (figures 4-5), "windows" (figure 6),
  // "state" (figures 7-9), "metrics" (figure 10), "rescale" (figure 11), "tls" (figure 12) or
  // "all". Default: throughput.
  std::string mode = "throughput";
  // Settings of figures 4 and 5 (bin_dir, lib_dir, quick and -D are copied from the above).
  CheckpointBenchOptions checkpoints;
  // Settings of figure 6 (quick, and runs when --runs is given, are copied from the above).
  WindowBenchOptions windows;
  // Settings of figures 7 to 9 (quick, and runs when --runs is given, are copied).
  StateBenchOptions state;
  // Figure 10: pairs of runs, metrics on and off. Default: 5 (1 with --quick).
  int metrics_pairs = 0;
  // Settings of figure 11 (bin_dir, quick and -D are copied from the above).
  RescaleBenchOptions rescale;
  // Figure 12: pairs of runs, internal TLS on and off. Default: 5 (1 with --quick).
  int tls_pairs = 0;
  // Figure 12: the script that makes the certificates. Default: deploy/gen-certs.sh of the
  // source tree this binary was built from.
  std::string gen_certs;
};

// ---------------------------------------------------------------------------------------------
// Clocks and figures.

using ::sluice::bench::ProcessCpuSeconds;  // of another process, by pid

// CPU seconds (user + system) consumed so far by every thread of this process.
double ProcessCpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

double ThreadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// Keeps `v` alive without the compiler knowing what is done with it (Google Benchmark's trick).
template <class T>
inline void DoNotOptimize(const T& v) {
  asm volatile("" : : "r,m"(v) : "memory");
}

// One measurement: records processed, wall and CPU seconds.
struct Sample {
  int64_t records = 0;
  double wall_s = 0;
  double cpu_s = 0;
  double wall_rate() const { return wall_s > 0 ? static_cast<double>(records) / wall_s : 0; }
  double cpu_rate() const { return cpu_s > 0 ? static_cast<double>(records) / cpu_s : 0; }
};

// The medians of several samples of one measurement.
struct Summary {
  double wall_rate = 0;
  double cpu_rate = 0;
  double cpu_rate_min = 0;
  double cpu_rate_max = 0;
  double cores = 0;  // CPU seconds per wall second
};

Summary Summarize(const std::vector<Sample>& samples) {
  Summary s;
  std::vector<double> wall, cpu, cores;
  for (const Sample& x : samples) {
    wall.push_back(x.wall_rate());
    cpu.push_back(x.cpu_rate());
    cores.push_back(x.wall_s > 0 ? x.cpu_s / x.wall_s : 0);
  }
  s.wall_rate = Median(wall);
  s.cpu_rate = Median(cpu);
  s.cpu_rate_min = cpu.empty() ? 0 : *std::min_element(cpu.begin(), cpu.end());
  s.cpu_rate_max = cpu.empty() ? 0 : *std::max_element(cpu.begin(), cpu.end());
  s.cores = Median(cores);
  return s;
}

// ---------------------------------------------------------------------------------------------
// Hand-written baselines: one thread, the same per-record work, a counter as the sink.

// Returns the number of records that reached the sink.
__attribute__((noinline)) int64_t PipelinePass(int64_t n) {
  int64_t sunk = 0;
  for (int64_t v = 0; v < n; ++v) {
    int64_t m = MapRecord(v);
    if (KeepRecord(m)) {
      ++sunk;
      DoNotOptimize(m);
    }
  }
  return sunk;
}

// The keyed sum as KeyedStream::sum<1>() does it: a copy of the running record, plus the value.
__attribute__((noinline)) int64_t KeyedSumPass(int64_t n, const std::vector<int64_t>& keys) {
  std::unordered_map<int64_t, KeyValue> sums;
  int64_t sunk = 0;
  for (int64_t v = 0; v < n; ++v) {
    KeyValue r = MakeRecord(keys, v);
    auto it = sums.find(r.first);
    if (it == sums.end()) {
      it = sums.emplace(r.first, r).first;
    } else {
      KeyValue sum = it->second;
      sum.second += r.second;
      it->second = sum;
    }
    KeyValue out = it->second;  // what the rolling sum emits downstream
    ++sunk;
    DoNotOptimize(out);
  }
  return sunk;
}

// Runs `pass` over `n` records until at least `min_s` seconds have passed (at least once).
template <class Pass>
Sample RunLoop(int64_t n, double min_s, Pass pass) {
  Sample s;
  int64_t sunk = 0;
  auto t0 = Clock::now();
  double c0 = ThreadCpuSeconds();
  do {
    sunk += pass(n);
    s.records += n;
  } while (SecondsSince(t0) < min_s);
  s.cpu_s = ThreadCpuSeconds() - c0;
  s.wall_s = SecondsSince(t0);
  DoNotOptimize(sunk);
  return s;
}

// ---------------------------------------------------------------------------------------------
// Running a job library on a cluster.

class JobRunner {
 public:
  // `cpu_pids`: the processes whose CPU a sample counts; none: this process.
  JobRunner(JobClient& client, const Configuration& conf, std::vector<pid_t> cpu_pids = {})
      : client_(client), conf_(conf), cpu_pids_(std::move(cpu_pids)) {}

  // Loads the library, builds its graph for `args`, submits it and waits for its end. The
  // sample's wall time is the JobManager's (submission to last task finished); its CPU time is
  // that of this process (so it includes the whole in-process cluster), or of `cpu_pids`, over
  // submission..end. FailedPrecondition when the job does not finish.
  // `status` (if given) gets the job's last status.
  absl::StatusOr<Sample> Run(const std::string& library, const std::vector<std::string>& args,
                             int64_t records, proto::JobStatus* status = nullptr) {
    ASSIGN_OR_RETURN(std::shared_ptr<JobLibrary> lib, JobLibrary::Load(library));
    ASSIGN_OR_RETURN(std::unique_ptr<StreamExecutionEnvironment> env, lib->BuildEnvironment(args));
    JobGraphOptions go;
    go.default_parallelism = 1;
    go.max_parallelism = static_cast<int>(conf_.GetInt("pipeline.max-parallelism"));
    ASSIGN_OR_RETURN(proto::JobGraph graph, BuildJobGraph(*env, go));
    std::string* bytes = &library_bytes_[library];
    if (bytes->empty()) {
      std::ifstream f(library, std::ios::binary);
      std::ostringstream ss;
      ss << f.rdbuf();
      *bytes = ss.str();
    }
    ASSIGN_OR_RETURN(std::string sha, client_.UploadLibrary(*bytes));
    proto::SubmitJobRequest req;
    *req.mutable_graph() = std::move(graph);
    req.set_library_sha256(sha);
    for (const auto& a : args) req.add_args(a);

    double c0 = CpuSeconds();
    ASSIGN_OR_RETURN(std::string job_id, client_.Submit(req));
    ASSIGN_OR_RETURN(proto::JobStatus st, client_.WaitForTermination(job_id));
    double c1 = CpuSeconds();
    if (st.state() != proto::JOB_FINISHED) {
      return absl::FailedPreconditionError(absl::StrCat("job ", job_id, " of ", library, " ended ",
                                                        std::string(JobStateName(st.state())), ": ",
                                                        st.failure()));
    }
    Sample s;
    s.records = records;
    s.wall_s = static_cast<double>(st.end_time_ms() - st.start_time_ms()) / 1e3;
    s.cpu_s = c1 - c0;
    if (status) *status = std::move(st);
    return s;
  }

 private:
  double CpuSeconds() const {
    if (cpu_pids_.empty()) return ProcessCpuSeconds();
    double s = 0;
    for (pid_t p : cpu_pids_) s += ProcessCpuSeconds(p);
    return s;
  }

  JobClient& client_;
  const Configuration& conf_;
  std::vector<pid_t> cpu_pids_;
  std::map<std::string, std::string> library_bytes_;
};

// ---------------------------------------------------------------------------------------------
// Tables.

struct Row {
  std::string name;
  Summary s;
  bool show_range = true;
};

// One row per measurement; `baseline` is the hand-written loop the rows are divided by.
void PrintTable(const std::vector<Row>& rows, const Summary& baseline) {
  std::printf("\n   %-40s %12s %6s %14s %10s %8s  %s\n", "", "records/s", "cores", "rec/s per core",
              "CPU ns/rec", "vs loop", "per core, min .. max of runs");
  for (const Row& r : rows) {
    std::printf("   %-40s %12s %6.2f %14s %10.1f %8.3f", r.name.c_str(),
                Rate(r.s.wall_rate).c_str(), r.s.cores, Rate(r.s.cpu_rate).c_str(),
                r.s.cpu_rate > 0 ? 1e9 / r.s.cpu_rate : 0.0,
                baseline.cpu_rate > 0 ? r.s.cpu_rate / baseline.cpu_rate : 0.0);
    if (r.show_range) {
      std::printf("  %s .. %s", Rate(r.s.cpu_rate_min).c_str(), Rate(r.s.cpu_rate_max).c_str());
    }
    std::printf("\n");
  }
  std::printf(
      "   (records/s: records / wall seconds; cores: CPU seconds / wall seconds; per core:\n"
      "    records / CPU seconds; vs loop: per-core rate / the hand-written loop's)\n");
}

// ---------------------------------------------------------------------------------------------
// 1. Chained pipeline.

absl::Status BenchChainedPipeline(const Options& o, JobRunner& runner) {
  const std::string lib = o.lib_dir + "/libbench_chained_pipeline.so";
  const int64_t n = o.pipeline_records;
  std::printf(
      "\n1. Chained pipeline: generate -> map -> filter -> discard (DiscardingSink)\n"
      "   Sluice: parallelism 1, the four operators chained into one task, on the in-process\n"
      "   MiniCluster; CPU = this whole process's (getrusage) from submission to the job's end.\n"
      "   Loop: the same MapRecord/KeepRecord (bench/workload.h) in a for loop on one thread,\n"
      "   a counter as the sink, each kept value handed to an empty asm statement.\n");
  std::printf("   %s records per run, %d run(s) (loop and job alternate), medians shown.\n",
              Count(n).c_str(), o.runs);
  std::fflush(stdout);

  std::vector<Sample> sluice, loop;
  for (int r = 0; r < o.runs; ++r) {
    loop.push_back(RunLoop(n, o.quick ? 0.2 : 1.0, PipelinePass));
    ASSIGN_OR_RETURN(Sample s, runner.Run(lib, {"--count", std::to_string(n)}, n));
    sluice.push_back(s);
  }
  Summary s = Summarize(sluice), l = Summarize(loop);
  PrintTable({{"Sluice, 1 chained task", s}, {"hand-written loop", l, false}}, l);
  std::printf("   target >= 3 M records/s per core: %s (%.2f M)\n",
              s.cpu_rate >= 3e6 ? "MET" : "NOT MET", s.cpu_rate / 1e6);
  std::fflush(stdout);
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------------
// 2. Keyed shuffle.

// The share of the keyed job's records that go from one slot to the other, computed from the
// same key table, source split and key-group assignment as the runtime's.
double CrossingShare(int64_t n, const std::vector<int64_t>& keys, int source_parallelism) {
  std::vector<int> owner(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    int kg = key_group_for_hash(KeyHash<int64_t>{}(keys[i]), kMaxParallelism);
    owner[i] = subtask_for_key_group(kg, kMaxParallelism, 2);
  }
  int64_t crossing = 0;
  for (int p = 0; p < source_parallelism; ++p) {
    // SequenceSource's split: subtask p emits [n*p/P, n*(p+1)/P).
    int64_t begin = n * p / source_parallelism, end = n * (p + 1) / source_parallelism;
    for (int64_t v = begin; v < end; ++v) {
      crossing += owner[static_cast<size_t>(v % static_cast<int64_t>(keys.size()))] != p;
    }
  }
  return n > 0 ? static_cast<double>(crossing) / static_cast<double>(n) : 0;
}

// `two_tms` runs on 2 TaskManagers x 1 slot; `one_tm` on 1 TaskManager x 2 slots.
absl::Status BenchKeyedShuffle(const Options& o, JobRunner& two_tms, JobRunner& one_tm) {
  const std::string lib = o.lib_dir + "/libbench_keyed_shuffle.so";
  const int64_t n = o.shuffle_records;
  const auto spread_keys = MakeKeyTable(o.keys, -1, 2, kMaxParallelism);
  const auto remote_keys = MakeKeyTable(o.keys, 1, 2, kMaxParallelism);
  const double spread_cross = CrossingShare(n, spread_keys, 2);
  const double remote_cross = CrossingShare(n, remote_keys, 1);

  std::printf(
      "\n2. Keyed shuffle: generate -> map to (key, n) -> key_by -> sum<1> -> discard\n"
      "   Sluice: in-process MiniCluster of 2 TaskManagers (A, B) x 1 slot. Slot i holds subtask\n"
      "   i of every vertex, so subtasks 1 run on A and subtasks 2 on B. %d keys. Layouts:\n"
      "     spread: source p=2, sum p=2. Each source sends the records of the other slot's keys\n"
      "             to the other TaskManager over gRPC, the rest through an in-memory queue:\n"
      "             %.1f%% of records cross.\n"
      "     remote: source p=1 on A; sum p=2 with every key owned by sum subtask 2, on B (keys\n"
      "             picked by key group; sum subtask 1 idles): %.1f%% of records cross A -> B.\n"
      "     local:  the remote layout on a second MiniCluster of 1 TaskManager x 2 slots: the\n"
      "             same records through an in-memory queue instead of gRPC, for comparison.\n"
      "   CPU = this whole process's (getrusage) from submission to the job's end: both\n"
      "   TaskManagers, the JobManager, gRPC threads, the client's polling.\n"
      "   Loop: std::unordered_map running sum over the same records on one thread.\n",
      o.keys, spread_cross * 100, remote_cross * 100);
  std::printf("   %s records per run, %d run(s) (loop and layouts alternate), medians shown.\n",
              Count(n).c_str(), o.runs);
  std::fflush(stdout);

  std::vector<Sample> spread, remote, local, loop;
  auto args = [&](const char* layout) {
    return std::vector<std::string>{
        "--count", std::to_string(n), "--keys", std::to_string(o.keys), "--layout", layout};
  };
  const bool run_spread = absl::StrContains(o.layouts, "spread");
  const bool run_remote = absl::StrContains(o.layouts, "remote");
  const bool run_local = absl::StrContains(o.layouts, "local");
  for (int r = 0; r < o.runs; ++r) {
    loop.push_back(
        RunLoop(n, o.quick ? 0.2 : 1.0, [&](int64_t m) { return KeyedSumPass(m, spread_keys); }));
    if (run_spread) {
      ASSIGN_OR_RETURN(Sample a, two_tms.Run(lib, args("spread"), n));
      spread.push_back(a);
    }
    if (run_remote) {
      ASSIGN_OR_RETURN(Sample b, two_tms.Run(lib, args("remote"), n));
      remote.push_back(b);
    }
    if (run_local) {
      ASSIGN_OR_RETURN(Sample c, one_tm.Run(lib, args("remote"), n));
      local.push_back(c);
    }
  }
  Summary a = Summarize(spread), b = Summarize(remote), c = Summarize(local), l = Summarize(loop);
  std::vector<Row> rows;
  if (run_spread)
    rows.push_back({absl::StrFormat("Sluice spread, 2 TMs (%.0f%% cross)", spread_cross * 100), a});
  if (run_remote)
    rows.push_back({absl::StrFormat("Sluice remote, 2 TMs (%.0f%% cross)", remote_cross * 100), b});
  if (run_local) rows.push_back({"Sluice local, 1 TM x 2 slots (0% cross)", c});
  rows.push_back({"hand-written loop (unordered_map)", l, false});
  PrintTable(rows, l);
  std::printf("   target >= 1 M records/s per core:");
  if (run_spread)
    std::printf(" spread %s (%.2f M)", a.cpu_rate >= 1e6 ? "MET" : "NOT MET", a.cpu_rate / 1e6);
  if (run_remote)
    std::printf("%s remote %s (%.2f M)", run_spread ? "," : "",
                b.cpu_rate >= 1e6 ? "MET" : "NOT MET", b.cpu_rate / 1e6);
  std::printf("\n");
  std::fflush(stdout);
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------------
// 3. Idle daemons' memory.

absl::Status BenchIdleMemory(const Options& o) {
  const std::string jm_bin = o.bin_dir + "/sluice-jobmanager";
  const std::string tm_bin = o.bin_dir + "/sluice-taskmanager";
  ASSIGN_OR_RETURN(std::unique_ptr<TempDir> temp, TempDir::Make("sluice-bench-"));
  const std::string dir = temp->path();

  std::unique_ptr<Daemon> jm, tm;
  int port = 0;
  // The port is free when picked but could be taken before the JobManager binds it: retry.
  for (int attempt = 0; attempt < 3 && !jm; ++attempt) {
    ASSIGN_OR_RETURN(port, FreePort());
    ASSIGN_OR_RETURN(
        jm, Daemon::Spawn(
                jm_bin,
                {"-D", "jobmanager.bind-host=127.0.0.1", "-D", "jobmanager.rpc.address=127.0.0.1",
                 "-D", absl::StrCat("jobmanager.rpc.port=", port), "-D", "rest.port=0"},
                dir + "/jobmanager.log"));
    std::this_thread::sleep_for(200ms);
    if (!jm->Alive()) jm.reset();
  }
  if (!jm) return absl::UnavailableError("sluice-jobmanager did not stay up (see its log)");
  ASSIGN_OR_RETURN(tm, Daemon::Spawn(tm_bin,
                                     {"-D", "jobmanager.rpc.address=127.0.0.1", "-D",
                                      absl::StrCat("jobmanager.rpc.port=", port), "-D",
                                      "taskmanager.bind-host=127.0.0.1", "-D",
                                      "taskmanager.host=127.0.0.1", "-D", "taskmanager.rpc.port=0",
                                      "-D", absl::StrCat("blob.storage.directory=", dir)},
                                     dir + "/taskmanager.log"));
  // Closed before the daemons stop: a connected client makes the JobManager's shutdown wait for
  // its gRPC server's 2 s deadline.
  auto client = std::make_unique<JobClient>(absl::StrCat("127.0.0.1:", port), 2s);
  auto t0 = Clock::now();
  while (true) {
    auto ov = client->Overview();
    if (ov.ok() && ov->task_managers_size() >= 1) break;
    if (!jm->Alive() || !tm->Alive() || SecondsSince(t0) > 20) {
      return absl::UnavailableError(
          absl::StrCat("the TaskManager did not register with the JobManager at 127.0.0.1:", port,
                       " within 20 s.\n--- jobmanager log ---\n", jm->LogTail(),
                       "\n--- taskmanager log ---\n", tm->LogTail()));
    }
    std::this_thread::sleep_for(20ms);
  }
  double registered_after = SecondsSince(t0);
  double jm_cpu0 = ProcessCpuSeconds(jm->pid()), tm_cpu0 = ProcessCpuSeconds(tm->pid());
  auto idle_t0 = Clock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(o.idle_wait_s));
  double idle_s = SecondsSince(idle_t0);
  double jm_idle_cpu = (ProcessCpuSeconds(jm->pid()) - jm_cpu0) / idle_s;
  double tm_idle_cpu = (ProcessCpuSeconds(tm->pid()) - tm_cpu0) / idle_s;
  auto jm_status = ProcStatus(jm->pid());
  auto tm_status = ProcStatus(tm->pid());

  std::printf(
      "\n3. Resident memory of idle daemons: the real binaries of %s, the JobManager on\n"
      "   127.0.0.1:%d (a free port picked at run time; REST server on a free port), one\n"
      "   TaskManager (1 slot), other settings default. Read from /proc/<pid>/status %.1f s\n"
      "   after the TaskManager registered (which took %.2f s).\n",
      o.bin_dir.c_str(), port, o.idle_wait_s, registered_after);
  std::printf("\n   %-20s %8s %10s %10s %10s %10s %8s %10s  %s\n", "", "pid", "VmRSS", "RssAnon",
              "RssFile", "VmHWM", "threads", "idle CPU", "target VmRSS < 30 MB");
  auto row = [](const char* name, pid_t pid, std::map<std::string, int64_t>& s, double idle_cpu) {
    double rss_mb = static_cast<double>(s["VmRSS"]) / 1024;
    const char* verdict = s.count("VmRSS") == 0 ? "unknown" : rss_mb < 30 ? "MET" : "NOT MET";
    std::printf("   %-20s %8d %7.1f MB %7.1f MB %7.1f MB %7.1f MB %8lld %9.2f%%  %s\n", name, pid,
                rss_mb, static_cast<double>(s["RssAnon"]) / 1024,
                static_cast<double>(s["RssFile"]) / 1024, static_cast<double>(s["VmHWM"]) / 1024,
                static_cast<long long>(s["Threads"]), idle_cpu * 100, verdict);
  };
  row("sluice-jobmanager", jm->pid(), jm_status, jm_idle_cpu);
  row("sluice-taskmanager", tm->pid(), tm_status, tm_idle_cpu);
  std::printf("   (RssFile: mapped files, mostly shared libraries; idle CPU: share of one core)\n");
  client.reset();
  double tm_stop = tm->Stop();
  double jm_stop = jm->Stop();
  std::printf("   stopped by SIGTERM: TaskManager in %.2f s, JobManager in %.2f s\n", tm_stop,
              jm_stop);
  std::fflush(stdout);
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------------
// 10. Metrics on beside metrics off.

// GET /metrics from a Prometheus reporter on 127.0.0.1:port: the body, or empty when nothing
// answers (sends and receives time out after 2 s).
std::string ScrapeMetrics(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return "";
  timeval tv{2, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  std::string raw;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    const std::string req = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size())) {
      char buf[4096];
      ssize_t n;
      while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) raw.append(buf, static_cast<size_t>(n));
    }
  }
  ::close(fd);
  size_t head_end = raw.find("\r\n\r\n");
  return head_end == std::string::npos ? "" : raw.substr(head_end + 4);
}

// The operators' numRecordsIn of every Prometheus reporter answering on ports [first, last], by
// operator name (summed over subtasks), and how many reporters answered.
struct ScrapedCounts {
  int reporters = 0;
  std::map<std::string, int64_t> records_in;
};

ScrapedCounts ScrapeOperatorRecordsIn(int first, int last) {
  static constexpr char kName[] = "sluice_taskmanager_job_task_operator_numRecordsIn{";
  static constexpr char kOp[] = "operator_name=\"";
  ScrapedCounts out;
  for (int port = first; port <= last; ++port) {
    std::string body = ScrapeMetrics(port);
    if (body.empty()) continue;
    ++out.reporters;
    std::istringstream lines(body);
    std::string line;
    while (std::getline(lines, line)) {
      if (line.rfind(kName, 0) != 0) continue;
      size_t at = line.find(kOp);
      size_t close = line.rfind('}');
      if (at == std::string::npos || close == std::string::npos) continue;
      at += sizeof kOp - 1;
      size_t end = line.find('"', at);
      out.records_in[line.substr(at, end - at)] += std::atoll(line.c_str() + close + 2);
    }
  }
  return out;
}

// Runs the chained pipeline with an endless source on `client`'s cluster, scrapes the reporters
// on [first, last] twice while it runs, and cancels it. The counts of the second scrape.
absl::StatusOr<ScrapedCounts> ScrapeRunningPipeline(JobClient& client, const Configuration& conf,
                                                    const std::string& lib, int first, int last,
                                                    ScrapedCounts* earlier) {
  ASSIGN_OR_RETURN(std::shared_ptr<JobLibrary> library, JobLibrary::Load(lib));
  const std::vector<std::string> args = {"--count", "1000000000000000"};
  ASSIGN_OR_RETURN(std::unique_ptr<StreamExecutionEnvironment> env,
                   library->BuildEnvironment(args));
  JobGraphOptions go;
  go.default_parallelism = 1;
  go.max_parallelism = static_cast<int>(conf.GetInt("pipeline.max-parallelism"));
  ASSIGN_OR_RETURN(proto::JobGraph graph, BuildJobGraph(*env, go));
  std::ifstream f(lib, std::ios::binary);
  std::ostringstream bytes;
  bytes << f.rdbuf();
  ASSIGN_OR_RETURN(std::string sha, client.UploadLibrary(bytes.str()));
  proto::SubmitJobRequest req;
  *req.mutable_graph() = std::move(graph);
  req.set_library_sha256(sha);
  for (const auto& a : args) req.add_args(a);
  ASSIGN_OR_RETURN(std::string job_id, client.Submit(req));
  auto t0 = Clock::now();
  while (true) {
    ASSIGN_OR_RETURN(proto::JobStatus st, client.GetJob(job_id));
    bool running = st.tasks_size() > 0;
    for (const auto& t : st.tasks()) running = running && t.state() == proto::TASK_RUNNING;
    if (running) break;
    if (IsTerminalJobState(st.state()) || SecondsSince(t0) > 20) {
      (void)client.Cancel(job_id);
      return absl::FailedPreconditionError(
          absl::StrCat("the endless pipeline ", job_id, " did not start running within 20 s"));
    }
    std::this_thread::sleep_for(10ms);
  }
  std::this_thread::sleep_for(300ms);
  *earlier = ScrapeOperatorRecordsIn(first, last);
  std::this_thread::sleep_for(300ms);
  ScrapedCounts later = ScrapeOperatorRecordsIn(first, last);
  RETURN_IF_ERROR(client.Cancel(job_id));
  RETURN_IF_ERROR(client.WaitForTermination(job_id).status());
  return later;
}

// The same chained pipeline and keyed shuffle (spread) as figures 1 and 2, on two in-process
// clusters of 2 TaskManagers x 1 slot alike but for metrics.enabled, alternating on and off.
absl::Status BenchMetricsOverhead(const Options& o) {
  const std::string chained_lib = o.lib_dir + "/libbench_chained_pipeline.so";
  const std::string shuffle_lib = o.lib_dir + "/libbench_keyed_shuffle.so";
  const int64_t n1 = o.pipeline_records, n2 = o.shuffle_records;
  const int pairs = o.metrics_pairs;
  // Each cluster gets a Prometheus reporter on a range of 10 ports (its JobManager and
  // TaskManagers take the first free ones); with metrics off none starts.
  Configuration on_conf, off_conf;
  int ranges[2][2];
  for (int i = 0; i < 2; ++i) {
    Configuration& c = i == 0 ? on_conf : off_conf;
    RETURN_IF_ERROR(c.ApplyOverrides(o.overrides));
    RETURN_IF_ERROR(c.Set("metrics.enabled", i == 0 ? "true" : "false"));
    ASSIGN_OR_RETURN(int p, FreePort());
    p = std::min(p, 65000);
    ranges[i][0] = p + 20 * i;
    ranges[i][1] = ranges[i][0] + 9;
    RETURN_IF_ERROR(c.Set("metrics.reporter.prom.factory.class", "prometheus"));
    RETURN_IF_ERROR(
        c.Set("metrics.reporter.prom.port", absl::StrCat(ranges[i][0], "-", ranges[i][1])));
  }
  ASSIGN_OR_RETURN(auto on_cluster, MiniCluster::Start(on_conf, 2, 1));
  ASSIGN_OR_RETURN(auto off_cluster, MiniCluster::Start(off_conf, 2, 1));
  JobClient on_client(on_cluster->jobmanager_address(), 60s);
  JobClient off_client(off_cluster->jobmanager_address(), 60s);
  JobRunner on(on_client, on_conf), off(off_client, off_conf);
  for (JobRunner* r : {&on, &off}) {
    RETURN_IF_ERROR(r->Run(shuffle_lib, {"--count", "1000", "--layout", "spread"}, 1000).status());
    RETURN_IF_ERROR(r->Run(chained_lib, {"--count", "1000"}, 1000).status());
  }

  std::printf(
      "\n10. Metrics on beside metrics off: figure 1's chained pipeline and figure 2's keyed\n"
      "   shuffle (spread layout, %d keys) on two in-process MiniClusters of 2 TaskManagers x 1\n"
      "   slot, alike but for metrics.enabled (true / false), both with a Prometheus reporter\n"
      "   configured (ports %d-%d / %d-%d; not scraped while measuring). Both clusters run\n"
      "   throughout, so both CPU figures include both idle clusters. %d pairs; the order within\n"
      "   a pair alternates (on, off / off, on). %s records per chained run, %s per shuffle run.\n",
      o.keys, ranges[0][0], ranges[0][1], ranges[1][0], ranges[1][1], pairs, Count(n1).c_str(),
      Count(n2).c_str());
  std::fflush(stdout);

  struct Workload {
    const char* name;
    std::string lib;
    std::vector<std::string> args;
    int64_t n;
    std::vector<Sample> on, off;
  };
  std::vector<Workload> workloads = {
      {"chained", chained_lib, {"--count", std::to_string(n1)}, n1, {}, {}},
      {"shuffle",
       shuffle_lib,
       {"--count", std::to_string(n2), "--keys", std::to_string(o.keys), "--layout", "spread"},
       n2,
       {},
       {}}};
  std::printf("\n   %-5s %-8s %16s %16s %8s %16s %16s %8s\n", "pair", "workload", "on per core",
              "off per core", "off/on", "on rec/s", "off rec/s", "off/on");
  for (int r = 0; r < pairs; ++r) {
    for (Workload& w : workloads) {
      Sample s_on, s_off;
      if (r % 2 == 0) {
        ASSIGN_OR_RETURN(s_on, on.Run(w.lib, w.args, w.n));
        ASSIGN_OR_RETURN(s_off, off.Run(w.lib, w.args, w.n));
      } else {
        ASSIGN_OR_RETURN(s_off, off.Run(w.lib, w.args, w.n));
        ASSIGN_OR_RETURN(s_on, on.Run(w.lib, w.args, w.n));
      }
      w.on.push_back(s_on);
      w.off.push_back(s_off);
      std::printf("   %-5d %-8s %16s %16s %8.3f %16s %16s %8.3f\n", r + 1, w.name,
                  Rate(s_on.cpu_rate()).c_str(), Rate(s_off.cpu_rate()).c_str(),
                  s_off.cpu_rate() / s_on.cpu_rate(), Rate(s_on.wall_rate()).c_str(),
                  Rate(s_off.wall_rate()).c_str(), s_off.wall_rate() / s_on.wall_rate());
      std::fflush(stdout);
    }
  }
  std::printf("\n   %-8s %16s %16s %8s %14s   %16s %16s %8s\n", "medians", "on per core",
              "off per core", "off/on", "pairs' off/on", "on rec/s", "off rec/s", "off/on");
  for (const Workload& w : workloads) {
    Summary a = Summarize(w.on), b = Summarize(w.off);
    std::vector<double> ratios;
    for (size_t i = 0; i < w.on.size(); ++i) {
      ratios.push_back(w.off[i].cpu_rate() / w.on[i].cpu_rate());
    }
    std::printf("   %-8s %16s %16s %8.3f %14.3f   %16s %16s %8.3f\n", w.name,
                Rate(a.cpu_rate).c_str(), Rate(b.cpu_rate).c_str(), b.cpu_rate / a.cpu_rate,
                Median(ratios), Rate(a.wall_rate).c_str(), Rate(b.wall_rate).c_str(),
                b.wall_rate / a.wall_rate);
  }
  std::printf(
      "   (per core: records / CPU seconds of this process; off/on above 1: metrics cost that\n"
      "    share; pairs' off/on: the median of each pair's ratio)\n");

  // The check, after the measurements: with metrics on the operators count what they receive,
  // with metrics off no reporter starts and nothing is counted.
  ScrapedCounts on_first, off_first;
  ASSIGN_OR_RETURN(ScrapedCounts on_counts,
                   ScrapeRunningPipeline(on_client, on_conf, chained_lib, ranges[0][0],
                                         ranges[0][1], &on_first));
  ASSIGN_OR_RETURN(ScrapedCounts off_counts,
                   ScrapeRunningPipeline(off_client, off_conf, chained_lib, ranges[1][0],
                                         ranges[1][1], &off_first));
  bool ok = on_counts.records_in.size() >= 3 && off_counts.reporters == 0 &&
            off_counts.records_in.empty();
  std::string seen;
  for (const auto& [name, count] : on_counts.records_in) {
    int64_t before = on_first.records_in.count(name) ? on_first.records_in[name] : 0;
    // A source receives nothing: its numRecordsIn stays 0. Every other operator's must grow.
    if (!absl::StartsWith(name, "Source")) ok = ok && count > before;
    absl::StrAppend(&seen, seen.empty() ? "" : ", ", name, " ", Count(before), " then ",
                    Count(count));
  }
  std::printf(
      "   check, an endless chained pipeline scraped twice 0.3 s apart: metrics on: %d reporters, "
      "numRecordsIn %s; metrics off: %d reporters, %zu counts: %s\n",
      on_counts.reporters, seen.empty() ? "none" : seen.c_str(), off_counts.reporters,
      off_counts.records_in.size(), ok ? "ok" : "FAILED");
  std::fflush(stdout);
  off_cluster->Shutdown();
  on_cluster->Shutdown();
  if (!ok) {
    return absl::InternalError(
        "metrics on did not count every operator's input, or metrics off reported something");
  }
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------------
// 12. Internal TLS beside plain text.

// One of figure 12's two clusters: its settings (this process's too) and its runs.
struct TlsSide {
  std::string name;
  std::vector<std::string> overrides;  // -D settings of its daemons
  Configuration conf;                  // the same, for ConfigureInternalTls and JobRunner
  std::unique_ptr<ProcessCluster> cluster;
  std::vector<Sample> samples;
};

// Runs the keyed shuffle once on `side`'s cluster: this process's channels take the side's TLS
// setting first, and a new client makes them (a JobClient keeps the credentials in force when it
// was made). CPU is the cluster's TaskManagers'. Fails when the job fails, when a daemon died, or
// when the job's source and its only busy sum subtask shared a TaskManager.
absl::StatusOr<Sample> RunTlsSide(TlsSide& side, const std::string& lib,
                                  const std::vector<std::string>& args, int64_t n) {
  RETURN_IF_ERROR(ConfigureInternalTls(side.conf));
  JobClient client(side.cluster->jm_address(), 60s);
  JobRunner runner(client, side.conf, side.cluster->task_manager_pids());
  proto::JobStatus st;
  absl::StatusOr<Sample> s = runner.Run(lib, args, n, &st);
  if (!side.cluster->AllAlive()) {
    return absl::UnavailableError(absl::StrCat(
        "a daemon of the ", side.name, " cluster died during a run\n", side.cluster->LogTails()));
  }
  if (!s.ok()) {
    return absl::Status(s.status().code(),
                        absl::StrCat("the ", side.name, " cluster: ", s.status().message(), "\n",
                                     side.cluster->LogTails()));
  }
  // The remote layout sends every record from the source's TaskManager to sum subtask 1's.
  std::set<int> source_vertices;
  for (const auto& v : st.graph().vertices()) {
    if (v.is_source()) source_vertices.insert(v.id());
  }
  std::string source_tm, sum_tm;
  for (const auto& t : st.tasks()) {
    if (source_vertices.count(t.vertex_id())) source_tm = t.tm_id();
    if (!source_vertices.count(t.vertex_id()) && t.subtask() == 1) sum_tm = t.tm_id();
  }
  if (source_tm.empty() || sum_tm.empty() || source_tm == sum_tm) {
    return absl::InternalError(absl::StrCat(
        "on the ", side.name, " cluster the source ran on TaskManager '", source_tm,
        "' and sum subtask 1 on '", sum_tm, "': the records did not cross between two of them"));
  }
  return *s;
}

// Figure 2's keyed shuffle (remote layout: every record crosses from one TaskManager to the
// other) on two clusters of real daemons alike but for internal TLS, in pairs of runs whose
// order alternates. Real daemons because the TLS setting is per process: two in-process
// MiniClusters cannot differ in it.
absl::Status BenchInternalTls(const Options& o) {
  const std::string lib = o.lib_dir + "/libbench_keyed_shuffle.so";
  const int64_t n = o.shuffle_records;
  const int pairs = o.tls_pairs;
  const double cross = CrossingShare(n, MakeKeyTable(o.keys, 1, 2, kMaxParallelism), 1);
  // Made before the clusters, so removed after they stopped.
  ASSIGN_OR_RETURN(std::unique_ptr<TempDir> temp, TempDir::Make("sluice-bench-tls-"));
  const std::string dir = temp->path();
  const std::string certs = dir + "/certs";
  if (absl::Status made = RunToEnd(o.gen_certs, {certs}, dir + "/gen-certs.log", 60); !made.ok()) {
    return absl::Status(made.code(), absl::StrCat("cannot make the certificates (--gen-certs to "
                                                  "name the script): ",
                                                  made.message()));
  }
  // Whatever the outcome, the figures after this one talk plain text, as before it.
  struct PlainAfter {
    ~PlainAfter() { (void)ConfigureInternalTls(Configuration()); }
  } plain_after;

  TlsSide sides[2];
  sides[0].name = "TLS";
  sides[0].overrides = {"security.ssl.internal.enabled=true",
                        absl::StrCat("security.ssl.internal.key=", certs, "/internal.key"),
                        absl::StrCat("security.ssl.internal.cert=", certs, "/internal.pem"),
                        absl::StrCat("security.ssl.internal.trust-cert=", certs, "/ca.pem")};
  sides[1].name = "plain";
  sides[1].overrides = {"security.ssl.internal.enabled=false"};
  auto t0 = Clock::now();
  for (TlsSide& side : sides) {
    side.overrides.insert(side.overrides.begin(), o.overrides.begin(), o.overrides.end());
    RETURN_IF_ERROR(side.conf.ApplyOverrides(side.overrides));
    // The cluster's own client (it waits for the TaskManagers) takes the setting in force now.
    RETURN_IF_ERROR(ConfigureInternalTls(side.conf));
    const std::string side_dir = absl::StrCat(dir, "/", side.name);
    std::filesystem::create_directories(side_dir);
    absl::StatusOr<std::unique_ptr<ProcessCluster>> c =
        ProcessCluster::Start(o.bin_dir, side.overrides, side_dir, /*task_managers=*/2);
    if (!c.ok()) {
      return absl::Status(c.status().code(), absl::StrCat("the ", side.name,
                                                          " cluster did not "
                                                          "start: ",
                                                          c.status().message()));
    }
    side.cluster = std::move(*c);
  }
  const double up_s = SecondsSince(t0);
  // The check that the TLS cluster is what it says: a plain-text client gets no answer.
  RETURN_IF_ERROR(ConfigureInternalTls(sides[1].conf));
  bool refused = !JobClient(sides[0].cluster->jm_address(), 2s).Overview().ok();
  if (!refused) {
    return absl::InternalError("the TLS cluster's JobManager answered a plain-text client");
  }
  // Warm-up: library fetch and load by the TaskManagers, first connections.
  const std::vector<std::string> warm = {"--count", "1000", "--layout", "remote"};
  for (TlsSide& side : sides) RETURN_IF_ERROR(RunTlsSide(side, lib, warm, 1000).status());

  std::printf(
      "\n12. Internal TLS beside plain text: figure 2's keyed shuffle in its remote layout "
      "(source\n"
      "   p=1 on TaskManager A, sum p=2 with every key on subtask 1, on B: %.1f%% of records "
      "cross\n"
      "   A -> B over gRPC; %d keys) on two clusters of real daemons on 127.0.0.1, each a\n"
      "   JobManager and 2 TaskManagers x 1 slot, alike but for security.ssl.internal.*: mutual\n"
      "   TLS with certificates made by deploy/gen-certs.sh, or plain text. Both up throughout\n"
      "   (started in %.1f s); a plain-text client was refused by the TLS one: ok. Daemons:\n"
      "   %s.\n"
      "   records/s: records / the JobManager's job duration; per core: records / CPU seconds of\n"
      "   that cluster's two TaskManagers (/proc/<pid>/stat utime + stime) from submission to the\n"
      "   job's end. This process talks to each cluster with its setting, a new client per run.\n"
      "   %d pair(s), the order within a pair alternating (TLS, plain / plain, TLS); %s records\n"
      "   per run.\n",
      cross * 100, o.keys, up_s, o.bin_dir.c_str(), pairs, Count(n).c_str());
  std::printf("\n   %-5s %-6s %14s %14s %9s %14s %14s %9s\n", "pair", "first", "TLS per core",
              "plain per core", "plain/TLS", "TLS rec/s", "plain rec/s", "plain/TLS");
  std::fflush(stdout);
  const std::vector<std::string> args = {
      "--count", std::to_string(n), "--keys", std::to_string(o.keys), "--layout", "remote"};
  std::vector<double> cpu_ratios, wall_ratios;
  for (int r = 0; r < pairs; ++r) {
    const int first = r % 2;  // 0: TLS first, 1: plain first
    for (int i : {first, 1 - first}) {
      ASSIGN_OR_RETURN(Sample s, RunTlsSide(sides[i], lib, args, n));
      sides[i].samples.push_back(s);
    }
    const Sample &tls = sides[0].samples.back(), &plain = sides[1].samples.back();
    cpu_ratios.push_back(plain.cpu_rate() / tls.cpu_rate());
    wall_ratios.push_back(plain.wall_rate() / tls.wall_rate());
    std::printf("   %-5d %-6s %14s %14s %9.3f %14s %14s %9.3f\n", r + 1, sides[first].name.c_str(),
                Rate(tls.cpu_rate()).c_str(), Rate(plain.cpu_rate()).c_str(), cpu_ratios.back(),
                Rate(tls.wall_rate()).c_str(), Rate(plain.wall_rate()).c_str(), wall_ratios.back());
    std::fflush(stdout);
  }
  Summary tls = Summarize(sides[0].samples), plain = Summarize(sides[1].samples);
  std::printf("\n   %-12s %14s %14s %9s %14s %14s %9s\n", "", "TLS", "plain", "plain/TLS",
              "pairs' median", "TLS cores", "plain cores");
  std::printf("   %-12s %14s %14s %9.3f %14.3f %14.2f %14.2f\n", "per core",
              Rate(tls.cpu_rate).c_str(), Rate(plain.cpu_rate).c_str(),
              plain.cpu_rate / tls.cpu_rate, Median(cpu_ratios), tls.cores, plain.cores);
  std::printf("   %-12s %14s %14s %9.3f %14.3f\n", "records/s", Rate(tls.wall_rate).c_str(),
              Rate(plain.wall_rate).c_str(), plain.wall_rate / tls.wall_rate, Median(wall_ratios));
  std::printf(
      "   (medians of each side; plain/TLS above 1: what TLS costs, e.g. 1.25 = plain does 25%%\n"
      "    more per CPU-second; pairs' median: the median of each pair's ratio; cores: the\n"
      "    TaskManagers' CPU seconds per second of the job)\n");
  std::fflush(stdout);
  for (TlsSide& side : sides) side.cluster->Stop();
  return absl::OkStatus();
}

// ---------------------------------------------------------------------------------------------

std::string SelfDir() {
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string(".") : exe.parent_path().string();
}

std::string CpuModel() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("model name", 0) == 0) {
      auto colon = line.find(':');
      if (colon != std::string::npos) return line.substr(colon + 2);
    }
  }
  return "unknown CPU";
}

absl::Status RunThroughput(const Options& o, const std::set<int>& only) {
  Configuration conf;
  RETURN_IF_ERROR(conf.ApplyOverrides(o.overrides));
  if (!o.overrides.empty()) {
    std::string joined;
    for (const auto& d : o.overrides) joined += " -D " + d;
    std::printf("In-process clusters configured with%s.\n", joined.c_str());
  }
  ASSIGN_OR_RETURN(auto two_tms, MiniCluster::Start(conf, /*task_managers=*/2, /*slots=*/1));
  ASSIGN_OR_RETURN(auto one_tm, MiniCluster::Start(conf, /*task_managers=*/1, /*slots=*/2));
  JobClient client2(two_tms->jobmanager_address(), 60s);
  JobClient client1(one_tm->jobmanager_address(), 60s);
  JobRunner runner2(client2, conf), runner1(client1, conf);
  // Warm up: library loading, first deployments, gRPC connections.
  const std::string warm_lib = o.lib_dir + "/libbench_keyed_shuffle.so";
  for (JobRunner* r : {&runner2, &runner1}) {
    RETURN_IF_ERROR(r->Run(warm_lib, {"--count", "1000", "--layout", "spread"}, 1000).status());
    RETURN_IF_ERROR(r->Run(warm_lib, {"--count", "1000", "--layout", "remote"}, 1000).status());
  }
  ASSIGN_OR_RETURN(Sample fixed, runner2.Run(o.lib_dir + "/libbench_chained_pipeline.so",
                                             {"--count", "1000"}, 1000));
  double c0 = ProcessCpuSeconds();
  auto t0 = Clock::now();
  std::this_thread::sleep_for(500ms);
  double idle_cores = (ProcessCpuSeconds() - c0) / SecondsSince(t0);
  std::printf(
      "In-process clusters (3 TaskManagers, 2 JobManagers) idle at %.1f%% of a core; one job of\n"
      "1,000 records takes %.1f ms wall and %.1f ms CPU from submission to its end. Both are\n"
      "included in the Sluice figures below.\n",
      idle_cores * 100, fixed.wall_s * 1e3, fixed.cpu_s * 1e3);
  std::fflush(stdout);
  if (only.count(1)) RETURN_IF_ERROR(BenchChainedPipeline(o, runner2));
  if (only.count(2)) RETURN_IF_ERROR(BenchKeyedShuffle(o, runner2, runner1));
  one_tm->Shutdown();
  two_tms->Shutdown();
  return absl::OkStatus();
}

int Main(const Options& o) {
  // A list of figures: "10", "11" and "12" are those figures; any other digit is a figure of its
  // own ("123"; "1,2" for figures 1 and 2).
  std::set<int> only;
  for (absl::string_view part : absl::StrSplit(o.only, absl::ByAnyChar(", "), absl::SkipEmpty())) {
    if (part == "10" || part == "11" || part == "12") {
      only.insert(10 + (part[1] - '0'));
      continue;
    }
    for (char c : part) {
      if (c >= '1' && c <= '9') only.insert(c - '0');
    }
  }
  std::string load;
  std::ifstream("/proc/loadavg") >> load;
  std::printf("sluice-bench %s%s: %u hardware threads (%s), load average %s at start.\n",
              o.mode.c_str(), o.quick ? " --quick" : "", std::thread::hardware_concurrency(),
              CpuModel().c_str(), load.c_str());
  std::fflush(stdout);
  auto t0 = Clock::now();
  int rc = 0;
  if (only.count(1) || only.count(2)) {
    absl::Status s = RunThroughput(o, only);
    if (!s.ok()) {
      std::fprintf(stderr, "error: %s\n", std::string(s.message()).c_str());
      rc = 1;
    }
  }
  if (only.count(3)) {
    absl::Status s = BenchIdleMemory(o);
    if (!s.ok()) {
      std::fprintf(stderr, "error: idle memory: %s\n", std::string(s.message()).c_str());
      rc = 1;
    }
  }
  if (only.count(4) || only.count(5)) {
    absl::Status s = RunCheckpointFigures(o.checkpoints, only.count(4) > 0, only.count(5) > 0);
    if (!s.ok()) {
      std::fprintf(stderr, "error: checkpoints: %s\n", std::string(s.message()).c_str());
      rc = 1;
    }
  }
  if (only.count(6)) {
    absl::Status s = RunWindowFigure(o.windows);
    if (!s.ok()) {
      std::fprintf(stderr, "error: windows: %s\n", std::string(s.message()).c_str());
      rc = 1;
    }
  }
  if (only.count(7) || only.count(8) || only.count(9)) {
    StateBenchOptions state = o.state;
    state.run_updates = only.count(7) > 0;
    state.run_checkpoints = only.count(8) > 0;
    state.run_timers = only.count(9) > 0;
    absl::Status s = RunStateFigures(state);
    if (!s.ok()) {
      std::fprintf(stderr, "error: state: %s\n", std::string(s.message()).c_str());
      rc = 1;
    }
  }
  if (only.count(10)) {
    absl::Status s = BenchMetricsOverhead(o);
    if (!s.ok()) {
      std::fprintf(stderr, "error: metrics overhead: %s\n", std::string(s.message()).c_str());
      rc = 1;
    }
  }
  if (only.count(11)) {
    absl::Status s = RunRescaleFigure(o.rescale);
    if (!s.ok()) {
      std::fprintf(stderr, "error: rescale: %s\n", std::string(s.message()).c_str());
      rc = 1;
    }
  }
  if (only.count(12)) {
    absl::Status s = BenchInternalTls(o);
    if (!s.ok()) {
      std::fprintf(stderr, "error: internal TLS: %s\n", std::string(s.message()).c_str());
      rc = 1;
    }
  }
  std::printf("\nTotal %.1f s.\n", SecondsSince(t0));
  return rc;
}

}  // namespace
}  // namespace sluice::bench

int main(int argc, char** argv) {
  sluice::bench::Options o;
  CLI::App app{"sluice-bench: Sluice throughput and memory beside hand-written C++ baselines"};
  app.add_flag("--quick", o.quick, "small record counts and one run each: a smoke run (< 20 s)");
  app.add_option("--records", o.pipeline_records, "records per run of the chained pipeline")
      ->check(CLI::PositiveNumber);
  app.add_option("--shuffle-records", o.shuffle_records, "records per run of the keyed shuffle")
      ->check(CLI::PositiveNumber);
  app.add_option("--keys", o.keys, "distinct keys of the keyed shuffle")
      ->check(CLI::Range(1, 1 << 24));
  app.add_option("--runs", o.runs, "runs of every measurement (the median is shown)")
      ->check(CLI::Range(1, 100));
  app.add_option("mode,--mode", o.mode,
                 "throughput: figures 1-3 (default); checkpoints: figures 4-5, checkpoint "
                 "overhead and recovery from kill -9 on real daemons; windows: figure 6, "
                 "window aggregation cost on one thread; state: figures 7-9, the keyed state "
                 "backends' updates, checkpoints and timers; metrics: figure 10, figures 1 and 2 "
                 "with metrics on beside off; rescale: figure 11, the time of a rescale on "
                 "real daemons; tls: figure 12, the keyed shuffle with internal TLS beside "
                 "without on real daemons; all: 1-12")
      ->check(CLI::IsMember(
          {"throughput", "checkpoints", "windows", "state", "metrics", "rescale", "tls", "all"}));
  app.add_option("--only", o.only,
                 "which figures: a list of 1 (pipeline), 2 (shuffle), 3 (memory), "
                 "4 (checkpoint overhead), 5 (recovery), 6 (windows), 7 (state updates), "
                 "8 (state checkpoints), 9 (timers), 10 (metrics on beside off), 11 (rescale), "
                 "12 (internal TLS beside plain); overrides the mode's");
  app.add_option("--metrics-pairs", o.metrics_pairs,
                 "figure 10: pairs of runs with metrics on and off (default 5; 1 with --quick)")
      ->check(CLI::Range(1, 100));
  app.add_option("--bin-dir", o.bin_dir,
                 "folder of sluice-jobmanager and sluice-taskmanager "
                 "(default: this binary's folder)");
  app.add_option("--lib-dir", o.lib_dir,
                 "folder of the benchmark job libraries (default: ../bench "
                 "from this binary's folder)");
  app.add_option("--layouts", o.layouts, "keyed shuffle layouts to run: spread, remote, local");
  app.add_option("-D", o.overrides,
                 "a configuration key=value for the in-process clusters of figures 1, 2 and 10 "
                 "and the daemons of figures 4, 5, 11 and 12, e.g. -D "
                 "taskmanager.memory.segment-size=64kb");
  app.add_option("--idle-wait", o.idle_wait_s, "seconds the idle daemons wait before measuring")
      ->check(CLI::Range(0.0, 60.0));
  sluice::bench::CheckpointBenchOptions& c = o.checkpoints;
  app.add_option("--state-keys", c.keys, "figures 4-5: distinct keys of the keyed-state job")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 30));
  app.add_flag("--stateless", c.stateless,
               "figures 4-5: the job without keyed state (source -> map -> sink, chained)");
  app.add_option("--interval", c.interval,
                 "figures 4-5: execution.checkpointing.interval (default 1s)");
  app.add_option("--rounds", c.rounds, "figure 4: rounds of (A without, B with checkpoints)")
      ->check(CLI::Range(1, 100));
  app.add_option("--warmup", c.warmup_s, "figure 4: seconds from RUNNING to the measurement")
      ->check(CLI::Range(0.1, 600.0));
  app.add_option("--window", c.window_s, "figure 4: seconds measured per run")
      ->check(CLI::Range(0.5, 600.0));
  app.add_option("--kills", c.kills, "figure 5: TaskManagers killed one after the other")
      ->check(CLI::Range(1, 100));
  app.add_option("--rate", c.rate,
                 "figure 5: records/s of the paced source (default: a third of the rate "
                 "without checkpoints)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--restart-delay", c.restart_delay,
                 "figure 5: restart-strategy.fixed-delay.delay (default 0ms)");
  app.add_option("--catch-up-lag", c.catch_up_lag_ms,
                 "figure 5: output lag (ms) at which the job has caught up (default 100)")
      ->check(CLI::Range(int64_t{1}, int64_t{60'000}));
  app.add_option("--kill-phase", c.kill_phase_ms,
                 "figure 5: ms after a completed checkpoint at which to kill (default 500)")
      ->check(CLI::Range(int64_t{0}, int64_t{600'000}));
  app.add_flag("--keep-dir", c.keep_dir,
               "figures 4-5: keep the daemons' logs and checkpoints and print the folder");
  app.add_flag("--trace-recovery", c.trace_recovery,
               "figure 5: print the output lag every 100 ms from each kill until caught up");
  sluice::bench::WindowBenchOptions& wo = o.windows;
  app.add_option("--window-records", wo.records,
                 "figure 6: records per run of each variant (default 4,000,000; 1,000,000 with "
                 "--quick)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40));
  app.add_option("--window-keys", wo.keys, "figure 6: distinct keys (default 10,000)")
      ->check(CLI::Range(1, 1 << 24));
  app.add_option("--events-per-second", wo.events_per_second,
                 "figure 6: records per second of event time (default 100,000)")
      ->check(CLI::Range(int64_t{1}, int64_t{1'000'000'000}));
  app.add_option("--watermark-every", wo.watermark_interval_ms,
                 "figure 6: ms of event time between watermarks, 1..1000 (default 100)")
      ->check(CLI::Range(int64_t{1}, int64_t{1000}));
  sluice::bench::StateBenchOptions& so = o.state;
  app.add_option("--state-updates", so.updates,
                 "figure 7: updates per run of each variant (default 2,000,000; 300,000 with "
                 "--quick)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40));
  app.add_option("--state-checkpoints", so.checkpoints,
                 "figure 8: checkpoints of each kind after the first (default 3; 2 with --quick)")
      ->check(CLI::Range(1, 100));
  app.add_option("--timers", so.timers,
                 "figure 9: timers registered and fired per run (default 2,000,000; 200,000 with "
                 "--quick)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 40));
  app.add_flag("--rocksdb-hash", so.hash_write_buffers,
               "figures 7-9: RocksDB with hash write buffers "
               "(state.backend.rocksdb.writebuffer.hash: true)");
  app.add_option("--rocksdb-cache", so.rocksdb_cache_entries,
                 "figures 7-9: values each RocksDB state keeps as objects "
                 "(state.backend.rocksdb.cache.entries; default: its default)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 24));
  app.add_option("--state-dir", so.dir,
                 "figures 7-9: folder for the RocksDB instances and checkpoint files (default: "
                 "the system's temporary folder)");
  sluice::bench::RescaleBenchOptions& ro = o.rescale;
  app.add_option("--rescale-keys", ro.keys,
                 "figure 11: distinct keys of the job (default 100,000; 10,000 with --quick)")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 30));
  app.add_option("--rescale-rate", ro.rate, "figure 11: records/s of the job (default 20,000)")
      ->check(CLI::PositiveNumber);
  app.add_option("--rescale-rounds", ro.rounds,
                 "figure 11: rounds of 1 -> 2 -> 4 -> 2 -> 1 (default 3; 1 with --quick)")
      ->check(CLI::Range(1, 100));
  app.add_option("--tls-pairs", o.tls_pairs,
                 "figure 12: pairs of runs with internal TLS and without (default 5; 1 with "
                 "--quick)")
      ->check(CLI::Range(1, 100));
  app.add_option("--gen-certs", o.gen_certs,
                 "figure 12: the script that makes the certificates (default: deploy/gen-certs.sh "
                 "of the source tree)");
  CLI11_PARSE(app, argc, argv);
  if (app.count("--only") == 0) {
    if (o.mode == "checkpoints") o.only = "4,5";
    if (o.mode == "windows") o.only = "6";
    if (o.mode == "state") o.only = "7,8,9";
    if (o.mode == "metrics") o.only = "10";
    if (o.mode == "rescale") o.only = "11";
    if (o.mode == "tls") o.only = "12";
    if (o.mode == "all") o.only = "1,2,3,4,5,6,7,8,9,10,11,12";
  }
  wo.quick = o.quick;
  if (app.count("--runs") > 0) wo.runs = o.runs;
  so.quick = o.quick;
  if (app.count("--runs") > 0) so.runs = o.runs;

  std::string self = sluice::bench::SelfDir();
  if (o.bin_dir.empty()) o.bin_dir = self;
  if (o.lib_dir.empty()) {
    std::error_code ec;
    auto dir = std::filesystem::weakly_canonical(self + "/../bench", ec);
    o.lib_dir = ec ? self + "/../bench" : dir.string();
  }
  if (o.pipeline_records == 0) o.pipeline_records = o.quick ? 30'000'000 : 600'000'000;
  if (o.shuffle_records == 0) o.shuffle_records = o.quick ? 3'000'000 : 60'000'000;
  if (o.runs == 0) o.runs = o.quick ? 1 : 3;
  if (o.metrics_pairs == 0) o.metrics_pairs = o.quick ? 1 : 5;
  if (o.tls_pairs == 0) o.tls_pairs = o.quick ? 1 : 5;
  if (o.gen_certs.empty()) o.gen_certs = SLUICE_BENCH_SOURCE_DIR "/deploy/gen-certs.sh";
  c.quick = o.quick;
  c.bin_dir = o.bin_dir;
  c.lib_dir = o.lib_dir;
  c.overrides = o.overrides;
  if (c.rounds == 0) c.rounds = o.quick ? 2 : 10;
  if (c.warmup_s == 0) c.warmup_s = 0.5;
  if (c.window_s == 0) c.window_s = 2.0;
  if (c.kills == 0) c.kills = o.quick ? 1 : 3;
  ro.quick = o.quick;
  ro.bin_dir = o.bin_dir;
  ro.overrides = o.overrides;
  {
    std::error_code ec;
    auto dir = std::filesystem::weakly_canonical(self + "/../examples", ec);
    ro.examples_dir = ec ? self + "/../examples" : dir.string();
  }

  sluice::InitLogging("sluice-bench");
  spdlog::set_level(spdlog::level::warn);
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  return sluice::bench::Main(o);
}
