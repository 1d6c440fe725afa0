// A daemon's start-up checks (CheckStartupSecurity): security.refuse-root refuses root, and a
// daemon that listens beyond the loopback interface without the protection its port needs
// (internal TLS; a REST token and HTTPS) says so in a warning naming the key. Nothing binds:
// the checks only resolve the configured hosts.
#include <gtest/gtest.h>
#include <unistd.h>

#include <memory>
#include <sstream>
#include <string>

#include "absl/strings/match.h"
#include "common/config.h"
#include "common/internal_tls.h"
#include "spdlog/sinks/ostream_sink.h"
#include "spdlog/spdlog.h"

namespace sluice {
namespace {

// The warnings CheckStartupSecurity logs for `settings`.
std::string WarningsFor(const std::vector<std::pair<std::string, std::string>>& settings) {
  Configuration conf;
  for (const auto& [k, v] : settings) EXPECT_TRUE(conf.Set(k, v).ok()) << k;
  std::ostringstream out;
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>(
      "test", std::make_shared<spdlog::sinks::ostream_sink_mt>(out)));
  absl::Status s = CheckStartupSecurity(conf, {"jobmanager.bind-host"}, "rest.bind-address");
  spdlog::set_default_logger(previous);
  EXPECT_TRUE(s.ok()) << s;
  return out.str();
}

TEST(StartupSecurityTest, LoopbackNeedsNothing) {
  EXPECT_EQ(WarningsFor({}), "");  // both default to localhost
  EXPECT_EQ(WarningsFor({{"jobmanager.bind-host", "127.0.0.1"}, {"rest.bind-address", "::1"}}), "");
}

TEST(StartupSecurityTest, BeyondLoopbackWithoutTlsOrTokenWarnsNamingTheKey) {
  std::string w = WarningsFor({{"jobmanager.bind-host", "0.0.0.0"}});
  EXPECT_TRUE(absl::StrContains(w, "jobmanager.bind-host is 0.0.0.0")) << w;
  EXPECT_TRUE(absl::StrContains(w, "security.ssl.internal.enabled")) << w;
  EXPECT_FALSE(absl::StrContains(w, "rest.bind-address")) << w;

  w = WarningsFor({{"rest.bind-address", "0.0.0.0"}});
  EXPECT_TRUE(absl::StrContains(w, "rest.bind-address is 0.0.0.0")) << w;
  EXPECT_TRUE(absl::StrContains(w, "without a token")) << w;
  EXPECT_FALSE(absl::StrContains(w, "jobmanager.bind-host")) << w;

  // A token in plain text can be read on the way.
  w = WarningsFor(
      {{"rest.bind-address", "0.0.0.0"}, {"security.rest.auth.token-file", "/etc/sluice/token"}});
  EXPECT_TRUE(absl::StrContains(w, "in plain text")) << w;
  EXPECT_TRUE(absl::StrContains(w, "security.ssl.rest.enabled")) << w;

  // With both, the REST API is as protected as Sluice makes it.
  EXPECT_EQ(WarningsFor({{"rest.bind-address", "0.0.0.0"},
                         {"security.rest.auth.token-file", "/etc/sluice/token"},
                         {"security.ssl.rest.enabled", "true"}}),
            "");
}

TEST(StartupSecurityTest, RefuseRootRefusesRoot) {
  Configuration conf;
  ASSERT_TRUE(conf.Set("security.refuse-root", "true").ok());
  absl::Status s = CheckStartupSecurity(conf, {});
  if (::geteuid() == 0) {
    EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_TRUE(absl::StrContains(s.message(), "security.refuse-root")) << s;
  } else {
    EXPECT_TRUE(s.ok()) << s;
  }
  ASSERT_TRUE(conf.Set("security.refuse-root", "false").ok());
  EXPECT_TRUE(CheckStartupSecurity(conf, {}).ok());
}

}  // namespace
}  // namespace sluice
