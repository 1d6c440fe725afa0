// sluice-kafka-dev (connectors/kafka/dev/): a mock Kafka cluster that kcat, a client independent
// of Sluice, can write to and read from; its commands answer one line each, a bad one names the
// bad part and leaves the cluster running, and SIGTERM ends it with exit code 0.
#include "integration/kafka_dev.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "integration/harness.h"

namespace sluice::itest {
namespace {

using namespace std::chrono_literals;

::testing::AssertionResult Contains(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "'" << part << "' is not in '" << text << "'";
}

std::vector<std::string> Numbered(const std::string& prefix, int n) {
  std::vector<std::string> lines;
  for (int i = 0; i < n; ++i) lines.push_back(absl::StrCat(prefix, i));
  return lines;
}

std::vector<std::string> Sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

TEST(KafkaDevTest, FirstLineIsTheBootstrapListAndKcatRoundTrips) {
  KafkaDev kafka;
  SLUICE_ASSERT_OK(kafka.Start(3, {{"orders", 3}, {"single", 1}}));
  static const std::regex kBootstrap(R"(127\.0\.0\.1:\d+,127\.0\.0\.1:\d+,127\.0\.0\.1:\d+)");
  EXPECT_TRUE(std::regex_match(kafka.bootstrap(), kBootstrap)) << kafka.bootstrap();
  EXPECT_EQ(kafka.Output().substr(0, kafka.Output().find('\n')), kafka.bootstrap());

  const std::vector<std::string> sent = Numbered("order-", 30);
  SLUICE_ASSERT_OK(KcatProduce(kafka.bootstrap(), "orders", sent));
  SLUICE_ASSIGN_OR_FAIL(std::vector<std::string> got, KcatConsume(kafka.bootstrap(), "orders"));
  EXPECT_EQ(Sorted(got), Sorted(sent));

  // Keys and an explicit partition.
  SLUICE_ASSERT_OK(KcatProduce(kafka.bootstrap(), "orders", {"k1:v1", "k2:v2"}, 2, ":"));
  SLUICE_ASSIGN_OR_FAIL(std::vector<KcatRecord> records,
                        KcatConsumeRecords(kafka.bootstrap(), "orders"));
  ASSERT_EQ(records.size(), 32u);
  std::vector<KcatRecord> keyed;
  for (const KcatRecord& r : records) {
    if (!r.key.empty()) keyed.push_back(r);
  }
  ASSERT_EQ(keyed.size(), 2u);
  EXPECT_EQ(keyed[0].partition, 2);
  EXPECT_EQ(keyed[0].key, "k1");
  EXPECT_EQ(keyed[0].value, "v1");
  EXPECT_EQ(keyed[1].key, "k2");
  EXPECT_EQ(keyed[1].offset, keyed[0].offset + 1);

  SLUICE_EXPECT_OK(kafka.Stop());
}

TEST(KafkaDevTest, CreateTopicMakesAWritableTopic) {
  KafkaDev kafka;
  SLUICE_ASSERT_OK(kafka.Start(3, {}));
  SLUICE_ASSERT_OK(kafka.Command("create-topic fresh 2"));
  SLUICE_ASSERT_OK(KcatProduce(kafka.bootstrap(), "fresh", {"a", "b"}, 1));
  SLUICE_ASSIGN_OR_FAIL(std::vector<KcatRecord> records,
                        KcatConsumeRecords(kafka.bootstrap(), "fresh"));
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0].partition, 1);
  EXPECT_EQ(records[0].value, "a");
  EXPECT_EQ(records[1].value, "b");
  // The topic exists now: creating it again is refused.
  absl::Status again = kafka.Command("create-topic fresh 2");
  EXPECT_FALSE(again.ok());
  EXPECT_TRUE(Contains(std::string(again.message()), "fresh"));
  SLUICE_EXPECT_OK(kafka.Stop());
}

