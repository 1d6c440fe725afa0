// The metrics of one task and its operators, in Flink's task and operator scopes.
//
// The task's thread counts into a TaskCounters (records per operator through the chain,
// bytes, time waiting for input); its result partitions measure back-pressure. TaskMetrics
// registers the groups and the functions that read those counts, and owns the groups: when it
// is destroyed (the task has ended) the metrics leave every reporter. The counts are shared
// with the metric functions, which may run once more after that.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "common/metrics/metric_registry.h"
#include "proto/jobmanager.pb.h"
#include "proto/taskmanager.pb.h"
#include "sluice/internal/runtime.h"

namespace sluice {

class BufferQueue;
class ResultPartition;

// What the task's thread counts; read by metric functions on other threads.
struct TaskCounters {
  TaskCounters(std::vector<int> node_ids, size_t num_edges)
      : node_ids(std::move(node_ids)), operators(this->node_ids.size()), edges(num_edges) {}
  // The chain's operators, head first, and their counts (same order).
  const std::vector<int> node_ids;
  std::vector<internal::OperatorCounters> operators;
  // The records sent over each network edge (by output binding): numRecordsOut is their sum.
  std::vector<internal::SingleWriterCounter> edges;
  internal::SingleWriterCounter bytes_in;
  internal::SingleWriterCounter idle_ns;
  std::atomic<int64_t> input_watermark{kMinWatermark};
  std::atomic<int64_t> late_records_dropped{0};
  const std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();

  // The counters of node `node_id`, or null when it is not in the chain.
  internal::OperatorCounters* of(int node_id);
  // Operator k's records in and out, and the task's records out (see OperatorCounters).
  int64_t RecordsIn(size_t k) const;
  int64_t RecordsOut(size_t k) const;
  int64_t NetworkRecordsOut() const;
  // The queues of the task's input channels, set once they are connected.
  void set_inputs(std::vector<std::shared_ptr<BufferQueue>> queues) ABSL_LOCKS_EXCLUDED(mu);
  double InPoolUsage() const ABSL_LOCKS_EXCLUDED(mu);

 private:
  mutable absl::Mutex mu;
  std::vector<std::shared_ptr<BufferQueue>> inputs ABSL_GUARDED_BY(mu);
};

class TaskMetrics {
 public:
  // Registers the task's group under the TaskManager's `tm_group` (through a job group) and one
  // group per operator of the chain. With metrics off (`tm_group` of a disabled registry) the
  // groups register nothing and counters() is null, so the chain counts nothing.
  TaskMetrics(metrics::MetricGroup& tm_group, const proto::TaskDeploymentDescriptor& tdd,
              std::vector<std::shared_ptr<ResultPartition>> outputs);
  ~TaskMetrics();

  TaskCounters* counters() { return counters_.get(); }
  // The task's and its operators' final figures, as the JobManager keeps them (they travel with
  // the task's last state update); rates are 0, as the task has ended.
  void Dump(proto::MetricDump& out) const;

 private:
  std::shared_ptr<TaskCounters> counters_;
  std::vector<std::shared_ptr<ResultPartition>> outputs_;
  std::unique_ptr<metrics::MetricGroup> job_group_;
  std::unique_ptr<metrics::MetricGroup> task_group_;
  std::vector<std::unique_ptr<metrics::MetricGroup>> operator_groups_;
};

}  // namespace sluice
