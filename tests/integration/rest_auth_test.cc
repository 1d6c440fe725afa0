// The REST API's bearer token (security.rest.auth.*) and HTTPS (security.ssl.rest.*) on real
// clusters: requests without the token or with a wrong one get 401 with Flink's errors, with it
// they succeed; the dashboard's own files load without it; "changes" asks it only of requests
// that change something; over HTTPS the API answers a client that trusts the cluster's CA and
// nothing in plain text; a bad token file stops the JobManager naming the key.
#include <cstdlib>
#include <filesystem>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "integration/harness.h"

namespace sluice::itest {
namespace {

using namespace std::chrono_literals;

const std::string kToken = "s3cret-token-0123456789abcdef";

std::string TokenFile(const std::string& dir) {
  const std::string path = dir + "/rest-token";
  WriteFile(path, kToken + "\n");
  return path;
}

// `method target` to 127.0.0.1:port with the given extra header lines (each ending in \r\n).
RawHttpResponse Request(int port, const std::string& method, const std::string& target,
                        const std::string& headers) {
  return RawHttpExchange(
      port, absl::StrCat(method, " ", target, " HTTP/1.1\r\nHost: 127.0.0.1\r\n",
                         "Connection: close\r\nContent-Length: 0\r\n", headers, "\r\n"));
}

TEST(RestAuthTest, EveryRequestButTheDashboardsFilesNeedsTheToken) {
  const std::string dir = MakeTempDir();
  ClusterOptions o;
  o.task_managers = 1;
  o.slots_per_task_manager = 1;
  o.extra_config = {"security.rest.auth.token-file=" + TokenFile(dir)};
  TestCluster cluster(o);
  SLUICE_ASSERT_OK(cluster.Start());
  const int port = cluster.RestPort();
  ASSERT_GT(port, 0);

  RawHttpResponse none = Request(port, "GET", "/overview", "");
  EXPECT_EQ(none.status, 401) << none.body;
  EXPECT_TRUE(absl::StrContains(absl::AsciiStrToLower(none.headers), "www-authenticate: bearer"))
      << none.headers;
  EXPECT_TRUE(absl::StrContains(none.body, "security.rest.auth.token-file")) << none.body;
  RawHttpResponse wrong =
      Request(port, "GET", "/overview", "Authorization: Bearer " + kToken + "x\r\n");
  EXPECT_EQ(wrong.status, 401);
  EXPECT_TRUE(absl::StrContains(wrong.body, "wrong")) << wrong.body;
  EXPECT_EQ(Request(port, "GET", "/v1/overview", "Authorization: Bearer nope\r\n").status, 401);
  EXPECT_EQ(Request(port, "GET", "/overview", "Authorization: Bearer " + kToken + "\r\n").status,
            200);
  EXPECT_EQ(Request(port, "GET", "/v1/jobs", "Authorization: bearer " + kToken + "\r\n").status,
            200);
  // The page loads, then asks.
  EXPECT_EQ(Request(port, "GET", "/", "").status, 200);
  EXPECT_EQ(Request(port, "GET", "/index.html", "").status, 200);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

TEST(RestAuthTest, ChangesOnlyLetsReadsThrough) {
  const std::string dir = MakeTempDir();
  ClusterOptions o;
  o.task_managers = 1;
  o.slots_per_task_manager = 1;
  o.extra_config = {"security.rest.auth.token-file=" + TokenFile(dir),
                    "security.rest.auth.required-for=changes"};
  TestCluster cluster(o);
  SLUICE_ASSERT_OK(cluster.Start());
  const int port = cluster.RestPort();
  auto job = cluster.SubmitDetached(TestJobLibrary("sequence_job"), {}, {});
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(Request(port, "GET", "/jobs/overview", "").status, 200);
  EXPECT_EQ(Request(port, "HEAD", "/v1/jobs/overview", "").status, 200);
  // A plan is a read that runs the uploaded library: it needs the token, with or without /v1.
  EXPECT_EQ(Request(port, "GET", "/jars/x/plan", "").status, 401);
  EXPECT_EQ(Request(port, "GET", "/v1/jars/x/plan", "").status, 401);
  // An upload without the token is refused from its headers; its body is dropped unread.
  EXPECT_EQ(RawHttpRequest(port, "POST", "/jars/upload", std::string(200000, 'x')).status, 401);
  EXPECT_EQ(Request(port, "PATCH", "/jobs/" + *job + "?mode=cancel", "").status, 401);
  EXPECT_EQ(Request(port, "DELETE", "/jars/x", "").status, 401);
  EXPECT_EQ(Request(port, "PATCH", "/jobs/" + *job + "?mode=cancel",
                    "Authorization: Bearer " + kToken + "\r\n")
                .status,
            202);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

TEST(RestAuthTest, ABadTokenFileStopsTheJobManagerNamingTheKey) {
  const std::string dir = MakeTempDir();
  WriteFile(dir + "/short", "abc\n");
  for (const std::string& file : {dir + "/missing", dir + "/short"}) {
    CommandResult r =
        RunCommand({BinDir() + "/sluice-jobmanager", "-D", "jobmanager.rpc.port=0", "-D",
                    "rest.port=0", "-D", "security.rest.auth.token-file=" + file},
                   dir, 30s);
    EXPECT_NE(r.exit_code, 0) << r.Describe();
    EXPECT_TRUE(absl::StrContains(r.err, "security.rest.auth.token-file")) << r.Describe();
  }
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

// GET `target` over HTTPS from 127.0.0.1:port, trusting `ca`; the status, or 0 when the
// handshake or the request failed.
int HttpsGet(int port, const std::string& ca, const std::string& target) {
  return RawHttpExchange(port,
                         absl::StrCat("GET ", target,
                                      " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"),
                         std::chrono::seconds(10), ca)
      .status;
}

// A cluster of one TaskManager whose REST API speaks HTTPS only, with certificates that
// deploy/gen-certs.sh makes in dir/certs (ca.pem signs them).
void HttpsClusterOptions(const std::string& dir, ClusterOptions* o) {
  const char* src = std::getenv("SLUICE_SOURCE_DIR");
  ASSERT_NE(src, nullptr);
  CommandResult made =
      RunCommand({std::string(src) + "/deploy/gen-certs.sh", dir + "/certs"}, dir, 60s);
  ASSERT_EQ(made.exit_code, 0) << made.Describe();
  o->task_managers = 1;
  o->slots_per_task_manager = 1;
  o->extra_config = {"security.ssl.rest.enabled=true",
                     "security.ssl.rest.key=" + dir + "/certs/internal.key",
                     "security.ssl.rest.cert=" + dir + "/certs/internal.pem"};
}

TEST(RestAuthTest, RestOverHttpsAnswersOnlyOverTls) {
  const std::string dir = MakeTempDir();
  ClusterOptions o;
  ASSERT_NO_FATAL_FAILURE(HttpsClusterOptions(dir, &o));
  TestCluster cluster(o);
  SLUICE_ASSERT_OK(cluster.Start());
  const int port = cluster.RestPort();
  ASSERT_GT(port, 0);
  EXPECT_TRUE(absl::StrContains(cluster.JobManagerLog(), "https://")) << cluster.JobManagerLog();
  EXPECT_EQ(HttpsGet(port, dir + "/certs/ca.pem", "/overview"), 200);
  EXPECT_EQ(HttpsGet(port, dir + "/certs/ca.pem", "/"), 200);
  EXPECT_EQ(Request(port, "GET", "/overview", "").status, 0);  // plain HTTP: no answer
  EXPECT_TRUE(WaitUntil(
      [&] { return absl::StrContains(cluster.JobManagerLog(), "TLS handshake with 127.0.0.1"); },
      5s))
      << LastLines(cluster.JobManagerLog(), 10);
  EXPECT_EQ(HttpsGet(port, dir + "/certs/ca.pem", "/overview"), 200);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

// The CLI's -m may name the REST address (Flink's habit): it asks the REST server for the RPC
// port over HTTPS, verifying the server against the trusted CA, with the token.
TEST(RestAuthTest, TheCliFindsTheJobManagerOverHttpsWithTheToken) {
  const std::string dir = MakeTempDir();
  const std::string token_file = TokenFile(dir);
  ClusterOptions o;
  ASSERT_NO_FATAL_FAILURE(HttpsClusterOptions(dir, &o));
  o.extra_config.push_back("security.rest.auth.token-file=" + token_file);
  TestCluster cluster(o);
  SLUICE_ASSERT_OK(cluster.Start());
  const int port = cluster.RestPort();
  ASSERT_GT(port, 0);
  const std::string rest = absl::StrCat("127.0.0.1:", port);
  const std::vector<std::string> https = {"-D", "security.ssl.rest.enabled=true", "-D",
                                          "security.ssl.rest.trust-cert=" + dir + "/certs/ca.pem"};
  auto list = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = {"list", "-m", rest};
    args.insert(args.end(), https.begin(), https.end());
    args.insert(args.end(), extra.begin(), extra.end());
    return RunCli(args, dir, 60s);
  };
  CommandResult ok = list({"-D", "security.rest.auth.token-file=" + token_file});
  EXPECT_EQ(ok.exit_code, 0) << ok.Describe();
  CommandResult none = list({});
  EXPECT_NE(none.exit_code, 0) << none.Describe();
  EXPECT_TRUE(absl::StrContains(none.err, "needs the token of security.rest.auth.token-file"))
      << none.Describe();
  const std::string wrong_file = dir + "/wrong-token";
  WriteFile(wrong_file, "not-the-token-0123456789\n");
  CommandResult wrong = list({"-D", "security.rest.auth.token-file=" + wrong_file});
  EXPECT_NE(wrong.exit_code, 0) << wrong.Describe();
  EXPECT_TRUE(absl::StrContains(wrong.err, "is wrong")) << wrong.Describe();
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

}  // namespace
}  // namespace sluice::itest
