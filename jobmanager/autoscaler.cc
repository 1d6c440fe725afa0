#include "jobmanager/autoscaler.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace sluice {

using Millis = std::chrono::milliseconds;

AutoscalerSettings AutoscalerSettings::FromConfig(const Configuration& conf) {
  AutoscalerSettings s;
  s.enabled = conf.GetBool("job.autoscaler.enabled");
  s.scaling_enabled = conf.GetBool("job.autoscaler.scaling.enabled");
  s.stabilization = Millis(conf.GetDurationMs("job.autoscaler.stabilization.interval"));
  s.metrics_window = Millis(conf.GetDurationMs("job.autoscaler.metrics.window"));
  s.target_utilization = std::clamp(conf.GetDouble("job.autoscaler.target.utilization"), 0.01, 1.0);
  s.boundary = std::max(0.0, conf.GetDouble("job.autoscaler.target.utilization.boundary"));
  s.vertex_min =
      static_cast<int>(std::max<int64_t>(1, conf.GetInt("job.autoscaler.vertex.min-parallelism")));
  s.vertex_max = static_cast<int>(
      std::max<int64_t>(s.vertex_min, conf.GetInt("job.autoscaler.vertex.max-parallelism")));
  s.scale_up_max_factor = std::max(0.0, conf.GetDouble("job.autoscaler.scale-up.max-factor"));
  s.scale_down_max_factor =
      std::clamp(conf.GetDouble("job.autoscaler.scale-down.max-factor"), 0.0, 1.0);
  return s;
}

std::string ScalingDecision::Describe(const proto::JobGraph& graph) const {
  std::vector<std::string> parts;
  for (const VertexEvaluation& e : vertices) {
    if (e.wanted == e.parallelism) continue;
    std::string name = e.vertex < graph.vertices_size() ? graph.vertices(e.vertex).name() : "?";
    parts.push_back(absl::StrFormat(
        "vertex %d (%s): %d -> %d: %s (target %.0f records/s, true processing rate %.0f "
        "records/s at parallelism %d, utilization %.2f)",
        e.vertex, name, e.parallelism, e.wanted, e.reason, e.target_rate, e.true_rate,
        e.parallelism, e.utilization));
  }
  return parts.empty() ? "no change" : absl::StrJoin(parts, "; ");
}

JobAutoscaler::JobAutoscaler(AutoscalerSettings settings, Clock::time_point start)
    : settings_(std::move(settings)), stable_from_(start + settings_.stabilization) {}

void JobAutoscaler::AddSample(Clock::time_point at, std::map<int, VertexSample> sample) {
  if (at < stable_from_) return;  // the job is still settling after its (re)deployment
  samples_.emplace_back(at, std::move(sample));
  while (!samples_.empty() && samples_.front().first < at - settings_.metrics_window) {
    samples_.pop_front();
  }
}

void JobAutoscaler::OnRedeployed(Clock::time_point at) {
  samples_.clear();
  last_.clear();  // figures of the old parallelism
  stable_from_ = at + settings_.stabilization;
}

namespace {

// A vertex's rates from one set of figures (a window's means, or one sample).
struct Rates {
  double observed = 0;          // records/s in (a source: out)
  double target = 0;            // records/s it should take
  double true_rate = INFINITY;  // records/s it could take at full load
  double utilization = 0;
};

std::vector<Rates> Assess(const proto::JobGraph& graph, const std::vector<VertexSample>& m) {
  const int n = graph.vertices_size();
  // Upstream vertices, and each vertex's factor: how much more its sources would emit without
  // back pressure (the job graph numbers vertices in topological order: edges go to higher ids).
  // Their back-pressured share counts up to a half: a source that is back-pressured all the time
  // (a paced or external source with records waiting) does not say how much more it would emit,
  // so one decision at most doubles what gets through now; the next one measures again.
  std::vector<std::vector<int>> inputs(n);
  for (const auto& e : graph.edges()) {
    if (e.target_vertex() >= 0 && e.target_vertex() < n) {
      inputs[e.target_vertex()].push_back(e.source_vertex());
    }
  }
  std::vector<double> factor(n, 1.0);
  for (int v = 0; v < n; ++v) {
    if (graph.vertices(v).is_source()) {
      double free = 1.0 - std::clamp(m[v].backpressured_ms_per_s / 1000.0, 0.0, 0.5);
      factor[v] = 1.0 / free;
    } else {
      for (int u : inputs[v]) factor[v] = std::max(factor[v], factor[u]);
    }
  }
  std::vector<Rates> out(n);
  for (int v = 0; v < n; ++v) {
    const proto::JobVertex& vx = graph.vertices(v);
    const double busy = std::clamp(m[v].busy_ms_per_s / 1000.0, 0.0, 1.0);
    Rates& r = out[v];
    r.observed = vx.is_source() ? m[v].records_out_per_s : m[v].records_in_per_s;
    r.target = r.observed * factor[v];
    r.true_rate = busy > 0.001 ? r.observed / busy : INFINITY;
    r.utilization = std::isinf(r.true_rate) ? 0 : r.target / r.true_rate;
  }
  return out;
}

}  // namespace

