// Start-up helpers shared by the daemons and the CLI: configuration loading and logging.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/config.h"

namespace sluice {

// Loads `<config_dir>/config.yaml` (or `$SLUICE_CONF_DIR/config.yaml` when config_dir is empty;
// defaults alone when neither is set), then applies `-D key=value` overrides.
absl::StatusOr<Configuration> LoadConfiguration(const std::string& config_dir,
                                                const std::vector<std::string>& overrides);

// Logs to standard error with the process's name on every line.
void InitLogging(const std::string& process_name);

// Raises this process's soft limit on open files to its hard limit (as a JVM does at start), so
// that a thousand REST connections or network channels do not run out of descriptors under a
// distribution's default soft limit of 1024. Returns the limit now in force.
int64_t RaiseOpenFileLimit();

// Blocks until SIGTERM or SIGINT arrives. Call BlockTerminationSignals() first, before any
// thread starts, so that the signals reach this wait.
void BlockTerminationSignals();
int WaitForTerminationSignal();

}  // namespace sluice
