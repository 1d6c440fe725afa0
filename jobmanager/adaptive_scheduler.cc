#include "jobmanager/adaptive_scheduler.h"

#include <algorithm>
#include <limits>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace sluice {
namespace {

std::string VertexLabel(const proto::JobGraph& g, int v) {
  return absl::StrCat("vertex ", v, " '", g.vertices(v).name(), "'");
}

// A duration that may be negative (Flink: wait forever); nullopt for a negative one.
absl::StatusOr<std::optional<std::chrono::milliseconds>> OptionalDuration(const Configuration& conf,
                                                                          const std::string& key) {
  std::string value = conf.GetString(key);
  size_t first = value.find_first_not_of(" \t");
  if (first != std::string::npos && value[first] == '-') {
    auto rest = ParseDurationMs(key, value.substr(first + 1));
    if (!rest.ok()) return rest.status();
    return std::optional<std::chrono::milliseconds>();
  }
  auto ms = ParseDurationMs(key, value);
  if (!ms.ok()) return ms.status();
  return std::optional<std::chrono::milliseconds>(*ms);
}

}  // namespace

const char* AdaptiveSchedulerSettings::name() const {
  switch (type) {
    case SchedulerType::kAdaptive:
      return "adaptive";
    case SchedulerType::kReactive:
      return "reactive";
    default:
      return "default";
  }
}

absl::StatusOr<AdaptiveSchedulerSettings> AdaptiveSchedulerSettings::FromConfig(
    const Configuration& conf) {
  AdaptiveSchedulerSettings s;
  if (conf.GetChoice("scheduler-mode") == "REACTIVE") {
    s.type = SchedulerType::kReactive;
  } else if (conf.GetChoice("jobmanager.scheduler") == "ADAPTIVE") {
    s.type = SchedulerType::kAdaptive;
  }
  const std::string wait_key = "jobmanager.adaptive-scheduler.resource-wait-timeout";
  const std::string stable_key = "jobmanager.adaptive-scheduler.resource-stabilization-timeout";
  const std::string increase_key = "jobmanager.adaptive-scheduler.min-parallelism-increase";
  if (s.reactive() && !conf.IsSet(wait_key)) {
    s.resource_wait_timeout.reset();
  } else {
    auto wait = OptionalDuration(conf, wait_key);
    if (!wait.ok()) return wait.status();
    s.resource_wait_timeout = *wait;
  }
  s.stabilization_timeout = std::chrono::milliseconds(
      s.reactive() && !conf.IsSet(stable_key) ? 0 : conf.GetDurationMs(stable_key));
  int64_t increase = conf.GetInt(increase_key);
  if (increase < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("configuration key '", increase_key, "' must be at least 1, got ", increase));
  }
  s.min_parallelism_increase = static_cast<int>(std::min<int64_t>(increase, 1 << 20));
  return s;
}

int AdaptiveScheduler::MaxParallelism(const proto::JobGraph& g, int v) {
  int own = g.vertices(v).max_parallelism();
  return own > 0 ? std::min(own, g.max_parallelism()) : g.max_parallelism();
}

VertexParallelism AdaptiveScheduler::Current(const proto::JobGraph& g) {
  VertexParallelism p;
  for (const auto& v : g.vertices()) p.push_back(v.parallelism());
  return p;
}

void AdaptiveScheduler::Apply(const VertexParallelism& p, proto::JobGraph* g) {
  for (int v = 0; v < g->vertices_size() && v < static_cast<int>(p.size()); ++v) {
    g->mutable_vertices(v)->set_parallelism(p[v]);
  }
}

int AdaptiveScheduler::SlotsNeeded(const VertexParallelism& p) {
  return p.empty() ? 0 : *std::max_element(p.begin(), p.end());
}

std::vector<int> AdaptiveScheduler::ForwardGroups(const proto::JobGraph& g) {
  std::vector<int> group(g.vertices_size());
  std::iota(group.begin(), group.end(), 0);
  auto find = [&group](int v) {
    while (group[v] != v) v = group[v] = group[group[v]];
    return v;
  };
  for (const auto& e : g.edges()) {
    if (e.partitioner() != proto::PARTITIONER_FORWARD) continue;
    if (e.source_vertex() < 0 || e.source_vertex() >= g.vertices_size() || e.target_vertex() < 0 ||
        e.target_vertex() >= g.vertices_size()) {
      continue;  // ValidateGraph refused such a graph at submission
    }
    group[find(e.source_vertex())] = find(e.target_vertex());
  }
  for (int v = 0; v < g.vertices_size(); ++v) group[v] = find(v);
  return group;
}