TEST(KafkaDevTest, FaultCommandsAnswerOkAndTheClusterServesAfterBrokerUp) {
  KafkaDev kafka;
  SLUICE_ASSERT_OK(kafka.Start(3, {{"t", 3}}));
  SLUICE_ASSERT_OK(KcatProduce(kafka.bootstrap(), "t", Numbered("before-", 10)));

  SLUICE_ASSERT_OK(kafka.Command("broker-down 2"));
  SLUICE_ASSERT_OK(kafka.Command("broker-up 2"));
  for (const char* cmd :
       {"ping", "leader t 0 3", "rtt 1 5", "rtt 1 0", "coordinator group g1 3",
        "coordinator transaction tx1 2", "request-errors Produce NOT_LEADER_FOR_PARTITION 2",
        "request-errors 1 6", "clear-errors", "topic-error t 3", "topic-error t 0"}) {
    SLUICE_EXPECT_OK(kafka.Command(cmd));
  }

  SLUICE_ASSERT_OK(KcatProduce(kafka.bootstrap(), "t", Numbered("after-", 10)));
  SLUICE_ASSIGN_OR_FAIL(std::vector<std::string> got, KcatConsume(kafka.bootstrap(), "t"));
  std::vector<std::string> sent = Numbered("before-", 10);
  for (auto& s : Numbered("after-", 10)) sent.push_back(s);
  EXPECT_EQ(Sorted(got), Sorted(sent));
  SLUICE_EXPECT_OK(kafka.Stop());
}

TEST(KafkaDevTest, MalformedCommandsNameTheBadPartAndLeaveItRunning) {
  KafkaDev kafka;
  SLUICE_ASSERT_OK(kafka.Start(3, {{"t", 1}}));
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"frobnicate 1 2", "frobnicate"},
      {"broker-down seven", "seven"},
      {"broker-down 9", "'9'"},
      {"broker-up", "ID"},
      {"create-topic x notanumber", "notanumber"},
      {"create-topic bad/name 1", "bad/name"},
      {"leader t zero 1", "zero"},
      {"coordinator cluster k 1", "cluster"},
      {"rtt 1 -5", "-5"},
      {"request-errors Produce NOPE", "NOPE"},
      {"request-errors NoSuchApi 6", "NoSuchApi"},
      {"request-errors 0 6 many", "many"},
      {"topic-error t 123456", "123456"},
  };
  for (const auto& [cmd, token] : bad) {
    absl::Status s = kafka.Command(cmd);
    EXPECT_TRUE(absl::IsInvalidArgument(s)) << cmd << ": " << s;
    EXPECT_TRUE(Contains(std::string(s.message()), "error: ")) << cmd;
    EXPECT_TRUE(Contains(std::string(s.message()), token)) << cmd;
  }
  ASSERT_TRUE(kafka.Running());
  SLUICE_EXPECT_OK(kafka.Command("ping"));
  SLUICE_ASSERT_OK(KcatProduce(kafka.bootstrap(), "t", {"still", "here"}));
  SLUICE_ASSIGN_OR_FAIL(std::vector<std::string> got, KcatConsume(kafka.bootstrap(), "t"));
  EXPECT_EQ(got, (std::vector<std::string>{"still", "here"}));
  SLUICE_EXPECT_OK(kafka.Stop());
}

TEST(KafkaDevTest, SigtermAndSigintEndItWithExitCodeZero) {
  {
    KafkaDev kafka;
    SLUICE_ASSERT_OK(kafka.Start(1, {{"t", 1}}));
    SLUICE_EXPECT_OK(kafka.Stop());  // SIGTERM
    EXPECT_EQ(kafka.exit_code(), 0);
    EXPECT_TRUE(Contains(kafka.Log(), "stopping"));
  }
  {
    KafkaDev kafka;
    SLUICE_ASSERT_OK(kafka.Start(2, {}));
    ASSERT_GT(kafka.pid(), 0);
    ::kill(kafka.pid(), SIGINT);
    EXPECT_TRUE(WaitUntil([&] { return !kafka.Running(); }, 10s));
    EXPECT_EQ(kafka.exit_code(), 0);
  }
}

}  // namespace
}  // namespace sluice::itest
