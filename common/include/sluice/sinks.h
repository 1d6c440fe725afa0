// Exactly-once sinks: TwoPhaseCommitSinkFunction (as Flink's) and, built on it,
// ExactlyOnceTextFileSink. A stream ends in one with DataStream<T>::sink_to(sink).
//
//   stream.sink_to(sluice::ExactlyOnceTextFileSink<std::string>("/tmp/out"));
//
// A two-phase commit sink writes the records between two checkpoints into one transaction. At a
// checkpoint barrier it pre-commits that transaction (makes it durable, not yet visible) and
// starts the next; when the JobManager reports the checkpoint complete, it commits every
// transaction that the checkpoint covers. The pending transactions are part of the checkpoint,
// so a restore commits those whose checkpoint completed (the notification may have been lost) and
// aborts the one that was open. Output thus becomes visible once per record, one checkpoint late.
//
// Without checkpointing (TaskInfo::checkpointing false) there is one transaction, committed at
// the end of input: a bounded job publishes its output when it finishes, and a job that is
// cancelled or fails publishes nothing.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <exception>
#include <filesystem>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "sluice/datastream.h"
#include "sluice/format.h"
#include "sluice/functions.h"
#include "sluice/runtime.h"
#include "sluice/serializer.h"

namespace sluice {

// The user side of a two-phase commit sink (Flink's TwoPhaseCommitSinkFunction). One copy runs
// per subtask; all calls come from the task's thread, in this order: open(), finish_recovery(),
// then begin_transaction() / invoke() / pre_commit() / commit() / abort() as checkpoints come,
// then close(). TXN is a small handle (file name, transaction id) that Serializer<TXN> can write:
// it is stored in checkpoints, which are the sink's only state (its RuntimeContext offers no
// operator state). A method that fails throws; the operator turns the exception into an
// OperatorError naming the sink, which fails the task.
template <class IN, class TXN>
class TwoPhaseCommitSinkFunction {
 public:
  using input_type = IN;
  using transaction_type = TXN;
  virtual ~TwoPhaseCommitSinkFunction() = default;

  // The operator's name when sink_to() is given none.
  virtual std::string default_name() const { return "Sink: Two-Phase Commit"; }
  virtual void open(RuntimeContext&) {}
  // Once, after open() and before the first begin_transaction(). `is_restored`: the subtask
  // starts from a checkpoint. `handled`: the transactions restored from it, already committed
  // (those pending commit) or aborted (those that were open); empty on a fresh start.
  virtual void finish_recovery(bool /*is_restored*/, const std::vector<TXN>& /*handled*/) {}
  // Starts a transaction that the next records go into.
  virtual TXN begin_transaction() = 0;
  // Writes one record into `txn` (which it may update, e.g. to note that a file now exists).
  virtual void invoke(TXN& txn, const IN& value) = 0;
  // Makes `txn` durable so that commit() cannot lose it; no record goes into it afterwards.
  virtual void pre_commit(TXN& txn) = 0;
  // Makes a pre-committed `txn` visible. Must be idempotent: after a restore it may be called
  // again for a transaction that was already committed. Throwing makes the operator retry.
  virtual void commit(const TXN& txn) = 0;
  // Discards `txn` and what was written into it. Also called for a transaction restored from a
  // checkpoint, which may have been written to after the checkpoint or never.
  virtual void abort(const TXN& txn) = 0;
  virtual void close() {}
};

// Runs a TwoPhaseCommitSinkFunction F. Keeps the open transaction and the pre-committed ones
// waiting for their checkpoint's completion; its operator state holds both.
template <class IN, class F>
class TwoPhaseCommitSinkOperator final : public OneInputOperator<IN> {
 public:
  using TXN = typename F::transaction_type;
  // Attempts at one commit before the task fails, and the pause after the first failure
  // (doubled after each further one).
  static constexpr int kCommitAttempts = 3;
  static constexpr std::chrono::milliseconds kCommitRetryPause{50};

  TwoPhaseCommitSinkOperator(std::string name, F f)
      : OneInputOperator<IN>(std::move(name)), f_(std::move(f)) {}

