// Exactly-once sinks: TwoPhaseCommitSinkFunction, as Flink's. A stream ends in one with
// DataStream<T>::sink_to(sink); sluice::files::ExactlyOnceTextFileSink (sluice/connectors/files.h)
// is built on it.
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

#include <string>
#include <vector>

#include "sluice/functions.h"

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
}  // namespace sluice
