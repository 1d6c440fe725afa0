// How log lines name a subtask, shared by the TaskManager and the connectors.
#pragma once

#include <string>

#include "sluice/core.h"

namespace sluice {

// "<task name> (<subtask + 1>/<parallelism>) of job <job id>", as in "task Map (2/4) of job
// 6f0c... FAILED": every log line about a task names it so, and one grep of a job id follows the
// job through the JobManager's and every TaskManager's log.
inline std::string task_label(const std::string& job_id, const std::string& task_name,
                              int subtask_index, int parallelism) {
  return task_name + " (" + std::to_string(subtask_index + 1) + "/" + std::to_string(parallelism) +
         ") of job " + job_id;
}
inline std::string task_label(const TaskInfo& info) {
  return task_label(info.job_id, info.task_name, info.subtask_index, info.parallelism);
}

}  // namespace sluice
