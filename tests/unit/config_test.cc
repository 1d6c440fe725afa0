// Configuration: defaults, conf/config.yaml (flat and nested keys), -D overrides, and the errors
// for unknown keys and malformed values.
#include "common/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace sluice {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// A fresh temporary directory, removed when the test ends.
class ConfigFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl =
        (std::filesystem::temp_directory_path() / "sluice-config-test-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  // Writes `<dir>/<name>` and returns its path.
  std::string Write(const std::string& contents, const std::string& name = "config.yaml") {
    std::string path = dir_ + "/" + name;
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f << contents;
    return path;
  }
  std::string dir_;
};

TEST(ConfigTest, DefaultsOfAnEmptyConfiguration) {
  Configuration conf;
  EXPECT_TRUE(conf.values().empty());
  EXPECT_EQ(conf.GetString("jobmanager.rpc.address"), "localhost");
  EXPECT_EQ(conf.GetInt("jobmanager.rpc.port"), 6123);
  EXPECT_EQ(conf.GetInt("rest.port"), 8081);
  EXPECT_EQ(conf.GetInt("taskmanager.rpc.port"), 0);
  EXPECT_EQ(conf.GetInt("taskmanager.numberOfTaskSlots"), 1);
  EXPECT_EQ(conf.GetInt("parallelism.default"), 1);
  EXPECT_EQ(conf.GetInt("pipeline.max-parallelism"), 128);
  EXPECT_EQ(conf.GetDurationMs("heartbeat.interval"), 1000);
  EXPECT_EQ(conf.GetDurationMs("heartbeat.timeout"), 5000);
  EXPECT_EQ(conf.GetDurationMs("execution.buffer-timeout"), 5);
  EXPECT_EQ(conf.GetDurationMs("client.timeout"), 60000);
  EXPECT_EQ(conf.GetBytes("taskmanager.memory.segment-size"), 32 * 1024);
  EXPECT_EQ(conf.GetInt("taskmanager.network.memory.buffers-per-channel"), 4);
  EXPECT_EQ(conf.GetString("blob.storage.directory"), "");
}

TEST(ConfigTest, EveryDeclaredDefaultParsesAsItsType) {
  ASSERT_FALSE(AllConfigOptions().empty());
  for (const ConfigOption& o : AllConfigOptions()) {
    SCOPED_TRACE(o.key);
    Configuration conf;
    EXPECT_TRUE(conf.Set(o.key, o.default_value).ok());
    EXPECT_NE(std::string(o.description), "");
  }
}

TEST(ConfigTest, SetStoresTheTrimmedValue) {
  Configuration conf;
  ASSERT_TRUE(conf.Set("rest.port", "  9000 ").ok());
  EXPECT_EQ(conf.GetInt("rest.port"), 9000);
  EXPECT_EQ(conf.values().at("rest.port"), "9000");
  ASSERT_TRUE(conf.Set("jobmanager.rpc.address", "jm.example.com").ok());
  EXPECT_EQ(conf.GetString("jobmanager.rpc.address"), "jm.example.com");
  EXPECT_EQ(conf.values().size(), 2u);
}

TEST(ConfigTest, SetRejectsUnknownKeysNamingThem) {
  Configuration conf;
  absl::Status s = conf.Set("rest.prot", "8081");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("'rest.prot'"));
  EXPECT_TRUE(conf.values().empty());
}

TEST(ConfigTest, SetRejectsMalformedValuesNamingTheKeyAndKeepsTheOldValue) {
  Configuration conf;
  ASSERT_TRUE(conf.Set("rest.port", "9000").ok());
  absl::Status s = conf.Set("rest.port", "90x");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("rest.port"));
  EXPECT_THAT(s.message(), HasSubstr("90x"));
  EXPECT_EQ(conf.GetInt("rest.port"), 9000);

  s = conf.Set("heartbeat.timeout", "soon");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("heartbeat.timeout"));

  s = conf.Set("taskmanager.memory.segment-size", "lots");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("taskmanager.memory.segment-size"));
}

