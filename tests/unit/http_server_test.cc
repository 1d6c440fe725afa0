// The event-driven HTTP server (common/http_server.h) and its routes (common/http_routes.h),
// over raw sockets on 127.0.0.1: keep-alive and pipelining, the limits on headers, bodies and
// read time, idle connections that must not delay others, and the parsing of targets and
// multipart bodies.
#include "common/http_server.h"

// The HTTPS client of these tests (cpp-httplib with OpenSSL, in this file only).
#define CPPHTTPLIB_OPENSSL_SUPPORT
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "tests/raw_http_connection.h"

namespace sluice {
namespace {

using Conn = test::RawHttpConnection;

std::string Get(const std::string& path, bool close = false) {
  return absl::StrCat("GET ", path, " HTTP/1.1\r\nHost: x\r\n",
                      close ? "Connection: close\r\n" : "", "\r\n");
}

std::string BodyOf(const std::string& response) {
  size_t end = response.find("\r\n\r\n");
  return end == std::string::npos ? "" : response.substr(end + 4);
}

class HttpServerTest : public ::testing::Test {
 protected:
  void Start(HttpServerOptions o = {}) {
    o.what = "test server";
    o.host = "127.0.0.1";
    o.host_key = "host";
    o.port_key = "port";
    HttpRoutes routes;
    routes.Get("/hello", [](const HttpRequest&, HttpResponse& res) {
      res.set_content("hello", "text/plain");
    });
    routes.Get("/echo/([a-z]+)", [](const HttpRequest& req, HttpResponse& res) {
      res.set_content(
          absl::StrCat(req.matches[1], "|", req.get_param_value("q"), "|",
                       req.get_param_value_count("r"), "|", req.get_header_value("x-a")),
          "text/plain");
    });
    routes.Post("/body", [](const HttpRequest& req, HttpResponse& res) {
      res.set_content(absl::StrCat(req.body.size(), ":", req.body.substr(0, 16)), "text/plain");
    });
    routes.Post("/form", [](const HttpRequest& req, HttpResponse& res) {
      res.set_content(absl::StrCat(req.get_param_value("a"), "|", req.get_param_value("b")),
                      "text/plain");
    });
    routes.Post("/upload", [](const HttpRequest& req, HttpResponse& res) {
      if (!req.has_file("f")) {
        res.status = 400;
        return;
      }
      const HttpFormPart& p = req.files.find("f")->second;
      res.set_content(absl::StrCat(p.filename, "|", std::string(p.content)), "text/plain");
    });
    routes.Get("/slow", [this](const HttpRequest&, HttpResponse& res) {
      release_slow_.WaitForNotificationWithTimeout(absl::Seconds(20));
      res.set_content("slow", "text/plain");
    });
    routes.Get("/throw", [](const HttpRequest&, HttpResponse&) {
      throw std::runtime_error("handler broke");
    });
    routes.set_exception_handler([](const HttpRequest&, HttpResponse& res, std::exception_ptr ep) {
      try {
        std::rethrow_exception(ep);
      } catch (const std::exception& e) {
        res.set_content(e.what(), "text/plain");
      }
    });
    routes.set_error_handler([](const HttpRequest& req, HttpResponse& res) {
      res.set_content(absl::StrCat("error ", res.status, " ", req.path, " ", res.reason),
                      "text/plain");
    });
    if (guard_) routes.set_guard(guard_);
    auto s = HttpServer::Start(o, std::move(routes));
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::move(*s);
  }
  void TearDown() override {
    if (!release_slow_.HasBeenNotified()) release_slow_.Notify();
    if (server_) server_->Stop();
  }
  int port() { return server_->port(); }

