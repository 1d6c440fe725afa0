#include "common/process.h"

#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>

#include <cstdlib>

#include "spdlog/sinks/stdout_sinks.h"
#include "spdlog/spdlog.h"

namespace sluice {

absl::StatusOr<Configuration> LoadConfiguration(const std::string& config_dir,
                                                const std::vector<std::string>& overrides) {
  std::string dir = config_dir;
  if (dir.empty()) {
    if (const char* env = std::getenv("SLUICE_CONF_DIR"); env && *env) dir = env;
  }
  Configuration conf;
  if (!dir.empty()) {
    auto loaded = Configuration::LoadDir(dir);
    if (!loaded.ok()) return loaded.status();
    conf = std::move(*loaded);
  }
  absl::Status s = conf.ApplyOverrides(overrides);
  if (!s.ok()) return s;
  return conf;
}

int64_t RaiseOpenFileLimit() {
  rlimit r{};
  if (::getrlimit(RLIMIT_NOFILE, &r) != 0) return -1;
  if (r.rlim_cur < r.rlim_max) {
    rlimit raised = r;
    raised.rlim_cur = r.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) r = raised;
  }
  return r.rlim_cur == RLIM_INFINITY ? -1 : static_cast<int64_t>(r.rlim_cur);
}

void InitLogging(const std::string& process_name) {
  auto logger = spdlog::stderr_logger_mt(process_name);
  logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ [%n] %v");
  spdlog::set_default_logger(logger);
  spdlog::flush_on(spdlog::level::info);
}

void BlockTerminationSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

int WaitForTerminationSignal() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  int sig = 0;
  sigwait(&set, &sig);
  return sig;
}

}  // namespace sluice
