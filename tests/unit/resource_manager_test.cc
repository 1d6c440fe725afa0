#include "jobmanager/resource_manager.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "testing_task_manager_gateway.h"

namespace sluice {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Clock = ResourceManager::Clock;

TEST(ResourceManagerTest, RefusesARegistrationWithoutIdAddressOrSlot) {
  TestingTaskManagerGateways gateways;
  ResourceManager rm(gateways.factory());
  Clock::time_point t;
  EXPECT_EQ(rm.Register("", "a:1", 1, 0, t).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(rm.Register("tm", "", 1, 0, t).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(rm.Register("tm", "a:1", 0, 0, t).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(rm.size(), 0u);
}

TEST(ResourceManagerTest, SpreadsSlotsOverTheTaskManagersWithTheMostFree) {
  TestingTaskManagerGateways gateways;
  ResourceManager rm(gateways.factory());
  Clock::time_point t;
  ASSERT_TRUE(*rm.Register("a", "a:1", 2, 0, t));
  ASSERT_TRUE(*rm.Register("b", "b:1", 3, 0, t));
  EXPECT_EQ(rm.TotalSlots(), 5);
  auto slots = rm.AllocateSlots(3);
  ASSERT_TRUE(slots.ok());
  EXPECT_THAT(*slots, ElementsAre("b", "a", "b"));
  EXPECT_EQ(rm.FreeSlots(), 2);
  auto too_many = rm.AllocateSlots(3);
  EXPECT_EQ(too_many.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(too_many.status().message(), HasSubstr("only 2 of 5 are free"));
  EXPECT_EQ(rm.FreeSlots(), 2) << "a refused allocation takes nothing";
  rm.ReleaseSlots(*slots);
  EXPECT_EQ(rm.FreeSlots(), 5);
}

TEST(ResourceManagerTest, ReRegistrationKeepsTheSlotsLiveJobsHold) {
  TestingTaskManagerGateways gateways;
  ResourceManager rm(gateways.factory());
  Clock::time_point t;
  ASSERT_TRUE(*rm.Register("a", "a:1", 4, 0, t));
  ASSERT_TRUE(rm.AllocateSlots(3).ok());
  EXPECT_FALSE(*rm.Register("a", "a:2", 4, /*used=*/3, t)) << "known already";
  EXPECT_EQ(rm.FreeSlots(), 1);
  EXPECT_EQ(rm.Address("a"), "a:2");
  EXPECT_EQ(rm.Gateway("a").get(), &gateways.at("a:2"));
}

TEST(ResourceManagerTest, FindsTaskManagersWhoseHeartbeatsStopped) {
  TestingTaskManagerGateways gateways;
  ResourceManager rm(gateways.factory());
  Clock::time_point t;
  ASSERT_TRUE(rm.Register("a", "a:1", 1, 0, t).ok());
  ASSERT_TRUE(rm.Register("b", "b:1", 1, 0, t).ok());
  EXPECT_TRUE(rm.Heartbeat("b", t + std::chrono::seconds(4)));
  EXPECT_FALSE(rm.Heartbeat("c", t));
  EXPECT_THAT(rm.Expired(t + std::chrono::seconds(6), std::chrono::seconds(5)), ElementsAre("a"));
  rm.Remove("a");
  EXPECT_FALSE(rm.Contains("a"));
  EXPECT_EQ(rm.Gateway("a"), nullptr);
  rm.ReleaseSlots({"a"});  // slots of a forgotten TaskManager are ignored
  auto ov = rm.Overview(t + std::chrono::seconds(6));
  ASSERT_EQ(ov.task_managers_size(), 1);
  EXPECT_EQ(ov.task_managers(0).last_heartbeat_ms(), 2000);
  EXPECT_EQ(ov.total_slots(), 1);
}

}  // namespace
}  // namespace sluice
