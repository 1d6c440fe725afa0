#include "taskmanager/task_metrics.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/metrics/metric_dump.h"
#include "taskmanager/network.h"

namespace sluice {

internal::OperatorCounters* TaskCounters::of(int node_id) {
  for (size_t k = 0; k < node_ids.size(); ++k) {
    if (node_ids[k] == node_id) return &operators[k];
  }
  return nullptr;
}

int64_t TaskCounters::RecordsIn(size_t k) const {
  return internal::chain_records_in(operators.data(), k);
}

int64_t TaskCounters::RecordsOut(size_t k) const {
  return internal::chain_records_out(operators.data(), operators.size(), edges.data(), edges.size(),
                                     k);
}

int64_t TaskCounters::NetworkRecordsOut() const {
  int64_t n = 0;
  for (const auto& e : edges) n += e.get();
  return n;
}

void TaskCounters::set_inputs(std::vector<std::shared_ptr<BufferQueue>> queues) {
  absl::MutexLock lock(&mu);
  inputs = std::move(queues);
}

double TaskCounters::InPoolUsage() const {
  absl::MutexLock lock(&mu);
  size_t queued = 0, capacity = 0;
  for (const auto& q : inputs) {
    queued += q->Size();
    capacity += q->capacity();
  }
  return capacity == 0 ? 0 : static_cast<double>(queued) / static_cast<double>(capacity);
}

namespace {

constexpr double kNsPerMs = 1e6;

struct Outputs {
  std::vector<std::shared_ptr<ResultPartition>> partitions;
  int64_t bytes() const {
    int64_t n = 0;
    for (const auto& p : partitions) n += p->bytes_out();
    return n;
  }
  int64_t back_pressured_ns() const {
    int64_t n = 0;
    for (const auto& p : partitions) n += p->back_pressure().TotalNs();
    return n;
  }
  bool back_pressured() const {
    for (const auto& p : partitions) {
      if (p->back_pressure().waiting()) return true;
    }
    return false;
  }
  double pool_usage() const {
    double high = 0;
    for (const auto& p : partitions) high = std::max(high, p->PoolUsage());
    return high;
  }
  int64_t watermark() const {
    int64_t w = kMaxWatermark;
    for (const auto& p : partitions) w = std::min(w, p->last_watermark());
    return partitions.empty() ? kMinWatermark : w;
  }
};

}  // namespace

TaskMetrics::TaskMetrics(metrics::MetricGroup& tm_group, const proto::TaskDeploymentDescriptor& tdd,
                         std::vector<std::shared_ptr<ResultPartition>> outputs)
    : outputs_(std::move(outputs)) {
  const auto& task = tdd.task();
  const auto& vertex = tdd.graph().vertices(task.vertex_id());
  const std::string subtask = absl::StrCat(task.subtask());
  // Identifiers as Flink's default scope formats: <host>.taskmanager.<tm_id>.<job_name> and
  // then <task_name>.<subtask_index>, or <operator_name>.<subtask_index>.
  std::vector<std::string> job_id = tm_group.info().identifier;
  job_id.push_back(tdd.job_name());
  job_group_ =
      tm_group.AddGroup("job", {{"job_id", task.job_id()}, {"job_name", tdd.job_name()}}, job_id);
  std::vector<std::string> task_id = job_id;
  task_id.push_back(vertex.name());
  task_id.push_back(subtask);
  task_group_ = job_group_->AddGroup("task",
                                     {{"task_id", absl::StrCat(task.vertex_id())},
                                      {"task_name", vertex.name()},
                                      {"subtask_index", subtask},
                                      {"task_attempt_num", absl::StrCat(task.attempt())}},
                                     task_id);
  if (!tm_group.registry().enabled()) return;  // the chain counts nothing

  counters_ = std::make_shared<TaskCounters>(
      std::vector<int>(vertex.node_ids().begin(), vertex.node_ids().end()), outputs_.size());
  std::shared_ptr<TaskCounters> c = counters_;
  auto out = std::make_shared<Outputs>(Outputs{outputs_});
  metrics::MetricGroup& t = *task_group_;

  auto records_in = [c] { return c->RecordsIn(0); };
  auto records_out = [c] { return c->NetworkRecordsOut(); };
  t.AddCounter("numRecordsIn", records_in);
  t.AddCounter("numRecordsOut", records_out);
  t.AddMeter("numRecordsInPerSecond", records_in);
  t.AddMeter("numRecordsOutPerSecond", records_out);
  auto bytes_in = [c] { return c->bytes_in.get(); };
  auto bytes_out = [out] { return out->bytes(); };
  t.AddCounter("numBytesIn", bytes_in);
  t.AddCounter("numBytesOut", bytes_out);
  t.AddMeter("numBytesInPerSecond", bytes_in);
  t.AddMeter("numBytesOutPerSecond", bytes_out);
  t.AddGauge("currentInputWatermark", [c] {
    return static_cast<double>(c->input_watermark.load(std::memory_order_relaxed));
  });
  t.AddGauge("currentOutputWatermark", [out] { return static_cast<double>(out->watermark()); });
  t.AddCounter("numLateRecordsDropped",
               [c] { return c->late_records_dropped.load(std::memory_order_relaxed); });

  // Time: waiting for input (idle), waiting for room downstream (back-pressured), the rest busy.
  auto idle_ms = [c] { return static_cast<int64_t>(c->idle_ns.get() / kNsPerMs); };
  auto bp_ms = [out] { return static_cast<int64_t>(out->back_pressured_ns() / kNsPerMs); };
  auto idle = t.AddMeter("idleTimeMsPerSecond", idle_ms);
  auto bp = t.AddMeter("backPressuredTimeMsPerSecond", bp_ms);
  if (idle && bp) {
    t.AddGauge("busyTimeMsPerSecond",
               [idle, bp] { return std::clamp(1000.0 - idle->Rate() - bp->Rate(), 0.0, 1000.0); });
  }
  t.AddCounter("accumulatedIdleTime", idle_ms);
  t.AddCounter("accumulatedBackPressuredTime", bp_ms);
  t.AddCounter("accumulatedBusyTime", [c, idle_ms, bp_ms] {
    int64_t all = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - c->start)
                      .count();
    return std::max<int64_t>(0, all - idle_ms() - bp_ms());
  });
  t.AddGauge("isBackPressured", [out] { return out->back_pressured() ? 1.0 : 0.0; });
  t.AddGauge("buffers.inPoolUsage", [c] { return c->InPoolUsage(); });
  t.AddGauge("buffers.outPoolUsage", [out] { return out->pool_usage(); });

