// The metrics core (common/metrics/): the registry and its groups, meters and histograms, the
// Prometheus text format (exact text, then read back by the reference Python parser), the
// reporter keys of the configuration, the reporters themselves (a Prometheus reporter served
// over HTTP on a port range whose first port is taken) and the log reporter's lines.
#include "common/metrics/metrics.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/http_server.h"
#include "common/metrics/metric_registry.h"
#include "common/metrics/prometheus.h"
#include "common/metrics/reporters.h"
#include "jobmanager/metric_store.h"

namespace sluice::metrics {
namespace {

// The meters' clock in these tests: a second later at every call.
std::chrono::steady_clock::time_point NextSecond() {
  static std::chrono::steady_clock::time_point t = std::chrono::steady_clock::now();
  return t += std::chrono::seconds(1);
}

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::Pair;
using ::testing::StartsWith;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

// The (group identifier joined by '.') + "." + name of every entry of a snapshot.
std::vector<std::string> Names(const std::vector<MetricEntry>& snapshot) {
  std::vector<std::string> out;
  for (const MetricEntry& e : snapshot) {
    std::string id;
    for (const std::string& part : e.group->identifier) id += part + ".";
    out.push_back(id + e.name);
  }
  return out;
}

std::unique_ptr<MetricGroup> TaskManagerGroup(MetricRegistry& registry) {
  return registry.CreateRootGroup("taskmanager", {{"host", "localhost"}, {"tm_id", "tm-1"}},
                                  {"localhost", "taskmanager", "tm-1"});
}

// ---------------------------------------------------------------------------------------------
// Registry and groups

TEST(MetricRegistryTest, SnapshotHasTheGroupsScopeVariablesAndIdentifier) {
  MetricRegistry registry;
  auto tm = TaskManagerGroup(registry);
  auto counter = tm->AddCounter("numRegistrations");
  counter->Inc(3);
  tm->AddGauge("Status.Load", [] { return 1.5; });

  auto snapshot = registry.Snapshot();
  ASSERT_EQ(snapshot.size(), 2u);
  EXPECT_EQ(snapshot[0].name, "numRegistrations");
  EXPECT_EQ(snapshot[1].name, "Status.Load");
  for (const MetricEntry& e : snapshot) {
    EXPECT_THAT(e.group->scope, ElementsAre("taskmanager"));
    EXPECT_THAT(e.group->variables, ElementsAre(Pair("host", "localhost"), Pair("tm_id", "tm-1")));
    EXPECT_THAT(e.group->identifier, ElementsAre("localhost", "taskmanager", "tm-1"));
  }
  ASSERT_EQ(snapshot[0].metric->kind(), MetricKind::kCounter);
  EXPECT_EQ(static_cast<const Counter&>(*snapshot[0].metric).Count(), 3);
  ASSERT_EQ(snapshot[1].metric->kind(), MetricKind::kGauge);
  EXPECT_EQ(static_cast<const Gauge&>(*snapshot[1].metric).Value(), 1.5);
  // The snapshot holds the metric itself: later counts show through it.
  counter->Inc();
  EXPECT_EQ(static_cast<const Counter&>(*snapshot[0].metric).Count(), 4);
  EXPECT_EQ(tm->info().Variable("tm_id"), "tm-1");
  EXPECT_EQ(tm->info().Variable("job_id"), "");
}

TEST(MetricRegistryTest, AddGroupExtendsScopeVariablesAndIdentifier) {
  MetricRegistry registry;
  auto tm = TaskManagerGroup(registry);
  auto job = tm->AddGroup("job", {{"job_id", "j1"}, {"job_name", "wordcount"}});
  auto task = job->AddGroup("task", {{"task_name", "Map"}, {"subtask_index", "0"}},
                            {"localhost", "taskmanager", "tm-1", "wordcount", "Map", "0"});
  int64_t records = 0;
  task->AddCounter("numRecordsIn", [&records] { return records; });
  job->AddGauge("uptime", [] { return 7.0; });
  records = 12;

  auto snapshot = registry.Snapshot();
  ASSERT_EQ(snapshot.size(), 2u);
  // In the groups' registration order: the job's group was made first.
  const MetricEntry& uptime = snapshot[0];
  const MetricEntry& in = snapshot[1];
  EXPECT_EQ(uptime.name, "uptime");
  EXPECT_THAT(uptime.group->scope, ElementsAre("taskmanager", "job"));
  EXPECT_THAT(uptime.group->variables,
              ElementsAre(Pair("host", "localhost"), Pair("tm_id", "tm-1"), Pair("job_id", "j1"),
                          Pair("job_name", "wordcount")));
  // Without an identifier of its own, the parent's plus the values of the new variables.
  EXPECT_THAT(uptime.group->identifier,
              ElementsAre("localhost", "taskmanager", "tm-1", "j1", "wordcount"));

  EXPECT_EQ(in.name, "numRecordsIn");
  EXPECT_THAT(in.group->scope, ElementsAre("taskmanager", "job", "task"));
  EXPECT_THAT(in.group->variables,
              ElementsAre(Pair("host", "localhost"), Pair("tm_id", "tm-1"), Pair("job_id", "j1"),
                          Pair("job_name", "wordcount"), Pair("task_name", "Map"),
                          Pair("subtask_index", "0")));
  // An identifier given replaces the derived one.
  EXPECT_THAT(in.group->identifier,
              ElementsAre("localhost", "taskmanager", "tm-1", "wordcount", "Map", "0"));
  EXPECT_EQ(static_cast<const Counter&>(*in.metric).Count(), 12);
}

TEST(MetricRegistryTest, DestroyingAGroupRemovesItsMetrics) {
  MetricRegistry registry;
  auto tm = TaskManagerGroup(registry);
  tm->AddCounter("a");
  auto job = tm->AddGroup("job", {{"job_id", "j1"}});
  job->AddCounter("b");
  auto other = tm->AddGroup("job", {{"job_id", "j2"}});
  other->AddCounter("c");
  EXPECT_THAT(Names(registry.Snapshot()),
              ElementsAre("localhost.taskmanager.tm-1.a", "localhost.taskmanager.tm-1.j1.b",
                          "localhost.taskmanager.tm-1.j2.c"));
  job.reset();
  EXPECT_THAT(Names(registry.Snapshot()),
              ElementsAre("localhost.taskmanager.tm-1.a", "localhost.taskmanager.tm-1.j2.c"));
  other.reset();
  tm.reset();
  EXPECT_THAT(registry.Snapshot(), IsEmpty());
}

TEST(MetricRegistryTest, ADuplicateNameInAGroupKeepsTheFirst) {
  MetricRegistry registry;
  auto tm = TaskManagerGroup(registry);
  auto first = tm->AddCounter("n");
  auto second = tm->AddCounter("n");
  tm->AddGauge("n", [] { return 99.0; });
  first->Inc(1);
  second->Inc(100);
  // The same name in another group is another metric.
  auto job = tm->AddGroup("job", {{"job_id", "j1"}});
  job->AddCounter("n")->Inc(5);

  auto snapshot = registry.Snapshot();
  ASSERT_EQ(snapshot.size(), 2u);
  ASSERT_EQ(snapshot[0].metric->kind(), MetricKind::kCounter);
  EXPECT_EQ(snapshot[0].metric, first);
  EXPECT_EQ(static_cast<const Counter&>(*snapshot[0].metric).Count(), 1);
  EXPECT_EQ(static_cast<const Counter&>(*snapshot[1].metric).Count(), 5);
}

TEST(MetricRegistryTest, ADisabledRegistryRegistersNothing) {
  MetricRegistry registry(RegistryOptions{.enabled = false});
  EXPECT_FALSE(registry.enabled());
  auto tm = TaskManagerGroup(registry);
  auto counter = tm->AddCounter("n");
  counter->Inc(2);  // still usable
  EXPECT_EQ(counter->Count(), 2);
  tm->AddGauge("g", [] { return 1.0; });
  auto meter = tm->AddMeter("m", [] { return int64_t{10}; });
  tm->AddHistogram("h")->Update(1);
  auto job = tm->AddGroup("job", {{"job_id", "j1"}});
  job->AddCounter("c");
  registry.UpdateViews(NextSecond());
  EXPECT_THAT(registry.Snapshot(), IsEmpty());
  EXPECT_EQ(meter->Rate(), 0);
  // Reporters have nothing to report: none start (the configuration is still checked).
  Configuration conf;
  ASSERT_TRUE(conf.Set("metrics.reporter.log.factory.class", "log").ok());
  auto reporters = StartReporters(conf, registry, "127.0.0.1", "taskmanager.bind-host");
  ASSERT_TRUE(reporters.ok()) << reporters.status();
  EXPECT_THAT(*reporters, IsEmpty());
}

// ---------------------------------------------------------------------------------------------
// Meter

TEST(MeterTest, RateIsTheCountsGrowthPerSecondOverTheTimespan) {
  MetricRegistry registry(RegistryOptions{.meter_timespan_s = 5});
  auto tm = TaskManagerGroup(registry);
  auto count = std::make_shared<std::atomic<int64_t>>(0);
  auto meter = tm->AddMeter("numRecordsInPerSecond", [count] { return count->load(); });
  EXPECT_EQ(meter->Rate(), 0);         // no sample yet
  registry.UpdateViews(NextSecond());  // samples: 0
  EXPECT_EQ(meter->Rate(), 0);
  // Fewer samples than the timespan: the average over the seconds there are.
  *count = 10;
  registry.UpdateViews(NextSecond());  // 0 10
  EXPECT_DOUBLE_EQ(meter->Rate(), 10.0);
  *count = 30;
  registry.UpdateViews(NextSecond());  // 0 10 30
  EXPECT_DOUBLE_EQ(meter->Rate(), 15.0);
  for (int64_t c : {60, 100, 150}) {
    *count = c;
    registry.UpdateViews(NextSecond());
  }
  // 0 10 30 60 100 150: five seconds.
  EXPECT_DOUBLE_EQ(meter->Rate(), 30.0);
  EXPECT_EQ(meter->Count(), 150);
  // Older samples leave the window: 10 .. 160, then 30 .. 300.
  *count = 160;
  registry.UpdateViews(NextSecond());
  EXPECT_DOUBLE_EQ(meter->Rate(), 30.0);
  *count = 300;
  registry.UpdateViews(NextSecond());
  EXPECT_DOUBLE_EQ(meter->Rate(), 54.0);
  // Nothing new: the window still holds the growth of the last five seconds.
  registry.UpdateViews(NextSecond());  // 60 100 150 160 300 300
  EXPECT_DOUBLE_EQ(meter->Rate(), 48.0);
}

TEST(MeterTest, ACountThatGoesBackRestartsTheWindow) {
  MetricRegistry registry(RegistryOptions{.meter_timespan_s = 3});
  auto tm = TaskManagerGroup(registry);
  auto count = std::make_shared<std::atomic<int64_t>>(0);
  auto meter = tm->AddMeter("rate", [count] { return count->load(); });
  for (int64_t c : {100, 200, 300}) {
    *count = c;
    registry.UpdateViews(NextSecond());
  }
  EXPECT_DOUBLE_EQ(meter->Rate(), 100.0);
  // A new attempt counts from zero again: no negative rate.
  *count = 5;
  registry.UpdateViews(NextSecond());
  EXPECT_EQ(meter->Rate(), 0.0);
  *count = 25;
  registry.UpdateViews(NextSecond());  // 5 25
  EXPECT_DOUBLE_EQ(meter->Rate(), 20.0);
  *count = 45;
  registry.UpdateViews(NextSecond());  // 5 25 45
  EXPECT_DOUBLE_EQ(meter->Rate(), 20.0);
}

TEST(MeterTest, OnlyTheRegistrysMetersAreUpdated) {
  MetricRegistry registry;
  auto tm = TaskManagerGroup(registry);
  auto count = std::make_shared<std::atomic<int64_t>>(0);
  auto meter = tm->AddMeter("rate", [count] { return count->load(); });
  registry.UpdateViews(NextSecond());
  *count = 8;
  registry.UpdateViews(NextSecond());
  EXPECT_DOUBLE_EQ(meter->Rate(), 8.0);
  // Once the group is gone its meter is sampled no more.
  tm.reset();
  *count = 1000;
  registry.UpdateViews(NextSecond());
  EXPECT_DOUBLE_EQ(meter->Rate(), 8.0);
}

// ---------------------------------------------------------------------------------------------
// Histogram

TEST(HistogramTest, StatisticsOfKnownValues) {
  Histogram h(10);
  for (double v : {7, 3, 10, 1, 5, 9, 2, 8, 4, 6}) h.Update(v);
  HistogramStatistics s = h.Statistics();
  EXPECT_EQ(s.count, 10);
  EXPECT_EQ(s.min, 1);
  EXPECT_EQ(s.max, 10);
  EXPECT_DOUBLE_EQ(s.mean, 5.5);
  EXPECT_DOUBLE_EQ(s.sum, 55);
  EXPECT_NEAR(s.stddev, std::sqrt(82.5 / 9), 1e-12);  // the sample standard deviation
  // Nearest rank: ceil(q * n).
  EXPECT_THAT(s.quantiles, ElementsAre(Pair(0.5, 5), Pair(0.75, 8), Pair(0.95, 10), Pair(0.98, 10),
                                       Pair(0.99, 10), Pair(0.999, 10)));
}

TEST(HistogramTest, QuantilesOfAHundredValues) {
  Histogram h(100);
  for (int v = 100; v >= 1; --v) h.Update(v);
  HistogramStatistics s = h.Statistics();
  EXPECT_THAT(s.quantiles, ElementsAre(Pair(0.5, 50), Pair(0.75, 75), Pair(0.95, 95),
                                       Pair(0.98, 98), Pair(0.99, 99), Pair(0.999, 100)));
}

TEST(HistogramTest, TheWindowKeepsTheLastValues) {
  Histogram h(10);
  for (int v = 1; v <= 15; ++v) h.Update(v);
  HistogramStatistics s = h.Statistics();
  // The window holds 6 .. 15; count and sum are of every value ever added.
  EXPECT_EQ(s.count, 15);
  EXPECT_DOUBLE_EQ(s.sum, 120);
  EXPECT_EQ(s.min, 6);
  EXPECT_EQ(s.max, 15);
  EXPECT_DOUBLE_EQ(s.mean, 10.5);
  EXPECT_THAT(s.quantiles[0], Pair(0.5, 10.0));
  // A large value leaves the window like any other.
  h.Update(1000);
  for (int i = 0; i < 10; ++i) h.Update(1);
  s = h.Statistics();
  EXPECT_EQ(s.max, 1);
  EXPECT_EQ(s.min, 1);
  EXPECT_EQ(s.count, 26);
  EXPECT_DOUBLE_EQ(s.sum, 1130);
}

TEST(HistogramTest, AnEmptyHistogramHasZeros) {
  Histogram h;
  HistogramStatistics s = h.Statistics();
  EXPECT_EQ(s.count, 0);
  EXPECT_EQ(s.min, 0);
  EXPECT_EQ(s.max, 0);
  EXPECT_EQ(s.mean, 0);
  EXPECT_EQ(s.sum, 0);
  EXPECT_EQ(s.quantiles.size(), 6u);
  for (const auto& [q, v] : s.quantiles) EXPECT_EQ(v, 0) << q;
}

// ---------------------------------------------------------------------------------------------
// Prometheus format

TEST(PrometheusTest, NamesAndNumbers) {
  EXPECT_EQ(PrometheusName("numRecordsIn"), "numRecordsIn");
  EXPECT_EQ(PrometheusName("Status.JVM.CPU-Load x"), "Status_JVM_CPU_Load_x");
  EXPECT_EQ(PrometheusName("ok:name_9"), "ok:name_9");
  EXPECT_EQ(PrometheusName("a\xc3\xa9z"), "a__z");  // every byte of a UTF-8 character
  EXPECT_EQ(PrometheusName("9lives"), "_9lives");   // a name does not start with a digit
  EXPECT_EQ(PrometheusNumber(0), "0");
  EXPECT_EQ(PrometheusNumber(42), "42");
  EXPECT_EQ(PrometheusNumber(0.1), "0.1");
  EXPECT_EQ(PrometheusNumber(-2.5), "-2.5");
  EXPECT_EQ(PrometheusNumber(1e21), "1e+21");
  EXPECT_EQ(PrometheusNumber(kNaN), "NaN");
  EXPECT_EQ(PrometheusNumber(kInf), "+Inf");
  EXPECT_EQ(PrometheusNumber(-kInf), "-Inf");
}

// A small TaskManager: a gauge of its own, and two operators of one task whose metrics share
// names (so the families' samples come from different groups, registered interleaved).
struct SmallRegistry {
  SmallRegistry() {
    tm = TaskManagerGroup(registry);
    tm->AddGauge("Status.JVM.Load", [] { return kNaN; });
    // A job name with a quote, a backslash and a newline: label values escape all three.
    job = tm->AddGroup("job", {{"job_id", "j1"}, {"job_name", "say \"hi\"\\\n"}});
    task = job->AddGroup("task", {{"subtask_index", "0"}});
    source = task->AddGroup("operator", {{"operator_name", "Source: gen"}});
    sink = task->AddGroup("operator", {{"operator_name", "Sink"}});
    source->AddCounter("numRecordsIn")->Inc(5);
    source->AddGauge("lag-ms", [] { return kInf; });
    sink->AddCounter("numRecordsIn", [] { return int64_t{3}; });
    sink->AddGauge("lag-ms", [] { return -kInf; });
    auto latency = sink->AddHistogram("latency");
    for (double v : {4, 1, 3, 2}) latency->Update(v);
    auto count = std::make_shared<int64_t>(0);
    sink->AddMeter("numRecordsInPerSecond", [count] { return *count; });
    registry.UpdateViews(NextSecond());
    *count = 7;
    registry.UpdateViews(NextSecond());
  }
  MetricRegistry registry;
  std::unique_ptr<MetricGroup> tm, job, task, source, sink;
};

constexpr char kOp[] = "sluice_taskmanager_job_task_operator_";
constexpr char kTaskLabels[] =
    R"(host="localhost",tm_id="tm-1",job_id="j1",job_name="say \"hi\"\\\n",subtask_index="0")";

std::string Family(const std::string& name, const std::string& type) {
  return "# HELP " + name + " " + name + "\n# TYPE " + name + " " + type + "\n";
}

std::string Sample(const std::string& name, const std::string& op, const std::string& value,
                   const std::string& extra = "") {
  return name + "{" + kTaskLabels + ",operator_name=\"" + op + "\"" + extra + "} " + value + "\n";
}

std::string ExpectedSmallRegistry() {
  const std::string load = "sluice_taskmanager_Status_JVM_Load";
  const std::string in = std::string(kOp) + "numRecordsIn";
  const std::string lag = std::string(kOp) + "lag_ms";
  const std::string latency = std::string(kOp) + "latency";
  const std::string rate = std::string(kOp) + "numRecordsInPerSecond";
  std::string out;
  out += Family(load, "gauge") + load + R"({host="localhost",tm_id="tm-1"} NaN)" + "\n";
  out += Family(in, "gauge") + Sample(in, "Source: gen", "5") + Sample(in, "Sink", "3");
  out += Family(lag, "gauge") + Sample(lag, "Source: gen", "+Inf") + Sample(lag, "Sink", "-Inf");
  out += Family(latency, "summary");
  for (auto [q, v] : std::initializer_list<std::pair<const char*, const char*>>{{"0.5", "2"},
                                                                                {"0.75", "3"},
                                                                                {"0.95", "4"},
                                                                                {"0.98", "4"},
                                                                                {"0.99", "4"},
                                                                                {"0.999", "4"}}) {
    out += Sample(latency, "Sink", v, std::string(",quantile=\"") + q + "\"");
  }
  out += Sample(latency + "_count", "Sink", "4") + Sample(latency + "_sum", "Sink", "10");
  out += Family(rate, "gauge") + Sample(rate, "Sink", "7");
  return out;
}

TEST(PrometheusTest, ExactTextOfASmallRegistry) {
  SmallRegistry r;
  EXPECT_EQ(FormatPrometheus(r.registry.Snapshot()), ExpectedSmallRegistry());
}

TEST(PrometheusTest, OnePrefixAndNoLabelsWithoutVariables) {
  MetricRegistry registry;
  auto jm = registry.CreateRootGroup("jobmanager", {}, {"localhost", "jobmanager"});
  jm->AddCounter("numRegisteredTaskManagers")->Inc(2);
  EXPECT_EQ(FormatPrometheus(registry.Snapshot(), "flink"),
            Family("flink_jobmanager_numRegisteredTaskManagers", "gauge") +
                "flink_jobmanager_numRegisteredTaskManagers 2\n");
  EXPECT_EQ(FormatPrometheus({}), "");
}

TEST(PrometheusTest, ASummarysSumIsOfEveryValueObserved) {
  MetricRegistry registry;
  auto jm = registry.CreateRootGroup("jobmanager", {}, {"jobmanager"});
  auto h = std::make_shared<Histogram>(2);
  jm->Add("latency", h);
  for (double v : {1, 2, 3}) h->Update(v);
  std::string text = FormatPrometheus(registry.Snapshot());
  EXPECT_THAT(text, HasSubstr("\nsluice_jobmanager_latency_count 3\n"));
  EXPECT_THAT(text, HasSubstr("\nsluice_jobmanager_latency_sum 6\n"));
  EXPECT_THAT(text, HasSubstr("\nsluice_jobmanager_latency{quantile=\"0.5\"} 2\n"));
}

// Runs `command` through the shell; its exit status and what it wrote to stdout.
std::pair<int, std::string> RunShell(const std::string& command) {
  std::string out;
  FILE* p = ::popen(command.c_str(), "r");
  if (!p) return {-1, ""};
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int status = ::pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

// Debian's Python, which has python3-prometheus-client (deploy/install-deps.sh installs it); a
// python3 earlier on PATH may be another interpreter without it.
constexpr char kPython[] = "/usr/bin/python3";

// The reference parser (the Prometheus Python client's) reads the format back: the families,
// their types and samples, and the escaped label value as it was.
TEST(PrometheusTest, TheReferenceParserReadsItBack) {
  if (::access(kPython, X_OK) != 0) {
    GTEST_SKIP() << kPython << " is missing; deploy/install-deps.sh installs python3";
  }
  if (RunShell(std::string(kPython) + " -c 'import prometheus_client.parser' 2>/dev/null").first !=
      0) {
    GTEST_SKIP() << kPython << " has no module prometheus_client; deploy/install-deps.sh installs "
                 << "the Debian package python3-prometheus-client";
  }
  SmallRegistry r;
  std::string text = FormatPrometheus(r.registry.Snapshot());
  const std::string path = (std::filesystem::temp_directory_path() /
                            ("sluice-metrics-test-" + std::to_string(::getpid()) + ".txt"))
                               .string();
  {
    std::ofstream f(path, std::ios::binary);
    f << text;
    ASSERT_TRUE(f.good());
  }
  // No single quote in the script: it is quoted for the shell as a whole.
  const std::string script =
      "import json, sys\n"
      "from prometheus_client.parser import text_string_to_metric_families\n"
      "families = list(text_string_to_metric_families(open(sys.argv[1]).read()))\n"
      "print(json.dumps({\n"
      "  \"families\": [[f.name, f.type, len(f.samples)] for f in families],\n"
      "  \"job_names\": sorted({s.labels.get(\"job_name\", \"\") for f in families\n"
      "                        for s in f.samples}),\n"
      "  \"latency\": {s.name + s.labels.get(\"quantile\", \"\"): s.value\n"
      "              for f in families if f.name.endswith(\"_latency\") for s in f.samples},\n"
      "}))\n";
  auto [rc, out] = RunShell(std::string(kPython) + " -c '" + script + "' " + path + " 2>&1");
  std::filesystem::remove(path);
  ASSERT_EQ(rc, 0) << "the parser refused the text:\n" << out << "\n---\n" << text;
  nlohmann::json parsed = nlohmann::json::parse(out);
  const std::string op = kOp;
  // Five families, in order; the summary has six quantiles, _count and _sum.
  nlohmann::json families = nlohmann::json::array();
  families.push_back({"sluice_taskmanager_Status_JVM_Load", "gauge", 1});
  families.push_back({op + "numRecordsIn", "gauge", 2});
  families.push_back({op + "lag_ms", "gauge", 2});
  families.push_back({op + "latency", "summary", 8});
  families.push_back({op + "numRecordsInPerSecond", "gauge", 1});
  EXPECT_EQ(parsed["families"], families) << out;
  EXPECT_EQ(parsed["job_names"], nlohmann::json::array({"", "say \"hi\"\\\n"})) << out;
  const std::string latency = op + "latency";
  EXPECT_EQ(parsed["latency"][latency + "0.5"], 2.0) << out;
  EXPECT_EQ(parsed["latency"][latency + "0.999"], 4.0) << out;
  EXPECT_EQ(parsed["latency"][latency + "_count"], 4.0) << out;
  EXPECT_EQ(parsed["latency"][latency + "_sum"], 10.0) << out;
}

// ---------------------------------------------------------------------------------------------
// Configuration

TEST(MetricsConfigTest, ReporterKeysTakeAnyOneSegmentAsTheName) {
  Configuration conf;
  EXPECT_TRUE(conf.Set("metrics.reporters", "prom, log").ok());
  EXPECT_TRUE(conf.Set("metrics.reporter.prom.factory.class",
                       "org.apache.flink.metrics.prometheus.PrometheusReporterFactory")
                  .ok());
  EXPECT_TRUE(conf.Set("metrics.reporter.prom.port", "9249-9259").ok());
  EXPECT_TRUE(conf.Set("metrics.reporter.log.interval", "30 s").ok());
  EXPECT_EQ(conf.GetString("metrics.reporter.prom.port"), "9249-9259");
  EXPECT_EQ(conf.GetDurationMs("metrics.reporter.log.interval"), 30000);
  // Defaults apply to every name.
  EXPECT_EQ(conf.GetString("metrics.reporter.other.port"), "9249");
  EXPECT_EQ(conf.GetDurationMs("metrics.reporter.other.interval"), 10000);
  // The value is checked as the declared key's type.
  auto bad_interval = conf.Set("metrics.reporter.log.interval", "often");
  EXPECT_FALSE(bad_interval.ok());
  EXPECT_THAT(bad_interval.message(), HasSubstr("often"));
  // Naming the key as set, not the declared metrics.reporter.<name>.interval.
  EXPECT_THAT(bad_interval.message(), HasSubstr("'metrics.reporter.log.interval'"));
}

TEST(MetricsConfigTest, UnknownReporterKeysAreRefusedNamingTheKey) {
  Configuration conf;
  for (const char* key :
       {"metrics.reporter.prom.bogus", "metrics.reporter..port", "metrics.reporter.prom",
        "metrics.reporter.a.b.port", "metrics.reporter"}) {
    absl::Status s = conf.Set(key, "1");
    EXPECT_FALSE(s.ok()) << key;
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << key;
    EXPECT_THAT(s.message(), HasSubstr(std::string("'") + key + "'"));
  }
  EXPECT_FALSE(conf.IsSet("metrics.reporter.prom.bogus"));
}

TEST(MetricsConfigTest, ParsePortRange) {
  const std::string key = "metrics.reporter.prom.port";
  auto one = ParsePortRange(key, "9249");
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(*one, std::make_pair(9249, 9249));
  auto range = ParsePortRange(key, "9249-9259");
  ASSERT_TRUE(range.ok()) << range.status();
  EXPECT_EQ(*range, std::make_pair(9249, 9259));
  auto any = ParsePortRange(key, "0");
  ASSERT_TRUE(any.ok()) << any.status();
  EXPECT_EQ(*any, std::make_pair(0, 0));
  for (const char* bad :
       {"x", "9259-9249", "70000", "1-2-3", "", "-5", "9249-", "9249-x", "9249-70000", "0-10"}) {
    auto r = ParsePortRange(key, bad);
    ASSERT_FALSE(r.ok()) << "'" << bad << "'";
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(r.status().message(), HasSubstr("'" + key + "'")) << bad;
    EXPECT_THAT(r.status().message(), HasSubstr(std::string("'") + bad + "'"));
  }
}

// ---------------------------------------------------------------------------------------------
// Reporters

TEST(ReportersTest, AnUnknownFactoryClassFailsNamingTheKey) {
  MetricRegistry registry;
  Configuration conf;
  ASSERT_TRUE(conf.Set("metrics.reporter.jmx.factory.class",
                       "org.apache.flink.metrics.jmx.JMXReporterFactory")
                  .ok());
  auto r = StartReporters(conf, registry, "127.0.0.1", "taskmanager.bind-host");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("metrics.reporter.jmx.factory.class"));
  EXPECT_THAT(r.status().message(), HasSubstr("JMXReporterFactory"));
}

TEST(ReportersTest, AReporterWithoutAFactoryClassFailsNamingTheKey) {
  MetricRegistry registry;
  Configuration conf;
  ASSERT_TRUE(conf.Set("metrics.reporter.prom.port", "9249").ok());
  auto r = StartReporters(conf, registry, "127.0.0.1", "taskmanager.bind-host");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("metrics.reporter.prom.factory.class"));
}

