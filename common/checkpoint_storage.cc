// File layout (all integers little-endian):
//
//   magic      4 bytes   "SLST" (state file) or "SLMD" (metadata)
//   version    uint32    kFormatVersion
//   body_size  uint64    bytes of the body
//   body       body_size bytes
//   crc32c     uint32    CRC-32C of every byte before it
//
// State file body: the snapshots of one subtask, as a stream of varints and length-prefixed
// byte strings (64-bit lengths, so neither the file nor one key group is limited to 2 GiB):
//
//   varint count of snapshots, then per snapshot:
//     varint node_id
//     varint count of lists, then per list: bytes name, (version 3) varint distribution
//       (internal::ListDistribution), varint count, bytes per element
//     varint count of key groups, then per key group: varint kg, bytes
//     (version 2) varint count of native snapshots, then per snapshot: bytes backend,
//       varint first key group, varint last key group + 1, varint count of files, then per
//       file: bytes name, bytes path, varint size, varint shared (0 or 1)
//
// where `bytes` is a varint length followed by the bytes. Metadata body: the serialized
// proto::CheckpointMetadata.
#include "common/checkpoint_storage.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <random>
#include <vector>

#include "absl/strings/str_cat.h"
#include "sluice/serializer.h"

namespace sluice {
namespace {

constexpr uint32_t kFormatVersion = 3;
constexpr uint32_t kOldestFormatVersion = 1;  // still read: no native snapshots
constexpr char kStateMagic[4] = {'S', 'L', 'S', 'T'};
constexpr char kMetadataMagic[4] = {'S', 'L', 'M', 'D'};
constexpr size_t kHeaderSize = 4 + 4 + 8;
constexpr size_t kTrailerSize = 4;
constexpr char kMetadataFile[] = "_metadata";

// Slicing-by-8 tables for the reflected Castagnoli polynomial.
struct Crc32cTables {
  uint32_t t[8][256];
  constexpr Crc32cTables() : t() {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
      t[0][i] = c;
    }
    for (int s = 1; s < 8; ++s) {
      for (uint32_t i = 0; i < 256; ++i) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xff];
    }
  }
};
constexpr Crc32cTables kCrcTables;

void PutFixed32(std::string& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void PutFixed64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
uint32_t GetFixed32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(static_cast<uint8_t>(p[i])) << (8 * i);
  return v;
}
uint64_t GetFixed64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(static_cast<uint8_t>(p[i])) << (8 * i);
  return v;
}

