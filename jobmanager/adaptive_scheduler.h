// AdaptiveScheduler: what parallelism a job runs at. Flink's adaptive scheduler in its pure
// part: a job declares per vertex a lower and an upper bound of parallelism (Flink's
// JobResourceRequirements), and the scheduler fits them to the task slots the job can have
// (slot sharing: a job at parallelism p needs p slots); it also checks a requested rescale and
// decides whether more slots are worth a rescale (Flink's min-parallelism-increase).
//
// Forward edges need equal parallelism at both ends, so the vertices joined by forward edges
// (a "forward group") always get one parallelism: the lowest their bounds and maxima allow.
//
// The Dispatcher holds the state (each job's requirements, when it started waiting) and calls
// these functions under its lock. Threads: stateless; every function may be called from any
// thread.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/config.h"
#include "proto/model.pb.h"

namespace sluice {

// jobmanager.scheduler, and scheduler-mode: reactive (which implies the adaptive scheduler).
enum class SchedulerType { kDefault, kAdaptive, kReactive };

struct AdaptiveSchedulerSettings {
  // Default: kDefault (jobmanager.scheduler: default).
  SchedulerType type = SchedulerType::kDefault;
  // How long a submitted or restarting job waits for the slots of its lower bounds before it
  // fails; nullopt: forever. Default: 5 min (reactive: forever).
  std::optional<std::chrono::milliseconds> resource_wait_timeout = std::chrono::minutes(5);
  // How long a job with enough slots for its lower bounds but not its upper ones waits for more
  // before it starts, and how long more slots must stay free before a running job scales up.
  // Default: 10 s (reactive: 0).
  std::chrono::milliseconds stabilization_timeout{10000};
  // A running job scales up only when a vertex would gain at least this much. Default: 1.
  int min_parallelism_increase = 1;

  bool adaptive() const { return type != SchedulerType::kDefault; }
  bool reactive() const { return type == SchedulerType::kReactive; }
  // "default", "adaptive" or "reactive".
  const char* name() const;

  // From jobmanager.scheduler, scheduler-mode and jobmanager.adaptive-scheduler.*, with
  // Flink's reactive-mode defaults for the timeouts not set. InvalidArgument naming the key.
  static absl::StatusOr<AdaptiveSchedulerSettings> FromConfig(const Configuration& conf);
};

// Flink's JobVertexResourceRequirements.Parallelism: 1 <= lower <= upper <= max parallelism.
struct ParallelismBounds {
  int lower = 1;
  int upper = 1;
  bool operator==(const ParallelismBounds&) const = default;
};
// By vertex id.
using ResourceRequirements = std::vector<ParallelismBounds>;
using VertexParallelism = std::vector<int>;

class AdaptiveScheduler {
 public:
  // The highest parallelism vertex `v` may have: 1 when it cannot run in parallel, else the
  // graph's max parallelism (the number of key groups).
  static int MaxParallelism(const proto::JobGraph& g, int v);
  // The parallelism each vertex runs at now.
  static VertexParallelism Current(const proto::JobGraph& g);
  // Sets each vertex's parallelism (`p` has one entry per vertex).
  static void Apply(const VertexParallelism& p, proto::JobGraph* g);
  // The slots a job at `p` needs (slot sharing): its highest parallelism.
  static int SlotsNeeded(const VertexParallelism& p);

  // What a job is submitted with: each vertex between 1 and its configured parallelism, or, in
  // reactive mode, between 1 and its max parallelism (configured parallelism is ignored).
  static ResourceRequirements InitialRequirements(const proto::JobGraph& g, bool reactive);

  // Checks requirements for `g`: one per vertex, 1 <= lower <= upper <= MaxParallelism, and
  // bounds that overlap across every forward edge. InvalidArgument naming the vertex (by id and
  // name) and the bound.
  static absl::Status CheckRequirements(const proto::JobGraph& g, const ResourceRequirements& r);
  // Checks a parallelism per vertex for `g`: within [1, MaxParallelism] and equal across
  // forward edges. InvalidArgument naming the vertex, or the operators at both ends of the
  // forward edge, with their parallelism.
  static absl::Status CheckParallelism(const proto::JobGraph& g, const VertexParallelism& p);
  // The whole job at `n` (`sluice rescale -p N`): every vertex at n, except a forward group
  // that holds a vertex which cannot run in parallel, which stays at 1. InvalidArgument when n
  // is below 1 or above the graph's max parallelism (naming both).
  static absl::StatusOr<VertexParallelism> WholeJob(const proto::JobGraph& g, int n);

  // The parallelism that fits `slots`: each vertex at min(upper, slots), a forward group at the
  // lowest of its members'. nullopt when that is below a lower bound (too few slots).
  static std::optional<VertexParallelism> Fit(const proto::JobGraph& g,
                                              const ResourceRequirements& r, int slots);
  // The slots the lower bounds need (the least Fit accepts), and the upper bounds want.
  static int SlotsForLowerBounds(const proto::JobGraph& g, const ResourceRequirements& r);
  static int SlotsForUpperBounds(const proto::JobGraph& g, const ResourceRequirements& r);

  // Whether moving from `current` to `target` is worth a rescale (Flink's
  // EnforceMinimalIncreaseRescalingController): a vertex goes down, or one goes up by at least
  // `min_increase`.
  static bool ShouldRescale(const VertexParallelism& current, const VertexParallelism& target,
                            int min_increase);

  // For logs: "'Source' 2 -> 4, 'Map -> Sink' 2 -> 4" (the vertices that change), or
  // "unchanged".
  static std::string DescribeChange(const proto::JobGraph& g, const VertexParallelism& from,
                                    const VertexParallelism& to);
  // For logs and messages: "'Source' 2, 'Map -> Sink' 4".
  static std::string Describe(const proto::JobGraph& g, const VertexParallelism& p);

 private:
  // The forward group of every vertex: vertices joined by forward edges share a group number.
  static std::vector<int> ForwardGroups(const proto::JobGraph& g);
};

}  // namespace sluice
