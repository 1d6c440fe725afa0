#include "jobmanager/ha/ha_options.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace sluice::ha {
namespace {

using ::testing::HasSubstr;

Configuration Zk(std::vector<std::string> more = {}) {
  Configuration conf;
  EXPECT_TRUE(conf.Set("high-availability.type", "zookeeper").ok());
  EXPECT_TRUE(conf.Set("high-availability.zookeeper.quorum", "127.0.0.1:2181,zk2:2182").ok());
  EXPECT_TRUE(conf.Set("high-availability.storageDir", "/tmp/ha").ok());
  EXPECT_TRUE(conf.ApplyOverrides(more).ok());
  return conf;
}

TEST(HaOptionsTest, NoneByDefault) {
  auto o = HaOptions::FromConfiguration(Configuration());
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_FALSE(o->enabled);
}

TEST(HaOptionsTest, ZooKeeperDefaults) {
  auto o = HaOptions::FromConfiguration(Zk());
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_TRUE(o->enabled);
  EXPECT_EQ(o->quorum, "127.0.0.1:2181,zk2:2182");
  EXPECT_EQ(o->cluster_path, "/sluice/default");
  EXPECT_EQ(o->session_timeout_ms, 6000);
  EXPECT_EQ(o->connection_timeout_ms, 3000);
  EXPECT_EQ(o->first_port, 0);
  EXPECT_EQ(o->last_port, 0);
}

TEST(HaOptionsTest, PathsPortsAndTimeouts) {
  auto o = HaOptions::FromConfiguration(
      Zk({"high-availability.zookeeper.path.root=/streams/", "high-availability.cluster-id=prod",
          "high-availability.jobmanager.port=50100-50200",
          "high-availability.zookeeper.client.session-timeout=2 s"}));
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->cluster_path, "/streams/prod");
  EXPECT_EQ(o->first_port, 50100);
  EXPECT_EQ(o->last_port, 50200);
  EXPECT_EQ(o->session_timeout_ms, 2000);
  o = HaOptions::FromConfiguration(Zk({"high-availability.jobmanager.port=6124"}));
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->first_port, 6124);
  EXPECT_EQ(o->last_port, 6124);
}

TEST(HaOptionsTest, TypeIsAChoice) {
  Configuration conf;
  absl::Status s = conf.Set("high-availability.type", "etcd");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("high-availability.type"));
}

TEST(HaOptionsTest, BadValuesNameTheirKey) {
  struct Case {
    std::vector<std::string> overrides;
    std::string key;
  };
  for (const Case& c : std::vector<Case>{
           {{"high-availability.zookeeper.quorum="}, "high-availability.zookeeper.quorum"},
           {{"high-availability.zookeeper.quorum=zk1"}, "high-availability.zookeeper.quorum"},
           {{"high-availability.zookeeper.quorum=zk1:99999"}, "high-availability.zookeeper.quorum"},
           {{"high-availability.zookeeper.quorum=zk1:2181/chroot"},
            "high-availability.zookeeper.quorum"},
           {{"high-availability.storageDir="}, "high-availability.storageDir"},
           {{"high-availability.zookeeper.path.root=/a//b"},
            "high-availability.zookeeper.path.root"},
           {{"high-availability.cluster-id=/x/../y"}, "high-availability.cluster-id"},
           {{"high-availability.jobmanager.port=abc"}, "high-availability.jobmanager.port"},
           {{"high-availability.jobmanager.port=50200-50100"}, "high-availability.jobmanager.port"},
           {{"high-availability.zookeeper.client.session-timeout=0 s"},
            "high-availability.zookeeper.client.session-timeout"},
       }) {
    auto o = HaOptions::FromConfiguration(Zk(c.overrides));
    ASSERT_FALSE(o.ok()) << c.overrides[0];
    EXPECT_EQ(o.status().code(), absl::StatusCode::kInvalidArgument) << o.status();
    EXPECT_THAT(o.status().message(), HasSubstr(c.key)) << o.status();
  }
}

TEST(HaOptionsTest, JoinPath) {
  EXPECT_EQ(JoinPath("/sluice", "/default"), "/sluice/default");
  EXPECT_EQ(JoinPath("/a/", "b/"), "/a/b");
  EXPECT_EQ(JoinPath("/", "x"), "/x");
  EXPECT_EQ(JoinPath("/a", ""), "/a");
}

}  // namespace
}  // namespace sluice::ha
