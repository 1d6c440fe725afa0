#include "jobmanager/blob_store.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/ids.h"

namespace sluice {
namespace {

std::string TempDir() {
  return (std::filesystem::temp_directory_path() / NewInstanceId("blob-store-test")).string();
}

TEST(BlobStoreTest, StoresLibrariesByHashAndRemovesItsFolder) {
  std::string dir = TempDir();
  {
    auto store = BlobStore::Create(dir);
    ASSERT_TRUE(store.ok()) << store.status();
    std::string lib = std::string(
                          "\x7f"
                          "ELF",
                          4) +
                      "rest of a library";
    auto sha = (*store)->Put(lib);
    ASSERT_TRUE(sha.ok()) << sha.status();
    EXPECT_EQ(*sha, Sha256Hex(lib));
    EXPECT_EQ(*(*store)->Put(lib), *sha) << "storing twice is harmless";
    auto path = (*store)->Path(*sha);
    ASSERT_TRUE(path.ok());
    std::ifstream f(*path, std::ios::binary);
    std::string read((std::istreambuf_iterator<char>(f)), {});
    EXPECT_EQ(read, lib);
  }
  EXPECT_FALSE(std::filesystem::exists(dir));
}

TEST(BlobStoreTest, RefusesWhatIsNotALibraryAndMalformedHashes) {
  auto store = BlobStore::Create(TempDir());
  ASSERT_TRUE(store.ok());
  EXPECT_EQ((*store)->Put("#!/bin/sh").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*store)->Path("../../etc/passwd").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*store)->Path(std::string(64, 'a')).status().code(), absl::StatusCode::kNotFound);
  EXPECT_FALSE((*store)->Contains(std::string(64, 'a')));
}

TEST(BlobStoreTest, NamesAFolderItCannotCreate) {
  auto store = BlobStore::Create("/proc/no-such-place/blobs");
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.status().message().find("/proc/no-such-place/blobs"), std::string::npos);
}

}  // namespace
}  // namespace sluice
