// Checkpoint storage: CRC-32C, state files and _metadata written and read back, and every way a
// file can be wrong (each error naming the file).
#include "common/checkpoint_storage.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "sluice/serializer.h"

namespace sluice {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

MATCHER_P2(StatusIs, code, substring, "") {
  if (arg.code() == code && arg.message().find(substring) != std::string::npos) return true;
  *result_listener << "status is " << arg;
  return false;
}

// The bit-at-a-time definition, to check the table-driven one against.
uint32_t Crc32cReference(std::string_view data) {
  uint32_t c = 0xffffffffu;
  for (unsigned char b : data) {
    c ^= b;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ ((c & 1) ? 0x82F63B78u : 0);
  }
  return ~c;
}

TEST(Crc32cTest, KnownValuesAndChaining) {
  EXPECT_EQ(Crc32c(""), 0u);
  EXPECT_EQ(Crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(Crc32c(std::string(32, '\0')), 0x8A9136AAu);  // RFC 3720 B.4
  std::mt19937 rng(7);
  std::string data;
  for (int i = 0; i < 1000; ++i) data.push_back(static_cast<char>(rng()));
  for (size_t len : {1u, 7u, 8u, 9u, 15u, 16u, 17u, 999u, 1000u}) {
    std::string_view d(data.data(), len);
    EXPECT_EQ(Crc32c(d), Crc32cReference(d)) << len;
    for (size_t cut : {size_t{0}, len / 3, len}) {
      EXPECT_EQ(Crc32c(d.substr(cut), Crc32c(d.substr(0, cut))), Crc32c(d)) << len << "/" << cut;
    }
  }
}

TEST(CheckpointDirectoryTest, JoinsRootJobAndCheckpoint) {
  EXPECT_EQ(CheckpointDirectory("/data/chk", "job-1", 12), "/data/chk/job-1/chk-12");
  EXPECT_EQ(CheckpointDirectory("/data/chk/", "job-1", 3), "/data/chk/job-1/chk-3");
}

class CheckpointStorageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "sluice-chk-test-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  static std::string Read(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  }
  static void Write(const std::string& path, const std::string& bytes) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f << bytes;
  }
  std::vector<std::string> Files() const {
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(dir_)) {
      names.push_back(e.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
  }
  static std::vector<internal::OperatorSnapshot> Sample() {
    internal::OperatorSnapshot a;
    a.node_id = 0;
    a.lists["offsets"] = {serialize<int64_t>(1), serialize<int64_t>(2), ""};
    a.lists["empty"] = {};
    a.lists["union"] = {"u"};
    a.distribution["union"] = internal::ListDistribution::kUnion;
    a.lists["rules"] = {"r"};
    a.distribution["rules"] = internal::ListDistribution::kBroadcast;
    internal::OperatorSnapshot b;
    b.node_id = 3;
    b.key_groups[0] = std::string("with\0nul", 8);
    b.key_groups[77] = std::string(3 << 20, 'k');  // larger than the writer's buffer
    b.key_groups[127] = "z";
    internal::NativeSnapshot n;
    n.backend = "rocksdb";
    n.first_key_group = 0;
    n.last_key_group = 63;
    n.files.push_back({"000012.sst", "shared/ab-000012.sst", 4096, true});
    n.files.push_back({"MANIFEST-000005", "chk-3/v1-s0-n3/MANIFEST-000005", 120, false});
    b.native.push_back(n);
    return {a, b};
  }
  static void ExpectEqual(const std::vector<internal::OperatorSnapshot>& got,
                          const std::vector<internal::OperatorSnapshot>& want) {
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i].node_id, want[i].node_id);
      EXPECT_EQ(got[i].lists, want[i].lists);
      EXPECT_EQ(got[i].distribution, want[i].distribution);
      EXPECT_EQ(got[i].key_groups, want[i].key_groups);
      ASSERT_EQ(got[i].native.size(), want[i].native.size());
      for (size_t k = 0; k < got[i].native.size(); ++k) {
        const internal::NativeSnapshot& g = got[i].native[k];
        const internal::NativeSnapshot& w = want[i].native[k];
        EXPECT_EQ(g.backend, w.backend);
        EXPECT_EQ(g.first_key_group, w.first_key_group);
        EXPECT_EQ(g.last_key_group, w.last_key_group);
        ASSERT_EQ(g.files.size(), w.files.size());
        for (size_t f = 0; f < g.files.size(); ++f) {
          EXPECT_EQ(g.files[f].name, w.files[f].name);
          EXPECT_EQ(g.files[f].path, w.files[f].path);
          EXPECT_EQ(g.files[f].size, w.files[f].size);
          EXPECT_EQ(g.files[f].shared, w.files[f].shared);
        }
      }
    }
  }
  // A state file with a valid frame around `body`, version `version`.
  static std::string Framed(const char* magic, uint32_t version, const std::string& body) {
    std::string f(magic, 4);
    for (int i = 0; i < 4; ++i) f.push_back(static_cast<char>(version >> (8 * i)));
    uint64_t n = body.size();
    for (int i = 0; i < 8; ++i) f.push_back(static_cast<char>(n >> (8 * i)));
    f += body;
    uint32_t crc = Crc32c(f);
    for (int i = 0; i < 4; ++i) f.push_back(static_cast<char>(crc >> (8 * i)));
    return f;
  }
  std::string dir_;
};

