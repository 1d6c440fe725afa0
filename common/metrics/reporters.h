// Metric reporters, configured as Flink configures them:
//
//   metrics.reporters: prom                       # optional: which of the configured ones run
//   metrics.reporter.prom.factory.class:
//   org.apache.flink.metrics.prometheus.PrometheusReporterFactory metrics.reporter.prom.port:
//   9249-9259         # each daemon takes the first free port metrics.reporter.log.factory.class:
//   log       # or Flink's Slf4jReporterFactory metrics.reporter.log.interval: 60 s
//
// A Prometheus reporter serves /metrics (see prometheus.h) on the daemon's bind host; a log
// reporter writes every metric to the daemon's log at its interval. Without metrics.reporters,
// every reporter named by a metrics.reporter.<name>.* key runs.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/config.h"
#include "common/metrics/metric_registry.h"

namespace sluice::metrics {

class MetricReporter {
 public:
  virtual ~MetricReporter() = default;
  // "Prometheus reporter 'prom' on localhost:9250": for the daemon's log.
  virtual std::string Describe() const = 0;
  // The port a Prometheus reporter listens on; 0 for a push reporter.
  virtual int port() const { return 0; }
};

// Starts every configured reporter over `registry` (which must outlive them). `bind_host` is
// the daemon's bind host (jobmanager.bind-host, taskmanager.bind-host). InvalidArgument naming
// the key on a bad setting (an unknown factory class, a malformed port range, a name in
// metrics.reporters that nothing configures); Unavailable when no port of a range is free.
absl::StatusOr<std::vector<std::unique_ptr<MetricReporter>>> StartReporters(
    const Configuration& conf, MetricRegistry& registry, const std::string& bind_host,
    const std::string& bind_host_key);

// One line per metric, "identifier.name: value", for the log reporter (and tests).
std::vector<std::string> FormatLogLines(const std::vector<MetricEntry>& metrics);

}  // namespace sluice::metrics
