// The configuration loader (common/config.h): a config.yaml read by Configuration::LoadFile, or
// `-D key=value` flags applied by ApplyOverrides. The input's first byte picks which: even, the
// rest is the file; odd, each line of the rest is one flag. A configuration that loads must
// answer every typed getter of every key it holds (a getter aborts on a value its type rejects,
// so Set must never accept one).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_split.h"
#include "common/config.h"
#include "fuzz_support.h"
#include "spdlog/spdlog.h"

namespace {

// `key` against a declared key whose "<name>" segments stand for any one segment (as config.cc
// matches them).
bool Matches(std::string_view declared, std::string_view key) {
  for (;;) {
    size_t p = declared.find("<name>");
    if (p == std::string_view::npos) return declared == key;
    if (key.substr(0, p) != declared.substr(0, p)) return false;
    key.remove_prefix(p);
    declared.remove_prefix(p + 6);
    size_t end = key.find('.');
    if (end == 0 || end == std::string_view::npos) return false;
    key.remove_prefix(end);
  }
}

void Get(const sluice::Configuration& conf, const sluice::ConfigOption& o, const std::string& key) {
  switch (o.type) {
    case sluice::OptionType::kString:
      (void)(o.choices ? conf.GetChoice(key) : conf.GetString(key));
      break;
    case sluice::OptionType::kInt:
      (void)conf.GetInt(key);
      break;
    case sluice::OptionType::kDuration:
      SLUICE_FUZZ_CHECK(conf.GetDurationMs(key) >= 0);
      break;
    case sluice::OptionType::kMemory:
      SLUICE_FUZZ_CHECK(conf.GetBytes(key) >= 0);
      break;
    case sluice::OptionType::kBool:
      (void)conf.GetBool(key);
      break;
    case sluice::OptionType::kDouble:
      (void)conf.GetDouble(key);
      break;
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  spdlog::set_level(spdlog::level::off);  // JVM-only keys are warned about once each
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  absl::StatusOr<sluice::Configuration> conf;
  if ((data[0] & 1) == 0) {
    sluice::fuzz::ScratchFile file("config.yaml", rest);
    conf = sluice::Configuration::LoadFile(file.path());
  } else {
    std::vector<std::string> flags =
        absl::StrSplit(absl::string_view(rest.data(), rest.size()), '\n');
    conf = sluice::Configuration();
    absl::Status applied = conf->ApplyOverrides(flags);
    if (!applied.ok()) conf = applied;
  }
  if (!conf.ok()) {
    SLUICE_FUZZ_CHECK(!conf.status().message().empty());
    return 0;
  }
  for (const sluice::ConfigOption& o : sluice::AllConfigOptions()) {
    if (std::string_view(o.key).find("<name>") == std::string_view::npos) {
      Get(*conf, o, o.key);
      continue;
    }
    for (const auto& [key, value] : conf->values()) {
      if (Matches(o.key, key)) Get(*conf, o, key);
    }
  }
  return 0;
}
