// JobAutoscaler: the parallelism a job's vertices need, from what they measure, with the keys
// and the model of Flink's Kubernetes-operator autoscaler (job.autoscaler.*).
//
// Every evaluation round the JobManager hands it one sample per vertex (its subtasks' busy and
// back-pressured time and record rates, from the MetricStore). Over the last
// job.autoscaler.metrics.window it computes, per vertex:
//   true processing rate   records in per second / busy fraction (what the vertex could do at
//                          full load; busy is the time neither idle nor back-pressured, the
//                          busiest subtask's, as Flink's MAX aggregator)
//   target rate            what the job's sources would emit without back pressure (their
//                          output rate / the fraction of time they were not back-pressured,
//                          counting at most half of it as back-pressured), carried downstream:
//                          a vertex's target is its observed input times the largest such
//                          factor among the sources upstream of it
//   utilization            target rate / true processing rate
// The factor is bounded at 2 because a source back-pressured all the time (a paced or external
// source with records waiting) does not say how much more it would emit: a bottleneck then grows
// to at most twice what gets through per decision, and the next decision measures again.
// and, when a vertex's utilization leaves target.utilization +- target.utilization.boundary, the
// parallelism that brings it back to target.utilization: ceil(target rate / (true rate per
// subtask * target.utilization)), within vertex.min/max-parallelism, the max parallelism, and
// scale-up/down.max-factor. Vertices joined by a forward edge move together. Sources are not
// rescaled (their busy time includes waiting for external input, so their true rate is
// unknown). After a rescale (and at the start) nothing is decided until stabilization.interval
// has passed and a whole window of new samples is in.
//
// Threads: not thread-safe; the Dispatcher calls it under its lock.
#pragma once

#include <chrono>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/config.h"
#include "proto/model.pb.h"

namespace sluice {

struct AutoscalerSettings {
  using Millis = std::chrono::milliseconds;
  bool enabled = false;             // job.autoscaler.enabled
  bool scaling_enabled = true;      // job.autoscaler.scaling.enabled (false: decide and log only)
  Millis stabilization{300000};     // job.autoscaler.stabilization.interval
  Millis metrics_window{900000};    // job.autoscaler.metrics.window
  double target_utilization = 0.7;  // job.autoscaler.target.utilization
  double boundary = 0.3;            // job.autoscaler.target.utilization.boundary
  int vertex_min = 1;               // job.autoscaler.vertex.min-parallelism
  int vertex_max = 200;             // job.autoscaler.vertex.max-parallelism
  double scale_up_max_factor = 100000;  // job.autoscaler.scale-up.max-factor
  double scale_down_max_factor = 0.6;   // job.autoscaler.scale-down.max-factor

  static AutoscalerSettings FromConfig(const Configuration& conf);
};

// One vertex's figures at one moment, over its subtasks.
struct VertexSample {
  double busy_ms_per_s = 0;           // the busiest subtask's busyTimeMsPerSecond
  double backpressured_ms_per_s = 0;  // the subtasks' mean backPressuredTimeMsPerSecond
  double records_in_per_s = 0;        // sum of numRecordsInPerSecond
  double records_out_per_s = 0;       // sum of numRecordsOutPerSecond
};

// What the autoscaler found for one vertex.
struct VertexEvaluation {
  int vertex = 0;
  int parallelism = 0;     // now
  int wanted = 0;          // what it needs (== parallelism: no change)
  double true_rate = 0;    // records/s the vertex could take at full load (all subtasks)
  double target_rate = 0;  // records/s it should take
  double utilization = 0;  // target_rate / true_rate
  std::string reason;
};

// A decision: the vertices to rescale, with the figures of every vertex evaluated.
struct ScalingDecision {
  std::map<int, int> parallelism;  // vertex -> new parallelism (only the changed ones)
  std::vector<VertexEvaluation> vertices;
  // "vertex 2 (Slow Map): 1 -> 3: utilization 1.84 ..." for the log and the REST job view.
  std::string Describe(const proto::JobGraph& graph) const;
};

class JobAutoscaler {
 public:
  using Clock = std::chrono::steady_clock;
  JobAutoscaler(AutoscalerSettings settings, Clock::time_point start);

  const AutoscalerSettings& settings() const { return settings_; }
  // One sample per vertex of the running job (vertex id -> sample).
  void AddSample(Clock::time_point at, std::map<int, VertexSample> sample);
  // The job was redeployed (rescaled, restarted): samples are dropped and the stabilization
  // interval starts again.
  void OnRedeployed(Clock::time_point at);
  // A decision when some vertex needs another parallelism; nothing while stabilizing, before a
  // whole window is in, or when every vertex is within its boundary. `max_parallelism` bounds
  // every vertex.
  std::optional<ScalingDecision> Evaluate(const proto::JobGraph& graph, Clock::time_point now);
  // The newest evaluation's figures (also when nothing changed), for the REST job view.
  const std::vector<VertexEvaluation>& last_evaluation() const { return last_; }

 private:
  AutoscalerSettings settings_;
  Clock::time_point stable_from_;
  std::deque<std::pair<Clock::time_point, std::map<int, VertexSample>>> samples_;
  std::vector<VertexEvaluation> last_;
};

}  // namespace sluice
