// nexmark-baseline --query <q> [generator options, e.g. --events N --rate R]
// Generates the events on one thread, runs the hand-written query over them, and prints
//   query <q> events <n> seconds <s> events_per_s <r> rows <rows> checksum <hex>
#include <chrono>
#include <cstdio>
#include <exception>
#include <map>
#include <string>

#include "baseline/baseline.h"
#include "generator/generator.h"
#include "generator/schedule.h"

namespace nexmark::baseline {

std::map<std::string, QueryFactory>& QueryRegistry() {
  static std::map<std::string, QueryFactory> registry;
  return registry;
}

std::unique_ptr<Query> MakeQuery(const std::string& name, const GeneratorConfig& config) {
  auto it = QueryRegistry().find(name);
  return it == QueryRegistry().end() ? nullptr : it->second(config);
}

namespace {

int Run(int argc, char** argv) {
  GeneratorConfig config;
  std::string query;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      std::printf("usage: nexmark-baseline --query <q> [--<generator option> <value>]...\n");
      std::printf("queries:");
      for (const auto& [name, f] : QueryRegistry()) std::printf(" %s", name.c_str());
      std::printf("\ngenerator options:");
      for (const std::string& n : GeneratorOptionNames()) std::printf(" --%s", n.c_str());
      std::printf("\n");
      return 0;
    }
    if (a.rfind("--", 0) != 0 || i + 1 >= argc) {
      std::fprintf(stderr, "nexmark-baseline: expected --<option> <value>, got '%s'\n", a.c_str());
      return 2;
    }
    std::string name = a.substr(2), value = argv[++i];
    if (name == "query") {
      query = value;
    } else {
      SetGeneratorOption(config, name, value);
    }
  }
  config.validate();
  std::unique_ptr<Query> q = MakeQuery(query, config);
  if (!q) {
    std::fprintf(stderr, "nexmark-baseline: unknown query '%s' (see --help)\n", query.c_str());
    return 2;
  }
  EventGenerator generator(config);
  EventSchedule schedule(config, EventSchedule::Start(config.events, 0, 1));
  auto start = std::chrono::steady_clock::now();
  int64_t max_ts = INT64_MIN, watermark = INT64_MIN, events = 0;
  for (int64_t n; (n = schedule.peek()) >= 0; schedule.pop()) {
    Event e = generator.next_event(n);
    int64_t ts = e.date_time();
    q->process(std::move(e));
    ++events;
    if (ts > max_ts) {
      max_ts = ts;
      if (max_ts - kWatermarkDelayMs - 1 > watermark) {
        watermark = max_ts - kWatermarkDelayMs - 1;
        q->advance_watermark(watermark);
      }
    }
  }
  q->advance_watermark(kMaxTime);
  q->finish();
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("query %s events %lld seconds %.3f events_per_s %.0f rows %lld checksum %016llx\n",
              query.c_str(), static_cast<long long>(events), seconds,
              seconds > 0 ? static_cast<double>(events) / seconds : 0.0,
              static_cast<long long>(q->checksum().rows),
              static_cast<unsigned long long>(q->checksum().sum));
  return 0;
}

}  // namespace
}  // namespace nexmark::baseline

int main(int argc, char** argv) {
  try {
    return nexmark::baseline::Run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "nexmark-baseline: %s\n", e.what());
    return 2;
  }
}
