// The files connector: a text-file source, a text-file sink, and an exactly-once text-file sink.
// Link the `sluice_connector_files` target (Sluice::connector_files) to use it.
//
//   env.add_source(sluice::files::TextFileSource("/data/in.txt"))
//       ...
//       .add_sink(sluice::files::TextFileSink("/tmp/out"));           // at least once
//   stream.sink_to(sluice::files::ExactlyOnceTextFileSink<T>("/tmp/out"));  // exactly once
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sluice/format.h"
#include "sluice/functions.h"
#include "sluice/serializer.h"
#include "sluice/sinks.h"

namespace sluice::files {

// The lines of a text file (without the line feed). Subtask i of p reads the lines that start in
// its byte range [size*i/p, size*(i+1)/p), so every line is read exactly once.
//
// Operator state: the byte ranges still to read, as [pos, end) pairs where pos is the start of
// the next line to read and the lines that start before `end` belong to the range. After a
// restore at another parallelism each subtask reads the ranges it was given.
class TextFileSource final : public SourceFunction<std::string> {
 public:
  using Range = std::pair<int64_t, int64_t>;  // [pos, end)

  explicit TextFileSource(std::string path);
  TextFileSource(const TextFileSource& o);
  ~TextFileSource() override;
  std::string default_name() const { return "Text File " + path_; }
  void open(RuntimeContext& ctx) override;
  void run(SourceContext& ctx) override;
  void snapshot_state(int64_t checkpoint_id) override;
  void close() override;

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
  std::vector<Range> pending_;
  OperatorListState<Range>* state_ = nullptr;
};

// Writes one text file per subtask, <dir>/part-<subtask>, one record per line (format_to), and
// creates `dir` if needed. At least once: after a restore the file starts over.
class TextFileSink {
 public:
  explicit TextFileSink(std::string dir) : dir_(std::move(dir)) {}
  TextFileSink(const TextFileSink& o) : dir_(o.dir_) {}
  TextFileSink& operator=(const TextFileSink&) = delete;
  ~TextFileSink();
  std::string default_name() const { return "Sink: Text File"; }
  void open(RuntimeContext& ctx);
  template <class T>
  void invoke(const T& value) {
    line_.clear();
    format_to(line_, value);
    line_ += '\n';
    write_line();
  }
  void close();
  void snapshot_state(int64_t) {}
  void notify_checkpoint_complete(int64_t) {}

 private:
  void write_line();
  std::string dir_;
  std::string path_;
  std::string line_;
  std::FILE* file_ = nullptr;
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

// The files and transactions of ExactlyOnceTextFileSink, whatever its record type.
class ExactlyOnceTextFileWriter {
 public:
  using TXN = TextFileTransaction;
  explicit ExactlyOnceTextFileWriter(std::string dir) : dir_(std::move(dir)) {}
  ExactlyOnceTextFileWriter(const ExactlyOnceTextFileWriter& o) : dir_(o.dir_) {}
  ExactlyOnceTextFileWriter& operator=(const ExactlyOnceTextFileWriter&) = delete;
  ~ExactlyOnceTextFileWriter();

  // The name of a committed file and of its in-progress form.
  static std::string committed_name(int subtask, int64_t index);
  static std::string in_progress_name(int subtask, int64_t index);

  void open(RuntimeContext& ctx);
  void finish_recovery(bool is_restored, const std::vector<TXN>& handled);
  TXN begin_transaction();
  // Appends one line (without its line feed) to `txn`.
  void write_line(TXN& txn, std::string_view line);
  void pre_commit(TXN& txn);
  void commit(const TXN& txn);
  void abort(const TXN& txn);
  void close();

  // The buffer a record is formatted into before write_line.
  std::string& scratch() { return scratch_; }

 private:
  static constexpr size_t kBufferSize = 64 * 1024;
  std::string path(const std::string& name) const { return dir_ + "/" + name; }
  void open_file(TXN& txn);
  void flush_buffer();
  void close_file();
  void remove_file(const std::string& p);
  void sync_directory();
  template <class Fn>
  void for_each_file(Fn f);

  std::string dir_;
  int subtask_ = 0;
  int parallelism_ = 1;
  int64_t next_index_ = 0;
  int fd_ = -1;            // the open transaction's file, if it has one
  int64_t fd_index_ = -1;  // ... and that transaction's index
  std::string fd_path_;
  std::string buf_;  // lines not yet written to fd_
  std::string scratch_;
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

  explicit ExactlyOnceTextFileSink(std::string dir) : w_(std::move(dir)) {}
  // Copies the configuration only (the SDK copies a sink before it opens).
  ExactlyOnceTextFileSink(const ExactlyOnceTextFileSink& o)
      : TwoPhaseCommitSinkFunction<T, TXN>(o), w_(o.w_) {}
  ExactlyOnceTextFileSink& operator=(const ExactlyOnceTextFileSink&) = delete;

  std::string default_name() const override { return "Sink: Exactly-Once Text File"; }
  static std::string committed_name(int subtask, int64_t index) {
    return ExactlyOnceTextFileWriter::committed_name(subtask, index);
  }
  static std::string in_progress_name(int subtask, int64_t index) {
    return ExactlyOnceTextFileWriter::in_progress_name(subtask, index);
  }

  void open(RuntimeContext& ctx) override { w_.open(ctx); }
  void finish_recovery(bool is_restored, const std::vector<TXN>& handled) override {
    w_.finish_recovery(is_restored, handled);
  }
  TXN begin_transaction() override { return w_.begin_transaction(); }
  void invoke(TXN& txn, const T& value) override {
    std::string& line = w_.scratch();
    line.clear();
    format_to(line, value);
    w_.write_line(txn, line);
  }
  void pre_commit(TXN& txn) override { w_.pre_commit(txn); }
  void commit(const TXN& txn) override { w_.commit(txn); }
  void abort(const TXN& txn) override { w_.abort(txn); }
  void close() override { w_.close(); }

 private:
  ExactlyOnceTextFileWriter w_;
};

}  // namespace sluice::files
