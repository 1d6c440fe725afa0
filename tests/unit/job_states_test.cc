#include "common/job_states.h"

#include <gtest/gtest.h>

namespace sluice {
namespace {

TEST(JobStatesTest, NamesAreFlinksWithoutThePrefix) {
  EXPECT_EQ(JobStateName(proto::JOB_RUNNING), "RUNNING");
  EXPECT_EQ(JobStateName(proto::JOB_CANCELLING), "CANCELLING");
  EXPECT_EQ(JobStateName(proto::JOB_RESTARTING), "RESTARTING");
  EXPECT_EQ(TaskStateName(proto::TASK_DEPLOYING), "DEPLOYING");
  EXPECT_EQ(TaskStateName(proto::TASK_CANCELED), "CANCELED");
  EXPECT_EQ(JobStateName(proto::JOB_STATE_UNSPECIFIED), "UNKNOWN");
  EXPECT_EQ(JobStateName(static_cast<proto::JobState>(77)), "UNKNOWN");
  EXPECT_EQ(TaskStateName(proto::TASK_STATE_UNSPECIFIED), "UNKNOWN");
}

TEST(JobStatesTest, OnlyFinishedFailedAndCanceledAreTerminal) {
  for (int s = proto::JobState_MIN; s <= proto::JobState_MAX; ++s) {
    auto state = static_cast<proto::JobState>(s);
    bool terminal =
        state == proto::JOB_FINISHED || state == proto::JOB_FAILED || state == proto::JOB_CANCELED;
    EXPECT_EQ(IsTerminalJobState(state), terminal) << JobStateName(state);
  }
  for (int s = proto::TaskState_MIN; s <= proto::TaskState_MAX; ++s) {
    auto state = static_cast<proto::TaskState>(s);
    bool terminal = state == proto::TASK_FINISHED || state == proto::TASK_FAILED ||
                    state == proto::TASK_CANCELED;
    EXPECT_EQ(IsTerminalTaskState(state), terminal) << TaskStateName(state);
  }
}

}  // namespace
}  // namespace sluice
