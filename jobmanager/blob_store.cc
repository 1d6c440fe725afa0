#include "jobmanager/blob_store.h"

#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "common/checkpoint_storage.h"
#include "common/ids.h"

namespace sluice {

bool IsSha256Hex(const std::string& s) {
  return s.size() == 64 && s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

absl::StatusOr<std::unique_ptr<BlobStore>> BlobStore::Create(std::string dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec)
    return absl::InternalError(
        absl::StrCat("cannot create blob store '", dir, "': ", ec.message()));
  return std::unique_ptr<BlobStore>(new BlobStore(std::move(dir)));
}

BlobStore::~BlobStore() {
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

absl::StatusOr<std::string> BlobStore::Put(std::string_view bytes) {
  if (bytes.size() > kMaxLibraryBytes)
    return absl::ResourceExhaustedError("job library larger than 1 GiB");
  if (bytes.size() < 4 || bytes.substr(0, 4) != std::string_view("\x7f"
                                                                 "ELF",
                                                                 4)) {
    return absl::InvalidArgumentError("the uploaded file is not a shared library (no ELF header)");
  }
  std::string sha = Sha256Hex(bytes);
  std::string path = absl::StrCat(dir_, "/", sha, ".so");
  std::error_code ec;
  if (std::filesystem::exists(path, ec)) return sha;
  if (absl::Status st = WriteFileDurably(path, bytes, /*sync=*/false); !st.ok()) {
    return absl::InternalError(
        absl::StrCat("cannot store the job library in ", dir_, ": ", st.message()));
  }
  return sha;
}

absl::StatusOr<std::string> BlobStore::Path(const std::string& sha256) const {
  if (!IsSha256Hex(sha256)) return absl::InvalidArgumentError("malformed library hash");
  std::string path = absl::StrCat(dir_, "/", sha256, ".so");
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return absl::NotFoundError("no job library " + sha256);
  return path;
}

}  // namespace sluice
