// sluice-taskmanager: the TaskManager daemon. Runs until SIGTERM or SIGINT. The output of the
// jobs' print() sinks goes to its standard output.
//
// With high-availability.type: zookeeper the JobManager is the leader published in ZooKeeper
// (jobmanager.rpc.address and .port are not used): the TaskManager waits for one at start-up and
// follows each new one, registering there.
#include <CLI/CLI.hpp>
#include <atomic>
#include <cstdio>

#include "common/internal_tls.h"
#include "common/process.h"
#include "jobmanager/ha/ha_options.h"
#include "jobmanager/ha/ha_services.h"
#include "jobmanager/ha/leader_election.h"
#include "spdlog/spdlog.h"
#include "taskmanager/task_manager.h"

namespace {

// How long a TaskManager started before any JobManager leads waits for one.
constexpr int64_t kLeaderWaitMs = 60000;

int RunHighlyAvailable(sluice::Configuration conf, const sluice::ha::HaOptions& ha) {
  auto zk = sluice::ha::ConnectToQuorum(ha);
  if (!zk.ok()) {
    std::fprintf(stderr, "sluice-taskmanager: %s\n", std::string(zk.status().message()).c_str());
    return 1;
  }
  std::atomic<sluice::TaskManager*> tm_ptr{nullptr};
  std::string path = sluice::ha::JobManagerLeaderPath(ha.cluster_path);
  auto retriever = sluice::ha::LeaderRetriever::Start(
      zk->get(), path, [&](const std::optional<sluice::ha::LeaderInfo>& leader) {
        if (!leader) {
          spdlog::warn("no JobManager leader published at {}", path);
          return;
        }
        spdlog::info("JobManager leader: {} (leadership {})", leader->rpc_address,
                     leader->session_id);
        if (sluice::TaskManager* tm = tm_ptr.load()) tm->SetJobManagerAddress(leader->rpc_address);
      });
  if (!retriever.ok()) {
    std::fprintf(stderr, "sluice-taskmanager: %s\n",
                 std::string(retriever.status().message()).c_str());
    return 1;
  }
  auto leader = (*retriever)->WaitForLeader(kLeaderWaitMs);
  if (!leader.ok()) {
    std::fprintf(stderr, "sluice-taskmanager: %s\n",
                 std::string(leader.status().message()).c_str());
    return 1;
  }
  size_t colon = leader->rpc_address.rfind(':');
  absl::Status s = conf.Set("jobmanager.rpc.address", leader->rpc_address.substr(0, colon));
  if (s.ok()) s = conf.Set("jobmanager.rpc.port", leader->rpc_address.substr(colon + 1));
  if (!s.ok()) {
    std::fprintf(stderr, "sluice-taskmanager: leader address '%s' at %s: %s\n",
                 leader->rpc_address.c_str(), path.c_str(), std::string(s.message()).c_str());
    return 1;
  }
  auto tm = sluice::TaskManager::Start(conf);
  if (!tm.ok()) {
    std::fprintf(stderr, "sluice-taskmanager: %s\n", std::string(tm.status().message()).c_str());
    return 1;
  }
  tm_ptr = tm->get();
  // A change between the wait and now.
  if (auto now = (*retriever)->leader()) (*tm)->SetJobManagerAddress(now->rpc_address);
  int sig = sluice::WaitForTerminationSignal();
  spdlog::info("signal {} received, stopping", sig);
  retriever->reset();  // no callback after this
  tm_ptr = nullptr;
  (*tm)->Shutdown();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Sluice TaskManager: runs the tasks of jobs in its slots"};
  std::string config_dir;
  std::vector<std::string> dynamic;
  app.add_option("--config-dir,-c", config_dir,
                 "folder holding config.yaml (default: $SLUICE_CONF_DIR)");
  app.add_option("-D", dynamic, "override a configuration key: -D key=value");
  CLI11_PARSE(app, argc, argv);

  sluice::BlockTerminationSignals();
  sluice::RaiseOpenFileLimit();
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  sluice::InitLogging("taskmanager");
  auto conf = sluice::LoadConfiguration(config_dir, dynamic);
  if (!conf.ok()) {
    std::fprintf(stderr, "sluice-taskmanager: %s\n", std::string(conf.status().message()).c_str());
    return 2;
  }
  if (absl::Status s = sluice::ConfigureInternalTls(*conf); !s.ok()) {
    std::fprintf(stderr, "sluice-taskmanager: %s\n", std::string(s.message()).c_str());
    return 2;
  }
  sluice::LogGrpcErrors();
  if (absl::Status s = sluice::CheckStartupSecurity(*conf, {"taskmanager.bind-host"}); !s.ok()) {
    std::fprintf(stderr, "sluice-taskmanager: %s\n", std::string(s.message()).c_str());
    return 2;
  }
  auto ha = sluice::ha::HaOptions::FromConfiguration(*conf);
  if (!ha.ok()) {
    std::fprintf(stderr, "sluice-taskmanager: %s\n", std::string(ha.status().message()).c_str());
    return 2;
  }
  if (ha->enabled) return RunHighlyAvailable(*conf, *ha);
  auto tm = sluice::TaskManager::Start(*conf);
  if (!tm.ok()) {
    std::fprintf(stderr, "sluice-taskmanager: %s\n", std::string(tm.status().message()).c_str());
    return 1;
  }
  int sig = sluice::WaitForTerminationSignal();
  spdlog::info("signal {} received, stopping", sig);
  (*tm)->Shutdown();
  return 0;
}