TEST(ConfigTest, AnIntOutsideItsRangeIsAnErrorNamingTheKey) {
  Configuration conf;
  const std::string key = "state.backend.rocksdb.cache.entries";
  for (const char* bad : {"-1", "16777217"}) {
    absl::Status s = conf.Set(key, bad);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(s.message(), HasSubstr(key));
    EXPECT_THAT(s.message(), HasSubstr(bad));
    EXPECT_THAT(s.message(), HasSubstr("0 to 16777216"));
  }
  EXPECT_EQ(conf.GetInt(key), 16384) << "the default, kept";
  ASSERT_TRUE(conf.Set(key, "0").ok());
  EXPECT_EQ(conf.GetInt(key), 0);
}

TEST(ConfigTest, ParseInt) {
  EXPECT_EQ(*ParseInt("k", "42"), 42);
  EXPECT_EQ(*ParseInt("k", "-1"), -1);
  EXPECT_EQ(*ParseInt("k", " 7 "), 7);
  EXPECT_EQ(*ParseInt("k", "9223372036854775807"), INT64_MAX);
  for (const char* bad : {"", "  ", "4.5", "12abc", "abc", "99999999999999999999", "0x10"}) {
    SCOPED_TRACE(bad);
    auto r = ParseInt("my.key", bad);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(r.status().message(), HasSubstr("'my.key'"));
  }
}

TEST(ConfigTest, ParseDurations) {
  EXPECT_EQ(*ParseDurationMs("k", "500 ms"), 500);
  EXPECT_EQ(*ParseDurationMs("k", "500ms"), 500);
  EXPECT_EQ(*ParseDurationMs("k", "10s"), 10000);
  EXPECT_EQ(*ParseDurationMs("k", "10 s"), 10000);
  EXPECT_EQ(*ParseDurationMs("k", "1 min"), 60000);
  EXPECT_EQ(*ParseDurationMs("k", "2 minutes"), 120000);
  EXPECT_EQ(*ParseDurationMs("k", "1 h"), 3600000);
  EXPECT_EQ(*ParseDurationMs("k", "1.5 s"), 1500);
  EXPECT_EQ(*ParseDurationMs("k", "3 SECONDS"), 3000);
  EXPECT_EQ(*ParseDurationMs("k", "250"), 250);  // a plain number is milliseconds
  EXPECT_EQ(*ParseDurationMs("k", "0"), 0);
  EXPECT_EQ(*ParseDurationMs("k", " 20 ms "), 20);
}

TEST(ConfigTest, MalformedDurationsNameTheKey) {
  for (const char* bad : {"", "soon", "ms", "10 fortnights", "-5 ms", "5 msec s", "1.5.5 s",
                          "1e30 h", "99999999999999999 h"}) {
    SCOPED_TRACE(bad);
    auto r = ParseDurationMs("heartbeat.interval", bad);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(r.status().message(), HasSubstr("'heartbeat.interval'"));
  }
  auto r = ParseDurationMs("k", "10 fortnights");
  EXPECT_THAT(r.status().message(), HasSubstr("fortnights"));
}

TEST(ConfigTest, ParseMemorySizes) {
  EXPECT_EQ(*ParseBytes("k", "32 kb"), 32 * 1024);
  EXPECT_EQ(*ParseBytes("k", "32kb"), 32 * 1024);
  EXPECT_EQ(*ParseBytes("k", "1mb"), 1024 * 1024);
  EXPECT_EQ(*ParseBytes("k", "1 MB"), 1024 * 1024);
  EXPECT_EQ(*ParseBytes("k", "2 gb"), 2LL * 1024 * 1024 * 1024);
  EXPECT_EQ(*ParseBytes("k", "1.5 kb"), 1536);
  EXPECT_EQ(*ParseBytes("k", "100"), 100);
  EXPECT_EQ(*ParseBytes("k", "100 b"), 100);
  for (const char* bad : {"", "big", "kb", "12 zb", "-1 kb"}) {
    SCOPED_TRACE(bad);
    auto r = ParseBytes("taskmanager.memory.segment-size", bad);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(r.status().message(), HasSubstr("'taskmanager.memory.segment-size'"));
  }
}

