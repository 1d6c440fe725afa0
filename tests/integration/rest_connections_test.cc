// The REST server of a real JobManager under many connections (common/http_server.h): a
// thousand idle and slow connections do not keep the API or the dashboard from answering, and
// the rest.server.* limits answer with Flink's {"errors": [...]} naming their key.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "integration/harness.h"
#include "integration/rest_jar_helpers.h"
#include "tests/raw_http_connection.h"

namespace sluice::itest {
namespace {

using namespace std::chrono_literals;

using Connection = test::RawHttpConnection;

TEST(RestConnectionsTest, AThousandIdleAndSlowConnectionsDoNotStopTheApi) {
  rlimit r{};
  ::getrlimit(RLIMIT_NOFILE, &r);
  r.rlim_cur = r.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &r);
  ASSERT_GE(r.rlim_cur, 1200u) << "too few file descriptors for the test";
  TestCluster cluster(1, 1);
  SLUICE_ASSERT_OK(cluster.Start());
  const int port = cluster.RestPort();
  ASSERT_GT(port, 0);

  std::vector<std::unique_ptr<Connection>> crowd;
  for (int i = 0; i < 1000; ++i) {
    crowd.push_back(std::make_unique<Connection>(port));
    ASSERT_TRUE(crowd.back()->connected()) << i;
    // Half have begun a request and stalled (a slow client), half sent nothing.
    if (i % 2 == 0) ASSERT_TRUE(crowd.back()->Send("GET /jobs/overview HTTP/1.1\r\nHo"));
  }
  // The API answers, on a kept-alive connection and on new ones, and so does the dashboard.
  auto http = RestClient(port);
  http->set_keep_alive(true);
  for (int i = 0; i < 20; ++i) {
    RestReply overview = RestGet(*http, "/jobs/overview");
    ASSERT_EQ(overview.status, 200) << i << ": " << overview.raw;
    EXPECT_TRUE(overview.body.contains("jobs"));
    RawHttpResponse fresh = RawHttpRequest(port, "GET", "/overview");
    ASSERT_EQ(fresh.status, 200) << i;
  }
  EXPECT_EQ(RawHttpRequest(port, "GET", "/").status, 200);
  // The stalled clients finish their requests and are answered too.
  for (int i = 0; i < 1000; i += 100) {
    ASSERT_TRUE(crowd[i]->Send("st: x\r\nConnection: close\r\n\r\n"));
    std::string answer = crowd[i]->ReadAll();
    EXPECT_TRUE(absl::StartsWith(answer, "HTTP/1.1 200")) << i << ": " << answer;
  }
  EXPECT_TRUE(cluster.JobManagerRunning());
}

TEST(RestConnectionsTest, LimitsAnswerWithFlinksErrorsNamingTheirKey) {
  ClusterOptions o;
  o.task_managers = 1;
  o.slots_per_task_manager = 1;
  o.extra_config = {"rest.server.max-header-size=2 kb", "rest.server.read-timeout=1 s",
                    "web.upload.max-size=1 kb"};
  TestCluster cluster(o);
  SLUICE_ASSERT_OK(cluster.Start());
  const int port = cluster.RestPort();
  ASSERT_GT(port, 0);

  Connection big_headers(port);
  ASSERT_TRUE(big_headers.Send(absl::StrCat(
      "GET /jobs/overview HTTP/1.1\r\nHost: x\r\nX-Big: ", std::string(4096, 'x'), "\r\n\r\n")));
  std::string answer = big_headers.ReadAll();
  EXPECT_TRUE(absl::StartsWith(answer, "HTTP/1.1 431")) << answer;
  EXPECT_TRUE(absl::StrContains(answer, "{\"errors\":[")) << answer;
  EXPECT_TRUE(absl::StrContains(answer, "rest.server.max-header-size")) << answer;

  Connection stalled(port);
  ASSERT_TRUE(
      stalled.Send("POST /jars/upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nab"));
  answer = stalled.ReadAll();  // after the 1 s read timeout
  EXPECT_TRUE(absl::StartsWith(answer, "HTTP/1.1 408")) << answer;
  EXPECT_TRUE(absl::StrContains(answer, "rest.server.read-timeout")) << answer;

  RawHttpResponse too_big = RawHttpRequest(port, "POST", "/jars/upload", std::string(2048, 'x'));
  EXPECT_EQ(too_big.status, 413) << too_big.body;
  EXPECT_TRUE(absl::StrContains(too_big.body, "web.upload.max-size")) << too_big.body;

  Connection malformed(port);
  ASSERT_TRUE(malformed.Send("GET /overview HTTP/1.1\r\nNo colon here\r\n\r\n"));
  answer = malformed.ReadAll();
  EXPECT_TRUE(absl::StartsWith(answer, "HTTP/1.1 400")) << answer;
  EXPECT_TRUE(absl::StrContains(answer, "{\"errors\":[")) << answer;

  EXPECT_EQ(RawHttpRequest(port, "GET", "/overview").status, 200);
  EXPECT_TRUE(cluster.JobManagerRunning());
}

}  // namespace
}  // namespace sluice::itest
