#include "common/net.h"

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace sluice {

absl::StatusOr<std::vector<std::string>> ResolveHost(const std::string& host,
                                                     const std::string& config_key) {
  std::string name(host);
  if (name.size() >= 2 && name.front() == '[' && name.back() == ']') {
    name = name.substr(1, name.size() - 2);
  }
  std::string key = config_key.empty() ? "" : absl::StrCat(" (", config_key, ")");
  if (name.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("empty host name", key));
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  int rc = ::getaddrinfo(name.c_str(), nullptr, &hints, &res);
  if (rc != 0) {
    std::string why = rc == EAI_SYSTEM ? std::strerror(errno) : ::gai_strerror(rc);
    std::string fix =
        config_key.empty()
            ? ""
            : absl::StrCat("; add the name to /etc/hosts or set ", config_key,
                           " to a name that resolves or to an address (e.g. 127.0.0.1)");
    return absl::UnavailableError(
        absl::StrCat("the host name '", name, "'", key, " does not resolve: ", why, fix));
  }
  std::vector<std::string> addresses;
  for (const addrinfo* a = res; a != nullptr; a = a->ai_next) {
    char buf[NI_MAXHOST];
    if (::getnameinfo(a->ai_addr, a->ai_addrlen, buf, sizeof buf, nullptr, 0, NI_NUMERICHOST) !=
        0) {
      continue;
    }
    if (std::find(addresses.begin(), addresses.end(), buf) == addresses.end()) {
      addresses.emplace_back(buf);
    }
  }
  ::freeaddrinfo(res);
  if (addresses.empty()) {
    return absl::UnavailableError(
        absl::StrCat("the host name '", name, "'", key, " resolves to no TCP address"));
  }
  return addresses;
}

bool CanBindAddress(const std::string& address) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_PASSIVE;
  addrinfo* res = nullptr;
  if (::getaddrinfo(address.c_str(), "0", &hints, &res) != 0) return false;
  bool ok = false;
  for (const addrinfo* a = res; a != nullptr && !ok; a = a->ai_next) {
    int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    ok = ::bind(fd, a->ai_addr, a->ai_addrlen) == 0;
    ::close(fd);
  }
  ::freeaddrinfo(res);
  return ok;
}

}  // namespace sluice
