#include "common/job_states.h"

#include <string>

namespace sluice {
namespace {

std::string_view WithoutPrefix(const std::string& name, std::string_view prefix) {
  std::string_view n(name);
  if (n.empty() || n.substr(prefix.size()) == "STATE_UNSPECIFIED") return "UNKNOWN";
  return n.substr(prefix.size());
}

}  // namespace

std::string_view JobStateName(proto::JobState s) {
  if (!proto::JobState_IsValid(s)) return "UNKNOWN";
  return WithoutPrefix(proto::JobState_Name(s), "JOB_");
}

std::string_view TaskStateName(proto::TaskState s) {
  if (!proto::TaskState_IsValid(s)) return "UNKNOWN";
  return WithoutPrefix(proto::TaskState_Name(s), "TASK_");
}

}  // namespace sluice