TEST(ReportersTest, AnUnconfiguredReporterInMetricsReportersFailsNamingIt) {
  MetricRegistry registry;
  Configuration conf;
  ASSERT_TRUE(conf.Set("metrics.reporter.log.factory.class", "log").ok());
  ASSERT_TRUE(conf.Set("metrics.reporters", "log,jmx").ok());
  auto r = StartReporters(conf, registry, "127.0.0.1", "taskmanager.bind-host");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("metrics.reporters"));
  EXPECT_THAT(r.status().message(), HasSubstr("'jmx'"));
}

TEST(ReportersTest, AMalformedPortFailsNamingTheKey) {
  MetricRegistry registry;
  Configuration conf;
  ASSERT_TRUE(conf.Set("metrics.reporter.prom.factory.class", "prometheus").ok());
  ASSERT_TRUE(conf.Set("metrics.reporter.prom.port", "9259-9249").ok());
  auto r = StartReporters(conf, registry, "127.0.0.1", "taskmanager.bind-host");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("metrics.reporter.prom.port"));
}

TEST(ReportersTest, MetricsReportersChoosesWhichRun) {
  MetricRegistry registry;
  Configuration conf;
  ASSERT_TRUE(conf.Set("metrics.reporter.log.factory.class", "slf4j").ok());
  ASSERT_TRUE(conf.Set("metrics.reporter.log.interval", "1 h").ok());
  // Would fail if started: its factory class is unknown.
  ASSERT_TRUE(conf.Set("metrics.reporter.other.factory.class", "nope").ok());
  ASSERT_TRUE(conf.Set("metrics.reporters", " log ").ok());
  auto r = StartReporters(conf, registry, "127.0.0.1", "taskmanager.bind-host");
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->size(), 1u);
  EXPECT_THAT((*r)[0]->Describe(), HasSubstr("log reporter 'log'"));
  EXPECT_EQ((*r)[0]->port(), 0);
}

