// Host names of listeners: a name that does not resolve is reported as such (naming it and its
// configuration key), and a daemon bound to a name listens on every address the name resolves
// to. On a standard Debian /etc/hosts "localhost" is ::1 first and 127.0.0.1; clients that try
// 127.0.0.1 must reach the JobManager and its REST server all the same. Loopback only.
#include "common/net.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <iostream>

#include "common/config.h"
#include "jobmanager/job_manager.h"
#include "taskmanager/task_manager.h"

namespace sluice {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

// A name under .invalid, which never resolves (RFC 2606).
constexpr char kNoSuchHost[] = "no-such-host.sluice.invalid";

Configuration LoopbackConfig() {
  Configuration c;
  EXPECT_TRUE(c.Set("jobmanager.rpc.port", "0").ok());
  EXPECT_TRUE(c.Set("jobmanager.bind-host", "127.0.0.1").ok());
  EXPECT_TRUE(c.Set("jobmanager.rpc.address", "127.0.0.1").ok());
  EXPECT_TRUE(c.Set("rest.port", "0").ok());
  EXPECT_TRUE(c.Set("rest.bind-address", "127.0.0.1").ok());
  EXPECT_TRUE(c.Set("taskmanager.bind-host", "127.0.0.1").ok());
  EXPECT_TRUE(c.Set("taskmanager.host", "127.0.0.1").ok());
  return c;
}

TEST(ResolveHostTest, NumericAddressesResolveToThemselves) {
  auto v4 = ResolveHost("127.0.0.1");
  ASSERT_TRUE(v4.ok()) << v4.status();
  EXPECT_THAT(*v4, ElementsAre("127.0.0.1"));
  auto v6 = ResolveHost("[::1]");
  ASSERT_TRUE(v6.ok()) << v6.status();
  EXPECT_THAT(*v6, ElementsAre("::1"));
}

TEST(ResolveHostTest, LocalhostResolvesToLoopbackAddressesOnly) {
  auto addresses = ResolveHost("localhost");
  ASSERT_TRUE(addresses.ok()) << addresses.status();
  ASSERT_FALSE(addresses->empty());
  for (const std::string& a : *addresses) {
    EXPECT_TRUE(a == "::1" || a.rfind("127.", 0) == 0) << a;
  }
  std::vector<std::string> sorted = *addresses;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(std::unique(sorted.begin(), sorted.end()), sorted.end()) << "duplicates";
}

TEST(ResolveHostTest, ANameThatDoesNotResolveIsNamedWithItsKey) {
  auto r = ResolveHost(kNoSuchHost, "jobmanager.bind-host");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr(kNoSuchHost));
  EXPECT_THAT(r.status().message(), HasSubstr("jobmanager.bind-host"));
  EXPECT_THAT(r.status().message(), HasSubstr("does not resolve"));
  EXPECT_FALSE(ResolveHost("").ok());
}

TEST(CanBindAddressTest, LoopbackYesForeignNo) {
  EXPECT_TRUE(CanBindAddress("127.0.0.1"));
  EXPECT_FALSE(CanBindAddress("192.0.2.1"));  // TEST-NET-1: never an address of this machine
  EXPECT_FALSE(CanBindAddress("not an address"));
}

// Each daemon's bind name: an unresolvable one fails with its name and key, not "port in use".
TEST(BindHostTest, JobManagerNamesABindHostThatDoesNotResolve) {
  Configuration conf = LoopbackConfig();
  ASSERT_TRUE(conf.Set("jobmanager.bind-host", kNoSuchHost).ok());
  auto jm = JobManager::Start(conf);
  ASSERT_FALSE(jm.ok());
  EXPECT_THAT(jm.status().message(), HasSubstr(kNoSuchHost));
  EXPECT_THAT(jm.status().message(), HasSubstr("jobmanager.bind-host"));
  EXPECT_THAT(jm.status().message(), Not(HasSubstr("port in use")));
}

TEST(BindHostTest, TaskManagerNamesABindHostThatDoesNotResolve) {
  Configuration conf = LoopbackConfig();
  ASSERT_TRUE(conf.Set("jobmanager.rpc.port", "1").ok());  // never reached
  ASSERT_TRUE(conf.Set("taskmanager.bind-host", kNoSuchHost).ok());
  auto tm = TaskManager::Start(conf);
  ASSERT_FALSE(tm.ok());
  EXPECT_THAT(tm.status().message(), HasSubstr(kNoSuchHost));
  EXPECT_THAT(tm.status().message(), HasSubstr("taskmanager.bind-host"));
}

}  // namespace
}  // namespace sluice
