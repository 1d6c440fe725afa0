// The single-threaded baselines: each query hand-written over the same generated events (all of
// them, in the order of one subtask), with the same results and checksum as its Sluice job.
// Event time as in the jobs: a watermark 4 s behind the highest timestamp seen, moved after
// every event; at the end of the input it passes everything (timers and windows fire).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "generator/config.h"
#include "generator/model.h"
#include "queries/rows.h"

namespace nexmark::baseline {

inline constexpr int64_t kWatermarkDelayMs = 4000;
inline constexpr int64_t kMaxTime = INT64_MAX;

class Query {
 public:
  virtual ~Query() = default;
  // The next event, then the watermark after it (which may not have moved).
  virtual void process(Event&& e) = 0;
  virtual void advance_watermark(int64_t /*watermark*/) {}
  // The input has ended (the watermark passed everything before this call).
  virtual void finish() {}
  const Checksum& checksum() const { return checksum_; }

 protected:
  Checksum checksum_;
};

// The query called `name` (q0, q1, ...), or null when there is none.
std::unique_ptr<Query> MakeQuery(const std::string& name, const GeneratorConfig& config);

// Each query's file registers its factory here (baseline/q*.cc).
using QueryFactory = std::function<std::unique_ptr<Query>(const GeneratorConfig&)>;
std::map<std::string, QueryFactory>& QueryRegistry();
struct RegisterQuery {
  RegisterQuery(const std::string& name, QueryFactory f) { QueryRegistry()[name] = std::move(f); }
};

// Event-time timers of a baseline: (time, payload) fired in time order when the watermark passes.
template <class P>
class Timers {
 public:
  void add(int64_t time, P payload) { timers_.emplace(time, std::move(payload)); }
  template <class F>
  void fire_until(int64_t watermark, F f) {
    while (!timers_.empty() && timers_.begin()->first <= watermark) {
      auto node = timers_.extract(timers_.begin());
      f(node.key(), node.mapped());
    }
  }
  bool empty() const { return timers_.empty(); }

 private:
  std::multimap<int64_t, P> timers_;
};

}  // namespace nexmark::baseline