// A socket listening on 127.0.0.1:port (0: one the system picks), or -1.
int ListenOn(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 1) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

int PortOf(int fd) {
  sockaddr_in addr{};
  socklen_t len = sizeof addr;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return -1;
  return ntohs(addr.sin_port);
}

struct HttpReply {
  std::string status_line;
  std::string headers;  // lower-cased names
  std::string body;
};

// GET `path` from 127.0.0.1:port, read to the end (Connection: close); an empty status line when
// nothing answers. Sends and receives time out after 5 s.
HttpReply HttpGet(int port, const std::string& path) {
  HttpReply reply;
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return reply;
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  std::string raw;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    std::string req = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size())) {
      char buf[4096];
      ssize_t n;
      while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) raw.append(buf, static_cast<size_t>(n));
    }
  }
  ::close(fd);
  size_t line_end = raw.find("\r\n");
  size_t head_end = raw.find("\r\n\r\n");
  if (line_end == std::string::npos || head_end == std::string::npos) return reply;
  reply.status_line = raw.substr(0, line_end);
  reply.headers = raw.substr(line_end + 2, head_end - line_end - 2);
  for (char& c : reply.headers) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  reply.body = raw.substr(head_end + 4);
  return reply;
}

TEST(ReportersTest, PrometheusReporterTakesTheNextFreePortOfItsRangeAndServesMetrics) {
  int taken = ListenOn(0);
  ASSERT_GE(taken, 0);
  const int p = PortOf(taken);
  ASSERT_GT(p, 0);
  MetricRegistry registry;
  auto tm = TaskManagerGroup(registry);
  tm->AddCounter("numRegistrations")->Inc(3);
  auto job = tm->AddGroup("job", {{"job_id", "j1"}});
  job->AddGauge("uptime", [] { return 2.5; });

  Configuration conf;
  ASSERT_TRUE(conf.Set("metrics.reporter.prom.factory.class", "prometheus").ok());
  ASSERT_TRUE(
      conf.Set("metrics.reporter.prom.port", std::to_string(p) + "-" + std::to_string(p + 20))
          .ok());
  auto reporters = StartReporters(conf, registry, "127.0.0.1", "taskmanager.bind-host");
  ASSERT_TRUE(reporters.ok()) << reporters.status();
  ASSERT_EQ(reporters->size(), 1u);
  const MetricReporter& prom = *(*reporters)[0];
  const int port = prom.port();
  EXPECT_GT(port, p);
  EXPECT_LE(port, p + 20);
  EXPECT_EQ(prom.Describe(), "Prometheus reporter 'prom' on 127.0.0.1:" + std::to_string(port));

  HttpReply reply = HttpGet(port, "/metrics");
  EXPECT_EQ(reply.status_line, "HTTP/1.1 200 OK");
  EXPECT_THAT(reply.headers, HasSubstr("content-type: text/plain; version=0.0.4"));
  EXPECT_THAT(reply.body, HasSubstr("# TYPE sluice_taskmanager_numRegistrations gauge\n"
                                    "sluice_taskmanager_numRegistrations{host=\"localhost\","
                                    "tm_id=\"tm-1\"} 3\n"));
  EXPECT_THAT(reply.body, HasSubstr("sluice_taskmanager_job_uptime{host=\"localhost\","
                                    "tm_id=\"tm-1\",job_id=\"j1\"} 2.5\n"));
  // Every request reports the registry as it is now.
  job.reset();
  reply = HttpGet(port, "/metrics");
  EXPECT_EQ(reply.status_line, "HTTP/1.1 200 OK");
  EXPECT_THAT(reply.body, HasSubstr("sluice_taskmanager_numRegistrations{"));
  EXPECT_THAT(reply.body, Not(HasSubstr("uptime")));
  EXPECT_THAT(HttpGet(port, "/other").status_line, StartsWith("HTTP/1.1 404"));

  reporters->clear();  // stops serving
  EXPECT_EQ(HttpGet(port, "/metrics").status_line, "");
  ::close(taken);
}

