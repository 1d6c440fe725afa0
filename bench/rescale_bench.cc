// Figure 11 of sluice-bench: the time a rescale takes; see rescale_bench.h.
#include "rescale_bench.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "bench_util.h"
#include "client/job_client.h"
#include "common/job_graph.h"
#include "common/job_library.h"
#include "common/job_states.h"
#include "common/status_macros.h"

namespace sluice::bench {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

constexpr int kTaskManagers = 4;  // of 1 slot each: room for parallelism 4
constexpr int kSteps[] = {2, 4, 2, 1};

// A JobManager and kTaskManagers TaskManagers of one slot each in `dir`.
class RescaleCluster {
 public:
  static absl::StatusOr<std::unique_ptr<RescaleCluster>> Start(const RescaleBenchOptions& o,
                                                               const std::string& dir) {
    std::unique_ptr<RescaleCluster> c(new RescaleCluster(o, dir));
    RETURN_IF_ERROR(c->StartDaemons());
    return c;
  }
  ~RescaleCluster() {
    client_.reset();
    tms_.clear();
    if (jm_) jm_->Stop();
  }
  JobClient& client() { return *client_; }
  // Every TaskManager's log lines about `job` that contain `what`, with their wall-clock stamps.
  std::vector<int64_t> TaskManagerLines(const std::string& job, const std::string& what) const {
    std::vector<int64_t> out;
    for (const auto& tm : tms_) {
      std::istringstream in(tm->LogText());
      std::string line;
      while (std::getline(in, line)) {
        if (line.find(job) == std::string::npos || line.find(what) == std::string::npos) continue;
        std::tm tm_fields{};
        int ms = 0;
        if (std::sscanf(line.c_str(), "%d-%d-%d %d:%d:%d.%d", &tm_fields.tm_year, &tm_fields.tm_mon,
                        &tm_fields.tm_mday, &tm_fields.tm_hour, &tm_fields.tm_min,
                        &tm_fields.tm_sec, &ms) != 7) {
          continue;
        }
        tm_fields.tm_year -= 1900;
        tm_fields.tm_mon -= 1;
        tm_fields.tm_isdst = -1;
        out.push_back(static_cast<int64_t>(std::mktime(&tm_fields)) * 1000 + ms);
      }
    }
    return out;
  }
  std::string LogTails() const {
    std::string s = "--- jobmanager log ---\n" + jm_->LogTail();
    for (size_t i = 0; i < tms_.size(); ++i) {
      s += absl::StrCat("\n--- taskmanager ", i, " log ---\n", tms_[i]->LogTail());
    }
    return s;
  }

 private:
  RescaleCluster(const RescaleBenchOptions& o, std::string dir) : o_(o), dir_(std::move(dir)) {}

  std::vector<std::string> Settings() const {
    std::vector<std::string> s;
    for (const std::string& kv :
         {std::string("jobmanager.rpc.address=127.0.0.1"),
          absl::StrCat("jobmanager.rpc.port=", port_), std::string("taskmanager.host=127.0.0.1"),
          std::string("taskmanager.bind-host=127.0.0.1"),
          std::string("taskmanager.numberOfTaskSlots=1"),
          absl::StrCat("state.checkpoints.dir=", dir_, "/checkpoints"),
          absl::StrCat("state.backend.rocksdb.localdir=", dir_, "/rocksdb")}) {
      s.insert(s.end(), {"-D", kv});
    }
    for (const auto& kv : o_.overrides) s.insert(s.end(), {"-D", kv});
    return s;
  }

  absl::Status StartDaemons() {
    ASSIGN_OR_RETURN(port_, FreePort());
    std::vector<std::string> args = Settings();
    args.insert(args.end(), {"-D", "jobmanager.bind-host=127.0.0.1", "-D", "rest.port=-1", "-D",
                             absl::StrCat("blob.storage.directory=", dir_, "/blobs-jm")});
    ASSIGN_OR_RETURN(
        jm_, Daemon::Spawn(o_.bin_dir + "/sluice-jobmanager", args, dir_ + "/jobmanager.log"));
    auto t0 = Clock::now();
    while (jm_->Alive() && !PortAccepts(port_) && SecondsSince(t0) < 20) {
      std::this_thread::sleep_for(10ms);
    }
    if (!jm_->Alive() || !PortAccepts(port_)) {
      return absl::UnavailableError("sluice-jobmanager did not start:\n" + jm_->LogTail());
    }
    client_ = std::make_unique<JobClient>(absl::StrCat("127.0.0.1:", port_), 10s);
    for (int i = 0; i < kTaskManagers; ++i) {
      std::vector<std::string> tm_args = Settings();
      tm_args.insert(tm_args.end(),
                     {"-D", absl::StrCat("blob.storage.directory=", dir_, "/blobs-tm", i)});
      ASSIGN_OR_RETURN(auto tm, Daemon::Spawn(o_.bin_dir + "/sluice-taskmanager", tm_args,
                                              absl::StrCat(dir_, "/taskmanager-", i, ".log")));
      tms_.push_back(std::move(tm));
    }
    while (SecondsSince(t0) < 30) {
      auto ov = client_->Overview();
      if (ov.ok() && ov->task_managers_size() == kTaskManagers) return absl::OkStatus();
      std::this_thread::sleep_for(20ms);
    }
    return absl::UnavailableError("the TaskManagers did not register within 30 s\n" + LogTails());
  }

