#include "common/metrics/metric_registry.h"

#include "absl/strings/str_join.h"
#include "spdlog/spdlog.h"

namespace sluice::metrics {

const std::string& GroupInfo::Variable(const std::string& name) const {
  static const std::string kNone;
  for (const auto& [k, v] : variables) {
    if (k == name) return v;
  }
  return kNone;
}

MetricGroup::~MetricGroup() { registry_.Unregister(id_); }

std::unique_ptr<MetricGroup> MetricGroup::AddGroup(std::string kind, Variables variables,
                                                   std::vector<std::string> identifier) {
  auto info = std::make_shared<GroupInfo>(*info_);
  info->scope.push_back(std::move(kind));
  if (identifier.empty()) {
    for (const auto& [k, v] : variables) info->identifier.push_back(v);
  } else {
    info->identifier = std::move(identifier);
  }
  for (auto& kv : variables) info->variables.push_back(std::move(kv));
  return registry_.NewGroup(std::move(info));
}

std::shared_ptr<SimpleCounter> MetricGroup::AddCounter(const std::string& name) {
  auto c = std::make_shared<SimpleCounter>();
  Add(name, c);
  return c;
}

void MetricGroup::AddCounter(const std::string& name, std::function<int64_t()> count) {
  Add(name, std::make_shared<FunctionCounter>(std::move(count)));
}

void MetricGroup::AddGauge(const std::string& name, std::function<double()> value) {
  Add(name, std::make_shared<Gauge>(std::move(value)));
}

std::shared_ptr<Meter> MetricGroup::AddMeter(const std::string& name,
                                             std::function<int64_t()> count) {
  auto m = std::make_shared<Meter>(std::move(count), registry_.options_.meter_timespan_s);
  Add(name, m);
  return m;
}

std::shared_ptr<Histogram> MetricGroup::AddHistogram(const std::string& name) {
  auto h = std::make_shared<Histogram>();
  Add(name, h);
  return h;
}

void MetricGroup::Add(const std::string& name, std::shared_ptr<Metric> metric) {
  registry_.Register(id_, name, std::move(metric));
}

MetricRegistry::MetricRegistry(RegistryOptions options) : options_(options) {}

MetricRegistry::~MetricRegistry() {
  view_updater_.reset();
  absl::MutexLock lock(&mu_);
  if (!groups_.empty()) {
    spdlog::warn("metric registry destroyed with {} groups still open", groups_.size());
  }
}

std::unique_ptr<MetricGroup> MetricRegistry::CreateRootGroup(std::string kind, Variables variables,
                                                             std::vector<std::string> identifier) {
  auto info = std::make_shared<GroupInfo>();
  info->scope.push_back(std::move(kind));
  info->variables = std::move(variables);
  info->identifier = std::move(identifier);
  return NewGroup(std::move(info));
}

std::unique_ptr<MetricGroup> MetricRegistry::NewGroup(std::shared_ptr<const GroupInfo> info) {
  uint64_t id;
  {
    absl::MutexLock lock(&mu_);
    id = next_id_++;
    if (options_.enabled) groups_[id] = Registered{info, {}};
  }
  return std::unique_ptr<MetricGroup>(new MetricGroup(*this, std::move(info), id));
}

void MetricRegistry::Register(uint64_t group, const std::string& name,
                              std::shared_ptr<Metric> metric) {
  absl::MutexLock lock(&mu_);
  auto it = groups_.find(group);
  if (it == groups_.end()) return;  // metrics are off
  for (const auto& [n, m] : it->second.metrics) {
    if (n == name) {
      spdlog::warn("metric '{}' registered twice in group {}; keeping the first", name,
                   absl::StrJoin(it->second.info->identifier, "."));
      return;
    }
  }
  it->second.metrics.emplace_back(name, std::move(metric));
}

void MetricRegistry::Unregister(uint64_t group) {
  absl::MutexLock lock(&mu_);
  groups_.erase(group);
}

std::vector<MetricEntry> MetricRegistry::Snapshot() const {
  std::vector<MetricEntry> out;
  absl::MutexLock lock(&mu_);
  for (const auto& [id, g] : groups_) {
    for (const auto& [name, m] : g.metrics) out.push_back(MetricEntry{g.info, name, m});
  }
  return out;
}

void MetricRegistry::UpdateViews(std::chrono::steady_clock::time_point at) {
  std::vector<std::shared_ptr<Meter>> meters;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, g] : groups_) {
      for (const auto& [name, m] : g.metrics) {
        if (m->kind() == MetricKind::kMeter) meters.push_back(std::static_pointer_cast<Meter>(m));
      }
    }
  }
  for (const auto& m : meters) m->Update(at);
}

void MetricRegistry::StartViewUpdater() {
  if (!options_.enabled || view_updater_) return;
  view_updater_ =
      std::make_unique<PeriodicThread>("metric-views", absl::Seconds(1), [this] { UpdateViews(); });
}

}  // namespace sluice::metrics