// Found by tests/fuzz/config_fuzz (corpus: regression-duration-overflow): a number below the
// parser's bound times its unit overflowed int64_t, undefined behaviour that gave a negative value.
TEST(ConfigTest, DurationsAndSizesBeyondInt64AreRejected) {
  for (const char* bad : {"99999999999999 h", "999999999999999 min", "9999999999999 hours"}) {
    SCOPED_TRACE(bad);
    auto r = ParseDurationMs("heartbeat.interval", bad);
    ASSERT_FALSE(r.ok()) << *r;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(r.status().message(), HasSubstr("too long"));
  }
  for (const char* bad : {"99999999999999 gb", "999999999999999 mb"}) {
    SCOPED_TRACE(bad);
    auto r = ParseBytes("taskmanager.memory.segment-size", bad);
    ASSERT_FALSE(r.ok()) << *r;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(r.status().message(), HasSubstr("too large"));
  }
  // The largest values still fit.
  EXPECT_EQ(*ParseDurationMs("k", "2000000 h"), 2000000LL * 3600000);
  EXPECT_EQ(*ParseBytes("k", "1000000 gb"), 1000000LL * 1024 * 1024 * 1024);
  Configuration conf;
  EXPECT_FALSE(conf.Set("heartbeat.interval", "99999999999999 h").ok());
}

TEST(ConfigTest, ParseBools) {
  for (const char* t : {"true", "TRUE", "yes", "1", " True "}) EXPECT_TRUE(*ParseBool("k", t)) << t;
  for (const char* f : {"false", "no", "0", "False"}) EXPECT_FALSE(*ParseBool("k", f)) << f;
  auto r = ParseBool("some.flag", "maybe");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("'some.flag'"));
}

TEST(ConfigTest, ApplyOverrides) {
  Configuration conf;
  ASSERT_TRUE(conf.ApplyOverrides(
                      {"rest.port=9090", "heartbeat.timeout = 3 s", "jobmanager.rpc.address=a=b"})
                  .ok());
  EXPECT_EQ(conf.GetInt("rest.port"), 9090);
  EXPECT_EQ(conf.GetDurationMs("heartbeat.timeout"), 3000);
  EXPECT_EQ(conf.GetString("jobmanager.rpc.address"), "a=b");  // split at the first '='
  EXPECT_TRUE(conf.ApplyOverrides({}).ok());
}

TEST(ConfigTest, ApplyOverridesRejectsMalformedStrings) {
  for (const char* bad : {"rest.port", "=9090", ""}) {
    SCOPED_TRACE(bad);
    Configuration conf;
    absl::Status s = conf.ApplyOverrides({bad});
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(s.message(), HasSubstr("key=value"));
    EXPECT_THAT(s.message(), HasSubstr(std::string("'") + bad + "'"));
  }
  Configuration conf;
  // "-D" left on the key: an unknown key, named.
  absl::Status s = conf.ApplyOverrides({"-Drest.port=1"});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("'-Drest.port'"));
  s = conf.ApplyOverrides({"rest.port=1", "no.such.key=2"});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("'no.such.key'"));
  s = conf.ApplyOverrides({"heartbeat.interval=forever"});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("heartbeat.interval"));
}

