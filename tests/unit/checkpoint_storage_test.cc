// Checkpoint storage: CRC-32C, state files and _metadata written and read back, every way a
// file can be wrong (each error naming the file), and how snapshots are narrowed to the subtasks
// of a new parallelism.
#include "common/checkpoint_storage.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "sluice/internal/heap_backend.h"
#include "sluice/keys.h"
#include "sluice/serializer.h"
#include "sluice/state.h"

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

// ---------------------------------------------------------------------------------------------
// NarrowSnapshots.

TEST(NarrowSnapshotsTest, KeyGroupsOfTwoSubtasksGoToTheirOwnersAmongThree) {
  constexpr int kMaxParallelism = 128;
  auto key_group = [](int64_t k) {
    return key_group_for_hash(KeyHash<int64_t>{}(k), kMaxParallelism);
  };
  std::vector<std::vector<internal::OperatorSnapshot>> by_subtask;
  for (int i = 0; i < 2; ++i) {
    internal::HeapKeyedStateBackend b(key_group_range(i, kMaxParallelism, 2));
    auto& v = b.get<ValueState<int64_t>>(ValueStateDescriptor<int64_t>("v"));
    for (int64_t k = 0; k < 500; ++k) {
      if (subtask_for_key_group(key_group(k), kMaxParallelism, 2) != i) continue;
      b.set_current_key(serialize(k), key_group(k));
      v.update(k * 2);
    }
    internal::OperatorSnapshot s;
    s.node_id = 4;
    b.snapshot(s);
    by_subtask.push_back({s});
  }
  std::map<int64_t, int64_t> found;
  for (int j = 0; j < 3; ++j) {
    std::vector<internal::OperatorSnapshot> mine =
        NarrowSnapshots(by_subtask, j, 3, kMaxParallelism);
    ASSERT_EQ(mine.size(), 1u);
    EXPECT_EQ(mine[0].node_id, 4);
    KeyGroupRange range = key_group_range(j, kMaxParallelism, 3);
    for (const auto& [kg, bytes] : mine[0].key_groups) {
      EXPECT_GE(kg, range.first);
      EXPECT_LE(kg, range.last);
    }
    internal::HeapKeyedStateBackend b(range);
    b.restore(mine[0]);
    auto& v = b.get<ValueState<int64_t>>(ValueStateDescriptor<int64_t>("v"));
    b.for_each_key([&](const std::string& key) {
      int64_t k = deserialize<int64_t>(key);
      EXPECT_TRUE(found.emplace(k, v.value()).second) << k << " in two subtasks";
    });
  }
  ASSERT_EQ(found.size(), 500u);
  for (const auto& [k, v] : found) EXPECT_EQ(v, k * 2);
}

// A native snapshot (a store's files) goes to every new subtask whose key groups it overlaps.
TEST(NarrowSnapshotsTest, NativeSnapshotsGoToEverySubtaskTheyOverlap) {
  std::vector<std::vector<internal::OperatorSnapshot>> by_subtask(2);
  for (int i = 0; i < 2; ++i) {
    internal::OperatorSnapshot s;
    s.node_id = 2;
    internal::NativeSnapshot n;
    n.backend = "rocksdb";
    n.first_key_group = i * 64;
    n.last_key_group = i * 64 + 63;
    n.files.push_back({"1.sst", "shared/" + std::to_string(i), 1, true});
    s.native.push_back(n);
    by_subtask[i].push_back(s);
  }
  auto firsts = [&](int j) {
    std::vector<int> out;
    // Held here: a range-for over a member of the temporary would read it after its end.
    std::vector<internal::OperatorSnapshot> narrowed = NarrowSnapshots(by_subtask, j, 3, 128);
    for (const auto& n : narrowed.at(0).native) {
      out.push_back(n.first_key_group);
    }
    return out;
  };
  EXPECT_THAT(firsts(0), ElementsAre(0));      // [0, 42]
  EXPECT_THAT(firsts(1), ElementsAre(0, 64));  // [43, 85]
  EXPECT_THAT(firsts(2), ElementsAre(64));     // [86, 127]
}

// Operator snapshots of node 1 with list "l" holding `n[i]` elements "<i>.<e>" at old subtask i.
std::vector<std::vector<internal::OperatorSnapshot>> ListSnapshots(const std::vector<int>& n) {
  std::vector<std::vector<internal::OperatorSnapshot>> by_subtask;
  for (size_t i = 0; i < n.size(); ++i) {
    internal::OperatorSnapshot s;
    s.node_id = 1;
    for (int e = 0; e < n[i]; ++e) s.lists["l"].push_back(absl::StrCat(i, ".", e));
    s.lists["other"] = {absl::StrCat("o", i)};
    by_subtask.push_back({s});
  }
  return by_subtask;
}

TEST(NarrowSnapshotsTest, OperatorListsFromTwoSubtasksSpreadOverThree) {
  auto by_subtask = ListSnapshots({3, 2});
  std::vector<std::vector<std::string>> parts;
  std::vector<std::string> others;
  for (int j = 0; j < 3; ++j) {
    std::vector<internal::OperatorSnapshot> mine = NarrowSnapshots(by_subtask, j, 3, 128);
    ASSERT_EQ(mine.size(), 1u) << j;
    EXPECT_THAT(mine[0].key_groups, IsEmpty());
    parts.push_back(mine[0].lists.count("l") ? mine[0].lists.at("l") : std::vector<std::string>{});
    if (mine[0].lists.count("other")) {
      for (const auto& o : mine[0].lists.at("other")) others.push_back(o);
    }
  }
  // Concatenated in old-subtask order, split into contiguous near-equal parts.
  EXPECT_THAT(parts[0], ElementsAre("0.0"));
  EXPECT_THAT(parts[1], ElementsAre("0.1", "0.2"));
  EXPECT_THAT(parts[2], ElementsAre("1.0", "1.1"));
  EXPECT_THAT(others, ElementsAre("o0", "o1"));
}