size_t VarintSize(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

// Where an encoder writes: counts bytes (to size the body before writing it) or appends them.
class ByteCounter {
 public:
  void Varint(uint64_t v) { n_ += VarintSize(v); }
  void Bytes(std::string_view b) { n_ += VarintSize(b.size()) + b.size(); }
  uint64_t size() const { return n_; }

 private:
  uint64_t n_ = 0;
};

// Buffers writes to a file descriptor and keeps the CRC-32C of everything written.
class FileWriter {
 public:
  explicit FileWriter(int fd) : fd_(fd) {}
  void Raw(std::string_view b) {
    if (b.size() >= kBufferSize) {
      Flush();
      Write(b);
    } else {
      buf_.append(b);
      if (buf_.size() >= kBufferSize) Flush();
    }
  }
  void Varint(uint64_t v) {
    std::string tmp;
    DataOutput(tmp).write_varint(v);
    Raw(tmp);
  }
  void Bytes(std::string_view b) {
    Varint(b.size());
    Raw(b);
  }
  // Writes what is buffered; false (with errno set) on failure.
  bool Flush() {
    if (!buf_.empty()) Write(buf_);
    buf_.clear();
    return error_ == 0;
  }
  uint32_t crc() const { return crc_; }
  uint64_t written() const { return written_; }
  int error() const { return error_; }

 private:
  static constexpr size_t kBufferSize = 1 << 20;
  void Write(std::string_view b) {
    if (error_) return;
    crc_ = Crc32c(b, crc_);
    written_ += b.size();
    while (!b.empty()) {
      ssize_t n = ::write(fd_, b.data(), b.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        error_ = errno;
        return;
      }
      b.remove_prefix(static_cast<size_t>(n));
    }
  }
  int fd_;
  std::string buf_;
  uint32_t crc_ = 0;
  uint64_t written_ = 0;
  int error_ = 0;
};

template <class Out>
void EncodeSnapshots(const std::vector<internal::OperatorSnapshot>& snapshots, Out& out) {
  out.Varint(snapshots.size());
  for (const internal::OperatorSnapshot& s : snapshots) {
    out.Varint(static_cast<uint32_t>(s.node_id));
    out.Varint(s.lists.size());
    for (const auto& [name, elements] : s.lists) {
      out.Bytes(name);
      auto mode = s.distribution.find(name);
      out.Varint(mode == s.distribution.end() ? 0 : static_cast<uint32_t>(mode->second));
      out.Varint(elements.size());
      for (const std::string& e : elements) out.Bytes(e);
    }
    out.Varint(s.key_groups.size());
    for (const auto& [kg, bytes] : s.key_groups) {
      out.Varint(static_cast<uint32_t>(kg));
      out.Bytes(bytes);
    }
    out.Varint(s.native.size());
    for (const internal::NativeSnapshot& n : s.native) {
      out.Bytes(n.backend);
      out.Varint(static_cast<uint32_t>(n.first_key_group));
      out.Varint(static_cast<uint32_t>(n.last_key_group + 1));
      out.Varint(n.files.size());
      for (const internal::StoreFile& f : n.files) {
        out.Bytes(f.name);
        out.Bytes(f.path);
        out.Varint(f.size);
        out.Varint(f.shared ? 1 : 0);
      }
    }
  }
}

std::vector<internal::OperatorSnapshot> DecodeSnapshots(std::string_view body, uint32_t version) {
  DataInput in(body);
  auto read_bytes = [&in] { return in.read_view(in.read_varint()); };
  auto read_int = [&in](const char* what) {
    uint64_t v = in.read_varint();
    if (v > 0x7fffffff) throw SerializationError(absl::StrCat(what, " ", v, " out of range"));
    return static_cast<int>(v);
  };
  uint64_t count = in.read_varint();
  std::vector<internal::OperatorSnapshot> out;
  for (uint64_t i = 0; i < count; ++i) {
    internal::OperatorSnapshot s;
    s.node_id = read_int("node id");
    uint64_t lists = in.read_varint();
    for (uint64_t l = 0; l < lists; ++l) {
      std::string name(read_bytes());
      if (version >= 3) {
        uint64_t mode = in.read_varint();
        if (mode > static_cast<uint64_t>(internal::ListDistribution::kBroadcast)) {
          throw SerializationError(
              absl::StrCat("operator state '", name, "': unknown distribution ", mode));
        }
        if (mode != 0) s.distribution[name] = static_cast<internal::ListDistribution>(mode);
      }
      std::vector<std::string>& elements = s.lists[name];
      uint64_t n = in.read_varint();
      if (n > in.remaining()) throw SerializationError("list length exceeds the file");
      elements.reserve(n);
      for (uint64_t e = 0; e < n; ++e) elements.emplace_back(read_bytes());
    }
    uint64_t groups = in.read_varint();
    for (uint64_t g = 0; g < groups; ++g) {
      int kg = read_int("key group");
      s.key_groups[kg] = std::string(read_bytes());
    }
    uint64_t natives = version >= 2 ? in.read_varint() : 0;
    for (uint64_t k = 0; k < natives; ++k) {
      internal::NativeSnapshot& n = s.native.emplace_back();
      n.backend = std::string(read_bytes());
      n.first_key_group = read_int("key group");
      n.last_key_group = read_int("key group") - 1;
      uint64_t files = in.read_varint();
      if (files > in.remaining()) throw SerializationError("file count exceeds the file");
      for (uint64_t f = 0; f < files; ++f) {
        internal::StoreFile& file = n.files.emplace_back();
        file.name = std::string(read_bytes());
        file.path = std::string(read_bytes());
        file.size = in.read_varint();
        file.shared = in.read_varint() != 0;
      }
    }
    out.push_back(std::move(s));
  }
  if (!in.at_end()) throw SerializationError("trailing bytes after the last snapshot");
  return out;
}

std::string ErrnoText(int err) { return std::strerror(err); }

absl::Status ErrnoError(int err, const std::string& message) {
  return absl::Status(absl::ErrnoToStatusCode(err), absl::StrCat(message, ": ", ErrnoText(err)));
}

std::string TemporaryName(const std::string& path) {
  static thread_local std::mt19937_64 rng(std::random_device{}());
  static constexpr char kHex[] = "0123456789abcdef";
  std::string suffix;
  uint64_t r = rng();
  for (int i = 0; i < 12; ++i, r >>= 4) suffix.push_back(kHex[r & 0xf]);
  return absl::StrCat(path, ".tmp-", suffix);
}

absl::Status SyncDirectory(const std::string& path) {
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  const std::string dir = parent.empty() ? std::string(".") : parent.string();
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoError(errno, absl::StrCat("cannot open directory '", dir, "' to sync"));
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) return ErrnoError(err, absl::StrCat("cannot sync directory '", dir, "'"));
  return absl::OkStatus();
}