  void initialize_state(TaskRuntime&, const OperatorSnapshot* restored, bool is_restored) override {
    is_restored_ = is_restored;
    restored_pending_.clear();
    restored_open_.clear();
    if (!restored) return;
    try {
      if (auto it = restored->lists.find(kPendingList); it != restored->lists.end()) {
        for (const std::string& bytes : it->second) {
          DataInput in(bytes);
          Pending p;
          Serializer<int64_t>::read(in, p.checkpoint_id);
          Serializer<TXN>::read(in, p.txn);
          if (!in.at_end()) throw SerializationError("trailing bytes after a pending transaction");
          restored_pending_.push_back(std::move(p));
        }
      }
      if (auto it = restored->lists.find(kOpenList); it != restored->lists.end()) {
        for (const std::string& bytes : it->second) {
          restored_open_.push_back(deserialize<TXN>(bytes));
        }
      }
    } catch (const std::exception& e) {
      throw OperatorError(this->name_,
                          std::string("cannot read the restored transactions: ") + e.what());
    }
    // Several subtasks' lists may have been merged (another parallelism): commit in order.
    std::stable_sort(
        restored_pending_.begin(), restored_pending_.end(),
        [](const Pending& a, const Pending& b) { return a.checkpoint_id < b.checkpoint_id; });
  }

  // Opens the function, commits the restored pending transactions (their checkpoint completed,
  // since the subtask restores from it or a later one), aborts the restored open ones, and starts
  // the first transaction.
  void open(TaskRuntime& rt) override {
    checkpointing_ = rt.info().checkpointing;
    ctx_ = std::make_unique<RuntimeContext>(rt, nullptr, nullptr, is_restored_);
    SLUICE_USER_CALL(this->name_, f_.open(*ctx_));
    std::vector<TXN> handled;
    for (Pending& p : restored_pending_) {
      commit_with_retries(p);
      handled.push_back(std::move(p.txn));
    }
    for (TXN& t : restored_open_) {
      SLUICE_USER_CALL(this->name_, f_.abort(t));
      handled.push_back(std::move(t));
    }
    restored_pending_.clear();
    restored_open_.clear();
    SLUICE_USER_CALL(this->name_, f_.finish_recovery(is_restored_, handled));
    SLUICE_USER_CALL(this->name_, current_ = f_.begin_transaction());
  }

  void emit(IN&& v) override {
    if (!current_) {
      throw OperatorError(this->name_, "a record arrived after the end of input");
    }
    SLUICE_USER_CALL(this->name_, f_.invoke(*current_, v));
  }

  // Without checkpointing nothing else will ever commit: commit the one transaction now.
  void end_input() override {
    if (checkpointing_ || !current_) return;
    SLUICE_USER_CALL(this->name_, f_.pre_commit(*current_));
    Pending p{0, std::move(*current_)};  // checkpoint id 0: the end of input
    current_.reset();
    commit_with_retries(p);
  }

  // Pre-commits the open transaction as the one of `checkpoint_id`, starts the next, and stores
  // both the pending transactions and the new open one.
  void snapshot_state(int64_t checkpoint_id, OperatorSnapshot& out) override {
    if (current_) {
      SLUICE_USER_CALL(this->name_, f_.pre_commit(*current_));
      pending_.push_back(Pending{checkpoint_id, std::move(*current_)});
      current_.reset();
      SLUICE_USER_CALL(this->name_, current_ = f_.begin_transaction());
    }
    if (!pending_.empty()) {
      std::vector<std::string>& pending = out.lists[kPendingList];
      for (const Pending& p : pending_) {
        std::string bytes;
        DataOutput o(bytes);
        Serializer<int64_t>::write(o, p.checkpoint_id);
        Serializer<TXN>::write(o, p.txn);
        pending.push_back(std::move(bytes));
      }
    }
    if (current_) out.lists[kOpenList].push_back(serialize(*current_));
  }

  // Commits, oldest first, every pending transaction of a checkpoint up to `checkpoint_id` (a
  // completed checkpoint implies the earlier ones, whose notifications may have been lost).
  void notify_checkpoint_complete(int64_t checkpoint_id) override {
    while (!pending_.empty() && pending_.front().checkpoint_id <= checkpoint_id) {
      commit_with_retries(pending_.front());
      pending_.erase(pending_.begin());
    }
  }

