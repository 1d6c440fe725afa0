// Internal TLS (security.ssl.internal.*, common/internal_tls.h) on a real cluster: with it, word
// count runs through the CLI and the daemons; a TaskManager whose certificate comes from another
// CA cannot register; clients with the other CA's certificate, or in plain text, reach neither
// the JobManager nor a TaskManager (so they cannot fetch a library or read a partition); and the
// daemons log the refused handshakes with the peers' addresses. Bad files are refused at start
// naming the key.
#include "common/internal_tls.h"

#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "client/job_client.h"
#include "common/config.h"
#include "integration/harness.h"
#include "proto/data_exchange.grpc.pb.h"
#include "proto/jobmanager.grpc.pb.h"
#include "proto/taskmanager.grpc.pb.h"

namespace sluice::itest {
namespace {

using namespace std::chrono_literals;

// This process's channels present the certificate in `certs` and trust the CA in `trust`
// (folders made by deploy/gen-certs.sh; `trust` defaults to `certs`), or use plain text.
void UseCertificates(const std::string& certs, std::string trust = "") {
  if (trust.empty()) trust = certs;
  Configuration c;
  if (!certs.empty()) {
    ASSERT_TRUE(c.Set("security.ssl.internal.enabled", "true").ok());
    ASSERT_TRUE(c.Set("security.ssl.internal.key", certs + "/internal.key").ok());
    ASSERT_TRUE(c.Set("security.ssl.internal.cert", certs + "/internal.pem").ok());
    ASSERT_TRUE(c.Set("security.ssl.internal.trust-cert", trust + "/ca.pem").ok());
  }
  absl::Status s = ConfigureInternalTls(c);
  ASSERT_TRUE(s.ok()) << s;
}

// One call to each gRPC service of the cluster with this process's credentials, as
// (service, status code): UNAVAILABLE when the connection itself was refused.
std::vector<std::pair<std::string, grpc::StatusCode>> CallEachService(TestCluster& cluster) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // a connection of its own, new credentials
  auto channel = [&](const std::string& address) {
    return grpc::CreateCustomChannel(address, InternalChannelCredentials(), args);
  };
  auto deadline = [](grpc::ClientContext& c) {
    c.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(3));
  };
  std::vector<std::pair<std::string, grpc::StatusCode>> codes;
  {  // a library download from the JobManager
    auto stub = proto::JobManagerService::NewStub(channel(cluster.jm_address()));
    grpc::ClientContext c;
    deadline(c);
    proto::UploadLibraryResponse which;
    which.set_sha256(std::string(64, '0'));
    auto reader = stub->DownloadLibrary(&c, which);
    proto::LibraryChunk chunk;
    while (reader->Read(&chunk)) {
    }
    codes.emplace_back("JobManagerService.DownloadLibrary", reader->Finish().error_code());
  }
  {  // a TaskManager's control call
    auto stub = proto::TaskExecutorService::NewStub(channel(cluster.tm_address(0)));
    grpc::ClientContext c;
    deadline(c);
    proto::Empty req;
    proto::LogList logs;
    codes.emplace_back("TaskExecutorService.ListLogs", stub->ListLogs(&c, req, &logs).error_code());
  }
  {  // a partition read from a TaskManager's data exchange
    auto stub = proto::DataExchangeService::NewStub(channel(cluster.tm_address(0)));
    grpc::ClientContext c;
    deadline(c);
    auto stream = stub->Subscribe(&c);
    proto::SubscribeRequest req;
    req.set_partition_id("no-such-partition");
    req.set_credits(1);
    stream->Write(req);
    stream->WritesDone();
    proto::NetworkBuffer buffer;
    while (stream->Read(&buffer)) {
    }
    codes.emplace_back("DataExchangeService.Subscribe", stream->Finish().error_code());
  }
  return codes;
}

std::string GenCerts(const std::string& dir) {
  const char* src = std::getenv("SLUICE_SOURCE_DIR");
  if (src == nullptr) return "";
  CommandResult r = RunCommand({std::string(src) + "/deploy/gen-certs.sh", dir},
                               std::filesystem::path(dir).parent_path().string(), 60s);
  return r.exit_code == 0 ? dir : "";
}

