// The files connector's sources and sinks (see sluice/connectors/files.h).
#include "sluice/connectors/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <system_error>

namespace sluice::files {

namespace {
// A GNU extension, named once so that -Wpedantic stays quiet.
__extension__ using Int128 = __int128;

bool parse_number(std::string_view digits, int64_t& out) {
  if (digits.empty() || digits.size() > 18) return false;
  out = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return false;
    out = out * 10 + (c - '0');
  }
  return true;
}

// Throws an error naming `file` and the reason errno gives.
[[noreturn]] void fail(const std::string& what, const std::string& file) {
  int err = errno;
  throw std::runtime_error(what + " '" + file + "': " + std::strerror(err));
}
}  // namespace

// ---- TextFileSource ----

TextFileSource::TextFileSource(std::string path) : path_(std::move(path)) {}
TextFileSource::TextFileSource(const TextFileSource& o)
    : SourceFunction<std::string>(o), path_(o.path_) {}
TextFileSource::~TextFileSource() {
  if (file_) std::fclose(file_);
}

void TextFileSource::open(RuntimeContext& ctx) {
  file_ = std::fopen(path_.c_str(), "rb");
  if (!file_) {
    throw std::runtime_error("cannot open input file '" + path_ + "': " + std::strerror(errno));
  }
  state_ = &ctx.get_operator_list_state(ListStateDescriptor<Range>("pending-ranges"));
  pending_.clear();
  if (ctx.is_restored()) {
    pending_ = state_->get();
    return;
  }
  std::fseek(file_, 0, SEEK_END);
  int64_t size = std::ftell(file_);
  int i = ctx.index_of_this_subtask();
  int p = ctx.number_of_parallel_subtasks();
  int64_t begin = static_cast<int64_t>(static_cast<Int128>(size) * i / p);
  int64_t end = static_cast<int64_t>(static_cast<Int128>(size) * (i + 1) / p);
  int64_t pos = begin;
  if (pos > 0) {
    // Start after the line that straddles the range's start (its owner reads it).
    std::fseek(file_, pos - 1, SEEK_SET);
    int c;
    while ((c = std::fgetc(file_)) != EOF && c != '\n') ++pos;
    if (c == EOF) return;
  }
  if (pos < end) pending_.push_back({pos, end});
}

void TextFileSource::run(SourceContext& ctx) {
  struct Line {
    char* data = nullptr;
    size_t cap = 0;
    ~Line() { std::free(data); }
  } line;
  uint64_t count = 0;
  while (!pending_.empty()) {
    Range& r = pending_.front();
    std::fseek(file_, r.first, SEEK_SET);
    while (r.first < r.second) {
      ssize_t n = ::getline(&line.data, &line.cap, file_);
      if (n < 0) break;
      size_t len = static_cast<size_t>(n);
      if (len > 0 && line.data[len - 1] == '\n') --len;
      if ((++count & 1023) == 0 && !is_running()) return;
      ctx.collect(std::string(line.data, len));  // a checkpoint taken in here stores r.first
      r.first += n;
    }
    if (std::ferror(file_)) {
      throw std::runtime_error("reading '" + path_ + "' failed: " + std::strerror(errno));
    }
    pending_.erase(pending_.begin());
  }
}

void TextFileSource::snapshot_state(int64_t) { state_->update(pending_); }

void TextFileSource::close() {
  if (file_) std::fclose(file_);
  file_ = nullptr;
}

// ---- TextFileSink ----

TextFileSink::~TextFileSink() {
  if (file_) std::fclose(file_);
}

void TextFileSink::open(RuntimeContext& ctx) {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) throw std::runtime_error("cannot create directory '" + dir_ + "': " + ec.message());
  path_ = dir_ + "/part-" + std::to_string(ctx.index_of_this_subtask());
  file_ = std::fopen(path_.c_str(), "w");
  if (!file_) {
    throw std::runtime_error("cannot open '" + path_ + "' for writing: " + std::strerror(errno));
  }
}

void TextFileSink::write_line() {
  if (std::fwrite(line_.data(), 1, line_.size(), file_) != line_.size()) {
    throw std::runtime_error("write to '" + path_ + "' failed: " + std::strerror(errno));
  }
}

void TextFileSink::close() {
  if (file_ && std::fclose(file_) != 0) {
    file_ = nullptr;
    throw std::runtime_error("closing '" + path_ + "' failed: " + std::strerror(errno));
  }
  file_ = nullptr;
}

// ---- ExactlyOnceTextFileWriter ----

ExactlyOnceTextFileWriter::~ExactlyOnceTextFileWriter() { close_file(); }

std::string ExactlyOnceTextFileWriter::committed_name(int subtask, int64_t index) {
  return "part-" + std::to_string(subtask) + "-" + std::to_string(index);
}

std::string ExactlyOnceTextFileWriter::in_progress_name(int subtask, int64_t index) {
  std::string name = ".";
  name += committed_name(subtask, index);
  name += ".inprogress";
  return name;
}

void ExactlyOnceTextFileWriter::open(RuntimeContext& ctx) {
  subtask_ = ctx.index_of_this_subtask();
  parallelism_ = ctx.number_of_parallel_subtasks();
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) throw std::runtime_error("cannot create directory '" + dir_ + "': " + ec.message());
  if (::access(dir_.c_str(), W_OK | X_OK) != 0) {
    throw std::runtime_error("directory '" + dir_ + "' is not writable: " + std::strerror(errno));
  }
}

