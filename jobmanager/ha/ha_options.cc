#include "jobmanager/ha/ha_options.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace sluice::ha {
namespace {

constexpr char kType[] = "high-availability.type";
constexpr char kQuorum[] = "high-availability.zookeeper.quorum";
constexpr char kStorageDir[] = "high-availability.storageDir";
constexpr char kRoot[] = "high-availability.zookeeper.path.root";
constexpr char kClusterId[] = "high-availability.cluster-id";
constexpr char kSessionTimeout[] = "high-availability.zookeeper.client.session-timeout";
constexpr char kConnectionTimeout[] = "high-availability.zookeeper.client.connection-timeout";
constexpr char kPort[] = "high-availability.jobmanager.port";

absl::Status Invalid(const char* key, const std::string& value, const std::string& why) {
  return absl::InvalidArgumentError(
      absl::StrCat("configuration key '", key, "': '", value, "' ", why));
}

// A quorum is a comma-separated list of host:port; a chroot suffix is not accepted (the root and
// cluster id keys say where the nodes go).
absl::Status CheckQuorum(const std::string& quorum) {
  if (quorum.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("configuration key '", kQuorum,
                                                   "' must be set when ", kType, " is zookeeper"));
  }
  for (absl::string_view server : absl::StrSplit(quorum, ',')) {
    server = absl::StripAsciiWhitespace(server);
    size_t colon = server.rfind(':');
    int port = 0;
    if (server.empty() || colon == absl::string_view::npos || colon == 0 ||
        server.find('/') != absl::string_view::npos ||
        !absl::SimpleAtoi(server.substr(colon + 1), &port) || port < 1 || port > 65535) {
      return Invalid(kQuorum, quorum,
                     absl::StrCat("is not a list of host:port (at '", server, "')"));
    }
  }
  return absl::OkStatus();
}

// A node path: absolute (or made so), no empty, "." or ".." segment.
absl::StatusOr<std::string> NodePath(const char* key, const std::string& value) {
  std::string p = value.empty() || value[0] != '/' ? "/" + value : value;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  if (p == "/") return p;
  for (absl::string_view seg : absl::StrSplit(absl::string_view(p).substr(1), '/')) {
    if (seg.empty() || seg == "." || seg == ".." ||
        seg.find_first_of(std::string("\0", 1)) != absl::string_view::npos) {
      return Invalid(key, value, "is not a ZooKeeper node path (an empty, '.' or '..' part)");
    }
  }
  return p;
}

}  // namespace

std::string JoinPath(const std::string& parent, const std::string& child) {
  std::string a = parent;
  while (!a.empty() && a.back() == '/') a.pop_back();
  std::string b = child;
  while (!b.empty() && b.front() == '/') b.erase(b.begin());
  while (!b.empty() && b.back() == '/') b.pop_back();
  if (b.empty()) return a.empty() ? "/" : a;
  return a + "/" + b;
}

absl::StatusOr<HaOptions> HaOptions::FromConfiguration(const Configuration& conf) {
  HaOptions o;
  if (conf.GetChoice(kType) != "ZOOKEEPER") return o;
  o.enabled = true;
  o.quorum = std::string(absl::StripAsciiWhitespace(conf.GetString(kQuorum)));
  if (absl::Status s = CheckQuorum(o.quorum); !s.ok()) return s;
  o.storage_dir = conf.GetString(kStorageDir);
  if (o.storage_dir.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("configuration key '", kStorageDir,
                                                   "' must be set when ", kType, " is zookeeper"));
  }
  auto root = NodePath(kRoot, conf.GetString(kRoot));
  if (!root.ok()) return root.status();
  auto cluster = NodePath(kClusterId, conf.GetString(kClusterId));
  if (!cluster.ok()) return cluster.status();
  o.cluster_path = JoinPath(*root, *cluster);
  o.session_timeout_ms = conf.GetDurationMs(kSessionTimeout);
  if (o.session_timeout_ms <= 0) {
    return Invalid(kSessionTimeout, conf.GetString(kSessionTimeout), "must be above 0");
  }
  o.connection_timeout_ms = conf.GetDurationMs(kConnectionTimeout);
  if (o.connection_timeout_ms <= 0) {
    return Invalid(kConnectionTimeout, conf.GetString(kConnectionTimeout), "must be above 0");
  }
  std::string port = std::string(absl::StripAsciiWhitespace(conf.GetString(kPort)));
  if (port != "0") {
    std::vector<std::string> parts = absl::StrSplit(port, '-');
    int first = 0, last = 0;
    bool ok = (parts.size() == 1 || parts.size() == 2) && absl::SimpleAtoi(parts[0], &first) &&
              absl::SimpleAtoi(parts.back(), &last) && first >= 1 && last <= 65535 && first <= last;
    if (!ok) {
      return Invalid(kPort, port, "is not a port, a range such as 50100-50200, or 0");
    }
    o.first_port = first;
    o.last_port = last;
  }
  return o;
}

}  // namespace sluice::ha
