#include "common/metrics/reporters.h"

#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/http_server.h"
#include "common/metrics/prometheus.h"
#include "common/periodic_thread.h"
#include "common/status_macros.h"
#include "spdlog/spdlog.h"

namespace sluice::metrics {
namespace {

constexpr char kPrefix[] = "metrics.reporter.";

class PrometheusReporter final : public MetricReporter {
 public:
  static absl::StatusOr<std::unique_ptr<MetricReporter>> Start(const std::string& name,
                                                               const Configuration& conf,
                                                               MetricRegistry& registry,
                                                               const std::string& bind_host,
                                                               const std::string& bind_host_key) {
    const std::string port_key = absl::StrCat(kPrefix, name, ".port");
    ASSIGN_OR_RETURN(auto range, ParsePortRange(port_key, conf.GetString(port_key)));
    HttpServerOptions o;
    o.what = absl::StrCat("Prometheus reporter '", name, "'");
    o.host = bind_host;
    o.host_key = bind_host_key;
    o.port_key = port_key;
    o.first_port = range.first;
    o.last_port = range.second;
    MetricRegistry* r = &registry;
    o.handler_threads = 1;
    HttpRoutes routes;
    routes.Get("/metrics", [r](const HttpRequest&, HttpResponse& res) {
      res.set_content(FormatPrometheus(r->Snapshot()), "text/plain; version=0.0.4; charset=utf-8");
    });
    ASSIGN_OR_RETURN(auto listener, HttpServer::Start(o, std::move(routes)));
    auto rep = std::unique_ptr<PrometheusReporter>(new PrometheusReporter());
    rep->describe_ =
        absl::StrCat("Prometheus reporter '", name, "' on ", bind_host, ":", listener->port());
    rep->listener_ = std::move(listener);
    return rep;
  }
  std::string Describe() const override { return describe_; }
  int port() const override { return listener_->port(); }

 private:
  std::unique_ptr<HttpServer> listener_;
  std::string describe_;
};

class LogReporter final : public MetricReporter {
 public:
  LogReporter(const std::string& name, MetricRegistry& registry, int64_t interval_ms)
      : describe_(absl::StrCat("log reporter '", name, "' every ", interval_ms, " ms")),
        thread_("metric-log", absl::Milliseconds(interval_ms), [&registry] {
          std::vector<std::string> lines = FormatLogLines(registry.Snapshot());
          spdlog::info("metrics ({}):\n{}", lines.size(), absl::StrJoin(lines, "\n"));
        }) {}
  std::string Describe() const override { return describe_; }

 private:
  std::string describe_;
  PeriodicThread thread_;
};

// The reporter names that metrics.reporter.<name>.* keys configure, in key order.
std::vector<std::string> ConfiguredNames(const Configuration& conf) {
  std::vector<std::string> names;
  for (const auto& [key, value] : conf.values()) {
    if (!absl::StartsWith(key, kPrefix)) continue;
    std::string rest = key.substr(sizeof kPrefix - 1);
    std::string name = rest.substr(0, rest.find('.'));
    if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
  }
  return names;
}

enum class Kind { kPrometheus, kLog };

absl::StatusOr<Kind> FactoryKind(const Configuration& conf, const std::string& name) {
  const std::string key = absl::StrCat(kPrefix, name, ".factory.class");
  std::string v = conf.GetString(key);
  std::string lower = absl::AsciiStrToLower(v);
  if (lower == "prometheus" ||
      v == "org.apache.flink.metrics.prometheus.PrometheusReporterFactory" ||
      v == "org.apache.flink.metrics.prometheus.PrometheusReporter") {
    return Kind::kPrometheus;
  }
  if (lower == "log" || lower == "slf4j" ||
      v == "org.apache.flink.metrics.slf4j.Slf4jReporterFactory" ||
      v == "org.apache.flink.metrics.slf4j.Slf4jReporter") {
    return Kind::kLog;
  }
  if (v.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("metric reporter '", name, "' has no ", key, " (prometheus or log)"));
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "configuration key '", key, "': unknown reporter factory '", v,
      "' (use prometheus, log, or Flink's PrometheusReporterFactory or Slf4jReporterFactory)"));
}

std::string Value(const Metric& m) {
  switch (m.kind()) {
    case MetricKind::kCounter:
      return absl::StrCat(static_cast<const Counter&>(m).Count());
    case MetricKind::kGauge:
      return PrometheusNumber(static_cast<const Gauge&>(m).Value());
    case MetricKind::kMeter: {
      const auto& meter = static_cast<const Meter&>(m);
      return absl::StrCat(PrometheusNumber(meter.Rate()), "/s (count ", meter.Count(), ")");
    }
    case MetricKind::kHistogram: {
      HistogramStatistics s = static_cast<const Histogram&>(m).Statistics();
      std::string out =
          absl::StrCat("count=", s.count, " min=", PrometheusNumber(s.min),
                       " max=", PrometheusNumber(s.max), " mean=", PrometheusNumber(s.mean));
      for (const auto& [q, v] : s.quantiles) {
        absl::StrAppend(&out, " p", PrometheusNumber(q * 100), "=", PrometheusNumber(v));
      }
      return out;
    }
  }
  return "";
}

}  // namespace

std::vector<std::string> FormatLogLines(const std::vector<MetricEntry>& metrics) {
  std::vector<std::string> lines;
  lines.reserve(metrics.size());
  for (const MetricEntry& e : metrics) {
    lines.push_back(
        absl::StrCat(absl::StrJoin(e.group->identifier, "."), ".", e.name, ": ", Value(*e.metric)));
  }
  return lines;
}

absl::StatusOr<std::vector<std::unique_ptr<MetricReporter>>> StartReporters(
    const Configuration& conf, MetricRegistry& registry, const std::string& bind_host,
    const std::string& bind_host_key) {
  std::vector<std::string> configured = ConfiguredNames(conf);
  std::vector<std::string> names = configured;
  const std::string list = conf.GetString("metrics.reporters");
  if (!absl::StripAsciiWhitespace(list).empty()) {
    names.clear();
    for (absl::string_view n : absl::StrSplit(list, ',', absl::SkipWhitespace())) {
      std::string name(absl::StripAsciiWhitespace(n));
      if (std::find(configured.begin(), configured.end(), name) == configured.end()) {
        return absl::InvalidArgumentError(
            absl::StrCat("configuration key 'metrics.reporters' names reporter '", name,
                         "', but no metrics.reporter.", name, ".* key configures it"));
      }
      names.push_back(name);
    }
  }
  std::vector<std::unique_ptr<MetricReporter>> out;
  if (!registry.enabled()) return out;
  for (const std::string& name : names) {
    ASSIGN_OR_RETURN(Kind kind, FactoryKind(conf, name));
    if (kind == Kind::kPrometheus) {
      ASSIGN_OR_RETURN(auto r,
                       PrometheusReporter::Start(name, conf, registry, bind_host, bind_host_key));
      out.push_back(std::move(r));
    } else {
      int64_t interval = conf.GetDurationMs(absl::StrCat(kPrefix, name, ".interval"));
      if (interval <= 0) {
        return absl::InvalidArgumentError(absl::StrCat("configuration key '", kPrefix, name,
                                                       ".interval': must be more than 0 ms"));
      }
      out.push_back(std::make_unique<LogReporter>(name, registry, interval));
    }
    spdlog::info("metrics: {}", out.back()->Describe());
  }
  return out;
}

}  // namespace sluice::metrics
