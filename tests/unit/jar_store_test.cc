#include "jobmanager/jar_store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <regex>

#include "common/ids.h"

namespace sluice {
namespace {

namespace fs = std::filesystem;

const std::string kLibrary = std::string(
                                 "\x7f"
                                 "ELF",
                                 4) +
                             " sluice_job_entry and the rest";

class JarStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (fs::temp_directory_path() / NewInstanceId("jar-store-test")).string();
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string dir_;
};

TEST(SafeJarNameTest, KeepsTheLastComponentAndSafeCharactersOnly) {
  EXPECT_EQ(SafeJarName("libjob.so"), "libjob.so");
  EXPECT_EQ(SafeJarName("../../etc/passwd"), "passwd");
  EXPECT_EQ(SafeJarName("..\\..\\evil.so"), "evil.so");
  EXPECT_EQ(SafeJarName("..%2f..%2fevil.so"), "__2f__2fevil.so");
  EXPECT_EQ(SafeJarName("a..b.so"), "a_b.so");
  EXPECT_EQ(SafeJarName(".hidden.so"), "hidden.so");
  EXPECT_EQ(SafeJarName("lib job\n.so"), "lib_job_.so");
  EXPECT_EQ(SafeJarName(".."), "_");
  EXPECT_EQ(SafeJarName(""), "job.so");
  EXPECT_EQ(SafeJarName(std::string(300, 'a')).size(), 128u);
}

TEST_F(JarStoreTest, StoresByHashListsGetsAndDeletes) {
  auto store = JarStore::Create(dir_);
  ASSERT_TRUE(store.ok()) << store.status();
  auto jar = (*store)->Put(kLibrary, "../x/libjob.so");
  ASSERT_TRUE(jar.ok()) << jar.status();
  const std::string sha = Sha256Hex(kLibrary);
  EXPECT_TRUE(std::regex_match(jar->id, std::regex(sha + "-[0-9a-f]{16}_libjob\\.so"))) << jar->id;
  EXPECT_EQ(jar->path, dir_ + "/" + sha + ".so");
  EXPECT_TRUE(jar->has_entry);
  EXPECT_TRUE(fs::exists(dir_ + "/" + jar->id.substr(0, 81) + ".json"));
  EXPECT_FALSE(fs::exists(dir_ + "/../x"));
  // The id's name must be the jar's own.
  EXPECT_EQ((*store)->Get(jar->id.substr(0, 82) + "other.so").status().code(),
            absl::StatusCode::kNotFound);

  // A second store over the same folder (a restart) finds it.
  auto again = JarStore::Create(dir_);
  ASSERT_TRUE(again.ok());
  auto listed = (*again)->List();
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0].id, jar->id);
  EXPECT_EQ(listed[0].uploaded_ms, jar->uploaded_ms);
  auto got = (*again)->Get(jar->id);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->path, jar->path);

  EXPECT_TRUE((*again)->Delete(jar->id).ok());
  EXPECT_TRUE((*again)->List().empty());
  EXPECT_EQ((*again)->Get(jar->id).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(JarStoreTest, EachUploadIsAJarOfItsOwnOverOneLibrary) {
  auto store = JarStore::Create(dir_);
  ASSERT_TRUE(store.ok());
  auto a = (*store)->Put(kLibrary, "libjob.so");
  auto b = (*store)->Put(kLibrary, "libjob.so");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a->id, b->id);
  EXPECT_EQ(a->path, b->path);
  EXPECT_EQ((*store)->List().size(), 2u);
  // One client's delete leaves the other's jar, and its library.
  EXPECT_TRUE((*store)->Delete(a->id).ok());
  EXPECT_TRUE((*store)->Get(b->id).ok());
  EXPECT_TRUE(fs::exists(b->path));
  EXPECT_TRUE((*store)->Delete(b->id).ok());
  EXPECT_FALSE(fs::exists(b->path));
  EXPECT_TRUE(fs::is_empty(dir_));
}

TEST_F(JarStoreTest, RefusesWhatIsNotALibraryAndMalformedIds) {
  auto store = JarStore::Create(dir_);
  ASSERT_TRUE(store.ok());
  EXPECT_EQ((*store)->Put("#!/bin/sh", "libjob.so").status().code(),
            absl::StatusCode::kInvalidArgument);
  const std::string sha = Sha256Hex(kLibrary);
  for (const std::string& id :
       {std::string("../../etc/passwd"), sha, sha + "_x.so", sha + "-0123456789abcdef_",
        sha + "-0123456789abcdef_../x.so", sha + "-0123456789abcdef_a/b.so",
        sha + "-0123456789ABCDEF_x.so", sha + "-0123_x.so",
        sha.substr(1) + "-0123456789abcdef_x.so", std::string(64, 'G') + "-0123456789abcdef_x.so",
        sha + "-0123456789abcdef_%2e%2e%2f.so", std::string("..%252f..%252fetc%252fpasswd")}) {
    EXPECT_EQ((*store)->Get(id).status().code(), absl::StatusCode::kInvalidArgument) << id;
    EXPECT_EQ((*store)->Delete(id).code(), absl::StatusCode::kInvalidArgument) << id;
  }
}

TEST_F(JarStoreTest, AFolderOthersMayWriteToLosesThatPermission) {
  fs::create_directories(dir_);
  fs::permissions(dir_, fs::perms::all);
  auto store = JarStore::Create(dir_);
  ASSERT_TRUE(store.ok()) << store.status();
  struct stat st {};
  ASSERT_EQ(::stat(dir_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & (S_IWGRP | S_IWOTH), 0u);
}

}  // namespace
}  // namespace sluice
