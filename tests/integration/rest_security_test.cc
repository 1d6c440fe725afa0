// The security of submission over REST, on real clusters: path traversal in every path
// parameter (`../`, `%2e%2e%2f`, `%252f`, and the forms of CVE-2020-17518, an upload whose file
// name climbs out of the upload folder, and CVE-2020-17519, a log file name that does) gets a
// 4xx and writes or reads nothing outside the upload folder; the upload size limit; the
// web.submit.enable and web.cancel.enable switches; libraries that survive a JobManager restart;
// and the REST server bound to localhost by default.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <filesystem>
#include <regex>
#include <set>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/config.h"
#include "integration/harness.h"
#include "integration/rest_jar_helpers.h"

namespace sluice::itest {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

// Every file under `dir`, relative to it.
std::set<std::string> FilesUnder(const std::string& dir) {
  std::set<std::string> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(dir, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    if (it->is_regular_file()) out.insert(fs::relative(it->path(), dir).string());
  }
  return out;
}

// The upload folder holds only <sha256>.so and <sha256>-<token>.json files.
::testing::AssertionResult OnlyHashedFiles(const std::string& upload_dir) {
  static const std::regex kStored("[0-9a-f]{64}(\\.so|-[0-9a-f]{16}\\.json)");
  for (const auto& e : fs::directory_iterator(upload_dir)) {
    const std::string name = e.path().filename().string();
    if (name == ".builds" && e.is_directory() && fs::is_empty(e.path())) {
      continue;  // the graph builder's private folders go there, and are gone after each build
    }
    if (!e.is_regular_file() || !std::regex_match(name, kStored)) {
      return ::testing::AssertionFailure() << "unexpected entry in the upload folder: " << name;
    }
  }
  return ::testing::AssertionSuccess();
}

TEST(RestSecurityTest, PathTraversalInEveryPathParameterGetsA4xx) {
  TestCluster cluster(1, 2);
  SLUICE_ASSERT_OK(cluster.Start());
  const int port = cluster.RestPort();
  ASSERT_GT(port, 0);
  auto http = RestClient(port);
  const std::string upload_dir = cluster.dir() + "/web-upload";
  const std::string jar =
      JarIdOf(UploadJar(*http, ReadFile(TestJobLibrary("sequence_job")), "libsequence_job.so"));
  ASSERT_FALSE(jar.empty());
  auto job = cluster.SubmitDetached(TestJobLibrary("sequence_job"), {}, {});
  ASSERT_TRUE(job.ok()) << job.status();
  const std::set<std::string> before = FilesUnder(cluster.dir());

  // CVE-2020-17518: an upload whose file name climbs out of the upload folder is stored under
  // its hash; the name, made safe, is only metadata.
  for (const std::string& name :
       {std::string("../escape/evil.so"), std::string("../../../../../../tmp/evil.so"),
        std::string("..%2f..%2fescape%2fevil.so"), std::string("/abs/evil.so"),
        std::string("..\\..\\evil.so"), std::string("..")}) {
    RestReply r = UploadJar(*http, ReadFile(TestJobLibrary("no_entry_job")), name);
    EXPECT_EQ(r.status, 200) << name << ": " << r.raw;
    const std::string id = JarIdOf(r);
    EXPECT_TRUE(std::regex_match(id, std::regex("[0-9a-f]{64}-[0-9a-f]{16}_[A-Za-z0-9_.-]+")))
        << id;
    EXPECT_EQ(id.find(".."), std::string::npos) << id;
  }
  EXPECT_FALSE(fs::exists(cluster.dir() + "/escape"));
  EXPECT_TRUE(OnlyHashedFiles(upload_dir));

  // Each payload in the place of each path parameter.
  const std::vector<std::string> payloads = {
      "..%2f..%2f..%2fetc%2fpasswd",
      "%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd",
      "..%252f..%252f..%252fetc%252fpasswd",  // CVE-2020-17519's form
      "%252e%252e%252f%252e%252e%252fetc%252fpasswd",
      "..%5c..%5cetc%5cpasswd",
      "../../../etc/passwd",
  };
  const std::string tm = cluster.tm_id(0);
  const std::vector<std::pair<std::string, std::string>> templates = {
      {"GET", "/jobmanager/logs/@"},
      {"GET", "/v1/jobmanager/logs/@"},
      {"GET", "/taskmanagers/" + tm + "/logs/@"},
      {"GET", "/taskmanagers/@"},
      {"GET", "/taskmanagers/@/metrics"},
      {"GET", "/jobs/@"},
      {"GET", "/jobs/@/status"},
      {"GET", "/jobs/@/execution-result"},
      {"GET", "/jobs/@/checkpoints"},
      {"PATCH", "/jobs/@?mode=cancel"},
      {"GET", "/jobs/" + *job + "/savepoints/@"},
      {"GET", "/jobs/" + *job + "/checkpoints/details/@"},
      {"GET", "/jobs/" + *job + "/vertices/@"},
      {"GET", "/jobs/" + *job + "/rescaling/@"},
      {"GET", "/savepoint-disposal/@"},
      {"GET", "/web/@"},
      {"GET", "/jars/@/plan"},
      {"POST", "/jars/@/plan"},
      {"POST", "/jars/@/run"},
      {"DELETE", "/jars/@"},
      {"POST", "/v1/jars/@/run"},
      {"POST", "/jars/" + jar + "/run?savepointPath=@"},
  };
  for (const auto& [method, tmpl] : templates) {
    for (const std::string& p : payloads) {
      std::string target = tmpl;
      target.replace(target.find('@'), 1, p);
      auto [status, headers, body] =
          RawHttpRequest(port, method, target, method == "POST" ? "{}" : "");
      EXPECT_GE(status, 400) << method << " " << target << ": " << body;
      EXPECT_LT(status, 500) << method << " " << target << ": " << body;
      EXPECT_EQ(body.find("root:"), std::string::npos) << method << " " << target;
      EXPECT_NE(body.find("\"errors\""), std::string::npos) << method << " " << target << body;
    }
  }
  // A savepoint path that names a FIFO is refused at once, not read (which would block).
  const std::string fifo = cluster.dir() + "/fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  auto [fifo_status, fifo_headers, fifo_body] =
      RawHttpRequest(port, "POST", "/jars/" + jar + "/run", json{{"savepointPath", fifo}}.dump());
  EXPECT_EQ(fifo_status, 400) << fifo_body;
  EXPECT_NE(fifo_body.find("not a regular file"), std::string::npos) << fifo_body;
  fs::remove(fifo);

  // Nothing was written outside the upload folder but what the cluster itself writes (its logs
  // and the running job's files), and the upload folder holds hashes only.
  for (const std::string& f : FilesUnder(cluster.dir())) {
    if (before.count(f) || f.rfind("web-upload/", 0) == 0) continue;
    EXPECT_TRUE(f.rfind("blobs", 0) == 0 || f.find(".log") != std::string::npos ||
                f.find(".out") != std::string::npos)
        << "new file " << f;
  }
  EXPECT_TRUE(OnlyHashedFiles(upload_dir));
  EXPECT_FALSE(fs::exists("/tmp/evil.so"));
  auto st = cluster.client().GetJob(*job);
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(st->state(), proto::JOB_RUNNING);
  SLUICE_EXPECT_OK(cluster.client().Cancel(*job));
  EXPECT_TRUE(cluster.IsHealthy());
}

TEST(RestSecurityTest, AnUploadOverTheSizeLimitGets413) {
  TestCluster cluster(ClusterOptions{1, 2, {"web.upload.max-size=64kb"}, {}});
  SLUICE_ASSERT_OK(cluster.Start());
  auto http = RestClient(cluster.RestPort());
  RestReply big = UploadJar(*http, ReadFile(TestJobLibrary("sequence_job")), "libbig.so");
  EXPECT_EQ(big.status, 413) << big.raw;
  EXPECT_NE(FirstError(big).find("larger than web.upload.max-size"), std::string::npos) << big.raw;
  EXPECT_TRUE(OnlyHashedFiles(cluster.dir() + "/web-upload"));
  EXPECT_TRUE(fs::is_empty(cluster.dir() + "/web-upload"));
  // A small one still goes in, and the JobManager serves on.
  RestReply small = UploadJar(*http, ReadFile(TestJobLibrary("no_entry_job")), "libsmall.so");
  EXPECT_EQ(small.status, 200) << small.raw;
  EXPECT_TRUE(cluster.RunsASmallJob());
}

TEST(RestSecurityTest, SubmissionAndCancellationCanBeSwitchedOff) {
  TestCluster cluster(
      ClusterOptions{1, 2, {"web.submit.enable=false", "web.cancel.enable=false"}, {}});
  SLUICE_ASSERT_OK(cluster.Start());
  auto http = RestClient(cluster.RestPort());
  RestReply config = RestGet(*http, "/config");
  EXPECT_EQ(config.body["features"].value("web-submit", true), false) << config.raw;
  EXPECT_EQ(config.body["features"].value("web-cancel", true), false) << config.raw;
  RestReply up = UploadJar(*http, ReadFile(TestJobLibrary("sequence_job")), "libseq.so");
  EXPECT_EQ(up.status, 403) << up.raw;
  EXPECT_NE(FirstError(up).find("web.submit.enable"), std::string::npos) << up.raw;
  EXPECT_EQ(RestGet(*http, "/jars").status, 403);
  EXPECT_EQ(RestPost(*http, "/jars/" + std::string(64, 'a') + "_x.so/run", "{}").status, 403);
  EXPECT_FALSE(fs::exists(cluster.dir() + "/web-upload"));

  auto job = cluster.SubmitDetached(TestJobLibrary("sequence_job"), {}, {});
  ASSERT_TRUE(job.ok()) << job.status();
  RestReply cancel = ToReply(http->Patch(("/jobs/" + *job + "?mode=cancel").c_str()));
  EXPECT_EQ(cancel.status, 403) << cancel.raw;
  EXPECT_NE(FirstError(cancel).find("web.cancel.enable"), std::string::npos) << cancel.raw;
  auto st = cluster.client().GetJob(*job);
  ASSERT_TRUE(st.ok());
  EXPECT_NE(st->state(), proto::JOB_CANCELED);
  // The CLI still cancels: the switch is the REST API's.
  SLUICE_EXPECT_OK(cluster.client().Cancel(*job));
  SLUICE_EXPECT_OK(cluster.WaitForState(*job, proto::JOB_CANCELED, 30s).status());

  // With the defaults both are on.
  TestCluster on(1, 2);
  SLUICE_ASSERT_OK(on.Start());
  RestReply on_config = RestGet(*RestClient(on.RestPort()), "/v1/config");
  EXPECT_EQ(on_config.body["features"].value("web-submit", false), true) << on_config.raw;
  EXPECT_EQ(on_config.body["features"].value("web-cancel", false), true) << on_config.raw;
  EXPECT_EQ(on_config.body.value("refresh-interval", 0), 3000);
  EXPECT_EQ(on_config.body.value("timezone-name", ""), "UTC");
  EXPECT_TRUE(on_config.body.contains("flink-version"));
}

TEST(RestSecurityTest, UploadedLibrariesSurviveAJobManagerRestart) {
  const std::string dir = MakeTempDir();
  const std::string upload = dir + "/uploads";
  std::string jar;
  {
    TestCluster first(ClusterOptions{1, 2, {"web.upload.dir=" + upload}, {}});
    SLUICE_ASSERT_OK(first.Start());
    jar = JarIdOf(UploadJar(*RestClient(first.RestPort()), ReadFile(TestJobLibrary("sequence_job")),
                            "libsequence_job.so"));
    ASSERT_FALSE(jar.empty());
    SLUICE_ASSERT_OK(first.Stop());
  }
  TestCluster second(ClusterOptions{1, 2, {"web.upload.dir=" + upload}, {}});
  SLUICE_ASSERT_OK(second.Start());
  auto http = RestClient(second.RestPort());
  RestReply list = RestGet(*http, "/jars");
  ASSERT_EQ(list.body["files"].size(), 1u) << list.raw;
  EXPECT_EQ(list.body["files"][0].value("id", ""), jar);
  EXPECT_EQ(list.body["files"][0].value("name", ""), "libsequence_job.so");
  const std::string out = second.dir() + "/out";
  RestReply run = RestPost(
      *http, "/jars/" + jar + "/run",
      json{{"programArgsList", {"--count", "200", "--keys", "2", "--output", out}}}.dump());
  ASSERT_EQ(run.status, 200) << run.raw;
  EXPECT_EQ(WaitForRestStatus(*http, run.body.value("jobid", ""), "FINISHED", 60s), "FINISHED");
  EXPECT_TRUE(SequenceOutputIsCorrect(out, 200, 2));
  std::error_code ec;
  fs::remove_all(dir, ec);
}

TEST(RestSecurityTest, RestBindsToLocalhostByDefault) {
  EXPECT_EQ(Configuration().GetString("rest.bind-address"), "localhost");
  TestCluster cluster(1, 1);  // the harness leaves rest.bind-address at its default
  SLUICE_ASSERT_OK(cluster.Start());
  const int port = cluster.RestPort();
  ASSERT_GT(port, 0);
  EXPECT_EQ(RawHttpRequest(port, "GET", "/config").status, 200);
  // Every socket listening on the REST port is a loopback one (read from /proc/net, without
  // talking to any other address).
  const std::string port_hex = absl::StrCat(absl::Hex(port, absl::kZeroPad4));
  std::vector<std::string> listening;
  for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::istringstream lines(ReadFile(table));
    std::string line;
    std::getline(lines, line);  // the heading
    while (std::getline(lines, line)) {
      std::istringstream fields(line);
      std::string slot, local, remote, state;
      fields >> slot >> local >> remote >> state;
      const size_t colon = local.find(':');
      if (state != "0A" || colon == std::string::npos) continue;  // 0A: LISTEN
      if (absl::AsciiStrToUpper(local.substr(colon + 1)) != absl::AsciiStrToUpper(port_hex)) {
        continue;
      }
      listening.push_back(local.substr(0, colon));
    }
  }
  ASSERT_FALSE(listening.empty()) << "nothing listens on port " << port;
  for (const std::string& address : listening) {
    // 127.x.x.x is stored little-endian ("0100007F"); ::1 as four little-endian words.
    const bool loopback =
        (address.size() == 8 && absl::AsciiStrToUpper(address.substr(6)) == "7F") ||
        address == "00000000000000000000000001000000";
    EXPECT_TRUE(loopback) << "the REST port listens on " << address;
  }
}

}  // namespace
}  // namespace sluice::itest
