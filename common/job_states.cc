#include "common/job_states.h"

#include <string>

namespace sluice {
namespace {

// `name` is the enum value's name, which protobuf keeps for the program's life.
std::string_view WithoutPrefix(std::string_view name, std::string_view prefix) {
  if (name.substr(0, prefix.size()) != prefix ||
      name.substr(prefix.size()) == "STATE_UNSPECIFIED") {
    return "UNKNOWN";
  }
  return name.substr(prefix.size());
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
