#include "common/operator_ids.h"

#include <map>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "common/ids.h"

namespace sluice {
namespace {

// The version of the rule below: a new rule gets a new tag, so that its ids never meet the old
// ones by chance.
constexpr char kStructuralIdTag[] = "sluice-operator-id/1";
constexpr size_t kIdHexDigits = 32;

// Appends `s` with its length in front, so that no two sequences of fields encode alike.
void PutField(std::string& out, std::string_view s) {
  out += std::to_string(s.size());
  out += ':';
  out.append(s);
  out += ';';
}

}  // namespace

std::vector<std::string> StructuralOperatorIds(
    const std::vector<std::unique_ptr<internal::Node>>& nodes) {
  std::vector<std::string> ids;
  ids.reserve(nodes.size());
  std::map<std::string, int> seen;  // signature -> how many nodes had it so far
  for (const auto& node : nodes) {
    std::string signature;
    PutField(signature, node->kind);
    for (const internal::InputSpec& in : node->inputs) {
      PutField(signature, ids.at(static_cast<size_t>(in.node)));
      PutField(signature, absl::StrCat(in.logical_input));
      PutField(signature, in.partitioner == internal::Partitioner::kHash ? "keyed" : "");
      PutField(signature, in.side_tag);
    }
    int ordinal = seen[signature]++;
    std::string bytes;
    PutField(bytes, kStructuralIdTag);
    PutField(bytes, signature);
    PutField(bytes, absl::StrCat(ordinal));
    ids.push_back(Sha256Hex(bytes).substr(0, kIdHexDigits));
  }
  return ids;
}

absl::StatusOr<std::vector<std::string>> OperatorIds(
    const std::vector<std::unique_ptr<internal::Node>>& nodes) {
  std::vector<std::string> ids = StructuralOperatorIds(nodes);
  for (size_t i = 0; i < nodes.size(); ++i) {
    const std::string& uid = nodes[i]->uid;
    if (uid.empty()) continue;
    if (ToValidUtf8(uid) != uid) {
      return absl::InvalidArgumentError(
          absl::StrCat("the uid of operator '", nodes[i]->name, "' is not valid UTF-8"));
    }
    ids[i] = uid;
  }
  std::map<std::string, size_t> owner;
  for (size_t i = 0; i < ids.size(); ++i) {
    auto [it, inserted] = owner.emplace(ids[i], i);
    if (inserted) continue;
    const internal::Node& first = *nodes[it->second];
    const internal::Node& second = *nodes[i];
    if (!first.uid.empty() && !second.uid.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("operators '", first.name, "' and '",
                                                     second.name, "' have the same uid '", ids[i],
                                                     "': a uid must be unique in a job"));
    }
    return absl::InvalidArgumentError(absl::StrCat(
        "operators '", first.name, "' and '", second.name, "' have the same operator id '", ids[i],
        "' (the uid of one is the structural id of the other): choose another uid"));
  }
  return ids;
}

}  // namespace sluice