  const RescaleBenchOptions& o_;
  std::string dir_;
  int port_ = 0;
  std::unique_ptr<Daemon> jm_;
  std::vector<std::unique_ptr<Daemon>> tms_;
  std::unique_ptr<JobClient> client_;
};

// What one rescale took, in milliseconds.
struct RescaleTimes {
  double running = 0;     // request to every new task RUNNING (client's view)
  double jobmanager = 0;  // the same as the JobManager measured it
  double restored = 0;    // request to every new task restored (TaskManager logs)
};

bool RunsAt(const proto::JobStatus& s, int p) {
  if (s.state() != proto::JOB_RUNNING) return false;
  for (const auto& v : s.graph().vertices()) {
    if (v.parallelism() != p) return false;
  }
  for (const auto& t : s.tasks()) {
    if (t.state() != proto::TASK_RUNNING) return false;
  }
  return s.tasks_size() == p * s.graph().vertices_size();
}

// Until `done` holds for the job's status, at most 60 s.
absl::StatusOr<proto::JobStatus> Await(RescaleCluster& c, const std::string& job,
                                       const std::function<bool(const proto::JobStatus&)>& done,
                                       const std::string& what) {
  auto t0 = Clock::now();
  while (SecondsSince(t0) < 60) {
    auto s = c.client().GetJob(job);
    if (s.ok() && done(*s)) return s;
    if (s.ok() && IsTerminalJobState(s->state())) {
      return absl::InternalError(absl::StrCat("the job ended (",
                                              std::string(JobStateName(s->state())),
                                              ") waiting for ", what, ": ", s->failure()));
    }
    std::this_thread::sleep_for(2ms);
  }
  return absl::DeadlineExceededError(absl::StrCat("no ", what, " within 60 s\n", c.LogTails()));
}

// Runs the rounds on one backend; returns the times by step (index into kSteps).
absl::StatusOr<std::vector<std::vector<RescaleTimes>>> RunBackend(const RescaleBenchOptions& o,
                                                                  const std::string& backend,
                                                                  const std::string& dir) {
  fs::create_directories(dir);
  ASSIGN_OR_RETURN(auto cluster, RescaleCluster::Start(o, dir));
  const std::string library = o.examples_dir + "/libsequence_count.so";
  const std::vector<std::string> args = {
      "--keys", std::to_string(o.keys),          "--per-key", "1000000000",
      "--rate", absl::StrFormat("%.0f", o.rate), "--output",  dir + "/out"};
  ASSIGN_OR_RETURN(std::shared_ptr<JobLibrary> lib, JobLibrary::Load(library));
  ASSIGN_OR_RETURN(std::unique_ptr<StreamExecutionEnvironment> env, lib->BuildEnvironment(args));
  ASSIGN_OR_RETURN(proto::JobGraph graph, BuildJobGraph(*env, JobGraphOptions{}));
  std::ifstream f(library, std::ios::binary);
  std::ostringstream bytes;
  bytes << f.rdbuf();
  ASSIGN_OR_RETURN(std::string sha, cluster->client().UploadLibrary(bytes.str()));
  proto::SubmitJobRequest req;
  *req.mutable_graph() = std::move(graph);
  req.set_library_sha256(sha);
  for (const auto& a : args) req.add_args(a);
  (*req.mutable_config())["execution.checkpointing.interval"] = "1 s";
  (*req.mutable_config())["state.backend.type"] = backend;
  ASSIGN_OR_RETURN(std::string job, cluster->client().Submit(req));

  std::vector<std::vector<RescaleTimes>> times(std::size(kSteps));
  int current = 1;
  int64_t restored_from = 0;
  for (int round = 0; round < o.rounds; ++round) {
    for (size_t step = 0; step < std::size(kSteps); ++step) {
      const int p = kSteps[step];
      // A checkpoint of the current parallelism, so the rescale restores one.
      ASSIGN_OR_RETURN(proto::JobStatus st,
                       Await(
                           *cluster, job,
                           [&](const proto::JobStatus& s) {
                             return RunsAt(s, current) && s.last_checkpoint_id() > restored_from;
                           },
                           absl::StrCat("a checkpoint at parallelism ", current)));
      restored_from = st.last_checkpoint_id();
      const int64_t wall0 = WallMillis();
      const auto t0 = Clock::now();
      ASSIGN_OR_RETURN(std::string trigger, cluster->client().Rescale(job, {}, p, "sluice-bench"));
      ASSIGN_OR_RETURN(st,
                       Await(
                           *cluster, job, [&](const proto::JobStatus& s) { return RunsAt(s, p); },
                           absl::StrCat("every task RUNNING at parallelism ", p)));
      RescaleTimes t;
      t.running = SecondsSince(t0) * 1000;
      ASSIGN_OR_RETURN(proto::RescaleStatus op, cluster->client().RescaleStatus(job, trigger));
      t.jobmanager = op.state() == "COMPLETED"
                         ? static_cast<double>(op.completed_ms() - op.requested_ms())
                         : t.running;
      // Every new task's "restored from checkpoint" line (stamped at or after the request).
      const size_t tasks = static_cast<size_t>(st.tasks_size());
      std::vector<int64_t> restored;
      while (SecondsSince(t0) < 60) {
        restored.clear();
        for (int64_t ms : cluster->TaskManagerLines(job, "restored from checkpoint")) {
          if (ms >= wall0 - 1) restored.push_back(ms);
        }
        if (restored.size() >= tasks) break;
        std::this_thread::sleep_for(5ms);
      }
      if (restored.size() < tasks) {
        return absl::DeadlineExceededError(absl::StrCat("only ", restored.size(), " of ", tasks,
                                                        " tasks restored within 60 s\n",
                                                        cluster->LogTails()));
      }
      t.restored = static_cast<double>(*std::max_element(restored.begin(), restored.end()) - wall0);
      times[step].push_back(t);
      current = p;
    }
  }
  RETURN_IF_ERROR(cluster->client().Cancel(job));
  return times;
}

}  // namespace