TEST(InternalTlsTest, AClusterWithTlsRunsWordCountAndRefusesStrangers) {
  ClusterOptions o;
  o.task_managers = 2;
  o.slots_per_task_manager = 2;
  o.internal_tls = true;
  TestCluster cluster(o);
  SLUICE_ASSERT_OK(cluster.Start());
  // The data exchange between the two TaskManagers runs over TLS too (parallelism 2 over 2 of
  // them, with a shuffle).
  EXPECT_TRUE(cluster.RunsASmallJob(2));
  const std::string input = cluster.dir() + "/words.txt";
  ASSERT_TRUE(WriteFile(input, "to be or not to be\n"));
  CommandResult wc = cluster.Cli({"run", "-p", "2", ExampleLibrary("wordcount"), "--", "--input",
                                  input, "--output", cluster.dir() + "/counts"},
                                 90s);
  ASSERT_EQ(wc.exit_code, 0) << wc.Describe();
  EXPECT_TRUE(absl::StrContains(wc.out, "FINISHED")) << wc.Describe();
  std::map<std::string, int64_t> counts;
  for (const auto& [file, lines] : ReadPartFiles(cluster.dir() + "/counts")) {
    for (const auto& line : lines) {
      size_t comma = line.rfind(',');
      ASSERT_NE(comma, std::string::npos) << line;
      auto& c = counts[line.substr(0, comma)];
      c = std::max(c, static_cast<int64_t>(std::stoll(line.substr(comma + 1))));
    }
  }
  EXPECT_EQ(counts, (std::map<std::string, int64_t>{{"to", 2}, {"be", 2}, {"or", 1}, {"not", 1}}));

  // The CLI without the certificates: refused (plain text to a TLS port).
  CommandResult plain = RunCli({"list", "-m", cluster.jm_address()}, cluster.dir(), 60s);
  EXPECT_NE(plain.exit_code, 0) << plain.Describe();

  // A client of another CA, and one in plain text, reach none of the three services: the
  // JobManager's (which serves the libraries), a TaskManager's control calls and its data
  // exchange (the partitions). A client with the cluster's certificate reaches each: its calls
  // fail for what they ask (no such library or partition), not for the connection.
  const std::string other = GenCerts(cluster.dir() + "/other-ca");
  ASSERT_FALSE(other.empty());
  const std::string own = cluster.dir() + "/certs";
  // The JobManager's log lines of refused handshakes of each kind, counted before the clients
  // below (the CLI's REST probe above may have left some already).
  auto count = [&](const std::vector<std::string>& needles) {
    const std::string log = cluster.JobManagerLog();
    size_t n = 0;
    for (const std::string& needle : needles) {
      for (size_t at = log.find(needle); at != std::string::npos; at = log.find(needle, at + 1)) {
        ++n;
      }
    }
    return n;
  };
  const std::vector<std::string> kUnverified = {"certificate verify failed",
                                                "certificate signature failure"};
  const std::vector<std::string> kPlainText = {"http request", "wrong version number"};
  const size_t unverified_before = count(kUnverified), plain_before = count(kPlainText);
  struct Client {
    std::string certs, trust, what;
    bool admitted;
  };
  for (const Client& cl : {Client{own, "", "the cluster's certificate", true},
                           Client{other, "", "another CA's certificate, trusting that CA", false},
                           Client{other, own, "another CA's certificate, trusting ours", false},
                           Client{"", "", "plain text", false}}) {
    UseCertificates(cl.certs, cl.trust);
    for (const auto& [service, code] : CallEachService(cluster)) {
      if (cl.admitted) {
        EXPECT_NE(code, grpc::StatusCode::UNAVAILABLE) << cl.what << ", " << service;
      } else {
        EXPECT_EQ(code, grpc::StatusCode::UNAVAILABLE) << cl.what << ", " << service;
      }
    }
  }
  // The JobManager logs the handshakes it refused: the certificate it could not verify, and
  // the plain-text client.
  EXPECT_TRUE(WaitUntil(
      [&] { return count(kUnverified) > unverified_before && count(kPlainText) > plain_before; },
      10s))
      << LastLines(cluster.JobManagerLog(), 20);
  // Each daemon names the refused peers (this process, on 127.0.0.1) with gRPC's reason: three
  // clients refused, one connection each to the JobManager, and at least one to the TaskManager
  // (its two services share a port; gRPC may retry).
  auto named = [](const std::string& log, const std::string& server) {
    std::vector<std::string> lines;
    const std::string needle = server + ": refused the connection from 127.0.0.1:";
    for (size_t at = log.find(needle); at != std::string::npos; at = log.find(needle, at + 1)) {
      lines.push_back(log.substr(at, log.find('\n', at) - at));
    }
    return lines;
  };
  EXPECT_TRUE(
      WaitUntil([&] { return named(cluster.JobManagerLog(), "JobManager").size() >= 3; }, 10s))
      << LastLines(cluster.JobManagerLog(), 20);
  for (const std::string& line : named(cluster.JobManagerLog(), "JobManager")) {
    EXPECT_TRUE(absl::StrContains(line, "its TLS handshake failed (Handshake failed")) << line;
  }
  EXPECT_TRUE(
      WaitUntil([&] { return named(cluster.TaskManagerLog(0), "TaskManager").size() >= 3; }, 10s))
      << LastLines(cluster.TaskManagerLog(0), 20);

  // A TaskManager with another CA's certificate cannot register, even trusting our CA (so that
  // only the JobManager's refusal stops it): its attempts are refused until it is stopped.
  auto refusals = [&] { return count({"Handshake failed"}); };
  const size_t refused_before = refusals();
  std::vector<std::string> argv = {BinDir() + "/sluice-taskmanager",
                                   "-D",
                                   absl::StrCat("jobmanager.rpc.port=", cluster.jm_port()),
                                   "-D",
                                   "jobmanager.rpc.address=127.0.0.1",
                                   "-D",
                                   "taskmanager.host=127.0.0.1",
                                   "-D",
                                   "taskmanager.bind-host=127.0.0.1",
                                   "-D",
                                   "security.ssl.internal.enabled=true",
                                   "-D",
                                   "security.ssl.internal.key=" + other + "/internal.key",
                                   "-D",
                                   "security.ssl.internal.cert=" + other + "/internal.pem",
                                   "-D",
                                   "security.ssl.internal.trust-cert=" + own + "/ca.pem"};
  auto rogue =
      ChildProcess::Start(argv, cluster.dir() + "/rogue.out", cluster.dir() + "/rogue.log");
  ASSERT_TRUE(rogue.ok()) << rogue.status();
  const size_t named_before = named(cluster.JobManagerLog(), "JobManager").size();
  EXPECT_TRUE(WaitUntil([&] { return refusals() >= refused_before + 2; }, 20s))
      << LastLines(cluster.JobManagerLog(), 20);
  EXPECT_TRUE(WaitUntil(
      [&] { return named(cluster.JobManagerLog(), "JobManager").size() >= named_before + 2; }, 10s))
      << LastLines(cluster.JobManagerLog(), 20);
  (*rogue)->Stop();
  EXPECT_FALSE(absl::StrContains(ReadFile(cluster.dir() + "/rogue.log"), "registered at"))
      << ReadFile(cluster.dir() + "/rogue.log");
  UseCertificates(cluster.dir() + "/certs");
  auto ov = cluster.client().Overview();
  ASSERT_TRUE(ov.ok()) << ov.status();
  EXPECT_EQ(ov->task_managers_size(), 2);
  // Every refused connection is logged with its peer's address: as refused, matched to gRPC's
  // line, or (when the listener saw it end too late to match) as ended before any call.
  auto grpc_refusals = [&] { return count({"): Handshake failed"}); };  // gRPC's own lines
  auto logged = [&] {
    return named(cluster.JobManagerLog(), "JobManager").size() +
           count({"JobManager: the connection from 127.0.0.1:"});
  };
  EXPECT_TRUE(WaitUntil([&] { return logged() >= grpc_refusals(); }, 10s))
      << logged() << " logged, " << grpc_refusals() << " refused\n"
      << LastLines(cluster.JobManagerLog(), 30);
  EXPECT_TRUE(cluster.IsHealthy());
}