TEST(ReportersTest, PrometheusReporterFailsWhenEveryPortOfItsRangeIsTaken) {
  // Two adjacent ports, both listened on here.
  int first = -1, second = -1, p = 0;
  for (int attempt = 0; attempt < 50 && second < 0; ++attempt) {
    if (first >= 0) ::close(first);
    first = ListenOn(0);
    ASSERT_GE(first, 0);
    p = PortOf(first);
    if (p < 65535) second = ListenOn(p + 1);
  }
  ASSERT_GE(second, 0) << "found no two adjacent free ports";
  MetricRegistry registry;
  auto tm = TaskManagerGroup(registry);
  Configuration conf;
  ASSERT_TRUE(conf.Set("metrics.reporter.prom.factory.class", "prometheus").ok());
  const std::string range = std::to_string(p) + "-" + std::to_string(p + 1);
  ASSERT_TRUE(conf.Set("metrics.reporter.prom.port", range).ok());
  auto r = StartReporters(conf, registry, "127.0.0.1", "taskmanager.bind-host");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(r.status().message(), HasSubstr("every port of " + range));
  EXPECT_THAT(r.status().message(), HasSubstr("metrics.reporter.prom.port"));
  EXPECT_THAT(r.status().message(), HasSubstr("127.0.0.1"));
  ::close(first);
  ::close(second);
}