TEST_F(ConfigFileTest, FlatAndNestedKeys) {
  Write(
      "# a comment\n"
      "jobmanager.rpc.port: 7000\n"
      "rest:\n"
      "  port: 9091\n"
      "  bind-address: 0.0.0.0\n"
      "taskmanager:\n"
      "  numberOfTaskSlots: 4\n"
      "  memory:\n"
      "    segment-size: 1mb\n"
      "heartbeat.interval: 2 s\n"
      "execution:\n"
      "  buffer-timeout: 100\n");
  auto conf = Configuration::LoadDir(dir_);
  ASSERT_TRUE(conf.ok()) << conf.status();
  EXPECT_EQ(conf->GetInt("jobmanager.rpc.port"), 7000);
  EXPECT_EQ(conf->GetInt("rest.port"), 9091);
  EXPECT_EQ(conf->GetString("rest.bind-address"), "0.0.0.0");
  EXPECT_EQ(conf->GetInt("taskmanager.numberOfTaskSlots"), 4);
  EXPECT_EQ(conf->GetBytes("taskmanager.memory.segment-size"), 1024 * 1024);
  EXPECT_EQ(conf->GetDurationMs("heartbeat.interval"), 2000);
  EXPECT_EQ(conf->GetDurationMs("execution.buffer-timeout"), 100);
  // Keys not in the file keep their defaults.
  EXPECT_EQ(conf->GetDurationMs("heartbeat.timeout"), 5000);
  EXPECT_EQ(conf->values().size(), 7u);
}

TEST_F(ConfigFileTest, OverridesApplyOnTopOfTheFile) {
  Write("rest.port: 9091\nparallelism.default: 3\n");
  auto conf = Configuration::LoadDir(dir_);
  ASSERT_TRUE(conf.ok()) << conf.status();
  ASSERT_TRUE(conf->ApplyOverrides({"rest.port=1234"}).ok());
  EXPECT_EQ(conf->GetInt("rest.port"), 1234);
  EXPECT_EQ(conf->GetInt("parallelism.default"), 3);
}

TEST_F(ConfigFileTest, EmptyFileGivesDefaults) {
  std::string path = Write("");
  auto conf = Configuration::LoadFile(path);
  ASSERT_TRUE(conf.ok()) << conf.status();
  EXPECT_TRUE(conf->values().empty());
  EXPECT_EQ(conf->GetInt("rest.port"), 8081);
}