struct WrittenFile {
  uint64_t size = 0;
  uint32_t crc = 0;
};

// Writes header, body (`write_body`, which must write exactly `body_size` bytes) and trailer to a
// temporary file next to `path`, syncs it, renames it to `path` and syncs the directory. On any
// failure the temporary is removed and the error names `path`.
template <class WriteBody>
absl::StatusOr<WrittenFile> WriteFramed(const std::string& path, const char magic[4],
                                        uint64_t body_size, WriteBody write_body) {
  std::string tmp = TemporaryName(path);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    return ErrnoError(errno, absl::StrCat("cannot write '", path, "': cannot create '", tmp, "'"));
  }
  auto fail = [&](int err, const std::string& what) {
    ::close(fd);
    ::unlink(tmp.c_str());
    return ErrnoError(err, absl::StrCat("cannot write '", path, "': ", what));
  };
  FileWriter w(fd);
  std::string header(magic, 4);
  PutFixed32(header, kFormatVersion);
  PutFixed64(header, body_size);
  w.Raw(header);
  write_body(w);
  if (!w.Flush()) return fail(w.error(), "write failed");
  if (w.written() != kHeaderSize + body_size) {
    ::close(fd);
    ::unlink(tmp.c_str());
    return absl::InternalError(absl::StrCat("cannot write '", path, "': body of ",
                                            w.written() - kHeaderSize, " bytes, sized ",
                                            body_size));
  }
  WrittenFile result;
  result.crc = w.crc();
  std::string trailer;
  PutFixed32(trailer, result.crc);
  w.Raw(trailer);
  if (!w.Flush()) return fail(w.error(), "write failed");
  result.size = w.written();
  if (::fsync(fd) != 0) return fail(errno, "fsync failed");
  if (::close(fd) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return ErrnoError(err, absl::StrCat("cannot write '", path, "': close failed"));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return ErrnoError(err, absl::StrCat("cannot rename '", tmp, "' to '", path, "'"));
  }
  absl::Status synced = SyncDirectory(path);
  if (!synced.ok()) return synced;
  return result;
}

struct FramedFile {
  std::string bytes;  // the whole file
  uint32_t crc = 0;   // from its trailer
  std::string_view body() const { return std::string_view(bytes).substr(kHeaderSize, body_size); }
  uint64_t body_size = 0;
  uint32_t version = 0;
};

// Reads a whole file and checks its frame. `kind` names the file in errors ("state file").
absl::StatusOr<FramedFile> ReadFramed(const std::string& path, const char magic[4],
                                      const char* kind) {
  // O_NONBLOCK: a path that names a FIFO (it may come from a request) must not hang the reader.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    int err = errno;
    if (err == ENOENT) return absl::NotFoundError(absl::StrCat(kind, " '", path, "' is missing"));
    return ErrnoError(err, absl::StrCat("cannot open ", kind, " '", path, "'"));
  }
  FramedFile f;
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return ErrnoError(err, absl::StrCat("cannot stat ", kind, " '", path, "'"));
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    return absl::InvalidArgumentError(absl::StrCat(kind, " '", path, "' is a directory"));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return absl::InvalidArgumentError(absl::StrCat(kind, " '", path, "' is not a regular file"));
  }
  // The magic before the whole file is read: a large file of another kind is refused unread.
  char head[4];
  if (st.st_size >= 4) {
    ssize_t n = ::pread(fd, head, sizeof head, 0);
    if (n == 4 && std::memcmp(head, magic, 4) != 0) {
      ::close(fd);
      return absl::InvalidArgumentError(
          absl::StrCat("'", path, "' is not a Sluice ", kind, " (bad magic)"));
    }
  }
  f.bytes.resize(static_cast<size_t>(st.st_size));
  size_t got = 0;
  while (got < f.bytes.size()) {
    ssize_t n = ::read(fd, f.bytes.data() + got, f.bytes.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      return ErrnoError(err, absl::StrCat("cannot read ", kind, " '", path, "'"));
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  f.bytes.resize(got);

  const std::string& b = f.bytes;
  if (b.size() >= 4 && std::memcmp(b.data(), magic, 4) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", path, "' is not a Sluice ", kind, " (bad magic)"));
  }
  if (b.size() < kHeaderSize + kTrailerSize) {
    return absl::DataLossError(absl::StrCat(kind, " '", path, "' is truncated: ", b.size(),
                                            " bytes, shorter than its header and trailer"));
  }
  uint32_t version = GetFixed32(b.data() + 4);
  if (version < kOldestFormatVersion || version > kFormatVersion) {
    return absl::FailedPreconditionError(absl::StrCat(kind, " '", path, "' has format version ",
                                                      version, ", expected ", kOldestFormatVersion,
                                                      " to ", kFormatVersion));
  }
  f.version = version;
  f.body_size = GetFixed64(b.data() + 8);
  uint64_t expected = kHeaderSize + f.body_size + kTrailerSize;
  if (f.body_size > b.size() || b.size() < expected) {
    return absl::DataLossError(absl::StrCat(kind, " '", path, "' is truncated: ", b.size(),
                                            " bytes, expected ", expected));
  }
  if (b.size() > expected) {
    return absl::DataLossError(
        absl::StrCat(kind, " '", path, "' has ", b.size() - expected, " bytes after its end"));
  }
  f.crc = GetFixed32(b.data() + b.size() - kTrailerSize);
  uint32_t actual = Crc32c(std::string_view(b.data(), b.size() - kTrailerSize));
  if (actual != f.crc) {
    return absl::DataLossError(absl::StrCat(kind, " '", path, "': checksum mismatch (stored ",
                                            f.crc, ", computed ", actual, ")"));
  }
  return f;
}

}  // namespace