  // Aborts the open transaction: its records belong to no checkpoint (a restore would abort it
  // too). Pending transactions stay as they are: a restore commits them.
  void close() override {
    if (current_) {
      TXN t = std::move(*current_);
      current_.reset();
      SLUICE_USER_CALL(this->name_, f_.abort(t));
    }
    SLUICE_USER_CALL(this->name_, f_.close());
  }

 private:
  static constexpr const char* kPendingList = "two-phase-commit-pending";
  static constexpr const char* kOpenList = "two-phase-commit-open";

  struct Pending {
    int64_t checkpoint_id = 0;
    TXN txn{};
  };

  void commit_with_retries(const Pending& p) {
    std::string last_error;
    auto pause = kCommitRetryPause;
    for (int attempt = 1; attempt <= kCommitAttempts; ++attempt) {
      try {
        f_.commit(p.txn);
        return;
      } catch (const TaskCancelled&) {
        throw;
      } catch (const std::exception& e) {
        last_error = e.what();
      } catch (...) {
        last_error = "unknown exception";
      }
      if (attempt < kCommitAttempts) {
        std::this_thread::sleep_for(pause);
        pause *= 2;
      }
    }
    std::string which = p.checkpoint_id > 0 ? "of checkpoint " + std::to_string(p.checkpoint_id)
                                            : std::string("at the end of input");
    throw OperatorError(this->name_, "commit of the transaction " + which + " failed " +
                                         std::to_string(kCommitAttempts) +
                                         " times; last error: " + last_error);
  }

  F f_;
  std::unique_ptr<RuntimeContext> ctx_;
  bool checkpointing_ = false;
  bool is_restored_ = false;
  std::optional<TXN> current_;
  std::vector<Pending> pending_;  // by checkpoint id, oldest first
  std::vector<Pending> restored_pending_;
  std::vector<TXN> restored_open_;
};

// One file of ExactlyOnceTextFileSink: `<dir>/.part-<subtask>-<index>.inprogress` while it is
// written, renamed to `<dir>/part-<subtask>-<index>` on commit.
struct TextFileTransaction {
  int64_t index = 0;
  int32_t subtask = 0;
  int32_t parallelism = 0;  // of the job when the transaction began
  bool has_file = false;    // a record was written, so the in-progress file exists
  SLUICE_FIELDS(index, subtask, parallelism, has_file)
};

// Writes records as text lines (format_to, one record per line) into files of `dir`, exactly
// once with checkpoints. A transaction is one file, created on its first record (a transaction
// without records leaves no file), hidden by a leading dot until its checkpoint completes:
//
//   <dir>/.part-<subtask>-<n>.inprogress   written, then flushed and fsynced at the checkpoint
//   <dir>/part-<subtask>-<n>               after the checkpoint completed (rename)
//
// n counts the subtask's transactions; it continues after a restore, so a name is never used
// twice (numbers of transactions without records are skipped). Readers take `part-*` files.
//
// A fresh start (not from a checkpoint) replaces this sink's earlier output: subtask i deletes
// its `part-<i>-*` and `.part-<i>-*.inprogress` files, and subtask 0 also those of subtask
// numbers at or above the parallelism. A restore at the same parallelism deletes the subtask's
// in-progress files that no checkpoint covers; after a change of parallelism such leftovers
// stay (they are hidden). Errors name the file and the system's reason.
template <class T>
class ExactlyOnceTextFileSink final : public TwoPhaseCommitSinkFunction<T, TextFileTransaction> {
 public:
  using TXN = TextFileTransaction;

  explicit ExactlyOnceTextFileSink(std::string dir) : dir_(std::move(dir)) {}
  // Copies the configuration only (the SDK copies a sink before it opens).
  ExactlyOnceTextFileSink(const ExactlyOnceTextFileSink& o)
      : TwoPhaseCommitSinkFunction<T, TXN>(o), dir_(o.dir_) {}
  ExactlyOnceTextFileSink& operator=(const ExactlyOnceTextFileSink&) = delete;
  ~ExactlyOnceTextFileSink() override { close_file(); }

  std::string default_name() const override { return "Sink: Exactly-Once Text File"; }

