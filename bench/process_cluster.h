// ProcessCluster: a JobManager and TaskManagers of one slot each, real sluice-jobmanager and
// sluice-taskmanager processes on 127.0.0.1, the JobManager's port picked at run time, every
// process started and stopped by its pid (Daemon, bench_util.h). Used by figures 4 and 5
// (checkpoint_bench.cc) and 12 (sluice_bench.cc).
//
// The JobClient it keeps takes the internal TLS credentials in force when the JobManager starts
// (ConfigureInternalTls, common/internal_tls.h): configure them for the cluster's settings first.
// Single-threaded use: everything is called from the benchmark's main thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "bench_util.h"
#include "client/job_client.h"
#include "common/status_macros.h"

namespace sluice::bench {

// A JobManager and TaskManagers of one slot each on 127.0.0.1, in the folder `dir`.
class ProcessCluster {
 public:
  // `bin_dir`: the folder of the daemons' binaries; `overrides`: key=value settings given to
  // every daemon with -D. Unavailable, with the daemons' log tails, when one does not start or a
  // TaskManager does not register within 20 s; every daemon started is stopped then.
  static absl::StatusOr<std::unique_ptr<ProcessCluster>> Start(
      const std::string& bin_dir, const std::vector<std::string>& overrides, const std::string& dir,
      int task_managers) {
    std::unique_ptr<ProcessCluster> c(new ProcessCluster(bin_dir, overrides, dir));
    RETURN_IF_ERROR(c->StartJobManager());
    for (int i = 0; i < task_managers; ++i) RETURN_IF_ERROR(c->AddTaskManager().status());
    return c;
  }
  ~ProcessCluster() { Stop(); }

  JobClient& client() { return *client_; }
  int jm_port() const { return jm_port_; }
  std::string jm_address() const { return absl::StrCat("127.0.0.1:", jm_port_); }
  const std::string& jm_log() const { return jm_->log(); }
  std::string checkpoint_root() const { return dir_ + "/checkpoints"; }

  // Starts a TaskManager and waits until the JobManager lists it; returns its id.
  absl::StatusOr<std::string> AddTaskManager() {
    using namespace std::chrono_literals;
    int n = next_tm_++;
    std::string blobs = absl::StrCat(dir_, "/blobs-tm", n);
    std::filesystem::create_directories(blobs);
    std::vector<std::string> args = Settings();
    for (const char* s : {"taskmanager.host=127.0.0.1", "taskmanager.bind-host=127.0.0.1",
                          "taskmanager.rpc.port=0", "taskmanager.numberOfTaskSlots=1"}) {
      args.insert(args.end(), {"-D", s});
    }
    args.insert(args.end(), {"-D", "blob.storage.directory=" + blobs});
    ASSIGN_OR_RETURN(auto tm, Daemon::Spawn(bin_dir_ + "/sluice-taskmanager", args,
                                            absl::StrCat(dir_, "/taskmanager-", n, ".log")));
    static const std::regex kListening(R"(TaskManager (\S+) listening on)");
    auto t0 = Clock::now();
    std::string id;
    while (true) {
      std::smatch m;
      std::string text = tm->LogText();
      if (id.empty() && std::regex_search(text, m, kListening)) id = m[1];
      if (!id.empty()) {
        auto ov = client_->Overview();
        bool listed = false;
        if (ov.ok()) {
          for (const auto& t : ov->task_managers()) listed |= t.tm_id() == id;
        }
        if (listed) break;
      }
      if (!tm->Alive() || SecondsSince(t0) > 20) {
        return absl::UnavailableError(absl::StrCat(
            "TaskManager ", n,
            tm->Alive() ? " did not register within 20 s" : " exited before it registered",
            ".\n--- its log ---\n", tm->LogTail(), "\n--- jobmanager log ---\n", jm_->LogTail()));
      }
      std::this_thread::sleep_for(10ms);
    }
    tms_[id] = std::move(tm);
    return id;
  }

