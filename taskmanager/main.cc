// sluice-taskmanager: the TaskManager daemon. Runs until SIGTERM or SIGINT. The output of the
// jobs' print() sinks goes to its standard output.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "common/process.h"
#include "spdlog/spdlog.h"
#include "taskmanager/task_manager.h"

int main(int argc, char** argv) {
  CLI::App app{"Sluice TaskManager: runs the tasks of jobs in its slots"};
  std::string config_dir;
  std::vector<std::string> dynamic;
  app.add_option("--config-dir,-c", config_dir,
                 "folder holding config.yaml (default: $SLUICE_CONF_DIR)");
  app.add_option("-D", dynamic, "override a configuration key: -D key=value");
  CLI11_PARSE(app, argc, argv);

  sluice::BlockTerminationSignals();
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  sluice::InitLogging("taskmanager");
  auto conf = sluice::LoadConfiguration(config_dir, dynamic);
  if (!conf.ok()) {
    std::fprintf(stderr, "sluice-taskmanager: %s\n", std::string(conf.status().message()).c_str());
    return 2;
  }
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
