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
};

// Every key Sluice knows, with its default.
const std::vector<ConfigOption>& AllConfigOptions();

class Configuration {
 public:
  // Defaults only.
  Configuration() = default;

  // Reads `<dir>/config.yaml`. Nested maps are flattened with dots, so `rest: {port: 8081}` and
  // `rest.port: 8081` are the same key. A missing file is not an error when `optional`.
  static absl::StatusOr<Configuration> LoadDir(const std::string& dir, bool optional = false);
  static absl::StatusOr<Configuration> LoadFile(const std::string& path);

  // Sets one key, checking that it exists and that the value parses as its type.
  absl::Status Set(const std::string& key, const std::string& value);
  // Applies "key=value" strings (from -D flags).
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
  bool IsSet(const std::string& key) const { return values_.count(key) > 0; }

  // The explicitly set values (not the defaults).
  const std::map<std::string, std::string>& values() const { return values_; }

 private:
  std::map<std::string, std::string> values_;
};

// Parsers shared with the CLI; each returns InvalidArgument naming `key` on a malformed value.
absl::StatusOr<int64_t> ParseDurationMs(const std::string& key, const std::string& value);
absl::StatusOr<int64_t> ParseBytes(const std::string& key, const std::string& value);
absl::StatusOr<bool> ParseBool(const std::string& key, const std::string& value);
absl::StatusOr<int64_t> ParseInt(const std::string& key, const std::string& value);
absl::StatusOr<double> ParseDouble(const std::string& key, const std::string& value);

}  // namespace sluice
