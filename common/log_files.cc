#include "common/log_files.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <tuple>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace sluice {
namespace {

struct Entry {
  LogFileInfo info;
  std::string path;
  std::string base;    // the current file's name this one is a generation of
  int64_t generation;  // 0: the current file
  dev_t dev;
  ino_t ino;
};

int64_t MtimeMs(const struct stat& st) {
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1000000;
}

// The path of the regular file `fd` writes to, when that path still names it; else "".
std::string CurrentPath(int fd) {
  struct stat fst;
  if (fd < 0 || ::fstat(fd, &fst) != 0 || !S_ISREG(fst.st_mode)) return "";
  char buf[PATH_MAX];
  const std::string link = absl::StrCat("/proc/self/fd/", fd);
  ssize_t n = ::readlink(link.c_str(), buf, sizeof(buf) - 1);
  if (n <= 0) return "";
  std::string path(buf, static_cast<size_t>(n));
  if (path[0] != '/') return "";
  // A deleted file reads as "<path> (deleted)"; a renamed one as its new path. Either way the
  // name must still lead to the very file the descriptor writes to.
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_dev != fst.st_dev ||
      st.st_ino != fst.st_ino) {
    return "";
  }
  return path;
}

std::string NameOf(const std::string& path) { return path.substr(path.rfind('/') + 1); }

// `name` is `base`.<digits>: its generation number, else -1.
int64_t GenerationOf(const std::string& name, const std::string& base) {
  if (name.size() <= base.size() + 1 || name.compare(0, base.size(), base) != 0 ||
      name[base.size()] != '.') {
    return -1;
  }
  const std::string digits = name.substr(base.size() + 1);
  if (digits.size() > 9) return -1;
  int64_t n = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return -1;
    n = n * 10 + (c - '0');
  }
  return n;
}

void AddIfRegular(const std::string& path, const std::string& base, int64_t generation,
                  std::vector<Entry>* out) {
  if (!CheckLogFileName(NameOf(path)).ok()) return;  // could never be asked for
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return;
  const std::string name = NameOf(path);
  for (const Entry& e : *out) {
    if (e.info.name == name) return;  // the same name from another folder: the first one wins
  }
  out->push_back(Entry{LogFileInfo{name, static_cast<int64_t>(st.st_size), MtimeMs(st)}, path, base,
                       generation, st.st_dev, st.st_ino});
}

// The current file written by `fd` and its generations.
void Scan(int fd, std::vector<Entry>* out) {
  const std::string path = CurrentPath(fd);
  if (path.empty()) return;
  const std::string dir = path.substr(0, path.rfind('/') + 1);
  const std::string base = NameOf(path);
  AddIfRegular(path, base, 0, out);
  DIR* d = ::opendir(dir.empty() ? "/" : dir.c_str());
  if (d == nullptr) return;
  std::vector<std::pair<int64_t, std::string>> generations;
  while (struct dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    int64_t g = GenerationOf(name, base);
    if (g >= 0) generations.emplace_back(g, std::move(name));
  }
  ::closedir(d);
  std::sort(generations.begin(), generations.end());
  for (const auto& [g, name] : generations) AddIfRegular(dir + name, base, g, out);
}

std::vector<Entry> ScanAll(int log_fd, int out_fd) {
  std::vector<Entry> out;
  Scan(log_fd, &out);
  Scan(out_fd, &out);
  std::stable_sort(out.begin(), out.end(), [](const Entry& a, const Entry& b) {
    return std::tie(a.base, a.generation) < std::tie(b.base, b.generation);
  });
  return out;
}

// `name` for an error message: escaped, and cut when long.
std::string Quoted(std::string_view name) {
  std::string s = absl::CHexEscape(std::string(name.substr(0, 200)));
  if (name.size() > 200) s += "...";
  return absl::StrCat("'", s, "'");
}

}  // namespace

absl::Status CheckLogFileName(std::string_view name) {
  if (name.empty()) return absl::InvalidArgumentError("empty log file name");
  bool printable = true;
  for (char c : name) printable = printable && c >= 0x20 && c <= 0x7e;
  if (!printable || name == "." || name == ".." || name.find('/') != std::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat("malformed log file name ", Quoted(name)));
  }
  return absl::OkStatus();
}

std::vector<LogFileInfo> DaemonLogFiles::List() const {
  std::vector<LogFileInfo> out;
  for (Entry& e : ScanAll(log_fd_, out_fd_)) out.push_back(std::move(e.info));
  return out;
}

std::string DaemonLogFiles::CurrentLogName() const {
  const std::string path = CurrentPath(log_fd_);
  return path.empty() ? "" : NameOf(path);
}

std::string DaemonLogFiles::CurrentOutName() const {
  const std::string path = CurrentPath(out_fd_);
  return path.empty() ? "" : NameOf(path);
}

absl::StatusOr<LogFileTail> DaemonLogFiles::Read(std::string_view name, int64_t max_bytes) const {
  if (absl::Status s = CheckLogFileName(name); !s.ok()) return s;
  const std::vector<Entry> entries = ScanAll(log_fd_, out_fd_);
  auto it = std::find_if(entries.begin(), entries.end(),
                         [&](const Entry& e) { return e.info.name == name; });
  if (it == entries.end()) {
    return absl::NotFoundError(absl::StrCat("no log file named ", Quoted(name)));
  }
  // The listed file, opened without following a link, must still be the one listed.
  int fd = ::open(it->path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return absl::NotFoundError(absl::StrCat("log file ", Quoted(name), " is gone"));
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_dev != it->dev ||
      st.st_ino != it->ino) {
    ::close(fd);
    return absl::NotFoundError(absl::StrCat("log file ", Quoted(name), " is gone"));
  }
  LogFileTail tail;
  tail.name = it->info.name;
  tail.size = static_cast<int64_t>(st.st_size);
  tail.offset = std::max<int64_t>(0, tail.size - std::max<int64_t>(0, max_bytes));
  tail.data.resize(static_cast<size_t>(tail.size - tail.offset));
  size_t got = 0;
  while (got < tail.data.size()) {
    ssize_t n = ::pread(fd, tail.data.data() + got, tail.data.size() - got,
                        static_cast<off_t>(tail.offset + static_cast<int64_t>(got)));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // the file shrank meanwhile: serve what there is
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  tail.data.resize(got);
  return tail;
}

absl::StatusOr<LogFileTail> DaemonLogFiles::ReadCurrentLog(int64_t max_bytes) const {
  const std::string name = CurrentLogName();
  if (name.empty()) return absl::NotFoundError("the log (standard error) is not written to a file");
  return Read(name, max_bytes);
}

absl::StatusOr<LogFileTail> DaemonLogFiles::ReadCurrentOut(int64_t max_bytes) const {
  const std::string name = CurrentOutName();
  if (name.empty()) return absl::NotFoundError("standard output is not written to a file");
  return Read(name, max_bytes);
}

}  // namespace sluice
