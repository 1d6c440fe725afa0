// Configuration: conf/config.yaml plus `-D key=value` overrides, with every key declared once in
// config.cc (kOptions) with its type, default and description. An unknown key or a malformed
// value is an error naming the key (and the file, when it came from one).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace sluice {

enum class OptionType { kString, kInt, kDuration, kMemory, kBool, kDouble };

struct ConfigOption {
  const char* key;
  OptionType type;
  const char* default_value;
  const char* description;
  // For string options with a fixed set of values: "A|B|C" (compared without case).
  const char* choices = nullptr;
  // Other names of the same setting, "a|b" (Flink 1's names beside Flink 2's, which is `key`).
  // Set and the getters take any of them; values are kept under `key`; one file or one set of -D
  // flags giving two names different values is an error naming both.
  const char* other_names = nullptr;
  // For int options: the values allowed, inclusive.
  int64_t min_int = INT64_MIN;
  int64_t max_int = INT64_MAX;
};

// Every key Sluice knows, with its default.
const std::vector<ConfigOption>& AllConfigOptions();

// True for a key of Flink's that only configures its JVM processes and means nothing to Sluice
// (env.java.*, jobmanager.memory.* and taskmanager.memory.* other than Sluice's own keys,
// classloader.*, akka.*, pekko.*, ...; the list is in config.cc). Such keys are accepted and
// ignored, with a warning.
bool IsJvmOnlyKey(const std::string& key);
// Logs the warning that `key` does not apply to Sluice, once per key and process; true when this
// call logged it. Thread-safe.
bool WarnOnceAboutJvmOnlyKey(const std::string& key);

class Configuration {
 public:
  // Defaults only.
  Configuration() = default;

  // Reads `<dir>/config.yaml`. Nested maps are flattened with dots, so `rest: {port: 8081}` and
  // `rest.port: 8081` are the same key. A missing file is not an error when `optional`.
  static absl::StatusOr<Configuration> LoadDir(const std::string& dir, bool optional = false);
  static absl::StatusOr<Configuration> LoadFile(const std::string& path);

  // Sets one key, checking that it exists and that the value parses as its type. A key's other
  // name sets the same value (the last one set wins). A JVM-only key (IsJvmOnlyKey) is accepted,
  // kept in ignored() and warned about once per process. An unknown key is InvalidArgument naming
  // it, with the nearest declared key as a suggestion when one is close.
  absl::Status Set(const std::string& key, const std::string& value);
  // Applies "key=value" strings (from -D flags). Two names of one setting with different values
  // among them are InvalidArgument naming both.
  absl::Status ApplyOverrides(const std::vector<std::string>& overrides);

  // Typed getters: the set value or the default. The key must be declared (checked at start-up by
  // Set/Load, so a mistake here is a programming error and aborts).
  std::string GetString(const std::string& key) const;
  int64_t GetInt(const std::string& key) const;
  int64_t GetDurationMs(const std::string& key) const;
  int64_t GetBytes(const std::string& key) const;
  bool GetBool(const std::string& key) const;
  double GetDouble(const std::string& key) const;
  // A choice option's value in upper case with '-' as '_' (e.g. "EXACTLY_ONCE", "FIXED_DELAY").
  std::string GetChoice(const std::string& key) const;
  // Whether the key (by any of its names) was set.
  bool IsSet(const std::string& key) const;

  // The explicitly set values (not the defaults), under each option's key.
  const std::map<std::string, std::string>& values() const { return values_; }
  // The JVM-only keys that were set, and their values (which nothing reads).
  const std::map<std::string, std::string>& ignored() const { return ignored_; }

 private:
  // Per source (a file, a set of -D flags): the name each setting was last given and its value.
  using SourceNames = std::map<std::string, std::pair<std::string, std::string>>;
  // Set, and an error when `names` holds another name of the same setting with another value.
  absl::Status SetChecked(const std::string& key, const std::string& value, SourceNames& names);

  std::map<std::string, std::string> values_;
  std::map<std::string, std::string> ignored_;
};

// Parsers shared with the CLI; each returns InvalidArgument naming `key` on a malformed value.
absl::StatusOr<int64_t> ParseDurationMs(const std::string& key, const std::string& value);
absl::StatusOr<int64_t> ParseBytes(const std::string& key, const std::string& value);
absl::StatusOr<bool> ParseBool(const std::string& key, const std::string& value);
absl::StatusOr<int64_t> ParseInt(const std::string& key, const std::string& value);
absl::StatusOr<double> ParseDouble(const std::string& key, const std::string& value);

}  // namespace sluice
