// A configuration for daemons started inside a unit test: every listener on 127.0.0.1, every
// port chosen at run time.
#pragma once

#include <gtest/gtest.h>

#include "common/config.h"

namespace sluice {

inline Configuration LoopbackConfig() {
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

}  // namespace sluice
