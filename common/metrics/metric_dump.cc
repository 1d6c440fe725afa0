#include "common/metrics/metric_dump.h"

#include <cstdlib>
#include <map>

#include "absl/strings/str_cat.h"
#include "common/metrics/prometheus.h"

namespace sluice::metrics {
namespace {

int IntVariable(const GroupInfo& g, const char* name) {
  return std::atoi(g.Variable(name).c_str());
}

void AddValues(const std::string& name, const Metric& m,
               google::protobuf::Map<std::string, std::string>& values) {
  switch (m.kind()) {
    case MetricKind::kCounter:
      values[name] = absl::StrCat(static_cast<const Counter&>(m).Count());
      break;
    case MetricKind::kGauge:
      values[name] = PrometheusNumber(static_cast<const Gauge&>(m).Value());
      break;
    case MetricKind::kMeter:
      values[name] = PrometheusNumber(static_cast<const Meter&>(m).Rate());
      break;
    case MetricKind::kHistogram: {
      HistogramStatistics s = static_cast<const Histogram&>(m).Statistics();
      values[name + "_count"] = absl::StrCat(s.count);
      values[name + "_min"] = PrometheusNumber(s.min);
      values[name + "_max"] = PrometheusNumber(s.max);
      values[name + "_mean"] = PrometheusNumber(s.mean);
      values[name + "_stddev"] = PrometheusNumber(s.stddev);
      for (const auto& [q, v] : s.quantiles) {
        values[absl::StrCat(name, "_p", PrometheusNumber(q * 100))] = PrometheusNumber(v);
      }
      break;
    }
  }
}

}  // namespace

void AppendDump(const std::vector<MetricEntry>& metrics, proto::MetricDump& out) {
  std::map<const GroupInfo*, proto::MetricDumpGroup*> groups;
  for (const MetricEntry& e : metrics) {
    proto::MetricDumpGroup*& g = groups[e.group.get()];
    if (!g) {
      g = out.add_groups();
      const GroupInfo& info = *e.group;
      g->set_kind(info.scope.back());
      g->set_job_id(info.Variable("job_id"));
      g->set_vertex_id(IntVariable(info, "task_id"));
      g->set_subtask(IntVariable(info, "subtask_index"));
      g->set_attempt(IntVariable(info, "task_attempt_num"));
      g->set_operator_name(info.Variable("operator_name"));
    }
    AddValues(e.name, *e.metric, *g->mutable_values());
  }
}

}  // namespace sluice::metrics