TEST(InternalTlsTest, BadCertificateFilesAreRefusedAtStartNamingTheKey) {
  const std::string dir = MakeTempDir();
  const std::string certs = GenCerts(dir + "/certs");
  ASSERT_FALSE(certs.empty());
  ASSERT_TRUE(WriteFile(dir + "/not-pem.txt", "hello"));
  struct Case {
    std::string key, cert, trust, expect;
  };
  const std::vector<Case> cases = {
      {certs + "/missing.key", certs + "/internal.pem", certs + "/ca.pem",
       "security.ssl.internal.key"},
      {certs + "/internal.key", dir + "/not-pem.txt", certs + "/ca.pem",
       "security.ssl.internal.cert"},
      {certs + "/internal.key", certs + "/internal.pem", dir + "/not-pem.txt",
       "security.ssl.internal.trust-cert"},
      {certs + "/ca.key", certs + "/internal.pem", certs + "/ca.pem", "does not belong"},
  };
  for (const Case& c : cases) {
    CommandResult r = RunCommand(
        {BinDir() + "/sluice-jobmanager", "-D", "jobmanager.rpc.port=0", "-D", "rest.port=-1", "-D",
         "security.ssl.internal.enabled=true", "-D", "security.ssl.internal.key=" + c.key, "-D",
         "security.ssl.internal.cert=" + c.cert, "-D",
         "security.ssl.internal.trust-cert=" + c.trust},
        dir, 30s);
    EXPECT_EQ(r.exit_code, 2) << r.Describe();
    EXPECT_TRUE(absl::StrContains(r.err, c.expect)) << r.Describe();
  }
  // security.refuse-root: the daemons will not run as root (the tests may run as root).
  if (::geteuid() == 0) {
    for (const std::string daemon : {"sluice-jobmanager", "sluice-taskmanager"}) {
      CommandResult r = RunCommand({BinDir() + "/" + daemon, "-D", "jobmanager.rpc.port=0", "-D",
                                    "rest.port=-1", "-D", "security.refuse-root=true"},
                                   dir, 30s);
      EXPECT_EQ(r.exit_code, 2) << r.Describe();
      EXPECT_TRUE(absl::StrContains(r.err, "security.refuse-root")) << r.Describe();
    }
  }
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

}  // namespace
}  // namespace sluice::itest