ResourceRequirements AdaptiveScheduler::InitialRequirements(const proto::JobGraph& g,
                                                            bool reactive) {
  ResourceRequirements r;
  for (int v = 0; v < g.vertices_size(); ++v) {
    r.push_back({1, reactive ? MaxParallelism(g, v) : g.vertices(v).parallelism()});
  }
  if (!reactive) return r;
  // Forward groups at the lowest maximum of their members, so the bounds overlap.
  std::vector<int> group = ForwardGroups(g);
  std::map<int, int> lowest;
  for (int v = 0; v < g.vertices_size(); ++v) {
    auto [it, added] = lowest.emplace(group[v], r[v].upper);
    if (!added) it->second = std::min(it->second, r[v].upper);
  }
  for (int v = 0; v < g.vertices_size(); ++v) r[v].upper = lowest[group[v]];
  return r;
}

absl::Status AdaptiveScheduler::CheckRequirements(const proto::JobGraph& g,
                                                  const ResourceRequirements& r) {
  if (static_cast<int>(r.size()) != g.vertices_size()) {
    return absl::InvalidArgumentError(absl::StrCat("the job has ", g.vertices_size(),
                                                   " vertices but requirements for ", r.size()));
  }
  for (int v = 0; v < g.vertices_size(); ++v) {
    const ParallelismBounds& b = r[v];
    if (b.lower < 1) {
      return absl::InvalidArgumentError(absl::StrCat("the lower bound of ", VertexLabel(g, v),
                                                     " is ", b.lower, "; it must be at least 1"));
    }
    if (b.upper < b.lower) {
      return absl::InvalidArgumentError(absl::StrCat("the upper bound of ", VertexLabel(g, v), " (",
                                                     b.upper, ") is below its lower bound (",
                                                     b.lower, ")"));
    }
    if (b.upper > MaxParallelism(g, v)) {
      return absl::InvalidArgumentError(
          absl::StrCat("the upper bound ", b.upper, " of ", VertexLabel(g, v),
                       " is above its max parallelism ", MaxParallelism(g, v),
                       MaxParallelism(g, v) == 1 ? " (it cannot run in parallel)"
                                                 : " (pipeline.max-parallelism)"));
    }
  }
  for (const auto& e : g.edges()) {
    if (e.partitioner() != proto::PARTITIONER_FORWARD) continue;
    const ParallelismBounds& a = r[e.source_vertex()];
    const ParallelismBounds& b = r[e.target_vertex()];
    if (std::max(a.lower, b.lower) > std::min(a.upper, b.upper)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the forward edge from '", g.vertices(e.source_vertex()).name(), "' to '",
          g.vertices(e.target_vertex()).name(),
          "' needs equal parallelism at both ends, but their "
          "bounds [",
          a.lower, ", ", a.upper, "] and [", b.lower, ", ", b.upper, "] do not overlap"));
    }
  }
  return absl::OkStatus();
}

