// The socket connector: lines read from a TCP server, as Flink's socketTextStream. Link the
// `sluice_connector_socket` target (Sluice::connector_socket) to use it.
//
//   env.add_source(sluice::sockets::SocketTextSource("localhost", 9999))
#pragma once

#include <string>

#include "sluice/functions.h"

namespace sluice::sockets {

// Reads delimited lines from a TCP server until it closes the connection. Non-parallel. At most
// once: it keeps no state in checkpoints, and after a restore it reads on from a new connection;
// what was read before a failure is not replayed.
class SocketTextSource final : public SourceFunction<std::string> {
 public:
  SocketTextSource(std::string host, int port, char delimiter = '\n');
  SocketTextSource(const SocketTextSource& o);
  ~SocketTextSource() override;
  std::string default_name() const {
    return "Socket Stream " + host_ + ":" + std::to_string(port_);
  }
  bool is_parallel() const override { return false; }
  void open(RuntimeContext&) override;
  void run(SourceContext& ctx) override;
  void close() override;

 private:
  std::string host_;
  int port_;
  char delimiter_;
  int fd_ = -1;
};

}  // namespace sluice::sockets