uint32_t Crc32c(std::string_view data, uint32_t crc) {
  const auto& t = kCrcTables.t;
  uint32_t c = ~crc;
  const auto* p = reinterpret_cast<const uint8_t*>(data.data());
  size_t n = data.size();
  while (n >= 8) {
    uint32_t lo = c ^ (static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 |
                       static_cast<uint32_t>(p[2]) << 16 | static_cast<uint32_t>(p[3]) << 24);
    c = t[7][lo & 0xff] ^ t[6][(lo >> 8) & 0xff] ^ t[5][(lo >> 16) & 0xff] ^ t[4][lo >> 24] ^
        t[3][p[4]] ^ t[2][p[5]] ^ t[1][p[6]] ^ t[0][p[7]];
    p += 8;
    n -= 8;
  }
  while (n-- > 0) c = t[0][(c ^ *p++) & 0xff] ^ (c >> 8);
  return ~c;
}

std::string CheckpointDirectory(const std::string& root, const std::string& job_id,
                                int64_t checkpoint_id) {
  return (std::filesystem::path(root) / job_id / absl::StrCat("chk-", checkpoint_id)).string();
}

absl::Status WriteStateFile(const std::string& path,
                            const std::vector<internal::OperatorSnapshot>& snapshots,
                            proto::StateHandle* handle) {
  ByteCounter counter;
  EncodeSnapshots(snapshots, counter);
  absl::StatusOr<WrittenFile> written = WriteFramed(
      path, kStateMagic, counter.size(), [&](FileWriter& w) { EncodeSnapshots(snapshots, w); });
  if (!written.ok()) return written.status();
  if (handle) {
    handle->set_size(static_cast<int64_t>(written->size));
    handle->set_crc32c(written->crc);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<internal::OperatorSnapshot>> ReadStateFile(
    const std::string& path, const proto::StateHandle* expected) {
  absl::StatusOr<FramedFile> f = ReadFramed(path, kStateMagic, "state file");
  if (!f.ok()) return f.status();
  if (expected) {
    if (static_cast<int64_t>(f->bytes.size()) != expected->size()) {
      return absl::DataLossError(absl::StrCat("state file '", path, "' has ", f->bytes.size(),
                                              " bytes, the checkpoint recorded ",
                                              expected->size()));
    }
    if (f->crc != expected->crc32c()) {
      return absl::DataLossError(absl::StrCat("state file '", path, "': checksum ", f->crc,
                                              " differs from the checkpoint's ",
                                              expected->crc32c()));
    }
  }
  try {
    return DecodeSnapshots(f->body(), f->version);
  } catch (const SerializationError& e) {
    return absl::DataLossError(absl::StrCat("state file '", path, "' is corrupt: ", e.what()));
  }
}

absl::Status CopyFileDurably(const std::string& from, const std::string& to, bool sync) {
  int in = ::open(from.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return ErrnoError(errno, absl::StrCat("cannot copy '", from, "': cannot open it"));
  std::string tmp = TemporaryName(to);
  int out = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (out < 0) {
    int err = errno;
    ::close(in);
    return ErrnoError(
        err, absl::StrCat("cannot copy '", from, "' to '", to, "': cannot create '", tmp, "'"));
  }
  auto fail = [&](int err, const std::string& what) {
    ::close(in);
    ::close(out);
    ::unlink(tmp.c_str());
    return ErrnoError(err, absl::StrCat("cannot copy '", from, "' to '", to, "': ", what));
  };
  std::string buf(1 << 20, '\0');
  while (true) {
    ssize_t n = ::read(in, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(errno, "read failed");
    if (n == 0) break;
    std::string_view b(buf.data(), static_cast<size_t>(n));
    while (!b.empty()) {
      ssize_t w = ::write(out, b.data(), b.size());
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return fail(errno, "write failed");
      b.remove_prefix(static_cast<size_t>(w));
    }
  }
  if (sync && ::fsync(out) != 0) return fail(errno, "fsync failed");
  ::close(in);
  if (::close(out) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return ErrnoError(err, absl::StrCat("cannot copy '", from, "' to '", to, "': close failed"));
  }
  if (::rename(tmp.c_str(), to.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return ErrnoError(err, absl::StrCat("cannot rename '", tmp, "' to '", to, "'"));
  }
  return sync ? SyncDirectory(to) : absl::OkStatus();
}

absl::Status WriteFileDurably(const std::string& path, std::string_view bytes, bool sync) {
  std::string tmp = TemporaryName(path);
  int out = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (out < 0) {
    return ErrnoError(errno, absl::StrCat("cannot write '", path, "': cannot create '", tmp, "'"));
  }
  auto fail = [&](int err, const std::string& what) {
    ::close(out);
    ::unlink(tmp.c_str());
    return ErrnoError(err, absl::StrCat("cannot write '", path, "': ", what));
  };
  while (!bytes.empty()) {
    ssize_t w = ::write(out, bytes.data(), bytes.size());
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return fail(errno, "write failed");
    bytes.remove_prefix(static_cast<size_t>(w));
  }
  if (sync && ::fsync(out) != 0) return fail(errno, "fsync failed");
  if (::close(out) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return ErrnoError(err, absl::StrCat("cannot write '", path, "': close failed"));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return ErrnoError(err, absl::StrCat("cannot rename '", tmp, "' to '", path, "'"));
  }
  return sync ? SyncDirectory(path) : absl::OkStatus();
}

absl::Status WriteMetadata(const std::string& dir, const proto::CheckpointMetadata& metadata) {
  std::string body;
  if (!metadata.SerializeToString(&body)) {
    return absl::InternalError(
        absl::StrCat("cannot serialize the metadata of checkpoint ", metadata.checkpoint_id()));
  }
  std::string path = (std::filesystem::path(dir) / kMetadataFile).string();
  absl::StatusOr<WrittenFile> written =
      WriteFramed(path, kMetadataMagic, body.size(), [&](FileWriter& w) { w.Raw(body); });
  return written.status();
}

absl::StatusOr<proto::CheckpointMetadata> ReadMetadata(const std::string& path) {
  std::string file = path;
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    file = (std::filesystem::path(path) / kMetadataFile).string();
  }
  absl::StatusOr<FramedFile> f = ReadFramed(file, kMetadataMagic, "checkpoint metadata");
  if (!f.ok()) return f.status();
  proto::CheckpointMetadata metadata;
  std::string_view body = f->body();
  if (!metadata.ParseFromArray(body.data(), static_cast<int>(body.size()))) {
    return absl::DataLossError(
        absl::StrCat("checkpoint metadata '", file, "' is corrupt: the body does not parse"));
  }
  // The state files it names are read, copied and deleted relative to the job's checkpoint
  // directory: a name that leaves it (absolute, or through "..") would reach any file.
  auto outside = [](const std::string& name) {
    if (!name.empty() && name.front() == '/') return true;
    for (const auto& part : std::filesystem::path(name)) {
      if (part == "..") return true;
    }
    return false;
  };
  for (const proto::StateHandle& h : metadata.handles()) {
    std::vector<std::string> names(h.shared_files().begin(), h.shared_files().end());
    names.push_back(h.file());
    for (const std::string& name : names) {
      if (outside(name)) {
        return absl::DataLossError(absl::StrCat("checkpoint metadata '", file,
                                                "' names a state file outside the job's "
                                                "checkpoint directory: '",
                                                name, "'"));
      }
    }
  }
  return metadata;
}

}  // namespace sluice
