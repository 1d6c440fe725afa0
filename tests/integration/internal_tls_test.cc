// Internal TLS (security.ssl.internal.*, common/internal_tls.h) on a real cluster: with it, word
// count runs through the CLI and the daemons; a TaskManager whose certificate comes from another
// CA cannot register; clients with the other CA's certificate, or in plain text, reach neither
// the JobManager nor a TaskManager (so they cannot fetch a library or read a partition); and the
// JobManager logs the refused handshakes. Bad files are refused at start naming the key.
#include "common/internal_tls.h"

#include <filesystem>
#include <map>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "client/job_client.h"
#include "common/config.h"
#include "integration/harness.h"

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

  // A client of another CA, and one in plain text: neither gets an answer from the JobManager
  // or from a TaskManager (its library downloads and partitions are behind the same port).
  const std::string other = GenCerts(cluster.dir() + "/other-ca");
  ASSERT_FALSE(other.empty());
  struct Stranger {
    std::string certs, trust, what;
  };
  const std::string own = cluster.dir() + "/certs";
  for (const Stranger& st : {Stranger{other, "", "another CA's certificate, trusting that CA"},
                             Stranger{other, own, "another CA's certificate, trusting ours"},
                             Stranger{"", "", "plain text"}}) {
    UseCertificates(st.certs, st.trust);
    JobClient stranger(cluster.jm_address(), 3s);
    auto ov = stranger.Overview();
    EXPECT_FALSE(ov.ok()) << st.what;
    JobClient at_tm(cluster.tm_address(0), 3s);
    EXPECT_FALSE(at_tm.Overview().ok()) << st.what;
  }
  // The JobManager logs the handshakes it refused: the certificate it could not verify, and
  // the plain-text client.
  EXPECT_TRUE(WaitUntil(
      [&] {
        const std::string log = cluster.JobManagerLog();
        return absl::StrContains(log, "Handshake failed") &&
               (absl::StrContains(log, "certificate verify failed") ||
                absl::StrContains(log, "certificate signature failure")) &&
               (absl::StrContains(log, "http request") ||
                absl::StrContains(log, "wrong version number"));
      },
      10s))
      << LastLines(cluster.JobManagerLog(), 20);

  // A TaskManager with the other CA's certificate cannot register.
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
                                   "security.ssl.internal.trust-cert=" + other + "/ca.pem"};
  auto rogue =
      ChildProcess::Start(argv, cluster.dir() + "/rogue.out", cluster.dir() + "/rogue.log");
  ASSERT_TRUE(rogue.ok()) << rogue.status();
  std::this_thread::sleep_for(3s);
  (*rogue)->Stop();
  EXPECT_FALSE(absl::StrContains(ReadFile(cluster.dir() + "/rogue.log"), "registered at"))
      << ReadFile(cluster.dir() + "/rogue.log");
  UseCertificates(cluster.dir() + "/certs");
  auto ov = cluster.client().Overview();
  ASSERT_TRUE(ov.ok()) << ov.status();
  EXPECT_EQ(ov->task_managers_size(), 2);
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
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

}  // namespace
}  // namespace sluice::itest