  // kill -9 of TaskManager `id`; returns the wall-clock ms of the signal. The process is reaped.
  int64_t KillTaskManager(const std::string& id) {
    auto it = tms_.find(id);
    if (it == tms_.end()) return 0;
    int64_t t = it->second->Kill();
    it->second->Reap();
    tms_.erase(it);
    return t;
  }

  // The pids of every daemon still running.
  std::vector<pid_t> pids() const {
    std::vector<pid_t> p = task_manager_pids();
    p.insert(p.begin(), jm_->pid());
    return p;
  }
  std::vector<pid_t> task_manager_pids() const {
    std::vector<pid_t> p;
    for (const auto& [id, tm] : tms_) p.push_back(tm->pid());
    return p;
  }

  // True while every daemon started (and not killed) still runs.
  bool AllAlive() {
    bool alive = jm_ && jm_->Alive();
    for (auto& [id, tm] : tms_) alive = alive && tm->Alive();
    return alive;
  }

  void Stop() {
    client_.reset();  // a connected client delays the JobManager's shutdown
    tms_.clear();
    if (jm_) jm_->Stop();
  }

  // The last lines of every daemon's log, for error messages.
  std::string LogTails() const {
    std::string s = "--- jobmanager log ---\n" + jm_->LogTail();
    for (const auto& [id, tm] : tms_) s += "\n--- " + id + " log ---\n" + tm->LogTail();
    return s;
  }

 private:
  ProcessCluster(std::string bin_dir, std::vector<std::string> overrides, std::string dir)
      : bin_dir_(std::move(bin_dir)), overrides_(std::move(overrides)), dir_(std::move(dir)) {}

  std::vector<std::string> Settings() const {
    std::vector<std::string> s;
    for (const std::string& kv : {std::string("jobmanager.rpc.address=127.0.0.1"),
                                  absl::StrCat("jobmanager.rpc.port=", jm_port_),
                                  absl::StrCat("state.checkpoints.dir=", checkpoint_root())}) {
      s.insert(s.end(), {"-D", kv});
    }
    for (const auto& kv : overrides_) s.insert(s.end(), {"-D", kv});
    return s;
  }

  absl::Status StartJobManager() {
    using namespace std::chrono_literals;
    std::string last;
    for (int attempt = 0; attempt < 3; ++attempt) {
      ASSIGN_OR_RETURN(jm_port_, FreePort());
      std::vector<std::string> args = Settings();
      args.insert(args.end(), {"-D", "jobmanager.bind-host=127.0.0.1", "-D", "rest.port=0"});
      ASSIGN_OR_RETURN(
          jm_, Daemon::Spawn(bin_dir_ + "/sluice-jobmanager", args, dir_ + "/jobmanager.log"));
      // Plain TCP connects first: a gRPC channel that failed to connect backs off for seconds.
      auto t0 = Clock::now();
      while (jm_->Alive() && !PortAccepts(jm_port_) && SecondsSince(t0) < 20) {
        std::this_thread::sleep_for(10ms);
      }
      if (jm_->Alive() && PortAccepts(jm_port_)) {
        client_ = std::make_unique<JobClient>(jm_address(), 10s);
        auto ov = client_->Overview();
        if (ov.ok()) return absl::OkStatus();
        last = absl::StrCat(ov.status().message(), "\n");
      }
      absl::StrAppend(&last, jm_->LogTail());
      client_.reset();
      jm_->Stop();
    }
    return absl::UnavailableError("sluice-jobmanager did not start:\n" + last);
  }

  std::string bin_dir_;
  std::vector<std::string> overrides_;
  std::string dir_;
  int jm_port_ = 0;
  int next_tm_ = 1;
  std::unique_ptr<Daemon> jm_;
  std::map<std::string, std::unique_ptr<Daemon>> tms_;  // by TaskManager id
  std::unique_ptr<JobClient> client_;
};

}  // namespace sluice::bench