// ---------------------------------------------------------------------------------------------
// Log reporter

TEST(LogReporterTest, OneLinePerMetricNamedByIdentifier) {
  MetricRegistry registry;
  auto tm = TaskManagerGroup(registry);
  tm->AddCounter("numRegistrations")->Inc(3);
  tm->AddGauge("Status.Load", [] { return 0.25; });
  auto job = tm->AddGroup("job", {{"job_id", "j1"}, {"job_name", "wc"}});
  auto count = std::make_shared<int64_t>(0);
  job->AddMeter("numRestartsPerSecond", [count] { return *count; });
  auto latency = job->AddHistogram("latency");
  for (double v : {1, 2, 3, 4}) latency->Update(v);
  registry.UpdateViews(NextSecond());
  *count = 6;
  registry.UpdateViews(NextSecond());

  EXPECT_THAT(FormatLogLines(registry.Snapshot()),
              ElementsAre("localhost.taskmanager.tm-1.numRegistrations: 3",
                          "localhost.taskmanager.tm-1.Status.Load: 0.25",
                          "localhost.taskmanager.tm-1.j1.wc.numRestartsPerSecond: 6/s (count 6)",
                          "localhost.taskmanager.tm-1.j1.wc.latency: count=4 min=1 max=4 mean=2.5 "
                          "p50=2 p75=3 p95=4 p98=4 p99=4 p99.9=4"));
  EXPECT_THAT(FormatLogLines({}), IsEmpty());
}

}  // namespace
}  // namespace sluice::metrics

