// Job and task states (proto::JobState, proto::TaskState in proto/model.proto) and their names
// as Flink gives them ("RUNNING", "CANCELED", ...), which the CLI, the REST API and the logs
// show.
#pragma once

#include <string_view>

#include "proto/model.pb.h"

namespace sluice {

// FINISHED, FAILED and CANCELED: a job or task in one of these never changes again.
inline bool IsTerminalJobState(proto::JobState s) {
  return s == proto::JOB_FINISHED || s == proto::JOB_FAILED || s == proto::JOB_CANCELED;
}
inline bool IsTerminalTaskState(proto::TaskState s) {
  return s == proto::TASK_FINISHED || s == proto::TASK_FAILED || s == proto::TASK_CANCELED;
}

// "RUNNING" for JOB_RUNNING; "UNKNOWN" for a value this build does not know.
std::string_view JobStateName(proto::JobState s);
std::string_view TaskStateName(proto::TaskState s);

}  // namespace sluice
