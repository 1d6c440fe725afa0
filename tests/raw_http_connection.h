// RawHttpConnection: a client socket on 127.0.0.1 for tests of HTTP servers, byte for byte,
// with no client library in between to normalize what is sent or read. Reads and writes give up
// after 10 s.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"

namespace sluice::test {

class RawHttpConnection {
 public:
  explicit RawHttpConnection(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    timeval tv{10, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  ~RawHttpConnection() {
    if (fd_ >= 0) ::close(fd_);
  }
  RawHttpConnection(const RawHttpConnection&) = delete;
  RawHttpConnection& operator=(const RawHttpConnection&) = delete;

  bool connected() const { return connected_; }
  bool Send(const std::string& s) {
    size_t sent = 0;
    while (sent < s.size()) {
      ssize_t n = ::send(fd_, s.data() + sent, s.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return false;
      sent += static_cast<size_t>(n);
    }
    return true;
  }
  // One response: its status line and headers, then as many body bytes as its Content-Length
  // says. "" when the connection closed (or timed out) first.
  std::string ReadResponse() {
    for (;;) {
      size_t end = buf_.find("\r\n\r\n");
      if (end != std::string::npos) {
        size_t length = 0;
        size_t at = buf_.find("Content-Length: ");
        if (at != std::string::npos && at < end) {
          size_t eol = buf_.find("\r\n", at);
          (void)absl::SimpleAtoi(buf_.substr(at + 16, eol - at - 16), &length);
        }
        if (absl::StartsWith(buf_, "HTTP/1.1 100")) length = 0;
        if (buf_.size() >= end + 4 + length) {
          std::string r = buf_.substr(0, end + 4 + length);
          buf_.erase(0, end + 4 + length);
          return r;
        }
      }
      if (!Fill()) return "";
    }
  }
  // Everything until the server closes the connection (or the socket's timeout).
  std::string ReadAll() {
    while (Fill()) {
    }
    return std::move(buf_);
  }
  // Whether the server closed the connection (reads end) within the socket's timeout.
  bool Closed() {
    while (Fill()) {
    }
    return eof_;
  }

 private:
  bool Fill() {
    char b[65536];
    ssize_t n = ::recv(fd_, b, sizeof b, 0);
    if (n == 0) eof_ = true;
    if (n <= 0) return false;
    buf_.append(b, static_cast<size_t>(n));
    return true;
  }
  int fd_ = -1;
  bool connected_ = false;
  bool eof_ = false;
  std::string buf_;
};

}  // namespace sluice::test