  for (size_t k = 0; k < c->node_ids.size(); ++k) {
    const std::string name = k < static_cast<size_t>(vertex.node_names_size())
                                 ? vertex.node_names(static_cast<int>(k))
                                 : absl::StrCat("operator-", c->node_ids[k]);
    std::vector<std::string> identifier = job_id;
    identifier.push_back(name);
    identifier.push_back(subtask);
    auto g = task_group_->AddGroup(
        "operator", {{"operator_id", absl::StrCat(c->node_ids[k])}, {"operator_name", name}},
        std::move(identifier));
    auto in = [c, k] { return c->RecordsIn(k); };
    auto op_out = [c, k] { return c->RecordsOut(k); };
    g->AddCounter("numRecordsIn", in);
    g->AddCounter("numRecordsOut", op_out);
    g->AddMeter("numRecordsInPerSecond", in);
    g->AddMeter("numRecordsOutPerSecond", op_out);
    g->AddGauge("currentInputWatermark", [c, k] {
      const int p = c->operators[k].parent.load(std::memory_order_relaxed);
      const size_t from = p >= 0 && static_cast<size_t>(p) < k ? static_cast<size_t>(p) : k - 1;
      return static_cast<double>(
          k == 0 ? c->input_watermark.load(std::memory_order_relaxed)
                 : c->operators[from].output_watermark.load(std::memory_order_relaxed));
    });
    g->AddGauge("currentOutputWatermark", [c, k] {
      return static_cast<double>(c->operators[k].output_watermark.load(std::memory_order_relaxed));
    });
    operator_groups_.push_back(std::move(g));
  }
}

TaskMetrics::~TaskMetrics() = default;

void TaskMetrics::Dump(proto::MetricDump& out) const {
  if (!counters_) return;
  // The snapshot of the registry, narrowed to this task's groups.
  std::vector<metrics::MetricEntry> mine;
  for (metrics::MetricEntry& e : task_group_->registry().Snapshot()) {
    const metrics::GroupInfo* g = e.group.get();
    bool ours = g == &task_group_->info();
    for (const auto& og : operator_groups_) ours = ours || g == &og->info();
    if (ours) mine.push_back(std::move(e));
  }
  metrics::AppendDump(mine, out);
  // The task has ended: it processes nothing per second any more.
  for (proto::MetricDumpGroup& g : *out.mutable_groups()) {
    for (auto& [name, value] : *g.mutable_values()) {
      if (absl::EndsWith(name, "PerSecond")) value = "0";
    }
  }
}

}  // namespace sluice
