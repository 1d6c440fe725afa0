// Metrics on a real cluster: exact counts after a bounded job (REST), the Prometheus endpoints
// of the JobManager and the TaskManagers read by a real parser (Python's prometheus_client), a
// job's metrics leaving them when it ends, the log reporter, rates and busy/back-pressured time
// on a job with a throttled sink, and 4xx answers for what does not exist.
#include <httplib.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "integration/harness.h"

namespace sluice::itest {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

// A query parameter's value, percent-encoded.
std::string Encode(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == ',') {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

// The ports of the Prometheus reporters a daemon logged ("Prometheus reporter 'x' on host:port").
int PrometheusPort(const std::string& log) {
  std::smatch m;
  if (!std::regex_search(log, m, std::regex(R"(Prometheus reporter '\w+' on [^:]+:(\d+))"))) {
    return -1;
  }
  return std::stoi(m[1]);
}

// A range of 20 ports that were free a moment ago, as "first-last".
std::string FreePortRange() {
  for (int attempt = 0; attempt < 50; ++attempt) {
    int first = FreePort();
    if (first + 20 > 65535) continue;
    bool free = true;
    for (int p = first + 1; p <= first + 20 && free; ++p) {
      httplib::Client probe("127.0.0.1", p);
      probe.set_connection_timeout(0, 100000);
      free = !probe.Get("/");
    }
    if (free) return absl::StrCat(first, "-", first + 20);
  }
  return "0";
}

class ObservabilityTest : public ::testing::Test {
 protected:
  void Start(std::vector<std::string> extra = {}) {
    ClusterOptions o;
    o.task_managers = 2;
    o.slots_per_task_manager = 2;
    o.extra_config = std::move(extra);
    cluster_ = std::make_unique<TestCluster>(o);
    SLUICE_ASSERT_OK(cluster_->Start());
    int port = cluster_->RestPort();
    ASSERT_GT(port, 0) << cluster_->JobManagerLog();
    http_ = std::make_unique<httplib::Client>("127.0.0.1", port);
    http_->set_connection_timeout(5);
    http_->set_read_timeout(10);
  }

  // GET path; expects `status` and a JSON body.
  json Get(const std::string& path, int status = 200) {
    auto res = http_->Get(path.c_str());
    EXPECT_TRUE(res) << "GET " << path << " got no answer";
    if (!res) return json();
    EXPECT_EQ(res->status, status) << "GET " << path << ": " << res->body;
    return json::parse(res->body, nullptr, /*allow_exceptions=*/false);
  }

  // The sum over the subtasks of vertex `vertex` of metric `name`.
  double SubtaskSum(const std::string& job, int vertex, const std::string& name) {
    json r = Get(
        absl::StrCat("/jobs/", job, "/vertices/", vertex, "/subtasks/metrics?get=", Encode(name)));
    if (!r.is_array() || r.empty()) return -1;
    return r[0]["sum"].get<double>();
  }

  // The value of `name` (a task's or "<operator>.<metric>") of every subtask of a vertex, summed,
  // from the vertex's metric list.
  double VertexSum(const std::string& job, int vertex, const std::string& name, int parallelism) {
    std::string get;
    for (int i = 0; i < parallelism; ++i) absl::StrAppend(&get, i ? "," : "", i, ".", name);
    json r = Get(absl::StrCat("/jobs/", job, "/vertices/", vertex, "/metrics?get=", Encode(get)));
    if (!r.is_array() || static_cast<int>(r.size()) != parallelism) return -1;
    double sum = 0;
    for (const auto& m : r) sum += std::stod(m["value"].get<std::string>());
    return sum;
  }

  std::unique_ptr<TestCluster> cluster_;
  std::unique_ptr<httplib::Client> http_;
};

// After a bounded job, every count is exact: the word count's source emits one record per line,
// the tokenizer one per word, and the sink receives what the output holds.
TEST_F(ObservabilityTest, CountsOfABoundedJobAreExact) {
  Start();
  const std::string dir = cluster_->dir();
  std::string text;
  int64_t lines = 0, words = 0;
  for (int i = 0; i < 5000; ++i) {
    int n = 1 + i % 7;
    for (int w = 0; w < n; ++w) absl::StrAppend(&text, w ? " " : "", "w", (i * 31 + w) % 97);
    text += "\n";
    ++lines;
    words += n;
  }
  ASSERT_TRUE(WriteFile(dir + "/words.txt", text));
  auto run = cluster_->Cli({"run", "-p", "2", ExampleLibrary("wordcount"), "--", "--input",
                            dir + "/words.txt", "--output", dir + "/out"});
  ASSERT_EQ(run.exit_code, 0) << run.Describe();
  json jobs = Get("/jobs/overview")["jobs"];
  ASSERT_EQ(jobs.size(), 1u);
  const std::string job = jobs[0]["jid"];
  ASSERT_EQ(jobs[0]["state"], "FINISHED");

  int64_t out_lines = 0;
  for (const auto& [file, content] : ReadPartFiles(dir + "/out")) {
    out_lines += static_cast<int64_t>(content.size());
  }
  ASSERT_EQ(out_lines, words);  // the running count emits once per word

  json detail = Get("/jobs/" + job);
  ASSERT_EQ(detail["vertices"].size(), 2u) << detail.dump();
  json source = detail["vertices"][0]["metrics"], sink = detail["vertices"][1]["metrics"];
  EXPECT_EQ(source["write-records"], words) << source.dump();
  EXPECT_EQ(source["write-records-complete"], true);
  EXPECT_EQ(source["read-records"], 0);
  EXPECT_EQ(sink["read-records"], words) << sink.dump();
  EXPECT_GT(sink["read-bytes"].get<int64_t>(), 0);
  EXPECT_EQ(sink["read-bytes"], source["write-bytes"]);

  // Each subtask's IO figures (Flink's IOMetricsInfo), final.
  int64_t written = 0;
  json v0 = Get("/jobs/" + job + "/vertices/0");
  ASSERT_EQ(v0["subtasks"].size(), 2u) << v0.dump();
  for (const auto& st : v0["subtasks"]) {
    written += st["metrics"]["write-records"].get<int64_t>();
    EXPECT_EQ(st["metrics"]["write-records-complete"], true) << st.dump();
  }
  EXPECT_EQ(written, words);
  // A finished task processes nothing per second.
  EXPECT_EQ(SubtaskSum(job, 0, "numRecordsOutPerSecond"), 0);

  EXPECT_EQ(SubtaskSum(job, 0, "numRecordsOut"), words);
  EXPECT_EQ(SubtaskSum(job, 1, "numRecordsIn"), words);
  EXPECT_EQ(SubtaskSum(job, 1, "numRecordsOut"), 0);
  // Operators of the chains, by name.
  const std::string tokenizer = "Tokenizer";
  EXPECT_EQ(VertexSum(job, 0, tokenizer + ".numRecordsIn", 2), lines);
  EXPECT_EQ(VertexSum(job, 0, tokenizer + ".numRecordsOut", 2), words);
  EXPECT_EQ(SubtaskSum(job, 1, "Keyed Aggregation.numRecordsIn"), words);
  EXPECT_EQ(SubtaskSum(job, 1, "Keyed Aggregation.numRecordsOut"), words);
  EXPECT_EQ(SubtaskSum(job, 1, "Sink: Text File.numRecordsIn"), out_lines);
}

// Parses Prometheus text with Python's prometheus_client (Debian's python3-prometheus-client)
// and prints one line per sample: "name {label=value,...} value".
std::string ParsePrometheus(const std::string& text, const std::string& dir) {
  static int n = 0;
  const std::string in = absl::StrCat(dir, "/scrape-", ++n, ".txt");
  const std::string script = absl::StrCat(dir, "/parse.py");
  EXPECT_TRUE(WriteFile(in, text));
  EXPECT_TRUE(
      WriteFile(script,
                "import sys\n"
                "from prometheus_client.parser import text_string_to_metric_families\n"
                "for f in text_string_to_metric_families(open(sys.argv[1]).read()):\n"
                "    for s in f.samples:\n"
                "        labels = ','.join(k + '=' + v for k, v in sorted(s.labels.items()))\n"
                "        print(s.name, '{' + labels + '}', s.value)\n"));
  CommandResult r = RunCommand({"/usr/bin/python3", script, in}, dir, 30s);
  EXPECT_EQ(r.exit_code, 0) << "the Prometheus text does not parse: " << r.Describe();
  return r.out;
}

std::string Scrape(int port) {
  httplib::Client c("127.0.0.1", port);
  c.set_connection_timeout(5);
  c.set_read_timeout(10);
  auto res = c.Get("/metrics");
  if (!res || res->status != 200) return "";
  EXPECT_EQ(res->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  return res->body;
}

TEST_F(ObservabilityTest, PrometheusEndpointsParseAndAJobsMetricsLeaveWithIt) {
  const std::string range = FreePortRange();
  Start(
      {"metrics.reporter.prom.factory.class="
       "org.apache.flink.metrics.prometheus.PrometheusReporterFactory",
       "metrics.reporter.prom.port=" + range, "metrics.reporter.log.factory.class=log",
       "metrics.reporter.log.interval=1 s"});
  const int jm_port = PrometheusPort(cluster_->JobManagerLog());
  const int tm_port = PrometheusPort(cluster_->TaskManagerLog(0));
  ASSERT_GT(jm_port, 0) << cluster_->JobManagerLog();
  ASSERT_GT(tm_port, 0) << cluster_->TaskManagerLog(0);
  EXPECT_NE(jm_port, tm_port);
  if (!::testing::Test::HasFailure() && !std::filesystem::exists("/usr/bin/python3")) {
    FAIL() << "/usr/bin/python3 is missing: run deploy/install-deps.sh";
  }

  std::string job;
  SLUICE_ASSIGN_OR_FAIL(job, cluster_->SubmitDetached(TestJobLibrary("sequence_job"), {"-p", "2"},
                                                      {"--sleep-us", "50"}));
  SLUICE_ASSERT_OK(cluster_->WaitForAllTasksRunning(job, 30s).status());

  // The TaskManager's operator metrics with Flink's labels, once its tasks have counted.
  std::string tm_samples;
  ASSERT_TRUE(WaitUntil(
      [&] {
        tm_samples = ParsePrometheus(Scrape(tm_port), cluster_->dir());
        return tm_samples.find("sluice_taskmanager_job_task_operator_numRecordsIn {") !=
               std::string::npos;
      },
      30s, 200ms))
      << tm_samples;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(
      tm_samples, m,
      std::regex("sluice_taskmanager_job_task_operator_numRecordsIn \\{([^}]*)\\} ([0-9.e+]+)")))
      << tm_samples;
  std::set<std::string> labels;
  for (absl::string_view kv : absl::StrSplit(std::string(m[1]), ',')) {
    labels.insert(std::string(kv.substr(0, kv.find('='))));
  }
  for (const char* l : {"job_id", "job_name", "task_name", "subtask_index", "operator_name",
                        "operator_id", "task_id", "task_attempt_num", "tm_id", "host"}) {
    EXPECT_TRUE(labels.count(l)) << "no label " << l << " in " << m[0];
  }
  EXPECT_NE(tm_samples.find("job_id=" + job), std::string::npos);
  for (const char* name : {"sluice_taskmanager_job_task_numRecordsOutPerSecond {",
                           "sluice_taskmanager_job_task_busyTimeMsPerSecond {",
                           "sluice_taskmanager_job_task_backPressuredTimeMsPerSecond {",
                           "sluice_taskmanager_job_task_idleTimeMsPerSecond {",
                           "sluice_taskmanager_job_task_isBackPressured {",
                           "sluice_taskmanager_job_task_buffers_outPoolUsage {",
                           "sluice_taskmanager_job_task_currentInputWatermark {",
                           "sluice_taskmanager_job_task_operator_currentOutputWatermark {",
                           "sluice_taskmanager_Status_Process_Memory_RSS {",
                           "sluice_taskmanager_Status_Process_CPU_Time {",
                           "sluice_taskmanager_rocksdb_block_cache_usage {"}) {
    EXPECT_NE(tm_samples.find(name), std::string::npos) << name;
  }

  std::string jm_samples = ParsePrometheus(Scrape(jm_port), cluster_->dir());
  for (const char* name :
       {"sluice_jobmanager_numRegisteredTaskManagers {", "sluice_jobmanager_taskSlotsTotal {",
        "sluice_jobmanager_numRunningJobs {", "sluice_jobmanager_job_numRestarts {",
        "sluice_jobmanager_job_uptime {", "sluice_jobmanager_job_numberOfCompletedCheckpoints {",
        "sluice_jobmanager_Status_Process_Threads_Count {"}) {
    EXPECT_NE(jm_samples.find(name), std::string::npos) << name << " in\n" << jm_samples;
  }
  EXPECT_NE(jm_samples.find("sluice_jobmanager_numRegisteredTaskManagers {host=127.0.0.1} 2.0"),
            std::string::npos)
      << jm_samples;
  EXPECT_NE(jm_samples.find("sluice_jobmanager_numRunningJobs {host=127.0.0.1} 1.0"),
            std::string::npos);

  // The log reporter writes the same metrics to the daemon's log.
  EXPECT_TRUE(WaitUntil(
      [&] { return cluster_->TaskManagerLog(0).find(".numRecordsIn: ") != std::string::npos; },
      10s))
      << cluster_->TaskManagerLog(0);

  // Once the job has ended, none of its metrics is reported any more.
  auto cancel = cluster_->Cli({"cancel", job});
  ASSERT_EQ(cancel.exit_code, 0) << cancel.Describe();
  SLUICE_ASSERT_OK(cluster_->WaitForState(job, proto::JOB_CANCELED, 30s).status());
  EXPECT_TRUE(WaitUntil(
      [&] {
        return Scrape(tm_port).find(job) == std::string::npos &&
               Scrape(jm_port).find(job) == std::string::npos;
      },
      10s))
      << "still reported after the job ended:\n"
      << Scrape(tm_port) << Scrape(jm_port);
  std::string after = ParsePrometheus(Scrape(jm_port), cluster_->dir());
  EXPECT_NE(after.find("sluice_jobmanager_numRunningJobs {host=127.0.0.1} 0.0"), std::string::npos)
      << after;
  EXPECT_TRUE(cluster_->IsHealthy());
}

// A sink that takes ~1 ms per record: its task is busy nearly all the time and reports the rate
// it really runs at; the source's task waits for room downstream, so it is back-pressured.
TEST_F(ObservabilityTest, RatesAndTimesOfAThrottledSink) {
  Start();
  std::string job;
  SLUICE_ASSIGN_OR_FAIL(job, cluster_->SubmitDetached(TestJobLibrary("sequence_job"), {"-p", "1"},
                                                      {"--sleep-us", "1000"}));
  SLUICE_ASSERT_OK(cluster_->WaitForAllTasksRunning(job, 30s).status());
  // The meters average over 5 s: let them fill.
  std::this_thread::sleep_for(7s);
  const auto t0 = std::chrono::steady_clock::now();
  const double in0 = SubtaskSum(job, 1, "numRecordsIn");
  std::this_thread::sleep_for(5s);
  const double in1 = SubtaskSum(job, 1, "numRecordsIn");
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double measured = (in1 - in0) / seconds;
  const double rate = SubtaskSum(job, 1, "numRecordsInPerSecond");
  ASSERT_GT(measured, 100) << "the sink barely runs";
  EXPECT_LT(measured, 1100) << "the sink is not throttled";
  // The meter and the counts agree within 25% (the meter's window and the fetch interval differ
  // from the test's).
  EXPECT_NEAR(rate, measured, 0.25 * measured);
  EXPECT_GT(SubtaskSum(job, 1, "busyTimeMsPerSecond"), 700);
  EXPECT_LT(SubtaskSum(job, 1, "backPressuredTimeMsPerSecond"), 100);
  EXPECT_GT(SubtaskSum(job, 0, "backPressuredTimeMsPerSecond"), 500);
  EXPECT_LT(SubtaskSum(job, 0, "busyTimeMsPerSecond"), 500);
  json bp = Get("/jobs/" + job + "/vertices/0/backpressure");
  EXPECT_EQ(bp["backpressure-level"], "high") << bp.dump();
  ASSERT_EQ(bp["subtasks"].size(), 1u);
  EXPECT_GT(bp["subtasks"][0]["ratio"].get<double>(), 0.5);
  EXPECT_EQ(Get("/jobs/" + job + "/vertices/1/backpressure")["backpressure-level"], "ok");
  // The source's output queue is full most of the time, the sink's input queue too.
  EXPECT_GT(SubtaskSum(job, 0, "buffers.outPoolUsage"), 0.5);
  EXPECT_GT(SubtaskSum(job, 1, "buffers.inPoolUsage"), 0.5);
  auto cancel = cluster_->Cli({"cancel", job});
  EXPECT_EQ(cancel.exit_code, 0) << cancel.Describe();
}

TEST_F(ObservabilityTest, UnknownMetricsVerticesAndTaskManagersAre4xx) {
  Start();
  std::string job;
  SLUICE_ASSIGN_OR_FAIL(job, cluster_->SubmitDetached(TestJobLibrary("sequence_job"), {"-p", "2"},
                                                      {"--sleep-us", "100"}));
  SLUICE_ASSERT_OK(cluster_->WaitForAllTasksRunning(job, 30s).status());
  auto error_of = [&](const std::string& path, int status) {
    json r = Get(path, status);
    EXPECT_TRUE(r.contains("errors")) << path << ": " << r.dump();
    return r.contains("errors") ? r["errors"][0].get<std::string>() : std::string();
  };
  EXPECT_NE(error_of("/jobs/" + job + "/vertices/0/subtasks/metrics?get=numRecordsIn,bogus", 400)
                .find("bogus"),
            std::string::npos);
  EXPECT_NE(error_of("/jobs/" + job + "/vertices/0/metrics?get=0.nope", 400).find("0.nope"),
            std::string::npos);
  EXPECT_NE(error_of("/jobmanager/metrics?get=nothing", 400).find("nothing"), std::string::npos);
  EXPECT_NE(error_of("/jobs/" + job + "/metrics?get=numRestarts,x", 400).find("x"),
            std::string::npos);
  error_of("/jobs/" + job + "/vertices/0/subtasks/metrics?get=numRecordsIn&agg=median", 400);
  EXPECT_NE(error_of("/jobs/" + job + "/vertices/99", 404).find("99"), std::string::npos);
  error_of("/jobs/" + job + "/vertices/99/metrics", 404);
  error_of("/jobs/" + job + "/vertices/abc/metrics", 404);
  error_of("/jobs/" + job + "/vertices/0/subtasks/7/metrics", 404);
  error_of("/jobs/" + job + "/vertices/-1/backpressure", 404);
  error_of("/jobs/0123456789abcdef0123456789abcdef/metrics", 404);
  error_of("/jobs/0123456789abcdef0123456789abcdef/vertices/0/watermarks", 404);
  error_of("/taskmanagers/tm-nobody/metrics", 404);
  error_of("/taskmanagers/tm-nobody", 404);
  // What does exist answers.
  json known = Get("/jobs/" + job + "/vertices/0/subtasks/metrics");
  EXPECT_FALSE(known.empty());
  json jm = Get("/jobmanager/metrics?get=numRegisteredTaskManagers,taskSlotsTotal");
  ASSERT_EQ(jm.size(), 2u) << jm.dump();
  EXPECT_EQ(jm[0]["value"], "2");
  EXPECT_EQ(jm[1]["value"], "4");
  json tm = Get("/taskmanagers/" + cluster_->tm_id(0) + "/metrics?get=Status.Process.Memory.RSS");
  ASSERT_EQ(tm.size(), 1u) << tm.dump();
  EXPECT_GT(std::stod(tm[0]["value"].get<std::string>()), 1e6);
  EXPECT_GT(Get("/taskmanagers/" + cluster_->tm_id(0))["metrics"]["residentMemory"].get<double>(),
            1e6);
  json wm = Get("/jobs/" + job + "/vertices/1/watermarks");
  EXPECT_EQ(wm.size(), 2u) << wm.dump();
  EXPECT_TRUE(cluster_->IsHealthy());
}

}  // namespace
}  // namespace sluice::itest