  // The name of a committed file and of its in-progress form.
  static std::string committed_name(int subtask, int64_t index) {
    return "part-" + std::to_string(subtask) + "-" + std::to_string(index);
  }
  static std::string in_progress_name(int subtask, int64_t index) {
    std::string name = ".";
    name += committed_name(subtask, index);
    name += ".inprogress";
    return name;
  }

  void open(RuntimeContext& ctx) override {
    subtask_ = ctx.index_of_this_subtask();
    parallelism_ = ctx.number_of_parallel_subtasks();
    std::error_code ec;
    std::filesystem::create_directories(dir_, ec);
    if (ec) throw std::runtime_error("cannot create directory '" + dir_ + "': " + ec.message());
    if (::access(dir_.c_str(), W_OK | X_OK) != 0) {
      throw std::runtime_error("directory '" + dir_ + "' is not writable: " + std::strerror(errno));
    }
  }

  void finish_recovery(bool is_restored, const std::vector<TXN>& handled) override {
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

  TXN begin_transaction() override {
    TXN t;
    t.index = next_index_++;
    t.subtask = subtask_;
    t.parallelism = parallelism_;
    return t;
  }

  void invoke(TXN& txn, const T& value) override {
    if (!txn.has_file) {
      open_file(txn);
    } else if (fd_ < 0 || fd_index_ != txn.index) {
      throw std::logic_error("a record for '" + path(in_progress_name(txn.subtask, txn.index)) +
                             "' after it was pre-committed");
    }
    format_to(buf_, value);
    buf_ += '\n';
    if (buf_.size() >= kBufferSize) flush_buffer();
  }

  void pre_commit(TXN& txn) override {
    if (!txn.has_file || fd_ < 0 || fd_index_ != txn.index) return;
    flush_buffer();
    if (::fsync(fd_) != 0) fail("cannot sync", fd_path_);
    int fd = fd_;
    fd_ = -1;
    fd_index_ = -1;
    if (::close(fd) != 0) fail("cannot close", fd_path_);
  }

  void commit(const TXN& txn) override {
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

  void abort(const TXN& txn) override {
    if (fd_ >= 0 && fd_index_ == txn.index && txn.subtask == subtask_) {
      buf_.clear();
      close_file();
    }
    remove_file(path(in_progress_name(txn.subtask, txn.index)));
  }

  void close() override { close_file(); }

 private:
  static constexpr size_t kBufferSize = 64 * 1024;

  std::string path(const std::string& name) const { return dir_ + "/" + name; }

  // Throws an error naming `file` and the reason errno gives.
  [[noreturn]] static void fail(const std::string& what, const std::string& file) {
    int err = errno;
    throw std::runtime_error(what + " '" + file + "': " + std::strerror(err));
  }

  void open_file(TXN& txn) {
    close_file();
    fd_path_ = path(in_progress_name(txn.subtask, txn.index));
    fd_ = ::open(fd_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) fail("cannot create", fd_path_);
    fd_index_ = txn.index;
    txn.has_file = true;
  }

  void flush_buffer() {
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

  void close_file() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    fd_index_ = -1;
  }

  void remove_file(const std::string& p) {
    if (::unlink(p.c_str()) != 0 && errno != ENOENT) fail("cannot delete", p);
  }

  // A rename is durable once the directory is synced.
  void sync_directory() {
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
  void for_each_file(Fn f) {
    std::error_code ec;
    std::vector<std::string> names;
    for (std::filesystem::directory_iterator it(dir_, ec), end; !ec && it != end;
         it.increment(ec)) {
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

  static bool parse_number(std::string_view digits, int64_t& out) {
    if (digits.empty() || digits.size() > 18) return false;
    out = 0;
    for (char c : digits) {
      if (c < '0' || c > '9') return false;
      out = out * 10 + (c - '0');
    }
    return true;
  }

  std::string dir_;
  int subtask_ = 0;
  int parallelism_ = 1;
  int64_t next_index_ = 0;
  int fd_ = -1;            // the open transaction's file, if it has one
  int64_t fd_index_ = -1;  // ... and that transaction's index
  std::string fd_path_;
  std::string buf_;  // lines not yet written to fd_
};

}  // namespace sluice