void ExactlyOnceTextFileWriter::finish_recovery(bool is_restored, const std::vector<TXN>& handled) {
  if (!is_restored) {
    for_each_file([&](const std::string& name, int s, int64_t, bool) {
      if (s == subtask_ || (subtask_ == 0 && s >= parallelism_)) remove_file(path(name));
    });
    next_index_ = 0;
    return;
  }
  // The subtask's own lists came back (same parallelism): every in-progress file of this
  // subtask that is left now was written after the checkpoint.
  bool own = !handled.empty() && std::all_of(handled.begin(), handled.end(), [&](const TXN& t) {
    return t.subtask == subtask_ && t.parallelism == parallelism_;
  });
  int64_t next = 0;
  for (const TXN& t : handled) {
    if (t.subtask == subtask_) next = std::max(next, t.index + 1);
  }
  for_each_file([&](const std::string& name, int s, int64_t n, bool in_progress) {
    if (s != subtask_) return;
    if (own && in_progress) {
      remove_file(path(name));
    } else {
      next = std::max(next, n + 1);
    }
  });
  next_index_ = next;
}

TextFileTransaction ExactlyOnceTextFileWriter::begin_transaction() {
  TXN t;
  t.index = next_index_++;
  t.subtask = subtask_;
  t.parallelism = parallelism_;
  return t;
}

void ExactlyOnceTextFileWriter::write_line(TXN& txn, std::string_view line) {
  if (!txn.has_file) {
    open_file(txn);
  } else if (fd_ < 0 || fd_index_ != txn.index) {
    throw std::logic_error("a record for '" + path(in_progress_name(txn.subtask, txn.index)) +
                           "' after it was pre-committed");
  }
  buf_ += line;
  buf_ += '\n';
  if (buf_.size() >= kBufferSize) flush_buffer();
}

void ExactlyOnceTextFileWriter::pre_commit(TXN& txn) {
  if (!txn.has_file || fd_ < 0 || fd_index_ != txn.index) return;
  flush_buffer();
  if (::fsync(fd_) != 0) fail("cannot sync", fd_path_);
  int fd = fd_;
  fd_ = -1;
  fd_index_ = -1;
  if (::close(fd) != 0) fail("cannot close", fd_path_);
}

void ExactlyOnceTextFileWriter::commit(const TXN& txn) {
  if (!txn.has_file) return;
  std::string from = path(in_progress_name(txn.subtask, txn.index));
  std::string to = path(committed_name(txn.subtask, txn.index));
  if (::rename(from.c_str(), to.c_str()) == 0) {
    sync_directory();
    return;
  }
  int err = errno;
  if (err == ENOENT) {
    struct stat st;
    if (::stat(to.c_str(), &st) == 0) return;  // committed before
    throw std::runtime_error("cannot commit '" + from + "': neither it nor '" + to + "' exists");
  }
  throw std::runtime_error("cannot rename '" + from + "' to '" + to + "': " + std::strerror(err));
}

void ExactlyOnceTextFileWriter::abort(const TXN& txn) {
  if (fd_ >= 0 && fd_index_ == txn.index && txn.subtask == subtask_) {
    buf_.clear();
    close_file();
  }
  remove_file(path(in_progress_name(txn.subtask, txn.index)));
}

void ExactlyOnceTextFileWriter::close() { close_file(); }

void ExactlyOnceTextFileWriter::open_file(TXN& txn) {
  close_file();
  fd_path_ = path(in_progress_name(txn.subtask, txn.index));
  fd_ = ::open(fd_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) fail("cannot create", fd_path_);
  fd_index_ = txn.index;
  txn.has_file = true;
}

void ExactlyOnceTextFileWriter::flush_buffer() {
  size_t done = 0;
  while (done < buf_.size()) {
    ssize_t n = ::write(fd_, buf_.data() + done, buf_.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("cannot write to", fd_path_);
    }
    done += static_cast<size_t>(n);
  }
  buf_.clear();
}

void ExactlyOnceTextFileWriter::close_file() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  fd_index_ = -1;
}

void ExactlyOnceTextFileWriter::remove_file(const std::string& p) {
  if (::unlink(p.c_str()) != 0 && errno != ENOENT) fail("cannot delete", p);
}

// A rename is durable once the directory is synced.
void ExactlyOnceTextFileWriter::sync_directory() {
  int fd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) fail("cannot open directory", dir_);
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  errno = err;
  if (rc != 0) fail("cannot sync directory", dir_);
}

// Calls f(name, subtask, index, in_progress) for every file of `dir_` named like this sink's.
template <class Fn>
void ExactlyOnceTextFileWriter::for_each_file(Fn f) {
  std::error_code ec;
  std::vector<std::string> names;
  for (std::filesystem::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec)) {
    names.push_back(it->path().filename().string());
  }
  if (ec) throw std::runtime_error("cannot list directory '" + dir_ + "': " + ec.message());
  for (const std::string& name : names) {
    std::string_view v = name;
    bool in_progress = false;
    if (v.size() > 12 && v.front() == '.' && v.substr(v.size() - 11) == ".inprogress") {
      in_progress = true;
      v = v.substr(1, v.size() - 12);
    }
    if (v.substr(0, 5) != "part-") continue;
    v.remove_prefix(5);
    size_t dash = v.find('-');
    if (dash == std::string_view::npos) continue;
    int64_t s = 0, n = 0;
    if (!parse_number(v.substr(0, dash), s) || !parse_number(v.substr(dash + 1), n)) continue;
    f(name, static_cast<int>(s), n, in_progress);
  }
}

}  // namespace sluice::files