TEST(NarrowSnapshotsTest, OperatorListsFromThreeSubtasksIntoOne) {
  auto by_subtask = ListSnapshots({2, 0, 3});
  std::vector<internal::OperatorSnapshot> mine = NarrowSnapshots(by_subtask, 0, 1, 128);
  ASSERT_EQ(mine.size(), 1u);
  EXPECT_THAT(mine[0].lists.at("l"), ElementsAre("0.0", "0.1", "2.0", "2.1", "2.2"));
  EXPECT_THAT(mine[0].lists.at("other"), ElementsAre("o0", "o1", "o2"));
}

TEST(NarrowSnapshotsTest, SameParallelismKeepsEachSubtasksListsAndDropsEmptySnapshots) {
  auto by_subtask = ListSnapshots({1, 4});
  internal::OperatorSnapshot keyed;
  keyed.node_id = 2;
  keyed.key_groups[0] = "kg0";  // owned by subtask 0 of 2
  by_subtask[1].push_back(keyed);
  std::vector<internal::OperatorSnapshot> s0 = NarrowSnapshots(by_subtask, 0, 2, 128);
  std::vector<internal::OperatorSnapshot> s1 = NarrowSnapshots(by_subtask, 1, 2, 128);
  ASSERT_EQ(s0.size(), 2u);
  EXPECT_EQ(s0[0].lists, by_subtask[0][0].lists);
  EXPECT_EQ(s0[1].node_id, 2);
  EXPECT_EQ(s0[1].key_groups.at(0), "kg0");
  ASSERT_EQ(s1.size(), 1u) << "node 2 has nothing for subtask 1";
  EXPECT_EQ(s1[0].lists, by_subtask[1][0].lists);
}

// A union list goes whole to every new subtask; a broadcast list as one old subtask's copy.
std::vector<std::vector<internal::OperatorSnapshot>> ModeSnapshots(int old_parallelism) {
  std::vector<std::vector<internal::OperatorSnapshot>> by_subtask;
  for (int i = 0; i < old_parallelism; ++i) {
    internal::OperatorSnapshot s;
    s.node_id = 1;
    s.lists["offsets"] = {absl::StrCat("p", i)};
    s.distribution["offsets"] = internal::ListDistribution::kUnion;
    s.lists["rules"] = {absl::StrCat("r", i, ".a"), absl::StrCat("r", i, ".b")};
    s.distribution["rules"] = internal::ListDistribution::kBroadcast;
    by_subtask.push_back({s});
  }
  return by_subtask;
}

TEST(NarrowSnapshotsTest, UnionListsGoWholeToEverySubtaskAtAnyParallelism) {
  for (int old_p : {1, 2, 3}) {
    for (int new_p : {1, 2, 3}) {
      auto by_subtask = ModeSnapshots(old_p);
      std::vector<std::string> all;
      for (int i = 0; i < old_p; ++i) all.push_back(absl::StrCat("p", i));
      for (int j = 0; j < new_p; ++j) {
        std::vector<internal::OperatorSnapshot> mine = NarrowSnapshots(by_subtask, j, new_p, 128);
        ASSERT_EQ(mine.size(), 1u);
        EXPECT_EQ(mine[0].lists.at("offsets"), all) << old_p << "->" << new_p << " subtask " << j;
        EXPECT_EQ(mine[0].distribution.at("offsets"), internal::ListDistribution::kUnion);
      }
    }
  }
}

TEST(NarrowSnapshotsTest, BroadcastListsGiveEverySubtaskOneOldSubtasksCopy) {
  for (int old_p : {1, 2, 3}) {
    for (int new_p : {1, 2, 3}) {
      auto by_subtask = ModeSnapshots(old_p);
      for (int j = 0; j < new_p; ++j) {
        std::vector<internal::OperatorSnapshot> mine = NarrowSnapshots(by_subtask, j, new_p, 128);
        ASSERT_EQ(mine.size(), 1u);
        int from = j % old_p;
        EXPECT_THAT(mine[0].lists.at("rules"),
                    ElementsAre(absl::StrCat("r", from, ".a"), absl::StrCat("r", from, ".b")))
            << old_p << "->" << new_p << " subtask " << j;
        EXPECT_EQ(mine[0].distribution.at("rules"), internal::ListDistribution::kBroadcast);
      }
    }
  }
}

TEST(NarrowSnapshotsTest, ABroadcastListMissingAtItsOldSubtaskIsTakenFromAnother) {
  auto by_subtask = ModeSnapshots(2);
  by_subtask[1][0].lists.erase("rules");  // an empty list is not stored
  std::vector<internal::OperatorSnapshot> mine = NarrowSnapshots(by_subtask, 1, 2, 128);
  ASSERT_EQ(mine.size(), 1u);
  EXPECT_THAT(mine[0].lists.at("rules"), ElementsAre("r0.a", "r0.b"));
}

}  // namespace
}  // namespace sluice
