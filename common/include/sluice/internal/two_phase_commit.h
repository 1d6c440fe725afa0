// The operator that runs a TwoPhaseCommitSinkFunction (see sluice/sinks.h).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "sluice/functions.h"
#include "sluice/internal/operator.h"
#include "sluice/serializer.h"

namespace sluice::internal {

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
    this->count_in();
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
}  // namespace sluice::internal
