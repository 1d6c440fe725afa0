// Metrics as text for the JobManager's REST API (proto::MetricDump, Flink's MetricDump): each
// group's values by name, as Flink's metric store keeps them. A counter is its count, a gauge
// its value, a meter its rate, a histogram name_count, name_min, name_max, name_mean,
// name_stddev and name_p50 ... name_p999.
#pragma once

#include <string>
#include <vector>

#include "common/metrics/metric_registry.h"
#include "proto/model.pb.h"

namespace sluice::metrics {

// Appends `metrics` to `out`, one MetricDumpGroup per group: the kind is the last component of
// the group's scope; the ids come from its variables (job_id, task_id, subtask_index,
// task_attempt_num, operator_name).
void AppendDump(const std::vector<MetricEntry>& metrics, proto::MetricDump& out);

}  // namespace sluice::metrics