  std::function<bool(const HttpRequest&, HttpResponse&)> guard_;
  absl::Notification release_slow_;
  std::unique_ptr<HttpServer> server_;
};

TEST_F(HttpServerTest, KeepAliveAndPipelinedRequestsAreAnsweredInOrder) {
  Start();
  Conn c(port());
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.Send(Get("/hello")));
  std::string r = c.ReadResponse();
  EXPECT_TRUE(absl::StartsWith(r, "HTTP/1.1 200 OK")) << r;
  EXPECT_EQ(BodyOf(r), "hello");
  // Two in one write, on the same connection.
  ASSERT_TRUE(c.Send(Get("/echo/abc?q=a%20b+c&r=1&r=2") + Get("/hello", /*close=*/true)));
  EXPECT_EQ(BodyOf(c.ReadResponse()), "abc|a b c|2|");
  EXPECT_EQ(BodyOf(c.ReadResponse()), "hello");
  EXPECT_TRUE(c.Closed());  // Connection: close
}

TEST_F(HttpServerTest, HeadersAreFoundWithoutCaseAndHeadHasNoBody) {
  Start();
  Conn c(port());
  ASSERT_TRUE(c.Send("GET /echo/x HTTP/1.1\r\nHost: x\r\nX-A: v\r\n\r\n"));
  EXPECT_EQ(BodyOf(c.ReadResponse()), "x||0|v");
  ASSERT_TRUE(c.Send("HEAD /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  // The headers say how long the body would be, and no body follows before the close.
  std::string r = c.ReadAll();
  EXPECT_TRUE(absl::StartsWith(r, "HTTP/1.1 200")) << r;
  EXPECT_TRUE(absl::StrContains(r, "Content-Length: 5")) << r;
  EXPECT_TRUE(absl::EndsWith(r, "\r\n\r\n")) << r;
}

TEST_F(HttpServerTest, UnknownPathsAndMethodsGetTheErrorHandlersAnswer) {
  Start();
  Conn c(port());
  ASSERT_TRUE(c.Send(Get("/nope") + "DELETE /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::string r = c.ReadResponse();
  EXPECT_TRUE(absl::StartsWith(r, "HTTP/1.1 404")) << r;
  EXPECT_EQ(BodyOf(r), "error 404 /nope ");
  EXPECT_TRUE(absl::StartsWith(c.ReadResponse(), "HTTP/1.1 404"));
  ASSERT_TRUE(c.Send(Get("/throw")));
  r = c.ReadResponse();
  EXPECT_TRUE(absl::StartsWith(r, "HTTP/1.1 500")) << r;
  EXPECT_EQ(BodyOf(r), "handler broke");
  // The connection still serves.
  ASSERT_TRUE(c.Send(Get("/hello")));
  EXPECT_EQ(BodyOf(c.ReadResponse()), "hello");
}

TEST_F(HttpServerTest, PathsAreDecodedOnceAndNotNormalized) {
  Start();
  Conn c(port());
  // %2e%2e%2f is "../" once decoded, and matches no route; %252f stays "%2f".
  ASSERT_TRUE(c.Send(Get("/echo/%2e%2e%2fetc") + Get("/echo/a%252fb") + Get("/echo/%61bc")));
  EXPECT_EQ(BodyOf(c.ReadResponse()), "error 404 /echo/../etc ");
  EXPECT_EQ(BodyOf(c.ReadResponse()), "error 404 /echo/a%2fb ");
  EXPECT_EQ(BodyOf(c.ReadResponse()), "abc||0|");
}

TEST_F(HttpServerTest, MalformedRequestsGet400AndTheConnectionCloses) {
  Start();
  for (const std::string& bad :
       {std::string("NOT HTTP AT ALL\r\n\r\n"), std::string("GET /hello HTTP/9.9\r\n\r\n"),
        std::string("GET /hello HTTP/1.1\r\nBad Header\r\n\r\n"),
        std::string("POST /body HTTP/1.1\r\nContent-Length: x\r\n\r\n")}) {
    Conn c(port());
    ASSERT_TRUE(c.Send(bad));
    std::string r = c.ReadResponse();
    EXPECT_TRUE(absl::StartsWith(r, "HTTP/1.1 400")) << bad << " -> " << r;
    EXPECT_TRUE(c.Closed()) << bad;
  }
  // Valid HTTP, but a target that is not a path: 400, and the connection serves on.
  Conn c(port());
  ASSERT_TRUE(c.Send("GET hello HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::string r = c.ReadResponse();
  EXPECT_TRUE(absl::StartsWith(r, "HTTP/1.1 400")) << r;
  EXPECT_TRUE(absl::StrContains(r, "is not a path")) << r;
  ASSERT_TRUE(c.Send(Get("/hello")));
  EXPECT_EQ(BodyOf(c.ReadResponse()), "hello");
}

TEST_F(HttpServerTest, BodiesMayBeChunkedOrExpectContinueAndAreLimited) {
  HttpServerOptions o;
  o.max_body_bytes = 1000;
  Start(o);
  Conn c(port());
  ASSERT_TRUE(
      c.Send("POST /body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
             "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"));
  EXPECT_EQ(BodyOf(c.ReadResponse()), "11:hello world");
  ASSERT_TRUE(c.Send(
      "POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n"));
  EXPECT_TRUE(absl::StartsWith(c.ReadResponse(), "HTTP/1.1 100 Continue"));
  ASSERT_TRUE(c.Send("abc"));
  EXPECT_EQ(BodyOf(c.ReadResponse()), "3:abc");

  // Over the limit: refused from the Content-Length alone, before any body byte is read.
  Conn big(port());
  ASSERT_TRUE(big.Send("POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 1001\r\n\r\n"));
  std::string r = big.ReadResponse();
  EXPECT_TRUE(absl::StartsWith(r, "HTTP/1.1 413")) << r;
  EXPECT_TRUE(absl::StrContains(BodyOf(r), "larger than 1000 bytes")) << r;
  EXPECT_TRUE(big.Closed());
  // A client that sends the whole body before it reads (as most do) gets the answer, not a
  // reset: the server reads and drops the rest.
  Conn whole(port());
  ASSERT_TRUE(whole.Send(absl::StrCat("POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: ", 8 << 20,
                                      "\r\n\r\n", std::string(8 << 20, 'z'))));
  r = whole.ReadResponse();
  EXPECT_TRUE(absl::StartsWith(r, "HTTP/1.1 413")) << r;
  // A chunked body that grows past it.
  Conn chunked(port());
  ASSERT_TRUE(chunked.Send("POST /body HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
                           absl::StrCat("7d0\r\n", std::string(2000, 'a'), "\r\n0\r\n\r\n")));
  EXPECT_TRUE(absl::StartsWith(chunked.ReadResponse(), "HTTP/1.1 413"));
}

TEST_F(HttpServerTest, TheGuardRefusesARequestBeforeItsBodyIsRead) {
  guard_ = [](const HttpRequest& req, HttpResponse& res) {
    if (req.get_header_value("x-token") == "yes") return true;
    res.status = 401;
    res.reason = "no token";
    return false;
  };
  Start();
  // Refused from its headers alone: no 100 Continue, and no wait for the body it announced.
  Conn c(port());
  ASSERT_TRUE(c.Send(
      "POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\nExpect: 100-continue\r\n\r\n"));
  std::string r = c.ReadResponse();
  EXPECT_TRUE(absl::StartsWith(r, "HTTP/1.1 401")) << r;
  EXPECT_EQ(BodyOf(r), "error 401 /body no token");
  EXPECT_TRUE(c.Closed());
  // A target that cannot be parsed is answered from the headers too, its body never read.
  Conn bad(port());
  ASSERT_TRUE(bad.Send("POST * HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n"));
  r = bad.ReadResponse();
  EXPECT_TRUE(absl::StartsWith(r, "HTTP/1.1 400")) << r;
  EXPECT_TRUE(bad.Closed());
  // With the token, the same request goes through.
  Conn ok(port());
  ASSERT_TRUE(
      ok.Send("POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n"
              "X-Token: yes\r\n\r\n"));
  EXPECT_TRUE(absl::StartsWith(ok.ReadResponse(), "HTTP/1.1 100 Continue"));
  ASSERT_TRUE(ok.Send("abc"));
  EXPECT_EQ(BodyOf(ok.ReadResponse()), "3:abc");
  // A request without a body is refused as any other answer: the connection stays.
  Conn get(port());
  ASSERT_TRUE(get.Send(Get("/hello")));
  r = get.ReadResponse();
  EXPECT_TRUE(absl::StartsWith(r, "HTTP/1.1 401")) << r;
  ASSERT_TRUE(get.Send("GET /hello HTTP/1.1\r\nHost: x\r\nX-Token: yes\r\n\r\n"));
  EXPECT_EQ(BodyOf(get.ReadResponse()), "hello");
}

TEST_F(HttpServerTest, RoutesHaveTheirOwnBodyLimitAndBodiesInMemoryAreBounded) {
  constexpr size_t kMiB = 1 << 20;
  HttpServerOptions o;
  o.max_body_bytes = 4 * kMiB;
  o.body_limit = [](const std::string&, const std::string& target) -> size_t {
    return target == "/upload" ? 4 * kMiB : 100;
  };
  o.max_body_bytes_in_flight = 2 * kMiB;  // for uploads: small bodies have their own
  Start(o);
  Conn c(port());
  ASSERT_TRUE(c.Send("POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 101\r\n\r\n"));
  std::string r = c.ReadResponse();
  EXPECT_TRUE(absl::StartsWith(r, "HTTP/1.1 413")) << r;
  EXPECT_TRUE(absl::StrContains(r, "larger than 100 bytes")) << r;
  // An upload larger than the whole budget could never be read: 413 at once.
  Conn huge(port());
  ASSERT_TRUE(huge.Send(
      absl::StrCat("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: ", 3 * kMiB, "\r\n\r\n")));
  r = huge.ReadResponse();
  EXPECT_TRUE(absl::StartsWith(r, "HTTP/1.1 413")) << r;
  // One upload of 1.5 MiB is being read (its client stalls): a second does not fit beside it,
  // but a small body does.
  const size_t upload = kMiB + kMiB / 2;
  Conn first(port());
  ASSERT_TRUE(first.Send(
      absl::StrCat("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: ", upload, "\r\n\r\nab")));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  Conn second(port());
  ASSERT_TRUE(second.Send(
      absl::StrCat("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: ", upload, "\r\n\r\n")));
  r = second.ReadResponse();
  EXPECT_TRUE(absl::StartsWith(r, "HTTP/1.1 503")) << r;
  Conn small(port());
  ASSERT_TRUE(small.Send("POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"));
  EXPECT_EQ(BodyOf(small.ReadResponse()), "3:abc");
  // Once the first is done, its share is free again.
  ASSERT_TRUE(first.Send(std::string(upload - 2, 'x')));
  first.ReadResponse();
  Conn third(port());
  ASSERT_TRUE(third.Send(absl::StrCat("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: ",
                                      upload, "\r\n\r\n", std::string(upload, 'y'))));
  EXPECT_TRUE(absl::StartsWith(third.ReadResponse(), "HTTP/1.1 400"));  // no multipart: 400
}

TEST_F(HttpServerTest, LongTargetsGet414AndFormBodiesAreParams) {
  Start();
  Conn c(port());
  ASSERT_TRUE(c.Send(Get("/echo/" + std::string(5000, 'a'))));
  std::string r = c.ReadResponse();
  EXPECT_TRUE(absl::StartsWith(r, "HTTP/1.1 414")) << r.substr(0, 200);
  Conn f(port());
  ASSERT_TRUE(
      f.Send("POST /form HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
             "Content-Length: 11\r\n\r\na=1+2&b=%41"));
  EXPECT_EQ(BodyOf(f.ReadResponse()), "1 2|A");
}

TEST_F(HttpServerTest, HeadersOverTheLimitGet431) {
  HttpServerOptions o;
  o.max_header_bytes = 2048;
  Start(o);
  Conn c(port());
  ASSERT_TRUE(c.Send(absl::StrCat(
      "GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: ", std::string(4096, 'b'), "\r\n\r\n")));
  std::string r = c.ReadResponse();
  EXPECT_TRUE(absl::StartsWith(r, "HTTP/1.1 431")) << r;
  EXPECT_TRUE(c.Closed());
}

TEST_F(HttpServerTest, ARequestReadTooSlowlyGets408AndAnIdleConnectionIsClosed) {
  HttpServerOptions o;
  o.read_timeout = absl::Milliseconds(500);
  o.idle_timeout = absl::Milliseconds(500);
  Start(o);
  // A byte at a time, slower than the read timeout allows for the whole request.
  Conn slow(port());
  auto started = std::chrono::steady_clock::now();
  std::string request = Get("/hello");
  bool cut = false;
  for (char ch : request) {
    if (!slow.Send(std::string(1, ch))) {
      cut = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (std::chrono::steady_clock::now() - started > std::chrono::seconds(2)) break;
  }
  std::string r = slow.ReadResponse();
  (void)cut;  // the server drops what follows its answer for a while, then closes
  EXPECT_TRUE(absl::StartsWith(r, "HTTP/1.1 408")) << r;
  EXPECT_TRUE(slow.Closed());

  Conn idle(port());
  ASSERT_TRUE(idle.connected());
  EXPECT_TRUE(idle.Closed());  // within the socket's 10 s, long after the 500 ms idle timeout
}

TEST_F(HttpServerTest, AThousandIdleAndSlowConnectionsDoNotHoldUpARequest) {
  Start();
  std::vector<std::unique_ptr<Conn>> idle;
  for (int i = 0; i < 1000; ++i) {
    idle.push_back(std::make_unique<Conn>(port()));
    ASSERT_TRUE(idle.back()->connected()) << i;
    // Every fourth has begun a request it never finishes.
    if (i % 4 == 0) {
      ASSERT_TRUE(idle.back()->Send("GET /hel"));
    }
  }
  // A handler that is busy holds its own connection only.
  Conn busy(port());
  ASSERT_TRUE(busy.Send(Get("/slow")));
  for (int i = 0; i < 20; ++i) {
    Conn c(port());
    ASSERT_TRUE(c.Send(Get("/hello")));
    EXPECT_EQ(BodyOf(c.ReadResponse()), "hello") << i;
  }
  EXPECT_GE(server_->connections(), 1001);
  release_slow_.Notify();
  EXPECT_EQ(BodyOf(busy.ReadResponse()), "slow");
}

TEST_F(HttpServerTest, ConnectionsOverTheLimitAreClosed) {
  HttpServerOptions o;
  o.max_connections = 2;
  Start(o);
  Conn a(port()), b(port());
  ASSERT_TRUE(a.Send(Get("/hello")));
  ASSERT_TRUE(b.Send(Get("/hello")));
  EXPECT_EQ(BodyOf(a.ReadResponse()), "hello");
  EXPECT_EQ(BodyOf(b.ReadResponse()), "hello");
  Conn c(port());
  c.Send(Get("/hello"));
  EXPECT_EQ(c.ReadResponse(), "");
  EXPECT_TRUE(c.Closed());
}

TEST_F(HttpServerTest, MultipartUploadsAreParsed) {
  Start();
  const std::string body =
      "--XyZ\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nignored\r\n"
      "--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"../job.so\"\r\n"
      "Content-Type: application/octet-stream\r\n\r\nbytes\r\n--Xy\r\n--XyZ--\r\n";
  Conn c(port());
  ASSERT_TRUE(c.Send(absl::StrCat(
      "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=XyZ\r\n"
      "Content-Length: ",
      body.size(), "\r\n\r\n", body)));
  EXPECT_EQ(BodyOf(c.ReadResponse()), "../job.so|bytes\r\n--Xy");
  // No closing boundary: 400 naming it, and the handler never runs.
  const std::string cut = "--XyZ\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\nbytes";
  ASSERT_TRUE(c.Send(absl::StrCat(
      "POST /upload HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=XyZ\r\n"
      "Content-Length: ",
      cut.size(), "\r\n\r\n", cut)));
  std::string r = c.ReadResponse();
  EXPECT_TRUE(absl::StartsWith(r, "HTTP/1.1 400")) << r;
  EXPECT_TRUE(absl::StrContains(r, "no closing boundary")) << r;
}

TEST_F(HttpServerTest, StopClosesOpenConnectionsAndFreesThePort) {
  Start();
  Conn c(port());
  ASSERT_TRUE(c.Send(Get("/hello")));
  EXPECT_EQ(BodyOf(c.ReadResponse()), "hello");
  int p = port();
  server_->Stop();
  EXPECT_TRUE(c.Closed());
  Conn after(p);
  EXPECT_FALSE(after.connected());
}

TEST(HttpServerStartTest, ABusyPortIsRefusedNamingTheKeys) {
  HttpServerOptions o;
  o.what = "test server";
  o.host = "127.0.0.1";
  o.host_key = "my.host";
  o.port_key = "my.port";
  auto first = HttpServer::Start(o, HttpRoutes());
  ASSERT_TRUE(first.ok()) << first.status();
  o.first_port = o.last_port = (*first)->port();
  auto second = HttpServer::Start(o, HttpRoutes());
  ASSERT_FALSE(second.ok());
  EXPECT_TRUE(absl::StrContains(second.status().message(), "my.port")) << second.status();
}

// Certificates from deploy/gen-certs.sh in a fresh folder: ca.pem, internal.{pem,key}, and
// <name>.{pem,key} for each of `names`; "" when the script fails.
std::string MakeCertificates(const std::vector<std::string>& names) {
  const char* src = std::getenv("SLUICE_SOURCE_DIR");
  if (src == nullptr) return "";
  char tmpl[] = "/tmp/sluice-certs-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) return "";
  std::string cmd = absl::StrCat(src, "/deploy/gen-certs.sh ", tmpl, "/certs");
  for (const auto& n : names) absl::StrAppend(&cmd, " ", n);
  absl::StrAppend(&cmd, " >/dev/null 2>&1");
  return std::system(cmd.c_str()) == 0 ? std::string(tmpl) + "/certs" : "";
}

class HttpsServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    certs_ = MakeCertificates({});
    ASSERT_FALSE(certs_.empty()) << "deploy/gen-certs.sh failed (is SLUICE_SOURCE_DIR set?)";
    other_ = MakeCertificates({});
    ASSERT_FALSE(other_.empty());
  }
  void TearDown() override {
    if (server_) server_->Stop();
    for (const std::string& d : {certs_, other_}) {
      if (!d.empty()) std::system(("rm -rf " + d.substr(0, d.rfind('/'))).c_str());
    }
  }
  absl::Status Start(bool client_auth) {
    HttpServerOptions o;
    o.what = "test server";
    o.host = "127.0.0.1";
    o.host_key = "host";
    o.port_key = "port";
    HttpTlsOptions t;
    t.key_file = certs_ + "/internal.key";
    t.key_key = "k";
    t.cert_file = certs_ + "/internal.pem";
    t.cert_key = "c";
    if (client_auth) {
      t.client_ca_file = certs_ + "/ca.pem";
      t.client_ca_key = "ca";
    }
    o.tls = t;
    HttpRoutes routes;
    routes.Get("/hello", [](const HttpRequest&, HttpResponse& res) {
      res.set_content("hello", "text/plain");
    });
    auto s = HttpServer::Start(o, std::move(routes));
    if (!s.ok()) return s.status();
    server_ = std::move(*s);
    return absl::OkStatus();
  }
  // GET /hello over HTTPS, trusting `ca_dir`'s CA and presenting `client_dir`'s certificate
  // (none when empty); the status, or -1 when no answer came.
  int Get(const std::string& ca_dir, const std::string& client_dir) {
    std::unique_ptr<httplib::SSLClient> c;
    if (client_dir.empty()) {
      c = std::make_unique<httplib::SSLClient>("127.0.0.1", server_->port());
    } else {
      c = std::make_unique<httplib::SSLClient>(
          "127.0.0.1", server_->port(), client_dir + "/internal.pem", client_dir + "/internal.key");
    }
    c->set_ca_cert_path((ca_dir + "/ca.pem").c_str());
    c->enable_server_certificate_verification(true);
    c->set_connection_timeout(5);
    c->set_read_timeout(5);
    auto r = c->Get("/hello");
    return r ? r->status : -1;
  }

  std::string certs_, other_;
  std::unique_ptr<HttpServer> server_;
};

TEST_F(HttpsServerTest, ServesHttpsAndRefusesPlainText) {
  ASSERT_TRUE(Start(false).ok());
  EXPECT_EQ(Get(certs_, ""), 200);
  // A client that trusts another CA refuses the server.
  EXPECT_EQ(Get(other_, ""), -1);
  // Plain HTTP to the HTTPS port gets no answer, and the server serves on.
  Conn plain(server_->port());
  ASSERT_TRUE(plain.Send(sluice::Get("/hello")));
  EXPECT_EQ(plain.ReadResponse(), "");
  EXPECT_EQ(Get(certs_, ""), 200);
}

TEST_F(HttpsServerTest, ClientCertificatesAreRequiredWhenAsked) {
  ASSERT_TRUE(Start(true).ok());
  EXPECT_EQ(Get(certs_, certs_), 200);
  EXPECT_EQ(Get(certs_, ""), -1);       // no certificate
  EXPECT_EQ(Get(certs_, other_), -1);   // one from another CA
  EXPECT_EQ(Get(certs_, certs_), 200);  // and it serves on
}

TEST_F(HttpsServerTest, BadFilesAreRefusedNamingTheKey) {
  const std::string good_key = certs_ + "/internal.key";
  HttpServerOptions o;
  o.what = "test server";
  o.host = "127.0.0.1";
  HttpTlsOptions t;
  t.key_file = good_key;
  t.key_key = "my.key";
  t.cert_file = certs_ + "/missing.pem";
  t.cert_key = "my.cert";
  o.tls = t;
  auto s = HttpServer::Start(o, HttpRoutes());
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(absl::StrContains(s.status().message(), "my.cert")) << s.status();
  o.tls->cert_file = certs_ + "/internal.pem";
  o.tls->key_file = other_ + "/internal.key";  // not the certificate's key
  s = HttpServer::Start(o, HttpRoutes());
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(absl::StrContains(s.status().message(), "my.key")) << s.status();
}

TEST(HttpRoutesTest, TargetsAndMultipartBodies) {
  std::string path;
  std::multimap<std::string, std::string> params;
  ASSERT_TRUE(ParseTarget("/a%2Fb/c?x=1&y&x=%zz&z=a+b#frag", &path, &params).ok());
  EXPECT_EQ(path, "/a/b/c");
  ASSERT_EQ(params.count("x"), 2u);
  EXPECT_EQ(params.find("y")->second, "");
  EXPECT_EQ(params.find("z")->second, "a b");
  EXPECT_FALSE(ParseTarget("http://elsewhere/", &path, &params).ok());
  EXPECT_FALSE(ParseTarget("", &path, &params).ok());
  EXPECT_EQ(PercentDecode("%", false), "%");
  EXPECT_EQ(PercentDecode("%4", false), "%4");
  EXPECT_EQ(PercentDecode("a+%41", false), "a+A");

  std::multimap<std::string, HttpFormPart> parts;  // views into the bodies below
  const std::string x = "x", no_parts = "no parts";
  EXPECT_FALSE(ParseMultipartFormData("multipart/form-data", x, &parts).ok());
  EXPECT_FALSE(ParseMultipartFormData("multipart/form-data; boundary=b", no_parts, &parts).ok());
  const std::string two =
      "--b\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n"
      "--b\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n2\r\n"
      "--b--";
  ASSERT_TRUE(ParseMultipartFormData("multipart/form-data; boundary=\"b\"", two, &parts).ok());
  ASSERT_EQ(parts.count("a"), 2u);
  EXPECT_EQ(parts.find("a")->second.content, "1");
  // A ';' inside a quoted file name is part of it.
  const std::string quoted =
      "--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a;b \\\"c\\\".so\"\r\n\r\n"
      "x\r\n--b--";
  ASSERT_TRUE(ParseMultipartFormData("multipart/form-data; boundary=b", quoted, &parts).ok());
  EXPECT_EQ(parts.find("f")->second.filename, "a;b \"c\".so");
  // More parts than any upload needs: refused, as are more form parameters than any request
  // needs.
  std::string many;
  for (int i = 0; i < 200; ++i) many += "--b\r\n\r\nv\r\n";
  many += "--b--";
  EXPECT_FALSE(ParseMultipartFormData("multipart/form-data; boundary=b", many, &parts).ok());
  std::string form;
  for (int i = 0; i < 2000; ++i) form += "a&";
  std::multimap<std::string, std::string> form_params;
  EXPECT_FALSE(ParseQuery(form, &form_params).ok());
  EXPECT_TRUE(ParseQuery("a=1&b", &form_params).ok());
}

}  // namespace
}  // namespace sluice