std::optional<ScalingDecision> JobAutoscaler::Evaluate(const proto::JobGraph& graph,
                                                       Clock::time_point now) {
  if (now < stable_from_ || samples_.size() < 2) return std::nullopt;
  // A whole window of samples (with a fifth of slack for the sampling period).
  if (samples_.back().first - samples_.front().first < settings_.metrics_window * 4 / 5) {
    return std::nullopt;
  }
  const int n = graph.vertices_size();
  // Means over the window.
  std::vector<VertexSample> mean(n);
  std::vector<int> count(n, 0);  // samples that have the vertex
  for (const auto& [at, sample] : samples_) {
    for (const auto& [v, s] : sample) {
      if (v < 0 || v >= n) continue;
      mean[v].busy_ms_per_s += s.busy_ms_per_s;
      mean[v].backpressured_ms_per_s += s.backpressured_ms_per_s;
      mean[v].records_in_per_s += s.records_in_per_s;
      mean[v].records_out_per_s += s.records_out_per_s;
      ++count[v];
    }
  }
  for (int v = 0; v < n; ++v) {
    if (count[v] == 0) continue;
    mean[v].busy_ms_per_s /= count[v];
    mean[v].backpressured_ms_per_s /= count[v];
    mean[v].records_in_per_s /= count[v];
    mean[v].records_out_per_s /= count[v];
  }
  const std::vector<Rates> rates = Assess(graph, mean);
  // The newest sample alone: a decision waits while it disagrees with the window (a window that
  // still holds samples from before a step in the load).
  std::vector<VertexSample> newest(n);
  for (const auto& [v, sample] : samples_.back().second) {
    if (v >= 0 && v < n) newest[v] = sample;
  }
  const std::vector<Rates> now_rates = Assess(graph, newest);
  ScalingDecision d;
  const int max_parallelism = std::max(1, graph.max_parallelism());
  for (int v = 0; v < n; ++v) {
    const proto::JobVertex& vx = graph.vertices(v);
    VertexEvaluation e;
    e.vertex = v;
    e.parallelism = vx.parallelism();
    e.wanted = e.parallelism;
    const double observed = rates[v].observed;
    e.target_rate = rates[v].target;
    e.true_rate = rates[v].true_rate;
    e.utilization = rates[v].utilization;
    const double low = settings_.target_utilization - settings_.boundary;
    const double high = settings_.target_utilization + settings_.boundary;
    const double latest = now_rates[v].utilization;
    if (vx.is_source()) {
      e.reason = "sources are not rescaled";
    } else if (observed <= 0 || std::isinf(e.true_rate)) {
      e.reason = "no load measured";
    } else if (e.utilization >= low && e.utilization <= high) {
      e.reason = "within the target utilization";
    } else if (e.utilization > high ? latest <= high : latest >= low) {
      e.reason = absl::StrFormat(
          "utilization %s the target over the window but %.2f in the newest measurement: waiting "
          "for the window to agree",
          e.utilization > high ? "above" : "below", latest);
    } else {
      // In doubles, bounded before converting: no overflow for large factors or rates.
      const double per_subtask = e.true_rate / e.parallelism;
      double limit = std::min(settings_.vertex_max, max_parallelism);
      if (vx.max_parallelism() > 0) limit = std::min<double>(limit, vx.max_parallelism());
      double wanted =
          std::ceil(e.target_rate / (per_subtask * settings_.target_utilization) - 1e-9);
      const double up_cap =
          std::floor(e.parallelism * (1.0 + settings_.scale_up_max_factor) + 1e-9);
      const double down_cap =
          std::ceil(e.parallelism * (1.0 - settings_.scale_down_max_factor) - 1e-9);
      wanted = std::min(std::max(wanted, std::max(1.0, down_cap)),
                        std::max<double>(e.parallelism, up_cap));
      wanted = std::max(std::min(std::max(wanted, double{settings_.vertex_min * 1.0}), limit), 1.0);
      e.wanted = static_cast<int>(wanted);
      e.reason =
          e.utilization > high ? "utilization above the target" : "utilization below the target";
    }
    d.vertices.push_back(e);
  }
  // Vertices joined by a forward edge keep one parallelism: the largest any of them wants.
  std::vector<int> group(n);
  for (int v = 0; v < n; ++v) group[v] = v;
  std::function<int(int)> find = [&](int v) {
    return group[v] == v ? v : group[v] = find(group[v]);
  };
  for (const auto& e : graph.edges()) {
    if (e.partitioner() == proto::PARTITIONER_FORWARD) {
      group[find(e.source_vertex())] = find(e.target_vertex());
    }
  }
  // A group with a source keeps its parallelism; none goes above its members' lowest max.
  std::map<int, int> group_wanted, group_max;
  std::set<int> with_source;
  for (const VertexEvaluation& e : d.vertices) {
    const int root = find(e.vertex);
    int& w = group_wanted[root];
    w = std::max(w, e.wanted);
    const int vmax = graph.vertices(e.vertex).max_parallelism();
    int& m = group_max.emplace(root, max_parallelism).first->second;
    if (vmax > 0) m = std::min(m, vmax);
    if (graph.vertices(e.vertex).is_source()) with_source.insert(root);
  }
  for (VertexEvaluation& e : d.vertices) {
    const int root = find(e.vertex);
    const int w =
        with_source.count(root) ? e.parallelism : std::min(group_wanted[root], group_max[root]);
    if (w != e.wanted) {
      e.wanted = w;
      e.reason += with_source.count(root) ? " (held: joined to a source by a forward edge)"
                                          : " (joined by a forward edge)";
    }
    if (e.wanted != e.parallelism) d.parallelism[e.vertex] = e.wanted;
  }
  last_ = d.vertices;
  if (d.parallelism.empty()) return std::nullopt;
  return d;
}

}  // namespace sluice
