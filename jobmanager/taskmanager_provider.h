// TaskManagerProvider: how the JobManager asks for TaskManagers and gives them back, through
// commands the operator configures (a standalone cluster has no resource manager to ask):
//   resourcemanager.taskmanager.request-command  run as `<command> request <count>` when jobs
//       need more slots than the cluster has (the autoscaler, a waiting job); deploy/
//       taskmanager-provider.sh starts TaskManagers on the hosts of conf/spare-workers over ssh.
//   resourcemanager.taskmanager.release-command  run as `<command> release <tm id> <address>`
//       for a TaskManager that has had no task for resourcemanager.taskmanager-timeout.
// A request is not repeated while an earlier one may still be answered (its TaskManagers have
// resourcemanager.taskmanager-registration.timeout to register). Commands run in the
// background through /bin/sh; their output goes to the JobManager's log, with their exit code.
//
// Threads: not thread-safe; the Dispatcher calls it under its lock (commands start detached).
#pragma once

#include <chrono>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/config.h"

namespace sluice {

class TaskManagerProvider {
 public:
  using Clock = std::chrono::steady_clock;
  explicit TaskManagerProvider(const Configuration& conf);

  bool can_request() const { return !request_command_.empty(); }
  // Asks for `count` TaskManagers unless a request is outstanding: one made less than the
  // registration timeout ago, while fewer than `registered + its count` are registered. Returns
  // true when the command was started.
  bool Request(int count, int registered, const std::string& why, Clock::time_point now);
  // `idle`: the registered TaskManagers without a task (id -> address). Releases those idle for
  // longer than the timeout (when a release command is set); returns their ids. The command
  // decides (deploy/taskmanager-provider.sh stops only the TaskManagers it started): one it left
  // running is not released again until it has had a task.
  std::vector<std::string> ReleaseIdle(const std::map<std::string, std::string>& idle,
                                       Clock::time_point now);

  // Starts `argv` through /bin/sh -c in the background; its output goes to this process's
  // standard error, its end to the log. Returns false (logged) when it cannot start.
  static bool RunDetached(const std::string& command, const std::vector<std::string>& args,
                          const std::string& what);

 private:
  std::string request_command_, release_command_;
  std::chrono::milliseconds idle_timeout_, registration_timeout_;
  Clock::time_point last_request_{};
  int awaited_ = 0;  // registered TaskManagers the last request is satisfied at
  std::map<std::string, Clock::time_point> idle_since_;
  std::set<std::string> released_;  // released and still registered without a task
};

}  // namespace sluice