absl::Status RunRescaleFigure(const RescaleBenchOptions& in) {
  RescaleBenchOptions o = in;
  if (o.keys == 0) o.keys = o.quick ? 10'000 : 100'000;
  if (o.rounds == 0) o.rounds = o.quick ? 1 : 3;
  std::printf(
      "\n11. Rescale: `sluice rescale -p N` to every task RUNNING at N (and restored), "
      "sequence_count with %s keys at %s records/s, 1 s checkpoints; a JobManager and %d "
      "TaskManagers of 1 slot; median of %d round%s of 1 -> 2 -> 4 -> 2 -> 1 (ms).\n",
      Count(o.keys).c_str(), Count(static_cast<int64_t>(o.rate)).c_str(), kTaskManagers, o.rounds,
      o.rounds == 1 ? "" : "s");
  const std::string root =
      (fs::temp_directory_path() / absl::StrCat("sluice-bench-rescale-", ::getpid())).string();
  std::map<std::string, std::vector<std::vector<RescaleTimes>>> results;
  absl::Status status;
  for (const std::string backend : {"hashmap", "rocksdb"}) {
    auto r = RunBackend(o, backend, root + "/" + backend);
    if (!r.ok()) {
      status = r.status();
      break;
    }
    results[backend] = std::move(*r);
  }
  std::error_code ec;
  fs::remove_all(root, ec);
  RETURN_IF_ERROR(status);
  std::printf("  %-8s  %-36s  %-36s\n", "", "hashmap", "rocksdb");
  std::printf("  %-8s  %10s %13s %10s  %10s %13s %10s\n", "rescale", "RUNNING", "(JobManager)",
              "restored", "RUNNING", "(JobManager)", "restored");
  int from = 1;
  for (size_t step = 0; step < std::size(kSteps); ++step) {
    std::string row = absl::StrFormat("  %-8s", absl::StrCat(from, " -> ", kSteps[step]));
    for (const std::string backend : {"hashmap", "rocksdb"}) {
      std::vector<double> running, jm, restored;
      for (const RescaleTimes& t : results[backend][step]) {
        running.push_back(t.running);
        jm.push_back(t.jobmanager);
        restored.push_back(t.restored);
      }
      absl::StrAppendFormat(&row, "  %10.0f %13.0f %10.0f", Median(running), Median(jm),
                            Median(restored));
    }
    std::printf("%s\n", row.c_str());
    from = kSteps[step];
  }
  return absl::OkStatus();
}

}  // namespace sluice::bench