TEST_F(ConfigFileTest, UnknownKeyNamesTheKeyAndTheFile) {
  std::string path = Write("rest.port: 9091\nrest.prot: 9092\n");
  auto conf = Configuration::LoadFile(path);
  ASSERT_FALSE(conf.ok());
  EXPECT_EQ(conf.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(conf.status().message(), HasSubstr("'rest.prot'"));
  EXPECT_THAT(conf.status().message(), HasSubstr(path));
}

TEST_F(ConfigFileTest, UnknownNestedKeyIsNamedWithItsFullPath) {
  std::string path = Write("taskmanager:\n  memory:\n    segment-sise: 1mb\n");
  auto conf = Configuration::LoadFile(path);
  ASSERT_FALSE(conf.ok());
  EXPECT_EQ(conf.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(conf.status().message(), HasSubstr("'taskmanager.memory.segment-sise'"));
  EXPECT_THAT(conf.status().message(), HasSubstr(path));
}

// Found by tests/fuzz/config_fuzz (corpus: regression-list-key): a key that is a list or a map
// threw yaml-cpp's conversion error out of LoadFile, which ended the process.
TEST_F(ConfigFileTest, KeyThatIsAListOrAMapIsAnError) {
  for (const char* yaml : {"? [a, b]\n: 1\n", "rest:\n  {port: 1}: 2\n"}) {
    SCOPED_TRACE(yaml);
    std::string path = Write(yaml);
    auto conf = Configuration::LoadFile(path);
    ASSERT_FALSE(conf.ok());
    EXPECT_EQ(conf.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(conf.status().message(), HasSubstr("a key that is a list or a map"));
    EXPECT_THAT(conf.status().message(), HasSubstr(path));
  }
}

// Found by tests/fuzz/config_fuzz (corpus: regression-alias-bomb): aliases that each name the one
// before twice expand to 2^n keys, which LoadFile walked whole (2^30 of them take hours).
TEST_F(ConfigFileTest, AliasesExpandingToTooManyKeysAreAnError) {
  std::string yaml = "a0: &a0 {x: 1, y: 2}\n";
  for (int i = 1; i <= 18; ++i) {
    yaml += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " {p: *a" +
            std::to_string(i - 1) + ", q: *a" + std::to_string(i - 1) + "}\n";
  }
  auto conf = Configuration::LoadFile(Write(yaml));
  ASSERT_FALSE(conf.ok());
  EXPECT_EQ(conf.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(conf.status().message(), HasSubstr("aliases expanded"));
  // An alias of an ordinary size is still fine.
  auto small = Configuration::LoadFile(Write("base: &b 8081\nrest.port: *b\n"));
  ASSERT_FALSE(small.ok());  // "base" is no key of ours; the alias itself was read
  EXPECT_THAT(small.status().message(), HasSubstr("'base'"));
  auto ok = Configuration::LoadFile(Write("rest: &r {port: 8081}\n"));
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->GetInt("rest.port"), 8081);
}

// Found by tests/fuzz/config_fuzz (corpus: regression-alias-cycle): yaml-cpp lets a map hold an
// alias of itself, and LoadFile followed the cycle until the stack ran out. Deep but finite
// nesting is bounded the same way.
TEST_F(ConfigFileTest, MapsNestedTooDeepOrInAnAliasCycleAreAnError) {
  std::string deep;
  for (int i = 0; i < 100; ++i) deep += "{a: ";
  deep += "1" + std::string(100, '}') + "\n";
  for (const std::string& yaml : {std::string("a: &x {b: *x}\n"), "rest: " + deep}) {
    SCOPED_TRACE(yaml);
    auto conf = Configuration::LoadFile(Write(yaml));
    ASSERT_FALSE(conf.ok());
    EXPECT_EQ(conf.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(conf.status().message(), HasSubstr("nests maps more than 64 deep"));
  }
  // Ordinary nesting still reads.
  auto ok =
      Configuration::LoadFile(Write("taskmanager:\n  memory:\n    managed:\n      size: 1g\n"));
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->GetBytes("taskmanager.memory.managed.size"), int64_t{1} << 30);
}

TEST_F(ConfigFileTest, MalformedValuesNameTheKeyAndTheFile) {
  struct Case {
    const char* yaml;
    const char* key;
  };
  for (const Case& c :
       {Case{"rest.port: eighty\n", "rest.port"}, Case{"rest:\n  port: 80.5\n", "rest.port"},
        Case{"heartbeat.interval: a while\n", "heartbeat.interval"},
        Case{"heartbeat:\n  timeout: 5 lightyears\n", "heartbeat.timeout"},
        Case{"taskmanager.memory.segment-size: 32 zb\n", "taskmanager.memory.segment-size"}}) {
    SCOPED_TRACE(c.yaml);
    std::string path = Write(c.yaml);
    auto conf = Configuration::LoadFile(path);
    ASSERT_FALSE(conf.ok());
    EXPECT_EQ(conf.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(conf.status().message(), HasSubstr(std::string("'") + c.key + "'"));
    EXPECT_THAT(conf.status().message(), HasSubstr(path));
  }
}

TEST_F(ConfigFileTest, NonScalarValueNamesTheKey) {
  std::string path = Write("rest.port: [1, 2]\n");
  auto conf = Configuration::LoadFile(path);
  ASSERT_FALSE(conf.ok());
  EXPECT_EQ(conf.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(conf.status().message(), HasSubstr("'rest.port'"));
}

TEST_F(ConfigFileTest, InvalidYamlNamesTheFile) {
  std::string path = Write("rest:\n  port: [1, 2\nheartbeat: {\n");
  auto conf = Configuration::LoadFile(path);
  ASSERT_FALSE(conf.ok());
  EXPECT_EQ(conf.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(conf.status().message(), HasSubstr(path));
  EXPECT_THAT(conf.status().message(), HasSubstr("YAML"));
}

TEST_F(ConfigFileTest, TopLevelListIsRejected) {
  std::string path = Write("- rest.port\n- 9091\n");
  auto conf = Configuration::LoadFile(path);
  ASSERT_FALSE(conf.ok());
  EXPECT_EQ(conf.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(conf.status().message(), HasSubstr(path));
}

TEST_F(ConfigFileTest, MissingFile) {
  auto conf = Configuration::LoadFile(dir_ + "/nope.yaml");
  ASSERT_FALSE(conf.ok());
  EXPECT_EQ(conf.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(conf.status().message(), HasSubstr("nope.yaml"));

  auto required = Configuration::LoadDir(dir_);
  EXPECT_EQ(required.status().code(), absl::StatusCode::kNotFound);

  auto optional = Configuration::LoadDir(dir_, /*optional=*/true);
  ASSERT_TRUE(optional.ok()) << optional.status();
  EXPECT_TRUE(optional->values().empty());
}

TEST_F(ConfigFileTest, OptionalDirStillReportsErrorsOfAnExistingFile) {
  Write("no.such.key: 1\n");
  auto conf = Configuration::LoadDir(dir_, /*optional=*/true);
  ASSERT_FALSE(conf.ok());
  EXPECT_EQ(conf.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(conf.status().message(), HasSubstr("'no.such.key'"));
  EXPECT_THAT(conf.status().message(), Not(HasSubstr("does not exist")));
}

// ---- Flink's habits: its shipped file, JVM-only keys, Flink 2 names, suggestions ----

TEST(ConfigTest, UnknownKeySuggestsTheClosestKey) {
  Configuration conf;
  absl::Status s = conf.Set("rest.prot", "8081");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("unknown configuration key 'rest.prot'"));
  EXPECT_THAT(s.message(), HasSubstr("did you mean 'rest.port'?"));
  s = conf.Set("taskmanager.numberOfTaskSlot", "2");
  EXPECT_THAT(s.message(), HasSubstr("did you mean 'taskmanager.numberOfTaskSlots'?"));
  // A Flink 1 name is suggested too.
  s = conf.Set("state.checkpoint.dir", "/x");
  EXPECT_THAT(s.message(), HasSubstr("did you mean 'state.checkpoints.dir'?"));
  // Nothing near: no suggestion.
  s = conf.Set("no.such.key", "1");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), Not(HasSubstr("did you mean")));
}

TEST(ConfigTest, JvmOnlyKeysAreAcceptedAndIgnored) {
  for (const char* key :
       {"env.java.opts.all", "env.java.home", "jobmanager.memory.process.size",
        "jobmanager.memory.jvm-metaspace.size", "taskmanager.memory.process.size",
        "taskmanager.memory.task.heap.size", "taskmanager.memory.network.fraction",
        "classloader.resolve-order", "akka.ask.timeout", "pekko.ask.timeout"}) {
    SCOPED_TRACE(key);
    EXPECT_TRUE(IsJvmOnlyKey(key));
    Configuration conf;
    ASSERT_TRUE(conf.Set(key, "1600m").ok());
    EXPECT_TRUE(conf.values().empty());
    EXPECT_EQ(conf.ignored().at(key), "1600m");
  }
  // Sluice's own keys under the same prefixes keep their meaning.
  EXPECT_FALSE(IsJvmOnlyKey("taskmanager.memory.segment-size"));
  EXPECT_FALSE(IsJvmOnlyKey("taskmanager.memory.managed.size"));
  // A typo of one of them is not taken for a JVM key.
  EXPECT_FALSE(IsJvmOnlyKey("taskmanager.memory.segment-sise"));
  EXPECT_FALSE(IsJvmOnlyKey("rest.port"));
  EXPECT_FALSE(IsJvmOnlyKey("env.java"));
}

TEST(ConfigTest, JvmOnlyKeyIsWarnedAboutOncePerProcess) {
  EXPECT_TRUE(WarnOnceAboutJvmOnlyKey("env.java.opts.test-only"));
  EXPECT_FALSE(WarnOnceAboutJvmOnlyKey("env.java.opts.test-only"));
  Configuration conf;
  ASSERT_TRUE(conf.Set("env.java.opts.test-other", "-Xmx1g").ok());
  EXPECT_FALSE(WarnOnceAboutJvmOnlyKey("env.java.opts.test-other"));
}

TEST(ConfigTest, FlinkOneAndTwoNamesReadTheSameSetting) {
  struct Pair {
    const char* flink2;
    const char* flink1;
    const char* value;
  };
  for (const Pair& p :
       {Pair{"execution.checkpointing.dir", "state.checkpoints.dir", "/data/chk"},
        Pair{"execution.checkpointing.savepoint-dir", "state.savepoints.dir", "/data/sp"},
        Pair{"execution.checkpointing.num-retained", "state.checkpoints.num-retained", "3"},
        Pair{"execution.checkpointing.incremental", "state.backend.incremental", "false"}}) {
    SCOPED_TRACE(p.flink2);
    for (const char* set_as : {p.flink1, p.flink2}) {
      Configuration conf;
      ASSERT_TRUE(conf.Set(set_as, p.value).ok());
      EXPECT_EQ(conf.GetString(p.flink1), p.value);
      EXPECT_EQ(conf.GetString(p.flink2), p.value);
      EXPECT_TRUE(conf.IsSet(p.flink1));
      EXPECT_TRUE(conf.IsSet(p.flink2));
      // Kept under one name.
      EXPECT_EQ(conf.values().size(), 1u);
      EXPECT_EQ(conf.values().count(p.flink2), 1u);
    }
  }
  Configuration conf;
  EXPECT_EQ(conf.GetInt("state.checkpoints.num-retained"), 1);
  EXPECT_TRUE(conf.GetBool("state.backend.incremental"));
  // The value is checked as the option's type under either name.
  absl::Status s = conf.Set("state.checkpoints.num-retained", "many");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("'state.checkpoints.num-retained'"));
}

TEST(ConfigTest, BothNamesWithDifferentValuesAreAnErrorNamingBoth) {
  Configuration conf;
  absl::Status s =
      conf.ApplyOverrides({"state.checkpoints.dir=/a", "execution.checkpointing.dir=/b"});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("'state.checkpoints.dir'"));
  EXPECT_THAT(s.message(), HasSubstr("'execution.checkpointing.dir'"));
  // The same value under both names is fine.
  Configuration same;
  EXPECT_TRUE(
      same.ApplyOverrides({"state.checkpoints.dir=/a", "execution.checkpointing.dir= /a"}).ok());
  // An override of a file's value under the other name replaces it.
  Configuration over;
  ASSERT_TRUE(over.Set("state.checkpoints.dir", "/from-file").ok());
  ASSERT_TRUE(over.ApplyOverrides({"execution.checkpointing.dir=/from-flag"}).ok());
  EXPECT_EQ(over.GetString("state.checkpoints.dir"), "/from-flag");
}

TEST(ConfigTest, FailoverStrategyTakesFlinksValues) {
  Configuration conf;
  EXPECT_TRUE(conf.Set("jobmanager.execution.failover-strategy", "region").ok());
  EXPECT_TRUE(conf.Set("jobmanager.execution.failover-strategy", "full").ok());
  EXPECT_EQ(conf.Set("jobmanager.execution.failover-strategy", "partial").code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(ConfigFileTest, BothNamesInOneFileWithDifferentValuesAreAnError) {
  std::string path = Write(
      "state.savepoints.dir: /a\n"
      "execution:\n"
      "  checkpointing:\n"
      "    savepoint-dir: /b\n");
  auto conf = Configuration::LoadFile(path);
  ASSERT_FALSE(conf.ok());
  EXPECT_EQ(conf.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(conf.status().message(), HasSubstr("'state.savepoints.dir'"));
  EXPECT_THAT(conf.status().message(), HasSubstr("'execution.checkpointing.savepoint-dir'"));
  EXPECT_THAT(conf.status().message(), HasSubstr(path));
}

TEST_F(ConfigFileTest, UnknownKeyInAFileSuggestsTheClosestKey) {
  std::string path = Write("rest:\n  prot: 9091\n");
  auto conf = Configuration::LoadFile(path);
  ASSERT_FALSE(conf.ok());
  EXPECT_THAT(conf.status().message(), HasSubstr("'rest.prot'"));
  EXPECT_THAT(conf.status().message(), HasSubstr("did you mean 'rest.port'?"));
}

// The fixture holds the keys Flink's distribution ships in conf/config.yaml (nested).
TEST(ConfigTest, FlinksShippedConfigLoadsUnchanged) {
  const char* src = std::getenv("SLUICE_SOURCE_DIR");
  ASSERT_NE(src, nullptr) << "SLUICE_SOURCE_DIR is not set (ctest sets it)";
  auto conf = Configuration::LoadDir(std::string(src) + "/tests/data/flink_conf");
  ASSERT_TRUE(conf.ok()) << conf.status();
  EXPECT_EQ(conf->GetString("jobmanager.rpc.address"), "localhost");
  EXPECT_EQ(conf->GetInt("jobmanager.rpc.port"), 6123);
  EXPECT_EQ(conf->GetInt("taskmanager.numberOfTaskSlots"), 1);
  EXPECT_EQ(conf->GetInt("parallelism.default"), 1);
  EXPECT_EQ(conf->GetString("rest.address"), "localhost");
  EXPECT_EQ(conf->GetChoice("jobmanager.execution.failover-strategy"), "REGION");
  EXPECT_EQ(conf->GetDurationMs("execution.checkpointing.interval"), 180000);
  EXPECT_EQ(conf->GetString("state.checkpoints.dir"), "/tmp/flink-checkpoints");
  EXPECT_FALSE(conf->GetBool("state.backend.incremental"));
  for (const char* jvm : {"env.java.opts.all", "jobmanager.memory.process.size",
                          "taskmanager.memory.process.size", "classloader.resolve-order"}) {
    EXPECT_EQ(conf->ignored().count(jvm), 1u) << jvm;
  }
}

TEST_F(ConfigFileTest, FlatAndNestedFlinkFilesReadTheSame) {
  Write(
      "jobmanager.rpc.address: jm\n"
      "jobmanager.memory.process.size: 1600m\n"
      "env.java.opts.all: -Dx=y\n"
      "state.checkpoints.dir: /chk\n"
      "rest.port: 9000\n",
      "flat.yaml");
  Write(
      "jobmanager:\n"
      "  rpc:\n"
      "    address: jm\n"
      "  memory:\n"
      "    process:\n"
      "      size: 1600m\n"
      "env:\n"
      "  java:\n"
      "    opts:\n"
      "      all: -Dx=y\n"
      "state:\n"
      "  checkpoints:\n"
      "    dir: /chk\n"
      "rest:\n"
      "  port: 9000\n",
      "nested.yaml");
  auto flat = Configuration::LoadFile(dir_ + "/flat.yaml");
  auto nested = Configuration::LoadFile(dir_ + "/nested.yaml");
  ASSERT_TRUE(flat.ok()) << flat.status();
  ASSERT_TRUE(nested.ok()) << nested.status();
  EXPECT_EQ(flat->values(), nested->values());
  EXPECT_EQ(flat->ignored(), nested->ignored());
  EXPECT_EQ(nested->GetString("execution.checkpointing.dir"), "/chk");
}

}  // namespace
}  // namespace sluice
