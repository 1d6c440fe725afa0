// The built-in sources, as SourceFunctions: a collection, a number sequence, a text file, a socket.
#pragma once

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "sluice/functions.h"

namespace sluice {

// A GNU extension, named once so that users compiling with -Wpedantic see no warning.
__extension__ using Int128 = __int128;

// The elements in order. Operator state: the index of the next element to emit.
template <class T>
class CollectionSource final : public SourceFunction<T> {
 public:
  explicit CollectionSource(std::vector<T> elements) : elements_(std::move(elements)) {}
  void open(RuntimeContext& ctx) override {
    state_ = &ctx.get_operator_list_state(ListStateDescriptor<uint64_t>("next-index"));
    next_ = 0;
    if (ctx.is_restored()) {
      // Non-parallel: one element, stored by the only subtask.
      std::vector<uint64_t> stored = state_->get();
      if (!stored.empty()) next_ = *std::min_element(stored.begin(), stored.end());
    }
  }
  void run(typename SourceFunction<T>::SourceContext& ctx) override {
    for (; next_ < elements_.size(); ++next_) {
      if (!this->is_running()) return;
      ctx.collect(elements_[next_]);  // a checkpoint taken in here stores next_: this element
    }
  }
  void snapshot_state(int64_t) override { state_->update({next_}); }

 private:
  std::vector<T> elements_;
  uint64_t next_ = 0;
  OperatorListState<uint64_t>* state_ = nullptr;
};

// from..to inclusive; subtask i of p emits the i-th contiguous share.
//
// Operator state: the ranges still to emit, as [next, last] pairs (inclusive, as an exclusive
// end would overflow at INT64_MAX). After a restore at another parallelism each subtask emits
// the ranges it was given, so every number is emitted exactly once over all subtasks.
class SequenceSource final : public SourceFunction<int64_t> {
 public:
  using Range = std::pair<int64_t, int64_t>;  // [next, last]

  SequenceSource(int64_t from, int64_t to) : from_(from), to_(to) {}
  void open(RuntimeContext& ctx) override {
    state_ = &ctx.get_operator_list_state(ListStateDescriptor<Range>("pending-ranges"));
    pending_.clear();
    if (ctx.is_restored()) {
      pending_ = state_->get();
      return;
    }
    // 128-bit arithmetic: to - from + 1 can exceed int64_t (e.g. up to INT64_MAX).
    Int128 n = static_cast<Int128>(to_) - from_ + 1;
    int i = ctx.index_of_this_subtask();
    int p = ctx.number_of_parallel_subtasks();
    Int128 begin = from_ + n * i / p;
    Int128 end = from_ + n * (i + 1) / p;  // exclusive
    if (begin < end)
      pending_.push_back({static_cast<int64_t>(begin), static_cast<int64_t>(end - 1)});
  }
  void run(SourceContext& ctx) override {
    uint64_t k = 0;
    while (!pending_.empty()) {
      Range& r = pending_.front();
      for (;;) {
        if ((k++ & 1023) == 0 && !is_running()) return;
        ctx.collect(int64_t{r.first});  // a checkpoint taken in here stores r: this number on
        if (r.first == r.second) break;
        ++r.first;
      }
      pending_.erase(pending_.begin());
    }
  }
  void snapshot_state(int64_t) override { state_->update(pending_); }

 private:
  int64_t from_, to_;
  std::vector<Range> pending_;
  OperatorListState<Range>* state_ = nullptr;
};

// Lines of a file. Subtask i of p reads the lines that start in its byte range
// [size*i/p, size*(i+1)/p), so every line is read exactly once.
//
// Operator state: the byte ranges still to read, as [pos, end) pairs where pos is the start of
// the next line to read and the lines that start before `end` belong to the range. After a
// restore at another parallelism each subtask reads the ranges it was given.
class TextFileSource final : public SourceFunction<std::string> {
 public:
  using Range = std::pair<int64_t, int64_t>;  // [pos, end)

  explicit TextFileSource(std::string path) : path_(std::move(path)) {}
  TextFileSource(const TextFileSource& o) : SourceFunction<std::string>(o), path_(o.path_) {}
  ~TextFileSource() override {
    if (file_) std::fclose(file_);
  }
  void open(RuntimeContext& ctx) override {
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
  void run(SourceContext& ctx) override {
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
  void snapshot_state(int64_t) override { state_->update(pending_); }
  void close() override {
    if (file_) std::fclose(file_);
    file_ = nullptr;
  }

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
  std::vector<Range> pending_;
  OperatorListState<Range>* state_ = nullptr;
};

// Reads delimited lines from a TCP server until it closes the connection (Flink's
// socketTextStream). At-most-once: it keeps no state in checkpoints, and after a restore it
// reads on from a new connection; what was read before a failure is not replayed.
class SocketTextSource final : public SourceFunction<std::string> {
 public:
  SocketTextSource(std::string host, int port, char delimiter)
      : host_(std::move(host)), port_(port), delimiter_(delimiter) {}
  SocketTextSource(const SocketTextSource& o)
      : SourceFunction<std::string>(o), host_(o.host_), port_(o.port_), delimiter_(o.delimiter_) {}
  ~SocketTextSource() override {
    if (fd_ >= 0) ::close(fd_);
  }
  void open(RuntimeContext&) override {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    std::string where = host_ + ":" + std::to_string(port_);
    int rc = ::getaddrinfo(host_.c_str(), std::to_string(port_).c_str(), &hints, &res);
    if (rc != 0) throw std::runtime_error("cannot resolve " + where + ": " + gai_strerror(rc));
    int err = 0;
    for (addrinfo* a = res; a; a = a->ai_next) {
      fd_ = ::socket(a->ai_family, a->ai_socktype, a->ai_protocol);
      if (fd_ < 0) continue;
      if (::connect(fd_, a->ai_addr, a->ai_addrlen) == 0) break;
      err = errno;
      ::close(fd_);
      fd_ = -1;
    }
    ::freeaddrinfo(res);
    if (fd_ < 0) throw std::runtime_error("cannot connect to " + where + ": " + std::strerror(err));
  }
  void run(SourceContext& ctx) override {
    std::string pending;
    char buf[65536];
    while (is_running()) {
      pollfd p{fd_, POLLIN, 0};
      int r = ::poll(&p, 1, 100);
      if (r < 0 && errno != EINTR)
        throw std::runtime_error(std::string("poll: ") + std::strerror(errno));
      if (r == 0) ctx.flush();  // nothing to read: send what the lines so far produced
      if (r <= 0) continue;
      ssize_t n = ::read(fd_, buf, sizeof buf);
      if (n < 0) {
        if (errno == EINTR) continue;
        throw std::runtime_error("reading " + host_ + ":" + std::to_string(port_) + ": " +
                                 std::strerror(errno));
      }
      if (n == 0) break;
      pending.append(buf, static_cast<size_t>(n));
      size_t start = 0, at;
      while ((at = pending.find(delimiter_, start)) != std::string::npos) {
        size_t end = at;
        if (delimiter_ == '\n' && end > start && pending[end - 1] == '\r') --end;
        ctx.collect(pending.substr(start, end - start));
        start = at + 1;
      }
      pending.erase(0, start);
    }
    if (!pending.empty()) ctx.collect(std::move(pending));
  }
  void close() override {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  std::string host_;
  int port_;
  char delimiter_;
  int fd_ = -1;
};

}  // namespace sluice