absl::Status AdaptiveScheduler::CheckParallelism(const proto::JobGraph& g,
                                                 const VertexParallelism& p) {
  if (static_cast<int>(p.size()) != g.vertices_size()) {
    return absl::InvalidArgumentError(absl::StrCat("the job has ", g.vertices_size(),
                                                   " vertices but a parallelism for ", p.size()));
  }
  for (int v = 0; v < g.vertices_size(); ++v) {
    if (p[v] < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("parallelism ", p[v], " of ", VertexLabel(g, v), ": it must be at least 1"));
    }
    if (p[v] > MaxParallelism(g, v)) {
      return absl::InvalidArgumentError(
          absl::StrCat("parallelism ", p[v], " of ", VertexLabel(g, v),
                       " is above its max parallelism ", MaxParallelism(g, v),
                       MaxParallelism(g, v) == 1 ? " (it cannot run in parallel)"
                                                 : " (pipeline.max-parallelism)"));
    }
  }
  for (const auto& e : g.edges()) {
    if (e.partitioner() != proto::PARTITIONER_FORWARD) continue;
    int a = e.source_vertex(), b = e.target_vertex();
    if (p[a] != p[b]) {
      return absl::InvalidArgumentError(
          absl::StrCat("the forward edge from '", g.vertices(a).name(), "' (parallelism ", p[a],
                       ") to '", g.vertices(b).name(), "' (parallelism ", p[b],
                       ") needs equal parallelism at both ends: rescale both to the same value"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<VertexParallelism> AdaptiveScheduler::WholeJob(const proto::JobGraph& g, int n) {
  if (n < 1) {
    return absl::InvalidArgumentError(absl::StrCat("parallelism must be at least 1, got ", n));
  }
  if (n > g.max_parallelism()) {
    return absl::InvalidArgumentError(
        absl::StrCat("parallelism ", n, " is above the job's max parallelism ", g.max_parallelism(),
                     " (pipeline.max-parallelism)"));
  }
  std::vector<int> group = ForwardGroups(g);
  std::map<int, int> cap;
  for (int v = 0; v < g.vertices_size(); ++v) {
    auto [it, added] = cap.emplace(group[v], MaxParallelism(g, v));
    if (!added) it->second = std::min(it->second, MaxParallelism(g, v));
  }
  VertexParallelism p;
  for (int v = 0; v < g.vertices_size(); ++v) p.push_back(std::min(n, cap[group[v]]));
  return p;
}

std::optional<VertexParallelism> AdaptiveScheduler::Fit(const proto::JobGraph& g,
                                                        const ResourceRequirements& r, int slots) {
  if (static_cast<int>(r.size()) != g.vertices_size() || slots < 1) return std::nullopt;
  std::vector<int> group = ForwardGroups(g);
  std::map<int, int> value;
  for (int v = 0; v < g.vertices_size(); ++v) {
    int p = std::min(r[v].upper, slots);
    auto [it, added] = value.emplace(group[v], p);
    if (!added) it->second = std::min(it->second, p);
  }
  VertexParallelism p;
  for (int v = 0; v < g.vertices_size(); ++v) {
    int fit = value[group[v]];
    if (fit < r[v].lower) return std::nullopt;
    p.push_back(fit);
  }
  return p;
}

int AdaptiveScheduler::SlotsForLowerBounds(const proto::JobGraph&, const ResourceRequirements& r) {
  int n = 0;
  for (const auto& b : r) n = std::max(n, b.lower);
  return n;
}

int AdaptiveScheduler::SlotsForUpperBounds(const proto::JobGraph& g,
                                           const ResourceRequirements& r) {
  auto fit = Fit(g, r, std::numeric_limits<int>::max());
  return fit ? SlotsNeeded(*fit) : SlotsForLowerBounds(g, r);
}

bool AdaptiveScheduler::ShouldRescale(const VertexParallelism& current,
                                      const VertexParallelism& target, int min_increase) {
  for (size_t v = 0; v < current.size() && v < target.size(); ++v) {
    int change = target[v] - current[v];
    if (change < 0 || (change > 0 && change >= min_increase)) return true;
  }
  return false;
}

std::string AdaptiveScheduler::DescribeChange(const proto::JobGraph& g,
                                              const VertexParallelism& from,
                                              const VertexParallelism& to) {
  std::vector<std::string> parts;
  for (int v = 0; v < g.vertices_size(); ++v) {
    if (v >= static_cast<int>(from.size()) || v >= static_cast<int>(to.size())) break;
    if (from[v] == to[v]) continue;
    parts.push_back(absl::StrCat("'", g.vertices(v).name(), "' ", from[v], " -> ", to[v]));
  }
  return parts.empty() ? "unchanged" : absl::StrJoin(parts, ", ");
}

std::string AdaptiveScheduler::Describe(const proto::JobGraph& g, const VertexParallelism& p) {
  std::vector<std::string> parts;
  for (int v = 0; v < g.vertices_size() && v < static_cast<int>(p.size()); ++v) {
    parts.push_back(absl::StrCat("'", g.vertices(v).name(), "' ", p[v]));
  }
  return absl::StrJoin(parts, ", ");
}

}  // namespace sluice
