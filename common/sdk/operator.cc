// What every operator shares, compiled once into the SDK library rather than into every job.
#include "sluice/internal/operator.h"

#include <exception>
#include <memory>
#include <string>

namespace sluice::internal {

void rethrow_as_operator_error(const std::string& op_name) {
  try {
    throw;
  } catch (const OperatorError&) {
    throw;
  } catch (const TaskCancelled&) {
    throw;
  } catch (const std::exception& e) {
    throw OperatorError(op_name, e.what());
  } catch (...) {
    throw OperatorError(op_name, "unknown exception");
  }
}

FunctionState::FunctionState() = default;
FunctionState::~FunctionState() = default;

void FunctionState::initialize(const OperatorSnapshot* restored, bool is_restored) {
  is_restored_ = is_restored;
  if (restored) store_.restore(*restored);
}

RuntimeContext& FunctionState::context(TaskRuntime& rt, KeyedStateBackend* keyed) {
  ctx_ = std::make_unique<RuntimeContext>(rt, keyed, &store_, is_restored_);
  return *ctx_;
}

void FunctionState::snapshot(OperatorSnapshot& out) const { store_.snapshot(out); }

}  // namespace sluice::internal
