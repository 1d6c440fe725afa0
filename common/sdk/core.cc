// The out-of-line members of the SDK's polymorphic classes that know no user type: their vtables
// and type information are emitted here, once, instead of in every job.
#include "sluice/core.h"

#include "sluice/functions.h"
#include "sluice/internal/graph.h"
#include "sluice/internal/operator.h"
#include "sluice/serializer.h"

namespace sluice {

TaskCancelled::~TaskCancelled() = default;
OperatorError::~OperatorError() = default;
SerializationError::~SerializationError() = default;

namespace internal {
CollectorBase::~CollectorBase() = default;
OperatorBase::~OperatorBase() = default;
Node::~Node() = default;
}  // namespace internal

}  // namespace sluice
