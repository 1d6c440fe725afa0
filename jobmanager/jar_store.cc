#include "jobmanager/jar_store.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/checkpoint_storage.h"
#include "common/ids.h"
#include "jobmanager/blob_store.h"

namespace sluice {
namespace {

namespace fs = std::filesystem;

constexpr size_t kMaxNameLength = 128;
// A jar's key: <sha256>-<token>, the token 16 hex digits.
constexpr size_t kTokenSize = 16;
constexpr size_t kKeySize = 64 + 1 + kTokenSize;

bool IsLowerHex(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
  });
}

bool IsJarKey(const std::string& key) {
  return key.size() == kKeySize && IsSha256Hex(key.substr(0, 64)) && key[64] == '-' &&
         IsLowerHex(key.substr(65));
}

// 16 random hex digits.
std::string NewToken() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  char buf[kTokenSize + 1];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(rng()));
  return buf;
}

bool IsSafeNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

}  // namespace

std::string SafeJarName(const std::string& file_name) {
  std::string name = file_name;
  size_t slash = name.find_last_of("/\\");
  if (slash != std::string::npos) name = name.substr(slash + 1);
  for (char& c : name) {
    if (!IsSafeNameChar(c)) c = '_';
  }
  // No "..": the name is never a path, but nothing reading it should have to know that.
  std::string out;
  for (char c : name) {
    if (c == '.' && !out.empty() && out.back() == '.') {
      out.back() = '_';
    } else {
      out += c;
    }
  }
  name = std::move(out);
  name.erase(0, name.find_first_not_of('.'));
  if (name.size() > kMaxNameLength) name.resize(kMaxNameLength);
  return name.empty() ? "job.so" : name;
}

absl::StatusOr<std::unique_ptr<JarStore>> JarStore::Create(std::string dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    return absl::InternalError(absl::StrCat("cannot create the upload folder '", dir,
                                            "' (web.upload.dir): ", ec.message()));
  }
  // What is in the folder gets run: nobody else may put a library there, nor make the name
  // lead elsewhere.
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != ::geteuid()) {
    return absl::FailedPreconditionError(
        absl::StrCat("the upload folder '", dir,
                     "' (web.upload.dir) must be a folder (not a symbolic link) that belongs to "
                     "the user the JobManager runs as"));
  }
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    fs::permissions(dir, fs::perms::group_write | fs::perms::others_write, fs::perm_options::remove,
                    ec);
    if (ec) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the upload folder '", dir, "' (web.upload.dir) is writable by others: ", ec.message()));
    }
  }
  return std::unique_ptr<JarStore>(new JarStore(std::move(dir)));
}

absl::StatusOr<StoredJar> JarStore::Put(std::string_view bytes, const std::string& file_name) {
  if (bytes.size() < 4 || bytes.substr(0, 4) != std::string_view("\x7f"
                                                                 "ELF",
                                                                 4)) {
    return absl::InvalidArgumentError(
        "the uploaded file is not a job library (a shared library lib<job>.so; no ELF header)");
  }
  const std::string sha = Sha256Hex(bytes);
  const std::string key = absl::StrCat(sha, "-", NewToken());
  StoredJar jar;
  jar.name = SafeJarName(file_name);
  jar.id = absl::StrCat(key, "_", jar.name);
  jar.path = absl::StrCat(dir_, "/", sha, ".so");
  jar.uploaded_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count();
  jar.has_entry = bytes.find("sluice_job_entry") != std::string_view::npos;
  nlohmann::json meta{{"name", jar.name}, {"uploaded", jar.uploaded_ms}, {"entry", jar.has_entry}};
  absl::MutexLock lock(&mu_);
  std::error_code ec;
  if (!fs::exists(jar.path, ec)) {
    if (absl::Status s = WriteFileDurably(jar.path, bytes, /*sync=*/false); !s.ok()) return s;
  }
  if (absl::Status s =
          WriteFileDurably(absl::StrCat(dir_, "/", key, ".json"), meta.dump(), /*sync=*/false);
      !s.ok()) {
    return s;
  }
  return jar;
}

absl::StatusOr<StoredJar> JarStore::Read(const std::string& key) const {
  StoredJar jar;
  jar.path = absl::StrCat(dir_, "/", key.substr(0, 64), ".so");
  std::ifstream f(absl::StrCat(dir_, "/", key, ".json"));
  std::error_code ec;
  if (!f || !fs::exists(jar.path, ec)) return absl::NotFoundError("no uploaded library " + key);
  std::stringstream ss;
  ss << f.rdbuf();
  nlohmann::json meta = nlohmann::json::parse(ss.str(), nullptr, /*allow_exceptions=*/false);
  // A damaged sidecar loses the name, not the library.
  jar.name = "job.so";
  if (meta.is_object()) {
    if (meta.contains("name") && meta["name"].is_string()) {
      jar.name = SafeJarName(meta["name"].get<std::string>());
    }
    if (meta.contains("uploaded") && meta["uploaded"].is_number_integer()) {
      jar.uploaded_ms = meta["uploaded"].get<int64_t>();
    }
    jar.has_entry = meta.value("entry", false);
  }
  jar.id = absl::StrCat(key, "_", jar.name);
  return jar;
}

absl::StatusOr<StoredJar> JarStore::Get(const std::string& jar_id) const {
  const size_t underscore = jar_id.find('_');
  const std::string key = jar_id.substr(0, underscore);
  const std::string name = underscore == std::string::npos ? "" : jar_id.substr(underscore + 1);
  if (!IsJarKey(key) || name.empty() || SafeJarName(name) != name) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", jar_id,
                     "' is not a jar id (<sha256 of the library>-<16 hex digits>_<file name>, as "
                     "POST /jars/upload and GET /jars give them)"));
  }
  auto jar = Read(key);
  if (!jar.ok() || jar->id != jar_id) {
    return absl::NotFoundError(absl::StrCat("no uploaded library has id ", jar_id));
  }
  return jar;
}

std::vector<StoredJar> JarStore::List() const {
  std::vector<StoredJar> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir_, ec)) {
    const std::string file = entry.path().filename().string();
    if (file.size() != kKeySize + 5 || file.substr(kKeySize) != ".json") continue;
    const std::string key = file.substr(0, kKeySize);
    if (!IsJarKey(key)) continue;
    if (auto jar = Read(key); jar.ok()) out.push_back(std::move(*jar));
  }
  std::sort(out.begin(), out.end(), [](const StoredJar& a, const StoredJar& b) {
    return a.uploaded_ms != b.uploaded_ms ? a.uploaded_ms > b.uploaded_ms : a.id < b.id;
  });
  return out;
}

absl::Status JarStore::Delete(const std::string& jar_id) {
  auto jar = Get(jar_id);
  if (!jar.ok()) return jar.status();
  const std::string sha = jar_id.substr(0, 64);
  absl::MutexLock lock(&mu_);
  std::error_code ec;
  fs::remove(absl::StrCat(dir_, "/", jar_id.substr(0, kKeySize), ".json"), ec);
  if (ec)
    return absl::InternalError(absl::StrCat("cannot delete jar ", jar_id, ": ", ec.message()));
  // The library goes with the last jar of its bytes.
  for (const auto& entry : fs::directory_iterator(dir_, ec)) {
    const std::string file = entry.path().filename().string();
    if (file.size() == kKeySize + 5 && file.compare(0, 65, sha + "-") == 0) return absl::OkStatus();
  }
  fs::remove(jar->path, ec);
  if (ec) return absl::InternalError(absl::StrCat("cannot delete ", jar->path, ": ", ec.message()));
  return absl::OkStatus();
}

}  // namespace sluice
