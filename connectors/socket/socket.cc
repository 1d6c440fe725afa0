// The socket connector's source (see sluice/connectors/socket.h).
#include "sluice/connectors/socket.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <utility>

namespace sluice::sockets {

SocketTextSource::SocketTextSource(std::string host, int port, char delimiter)
    : host_(std::move(host)), port_(port), delimiter_(delimiter) {}
SocketTextSource::SocketTextSource(const SocketTextSource& o)
    : SourceFunction<std::string>(o), host_(o.host_), port_(o.port_), delimiter_(o.delimiter_) {}
SocketTextSource::~SocketTextSource() {
  if (fd_ >= 0) ::close(fd_);
}

void SocketTextSource::open(RuntimeContext&) {
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

void SocketTextSource::run(SourceContext& ctx) {
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

void SocketTextSource::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

}  // namespace sluice::sockets
