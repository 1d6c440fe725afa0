#include "jobmanager/taskmanager_provider.h"

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <cstring>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "spdlog/spdlog.h"

extern char** environ;

namespace sluice {

TaskManagerProvider::TaskManagerProvider(const Configuration& conf)
    : request_command_(conf.GetString("resourcemanager.taskmanager.request-command")),
      release_command_(conf.GetString("resourcemanager.taskmanager.release-command")),
      idle_timeout_(conf.GetDurationMs("resourcemanager.taskmanager-timeout")),
      registration_timeout_(
          conf.GetDurationMs("resourcemanager.taskmanager-registration.timeout")) {}

bool TaskManagerProvider::Request(int count, int registered, const std::string& why,
                                  Clock::time_point now) {
  if (request_command_.empty() || count <= 0) return false;
  if (last_request_ != Clock::time_point{} && now - last_request_ < registration_timeout_ &&
      registered < awaited_) {
    return false;  // the last request may still be answered
  }
  last_request_ = now;
  awaited_ = registered + count;
  spdlog::info("asking for {} TaskManager(s) ({}): {} request {}", count, why, request_command_,
               count);
  return RunDetached(request_command_, {"request", std::to_string(count)}, "TaskManager request");
}

std::vector<std::string> TaskManagerProvider::ReleaseIdle(
    const std::map<std::string, std::string>& idle, Clock::time_point now) {
  std::vector<std::string> released;
  for (auto it = idle_since_.begin(); it != idle_since_.end();) {
    it = idle.count(it->first) ? std::next(it) : idle_since_.erase(it);
  }
  for (auto it = released_.begin(); it != released_.end();) {
    it = idle.count(*it) ? std::next(it) : released_.erase(it);
  }
  if (release_command_.empty()) return released;
  for (const auto& [id, address] : idle) {
    if (released_.count(id)) continue;  // the command left it running: not asked again
    auto [it, fresh] = idle_since_.emplace(id, now);
    if (fresh || now - it->second < idle_timeout_) continue;
    spdlog::info("releasing TaskManager {} at {}: no task for {} ms", id, address,
                 idle_timeout_.count());
    RunDetached(release_command_, {"release", id, address}, "TaskManager release");
    idle_since_.erase(it);
    released_.insert(id);
    released.push_back(id);
  }
  return released;
}

bool TaskManagerProvider::RunDetached(const std::string& command,
                                      const std::vector<std::string>& args,
                                      const std::string& what) {
  // sh -c '<command> "$@"' sh args...: the configured command may hold words and redirections.
  std::vector<std::string> argv{"/bin/sh", "-c", command + " \"$@\"", "sh"};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> cargv;
  for (std::string& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  pid_t pid = 0;
  // Only standard input, output and error go to the command: a TaskManager it starts here must
  // not hold the JobManager's log file or listening sockets for its whole life.
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  // The JobManager blocks SIGTERM and SIGINT for its signal thread: the command (and a
  // TaskManager it starts) must not inherit that, or a SIGTERM would not end it.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  int rc = posix_spawn(&pid, "/bin/sh", &actions, &attr, cargv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    spdlog::warn("{}: cannot run '{}': {}", what, command, std::strerror(rc));
    return false;
  }
  const std::string line = absl::StrCat(command, " ", absl::StrJoin(args, " "));
  std::thread([pid, what, line] {
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
      spdlog::info("{} '{}' done", what, line);
    } else {
      spdlog::warn("{} '{}' failed ({})", what, line,
                   WIFEXITED(status) ? absl::StrCat("exit code ", WEXITSTATUS(status))
                                     : absl::StrCat("signal ", WTERMSIG(status)));
    }
  }).detach();
  return true;
}

}  // namespace sluice
