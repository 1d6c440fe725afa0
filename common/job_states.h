// Job and task states, named as Flink names them.
#pragma once

#include <string>

namespace sluice {

// FINISHED, FAILED and CANCELED: a job or task in one of these never changes again.
inline bool IsTerminalJobState(const std::string& s) {
  return s == "FINISHED" || s == "FAILED" || s == "CANCELED";
}
inline bool IsTerminalTaskState(const std::string& s) { return IsTerminalJobState(s); }

}  // namespace sluice