TEST_F(CheckpointStorageTest, StateFileRoundTrip) {
  std::string path = dir_ + "/v1-s0";
  proto::StateHandle handle;
  ASSERT_TRUE(WriteStateFile(path, Sample(), &handle).ok());
  EXPECT_THAT(Files(), ElementsAre("v1-s0")) << "no temporary left behind";
  std::string bytes = Read(path);
  EXPECT_EQ(bytes.substr(0, 4), "SLST");
  EXPECT_EQ(handle.size(), static_cast<int64_t>(bytes.size()));
  EXPECT_EQ(handle.crc32c(), Crc32c(std::string_view(bytes).substr(0, bytes.size() - 4)));

  auto read = ReadStateFile(path);
  ASSERT_TRUE(read.ok()) << read.status();
  ExpectEqual(*read, Sample());
  auto checked = ReadStateFile(path, &handle);
  ASSERT_TRUE(checked.ok()) << checked.status();

  proto::StateHandle other = handle;
  other.set_size(handle.size() + 1);
  EXPECT_THAT(ReadStateFile(path, &other).status(), StatusIs(absl::StatusCode::kDataLoss, path));
  other = handle;
  other.set_crc32c(handle.crc32c() ^ 1);
  EXPECT_THAT(ReadStateFile(path, &other).status(),
              StatusIs(absl::StatusCode::kDataLoss, "differs from the checkpoint's"));
}

TEST_F(CheckpointStorageTest, EmptyStateFileAndOverwrite) {
  std::string path = dir_ + "/empty";
  ASSERT_TRUE(WriteStateFile(path, {}, nullptr).ok());
  auto read = ReadStateFile(path);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_THAT(*read, IsEmpty());
  // Writing again replaces the file whole.
  ASSERT_TRUE(WriteStateFile(path, Sample(), nullptr).ok());
  read = ReadStateFile(path);
  ASSERT_TRUE(read.ok()) << read.status();
  ExpectEqual(*read, Sample());
  EXPECT_THAT(Files(), ElementsAre("empty"));
}

TEST_F(CheckpointStorageTest, MissingFile) {
  std::string path = dir_ + "/nothing";
  EXPECT_THAT(ReadStateFile(path).status(), StatusIs(absl::StatusCode::kNotFound, path));
  EXPECT_THAT(ReadStateFile(path).status(), StatusIs(absl::StatusCode::kNotFound, "missing"));
  EXPECT_THAT(ReadMetadata(dir_).status(), StatusIs(absl::StatusCode::kNotFound, "missing"));
}

TEST_F(CheckpointStorageTest, TruncatedFile) {
  std::string path = dir_ + "/s";
  ASSERT_TRUE(WriteStateFile(path, Sample(), nullptr).ok());
  std::string bytes = Read(path);
  for (size_t keep : {bytes.size() - 1, bytes.size() / 2, size_t{10}, size_t{0}}) {
    SCOPED_TRACE(keep);
    Write(path, bytes.substr(0, keep));
    absl::Status s = ReadStateFile(path).status();
    EXPECT_THAT(s, StatusIs(absl::StatusCode::kDataLoss, "truncated"));
    EXPECT_THAT(std::string(s.message()), HasSubstr(path));
  }
}

TEST_F(CheckpointStorageTest, FlippedByteIsAChecksumMismatch) {
  std::string path = dir_ + "/s";
  ASSERT_TRUE(WriteStateFile(path, Sample(), nullptr).ok());
  std::string bytes = Read(path);
  for (size_t at : {size_t{20}, bytes.size() / 2, bytes.size() - 1}) {
    SCOPED_TRACE(at);
    std::string bad = bytes;
    bad[at] ^= 0x10;
    Write(path, bad);
    absl::Status s = ReadStateFile(path).status();
    EXPECT_THAT(s, StatusIs(absl::StatusCode::kDataLoss, "checksum mismatch"));
    EXPECT_THAT(std::string(s.message()), HasSubstr(path));
  }
}

TEST_F(CheckpointStorageTest, WrongMagic) {
  std::string path = dir_ + "/s";
  Write(path, "PK\x03\x04 this is a zip file, not a state file");
  absl::Status s = ReadStateFile(path).status();
  EXPECT_THAT(s,
              StatusIs(absl::StatusCode::kInvalidArgument, "not a Sluice state file (bad magic)"));
  EXPECT_THAT(std::string(s.message()), HasSubstr(path));

  // A metadata file is not a state file either, and the other way round.
  proto::CheckpointMetadata md;
  md.set_job_id("j");
  ASSERT_TRUE(WriteMetadata(dir_, md).ok());
  EXPECT_THAT(ReadStateFile(dir_ + "/_metadata").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "bad magic"));
  ASSERT_TRUE(WriteStateFile(path, Sample(), nullptr).ok());
  EXPECT_THAT(ReadMetadata(path).status(), StatusIs(absl::StatusCode::kInvalidArgument, path));
}

