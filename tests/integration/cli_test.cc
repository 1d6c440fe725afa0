// The CLI commands that need no cluster: `sluice local` (an embedded cluster in the CLI's
// process) and `sluice info` (the job graph as JSON).
#include <csignal>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unordered_map>

#include "integration/harness.h"

namespace sluice::itest {
namespace {

using namespace std::chrono_literals;

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = MakeTempDir(); }
  void TearDown() override {
    if (!HasFailure() && !dir_.empty()) std::filesystem::remove_all(dir_);
  }
  std::string dir_;
};

TEST_F(CliTest, LocalRunsWordCountAndPrintsCounts) {
  const std::string input = dir_ + "/small.txt";
  ASSERT_TRUE(
      WriteFile(input, "to be or not to be\r\nthat is\tthe  question\n\nto be größe größe\n"));
  CommandResult r = RunCli({"local", "-D", "blob.storage.directory=" + dir_,
                            ExampleLibrary("wordcount"), "--", "--input", input},
                           dir_, 60s);
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_NE(r.out.find("FINISHED"), std::string::npos) << r.Describe();
  // print() writes rolling `word,count` updates; the largest is the total.
  std::unordered_map<std::string, int64_t> counts;
  int updates = 0;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) {
    size_t comma = line.rfind(',');
    if (comma == std::string::npos) continue;  // "Job ... submitted", "Job ... FINISHED"
    ++updates;
    int64_t& c = counts[line.substr(0, comma)];
    c = std::max(c, static_cast<int64_t>(std::stoll(line.substr(comma + 1))));
  }
  const std::unordered_map<std::string, int64_t> expected = {
      {"to", 3}, {"be", 3},  {"or", 1},       {"not", 1},  {"that", 1},
      {"is", 1}, {"the", 1}, {"question", 1}, {"größe", 2}};
  EXPECT_EQ(counts, expected) << r.Describe();
  EXPECT_EQ(updates, 14) << r.Describe();
}

TEST_F(CliTest, LocalReportsAFailingJob) {
  CommandResult r =
      RunCli({"local", "-D", "blob.storage.directory=" + dir_, TestJobLibrary("throwing_job"), "--",
              "--count", "10000", "--fail-at", "777"},
             dir_, 60s);
  EXPECT_NE(r.exit_code, 0) << r.Describe();
  EXPECT_NE(r.err.find("FAILED"), std::string::npos) << r.Describe();
  EXPECT_NE(r.err.find("boom at record 777"), std::string::npos) << r.Describe();
}

TEST_F(CliTest, InfoPrintsTheJobGraphAsJson) {
  CommandResult r =
      RunCli({"info", "-p", "3", ExampleLibrary("wordcount"), "--", "--input", "/no/such/file"},
             dir_, 30s);
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  nlohmann::json j = nlohmann::json::parse(r.out, nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(j.is_discarded()) << "not JSON: " << r.Describe();
  EXPECT_EQ(j.value("name", ""), "WordCount");
  EXPECT_EQ(j.value("slots_needed", 0), 3);
  ASSERT_TRUE(j.contains("vertices") && j["vertices"].is_array()) << j.dump(2);
  ASSERT_GE(j["vertices"].size(), 2u) << j.dump(2);
  for (const auto& v : j["vertices"]) {
    EXPECT_EQ(v.value("parallelism", 0), 3) << v.dump();
    EXPECT_TRUE(v.contains("chain") && !v["chain"].empty()) << v.dump();
  }
  EXPECT_TRUE(j["vertices"][0].value("source", false)) << j.dump(2);
  EXPECT_NE(j["vertices"][0].value("name", "").find("Tokenizer"), std::string::npos) << j.dump(2);
  ASSERT_TRUE(j.contains("edges") && j["edges"].is_array()) << j.dump(2);
  int hash_edges = 0;
  for (const auto& e : j["edges"]) {
    if (e.value("partitioner", "") == "hash") {
      ++hash_edges;
      EXPECT_NE(e.value("source", -1), e.value("target", -1)) << e.dump();
    }
  }
  EXPECT_EQ(hash_edges, 1) << j.dump(2);
}

TEST_F(CliTest, InfoRefusesABadLibrary) {
  const std::string text = dir_ + "/job.txt";
  ASSERT_TRUE(WriteFile(text, "not a library\n"));
  CommandResult r = RunCli({"info", text}, dir_, 30s);
  EXPECT_NE(r.exit_code, 0) << r.Describe();
  EXPECT_NE(r.err.find("not a shared library"), std::string::npos) << r.Describe();
  EXPECT_TRUE(r.out.empty()) << r.Describe();
}

TEST(CliSignalTest, LocalStopsItsClusterCleanlyOnCtrlC) {
  // An unbounded job in `sluice local`; SIGINT must end the process promptly and leave none of
  // the embedded cluster's temporary folders behind.
  std::string dir = MakeTempDir();
  std::string tmp = dir + "/tmp";
  std::filesystem::create_directories(tmp);
  const char* old_tmp = std::getenv("TMPDIR");
  std::string saved = old_tmp ? old_tmp : "";
  setenv("TMPDIR", tmp.c_str(), 1);
  auto child = ChildProcess::Start(
      {BinDir() + "/sluice", "local", "-p", "2", TestJobLibrary("sequence_job")}, dir + "/out",
      dir + "/err");
  if (old_tmp) {
    setenv("TMPDIR", saved.c_str(), 1);
  } else {
    unsetenv("TMPDIR");
  }
  ASSERT_TRUE(child.ok()) << child.status();
  // Running: the cluster's folders exist and the job was submitted.
  ASSERT_TRUE(WaitUntil(
      [&] {
        std::ifstream out(dir + "/out");
        std::string text((std::istreambuf_iterator<char>(out)), {});
        return text.find("submitted") != std::string::npos;
      },
      20s));
  EXPECT_FALSE(std::filesystem::is_empty(tmp));
  (*child)->Signal(SIGINT);
  ASSERT_TRUE((*child)->WaitForExit(10s));
  EXPECT_EQ((*child)->exit_code(), 128 + SIGINT) << LastLines(ReadFile(dir + "/err"), 20);
  EXPECT_TRUE(std::filesystem::is_empty(tmp)) << "left in " << tmp;
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace sluice::itest
