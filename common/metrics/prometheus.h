// The Prometheus text exposition format (version 0.0.4) of a registry's metrics, named as Flink's
// Prometheus reporter names them with `sluice` where Flink writes `flink`: the logical scope and
// the metric name joined by underscores (sluice_taskmanager_job_task_operator_numRecordsIn),
// every character outside [a-zA-Z0-9_:] made '_', the group's variables as labels. Counters,
// gauges and meters (their rate) are gauges, as in Flink (a counter restarts with a new
// attempt); histograms are summaries.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/metrics/metric_registry.h"

namespace sluice::metrics {

std::string FormatPrometheus(const std::vector<MetricEntry>& metrics,
                             std::string_view prefix = "sluice");

// A metric or label name with every character outside [a-zA-Z0-9_:] replaced by '_'.
std::string PrometheusName(std::string_view s);

// A number as the exposition format writes it: the shortest form that reads back the same,
// NaN, +Inf or -Inf.
std::string PrometheusNumber(double v);

}  // namespace sluice::metrics