TEST_F(CheckpointStorageTest, WrongVersion) {
  std::string path = dir_ + "/s";
  Write(path, Framed("SLST", 4, std::string(1, '\0')));
  absl::Status s = ReadStateFile(path).status();
  EXPECT_THAT(s,
              StatusIs(absl::StatusCode::kFailedPrecondition, "format version 4, expected 1 to 3"));
  EXPECT_THAT(std::string(s.message()), HasSubstr(path));
  // The same frame with version 1 (before native snapshots) reads (a body with zero snapshots).
  Write(path, Framed("SLST", 1, std::string(1, '\0')));
  auto ok = ReadStateFile(path);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_THAT(*ok, IsEmpty());
}

TEST_F(CheckpointStorageTest, CorruptBodyWithAValidChecksum) {
  std::string path = dir_ + "/s";
  Write(path, Framed("SLST", 1, std::string("\x01\x00\x05", 3)));  // a list count, then nothing
  EXPECT_THAT(ReadStateFile(path).status(), StatusIs(absl::StatusCode::kDataLoss, "corrupt"));
}

TEST_F(CheckpointStorageTest, WriteIntoAMissingDirectoryFailsCleanly) {
  std::string path = dir_ + "/no/such/dir/v0-s0";
  absl::Status s = WriteStateFile(path, Sample(), nullptr);
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kNotFound, path));
  EXPECT_THAT(std::string(s.message()), HasSubstr("No such file or directory"));
  EXPECT_THAT(Files(), IsEmpty());
  EXPECT_THAT(WriteMetadata(dir_ + "/no", proto::CheckpointMetadata()),
              StatusIs(absl::StatusCode::kNotFound, dir_ + "/no/_metadata"));
}

TEST_F(CheckpointStorageTest, FailedRenameRemovesTheTemporary) {
  // The temporary is written, but a directory stands where the file should go.
  std::string path = dir_ + "/occupied";
  std::filesystem::create_directories(path + "/inside");
  absl::Status s = WriteStateFile(path, Sample(), nullptr);
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), HasSubstr("'" + path + "'"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("Is a directory"));
  EXPECT_THAT(Files(), ElementsAre("occupied"));
}

TEST_F(CheckpointStorageTest, MetadataRoundTripByDirectoryOrFile) {
  proto::CheckpointMetadata md;
  md.set_job_id("job-9");
  md.set_checkpoint_id(4);
  md.set_timestamp_ms(1234);
  md.set_job_name("wc");
  md.set_max_parallelism(128);
  md.add_vertex_parallelism(2);
  md.add_vertex_nodes("0,1");
  proto::StateHandle* h = md.add_handles();
  h->set_vertex_id(0);
  h->set_subtask(1);
  h->set_file("v0-s1");
  h->set_size(99);
  h->set_crc32c(0xdeadbeef);
  ASSERT_TRUE(WriteMetadata(dir_, md).ok());
  EXPECT_THAT(Files(), ElementsAre("_metadata"));
  EXPECT_EQ(Read(dir_ + "/_metadata").substr(0, 4), "SLMD");
  for (const std::string& p : {dir_, dir_ + "/_metadata"}) {
    auto read = ReadMetadata(p);
    ASSERT_TRUE(read.ok()) << read.status();
    EXPECT_EQ(read->SerializeAsString(), md.SerializeAsString());
  }
  std::string bytes = Read(dir_ + "/_metadata");
  Write(dir_ + "/_metadata", bytes.substr(0, bytes.size() - 2));
  EXPECT_THAT(ReadMetadata(dir_).status(),
              StatusIs(absl::StatusCode::kDataLoss, dir_ + "/_metadata' is truncated"));
}

// State files are read, copied and removed by the names in _metadata: a hostile or corrupt one
// that points outside the job's checkpoint directory is refused.
TEST_F(CheckpointStorageTest, MetadataNamingFilesOutsideTheCheckpointDirectoryIsRefused) {
  for (const auto& [file, shared] : std::vector<std::pair<std::string, std::string>>{
           {"../../etc/passwd", ""},
           {"/etc/passwd", ""},
           {"chk-1/v0-s0", "shared/../../x"},
       }) {
    proto::CheckpointMetadata md;
    md.set_checkpoint_id(1);
    proto::StateHandle* h = md.add_handles();
    h->set_file(file);
    if (!shared.empty()) h->add_shared_files(shared);
    ASSERT_TRUE(WriteMetadata(dir_, md).ok());
    EXPECT_THAT(ReadMetadata(dir_).status(),
                StatusIs(absl::StatusCode::kDataLoss, "outside the job's checkpoint directory"))
        << file << " " << shared;
  }
}

}  // namespace
}  // namespace sluice