// ---------------------------------------------------------------------------------------------
// The JobManager's store of the TaskManagers' metrics.

namespace sluice::metric_store_test {
namespace {

proto::MetricDumpGroup TaskGroup(int attempt, const std::string& count) {
  proto::MetricDumpGroup g;
  g.set_kind("task");
  g.set_job_id("j");
  g.set_vertex_id(0);
  g.set_subtask(1);
  g.set_attempt(attempt);
  (*g.mutable_values())["numRecordsIn"] = count;
  return g;
}

TEST(MetricStoreTest, KeepsTheNewestAttemptAndTheFinalFigures) {
  MetricStore store;
  // An old attempt still being cancelled comes first in the dump: the newest one is kept.
  proto::MetricDump live;
  live.set_tm_id("tm-1");
  *live.add_groups() = TaskGroup(0, "100");
  *live.add_groups() = TaskGroup(1, "7");
  store.Add(live);
  std::set<int> final;
  EXPECT_EQ(store.Vertex("j", 0, &final).at(1).at("numRecordsIn"), "7");
  EXPECT_TRUE(final.empty());

  // The task's final figures are not replaced by a live dump of the same attempt fetched before.
  proto::MetricDump end;
  *end.add_groups() = TaskGroup(1, "9");
  store.Add(end, /*final=*/true);
  proto::MetricDump stale;
  *stale.add_groups() = TaskGroup(1, "8");
  store.Add(stale);
  EXPECT_EQ(store.Vertex("j", 0, &final).at(1).at("numRecordsIn"), "9");
  EXPECT_EQ(final, std::set<int>{1});
  // An older attempt's never replace a newer one's; a newer attempt's do.
  proto::MetricDump older;
  *older.add_groups() = TaskGroup(0, "100");
  store.Add(older);
  EXPECT_EQ(store.Vertex("j", 0).at(1).at("numRecordsIn"), "9");
  proto::MetricDump newer;
  *newer.add_groups() = TaskGroup(2, "1");
  store.Add(newer);
  final.clear();
  EXPECT_EQ(store.Vertex("j", 0, &final).at(1).at("numRecordsIn"), "1");
  EXPECT_TRUE(final.empty());

  store.ForgetJob("j");
  EXPECT_TRUE(store.Vertex("j", 0).empty());
}

TEST(MetricStoreTest, ARedeployedJobShowsOnlyTheNewAttemptsFigures) {
  MetricStore store;
  proto::MetricDump old_attempt;
  *old_attempt.add_groups() = TaskGroup(0, "100");
  store.Add(old_attempt);
  ASSERT_EQ(store.Vertex("j", 0).size(), 1u);
  // Attempt 1 deploys (at any parallelism): attempt 0's figures go, and a late dump of it (a
  // task still being cancelled) is not taken.
  store.StartAttempt("j", 1);
  EXPECT_TRUE(store.Vertex("j", 0).empty());
  store.Add(old_attempt);
  EXPECT_TRUE(store.Vertex("j", 0).empty());
  proto::MetricDump new_attempt;
  *new_attempt.add_groups() = TaskGroup(1, "3");
  store.Add(new_attempt);
  EXPECT_EQ(store.Vertex("j", 0).at(1).at("numRecordsIn"), "3");
}

}  // namespace
}  // namespace sluice::metric_store_test
