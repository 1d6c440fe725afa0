#include "common/metrics/prometheus.h"

#include <charconv>
#include <cmath>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace sluice::metrics {
namespace {

std::string EscapeLabelValue(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

// {k="v",...} with `extra` (e.g. quantile) last; empty when there are no labels at all.
std::string Labels(const Variables& vars, std::string_view extra = {}) {
  std::string out;
  for (const auto& [k, v] : vars) {
    absl::StrAppend(&out, out.empty() ? "" : ",", PrometheusName(k), "=\"", EscapeLabelValue(v),
                    "\"");
  }
  if (!extra.empty()) absl::StrAppend(&out, out.empty() ? "" : ",", std::string(extra));
  return out.empty() ? out : "{" + out + "}";
}

}  // namespace

std::string PrometheusName(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == ':';
    if (!ok) c = '_';
  }
  if (!out.empty() && out[0] >= '0' && out[0] <= '9') out = "_" + out;
  return out;
}

std::string PrometheusNumber(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, end);
}

std::string FormatPrometheus(const std::vector<MetricEntry>& metrics, std::string_view prefix) {
  // Samples of one name must be together, after its TYPE line.
  struct Family {
    MetricKind kind;
    std::string samples;
  };
  std::vector<std::string> order;
  std::map<std::string, Family> families;
  for (const MetricEntry& e : metrics) {
    std::string name = PrometheusName(
        absl::StrCat(std::string(prefix), "_", absl::StrJoin(e.group->scope, "_"), "_", e.name));
    auto [it, inserted] = families.try_emplace(name, Family{e.metric->kind(), {}});
    if (inserted) order.push_back(name);
    Family& f = it->second;
    // One name, one type: a clash (a gauge and a histogram of the same name) keeps the first.
    if ((f.kind == MetricKind::kHistogram) != (e.metric->kind() == MetricKind::kHistogram)) {
      continue;
    }
    const Variables& vars = e.group->variables;
    switch (e.metric->kind()) {
      case MetricKind::kCounter:
        absl::StrAppend(&f.samples, name, Labels(vars), " ",
                        static_cast<const Counter&>(*e.metric).Count(), "\n");
        break;
      case MetricKind::kGauge:
        absl::StrAppend(&f.samples, name, Labels(vars), " ",
                        PrometheusNumber(static_cast<const Gauge&>(*e.metric).Value()), "\n");
        break;
      case MetricKind::kMeter:
        absl::StrAppend(&f.samples, name, Labels(vars), " ",
                        PrometheusNumber(static_cast<const Meter&>(*e.metric).Rate()), "\n");
        break;
      case MetricKind::kHistogram: {
        HistogramStatistics s = static_cast<const Histogram&>(*e.metric).Statistics();
        for (const auto& [q, v] : s.quantiles) {
          absl::StrAppend(&f.samples, name,
                          Labels(vars, absl::StrCat("quantile=\"", PrometheusNumber(q), "\"")), " ",
                          PrometheusNumber(v), "\n");
        }
        absl::StrAppend(&f.samples, name, "_count", Labels(vars), " ", s.count, "\n");
        absl::StrAppend(&f.samples, name, "_sum", Labels(vars), " ", PrometheusNumber(s.sum), "\n");
        break;
      }
    }
  }
  std::string out;
  for (const std::string& name : order) {
    const Family& f = families[name];
    absl::StrAppend(&out, "# HELP ", name, " ", name, "\n# TYPE ", name, " ",
                    f.kind == MetricKind::kHistogram ? "summary" : "gauge", "\n", f.samples);
  }
  return out;
}

}  // namespace sluice::metrics
