// sluice-jobmanager: the JobManager daemon. Runs until SIGTERM or SIGINT.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "common/process.h"
#include "jobmanager/job_manager.h"
#include "spdlog/spdlog.h"

int main(int argc, char** argv) {
  CLI::App app{"Sluice JobManager: schedules jobs onto TaskManagers"};
  std::string config_dir;
  std::vector<std::string> dynamic;
  app.add_option("--config-dir,-c", config_dir,
                 "folder holding config.yaml (default: $SLUICE_CONF_DIR)");
  app.add_option("-D", dynamic, "override a configuration key: -D key=value");
  CLI11_PARSE(app, argc, argv);

  sluice::BlockTerminationSignals();
  sluice::InitLogging("jobmanager");
  auto conf = sluice::LoadConfiguration(config_dir, dynamic);
  if (!conf.ok()) {
    std::fprintf(stderr, "sluice-jobmanager: %s\n", std::string(conf.status().message()).c_str());
    return 2;
  }
  auto jm = sluice::JobManager::Start(*conf);
  if (!jm.ok()) {
    std::fprintf(stderr, "sluice-jobmanager: %s\n", std::string(jm.status().message()).c_str());
    return 1;
  }
  int sig = sluice::WaitForTerminationSignal();
  spdlog::info("signal {} received, stopping", sig);
  (*jm)->Shutdown();
  return 0;
}
