#include "common/http_server.h"

#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <fstream>
#include <future>
#include <limits>
#include <optional>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "common/config.h"
#include "common/net.h"
#include "spdlog/spdlog.h"

namespace sluice {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

namespace {

std::chrono::steady_clock::duration ToChrono(absl::Duration d) {
  return absl::ToChronoNanoseconds(d);
}

}  // namespace

// Bodies of at most kSmallBody bytes (JSON requests) draw on a budget of their own, so that
// uploads (slow ones too) never keep them out.
constexpr size_t kSmallBody = 1 << 20;
constexpr size_t kSmallBodiesInFlight = 64 << 20;
// Beast's header fields hold at most 64 KiB.
constexpr size_t kMaxHeaderBytes = 60 * 1024;

HttpServerOptions Clamped(HttpServerOptions o) {
  o.max_header_bytes = std::clamp<size_t>(o.max_header_bytes, 1024, kMaxHeaderBytes);
  return o;
}

class HttpServer::Impl {
 public:
  // What the server needs of a connection, whatever its stream (TLS or plain).
  class SessionBase {
   public:
    virtual ~SessionBase() = default;
    virtual void Close() = 0;
  };
  template <class Stream>
  class Session;

  Impl(const HttpServerOptions& options, HttpRoutes routes)
      : options_(Clamped(options)),
        routes_(std::move(routes)),
        pool_(static_cast<size_t>(std::max(1, options.handler_threads))) {}

  ~Impl() { Stop(); }

  // Binds every address on one port (chosen as HttpServer::Start says); Unavailable naming the
  // host, ports and keys when none is free.
  absl::Status Bind();
  // The TLS context of options_.tls; InvalidArgument naming the key and file that is wrong.
  absl::Status SetUpTls();
  void Run() {
    for (auto& a : acceptors_) Accept(a.get());
    io_thread_ = std::thread([this] {
      // Nothing should escape a handler of the I/O thread; if something does (out of memory),
      // the server goes on rather than ending the process.
      for (;;) {
        try {
          io_.run();
          return;
        } catch (const std::exception& e) {
          spdlog::error("{}: {} escaped the I/O thread's work; serving on", options_.what,
                        e.what());
        }
      }
    });
  }
  void Stop();

  int port() const { return port_; }
  int connections() {
    absl::MutexLock lock(&sessions_mu_);
    return static_cast<int>(sessions_.size());
  }

 private:
  void Accept(tcp::acceptor* acceptor);
  void Register(const std::shared_ptr<SessionBase>& s) {
    absl::MutexLock lock(&sessions_mu_);
    sessions_[s.get()] = s;
  }
  void Unregister(SessionBase* s) {
    absl::MutexLock lock(&sessions_mu_);
    sessions_.erase(s);
  }
  // Takes `bytes` of the budget of bodies in memory (small bodies' or uploads'); false (nothing
  // taken) when it would go over.
  bool ReserveBody(size_t bytes) {
    const bool small = bytes <= kSmallBody;
    std::atomic<size_t>& in_flight = small ? small_bodies_in_flight_ : bodies_in_flight_;
    const size_t budget = small ? kSmallBodiesInFlight : options_.max_body_bytes_in_flight;
    size_t now = in_flight.load();
    do {
      if (now + bytes > budget) return false;
    } while (!in_flight.compare_exchange_weak(now, now + bytes));
    return true;
  }
  void ReleaseBody(size_t bytes) {
    (bytes <= kSmallBody ? small_bodies_in_flight_ : bodies_in_flight_) -= bytes;
  }

  const HttpServerOptions options_;
  const HttpRoutes routes_;
  absl::Mutex sessions_mu_;
  std::unordered_map<SessionBase*, std::weak_ptr<SessionBase>> sessions_
      ABSL_GUARDED_BY(sessions_mu_);
  std::atomic<size_t> bodies_in_flight_{0};
  std::atomic<size_t> small_bodies_in_flight_{0};
  std::unique_ptr<asio::ssl::context> tls_;  // null: plain HTTP; outlives the sessions
  // Declared before the pool and the acceptors: they (and the sessions their pending work
  // holds) are destroyed while the io_context still exists. One thread runs it, so the
  // sessions need no strand.
  asio::io_context io_{1};
  asio::thread_pool pool_;
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors_;
  std::thread io_thread_;
  int port_ = 0;
  std::atomic<bool> stopped_{false};
};

// One connection: over TLS, the handshake first (idle_timeout); then waits for a request
// (idle_timeout), reads it whole (read_timeout, size limits), hands it to the pool, writes the
// answer, and waits for the next one if both sides keep the connection alive. Everything but
// the handler runs on the I/O thread. `Stream` is beast::tcp_stream, or a TLS stream over one.
template <class Stream>
class HttpServer::Impl::Session : public SessionBase,
                                  public std::enable_shared_from_this<Session<Stream>> {
  static constexpr bool kTls = !std::is_same_v<Stream, beast::tcp_stream>;

 public:
  template <class... TlsContext>
  Session(Impl* server, tcp::socket socket, TlsContext&... tls)
      : server_(server), stream_(std::move(socket), tls...), deadline_(stream_.get_executor()) {
    error_code ec;
    Socket().set_option(tcp::no_delay(true), ec);
    auto remote = Socket().remote_endpoint(ec);
    if (!ec) remote_address_ = remote.address().to_string();
  }
  ~Session() override {
    if (reserved_ > 0) server_->ReleaseBody(reserved_);
    server_->Unregister(this);
  }

  void Start() {
    if constexpr (kTls) {
      Arm(server_->options_.idle_timeout);
      stream_.async_handshake(
          asio::ssl::stream_base::server, [self = this->shared_from_this()](error_code ec) {
            self->Disarm();
            if (ec) {
              spdlog::info("{}: TLS handshake with {} refused: {}", self->server_->options_.what,
                           self->remote_address_, ec.message());
              self->Close();
              return;
            }
            self->WaitForRequest();
          });
    } else {
      WaitForRequest();
    }
  }

  void WaitForRequest() {
    if (buffer_.size() > 0) {  // the next request (pipelined) has begun already
      ReadRequest();
      return;
    }
    // The first bytes of the next request, read rather than waited for: a TLS stream may hold
    // them decrypted already where the socket shows nothing.
    Arm(server_->options_.idle_timeout);
    stream_.async_read_some(buffer_.prepare(kFirstRead),
                            [self = this->shared_from_this()](error_code ec, size_t n) {
                              self->buffer_.commit(n);
                              if (ec) {  // idle too long (cancelled), or the connection ended
                                self->Close();
                                return;
                              }
                              self->ReadRequest();
                            });
  }

  // Called on the I/O thread only.
  void Close() override {
    error_code ec;
    Disarm();
    Socket().shutdown(tcp::socket::shutdown_send, ec);
    Socket().close(ec);
  }

 private:
  tcp::socket& Socket() { return beast::get_lowest_layer(stream_).socket(); }
  beast::tcp_stream& Lowest() { return beast::get_lowest_layer(stream_); }

  // Sets the connection's deadline `d` from now: when it passes, the pending read is cancelled
  // and `expired_` says why (the stream's own timeout would close the socket, and with it the
  // chance to answer 408). A generation count makes a handler of an earlier deadline, already
  // queued when it was re-armed, do nothing.
  void Arm(absl::Duration d) {
    expired_ = false;
    const uint64_t generation = ++generation_;
    deadline_.expires_after(ToChrono(d));
    deadline_.async_wait([self = this->shared_from_this(), generation](error_code ec) {
      if (ec || generation != self->generation_) return;  // cancelled, or armed again
      self->expired_ = true;
      error_code ignored;
      self->Socket().cancel(ignored);
    });
  }
  void Disarm() {
    ++generation_;
    deadline_.cancel();
  }

  void ReadRequest() {
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(server_->options_.max_header_bytes));
    // The body's limit is set once the headers say what the request is (OnHeader).
    parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
    body_limit_ = server_->options_.max_body_bytes;
    Arm(server_->options_.read_timeout);
    http::async_read_header(
        stream_, buffer_, *parser_,
        [self = this->shared_from_this()](error_code ec, size_t) { self->OnHeader(ec); });
  }

  void OnHeader(error_code ec) {
    if (ec) {
      OnReadError(ec);
      return;
    }
    const auto& msg = parser_->get();
    if (msg.target().size() > kMaxTargetBytes) {
      Refuse(414, absl::StrCat("the request target is longer than ", kMaxTargetBytes, " bytes"));
      return;
    }
    // A request with a body that its guard refuses (no token, say) is answered before the body
    // is taken in (or 100 Continue sent); one without is answered as usual, keeping the
    // connection.
    if (!parser_->is_done() && server_->routes_.has_guard() && !AdmitHeader(msg)) return;
    // The body's own limit (an upload's is larger than others'), and room for it in memory.
    const HttpServerOptions& o = server_->options_;
    size_t limit = o.max_body_bytes;
    if (o.body_limit) {
      limit = std::min(limit,
                       o.body_limit(std::string(msg.method_string()), std::string(msg.target())));
    }
    const auto length = parser_->content_length();
    if (length && *length > limit) {
      Refuse(413, absl::StrCat("the request body is larger than ", limit, " bytes"));
      return;
    }
    parser_->body_limit(limit);
    body_limit_ = limit;
    const size_t reserve = length ? static_cast<size_t>(*length) : (parser_->is_done() ? 0 : limit);
    if (reserve > kSmallBody && reserve > o.max_body_bytes_in_flight) {
      Refuse(413, absl::StrCat("the request body may be ", reserve,
                               " bytes, more than the server holds in memory at once"));
      return;
    }
    if (reserve > 0) {
      if (!server_->ReserveBody(reserve)) {
        Refuse(503,
               "the server is reading as many request bodies as it holds in memory; "
               "try again shortly");
        return;
      }
      reserved_ = reserve;
    }
    if (!parser_->is_done() &&
        absl::EqualsIgnoreCase(std::string(msg[http::field::expect]), "100-continue")) {
      continue_.emplace(http::status::continue_, msg.version());
      http::async_write(stream_, *continue_,
                        [self = this->shared_from_this()](error_code ec, size_t) {
                          if (ec) {
                            self->Close();
                            return;
                          }
                          self->ReadBody();
                        });
      return;
    }
    ReadBody();
  }

  void ReadBody() {
    http::async_read(stream_, buffer_, *parser_,
                     [self = this->shared_from_this()](error_code ec, size_t) {
                       if (ec) {
                         self->OnReadError(ec);
                         return;
                       }
                       self->Dispatch();
                     });
  }

  // A request that could not be read: the connection closes, after an answer saying why when
  // the client may still be listening.
  void OnReadError(error_code ec) {
    const bool expired = expired_;
    Disarm();
    const HttpServerOptions& o = server_->options_;
    if (ec == http::error::body_limit) {
      Refuse(413, absl::StrCat("the request body is larger than ", body_limit_, " bytes"));
    } else if (ec == http::error::header_limit) {
      Refuse(431, absl::StrCat("the request's line and headers are larger than ",
                               o.max_header_bytes, " bytes"));
    } else if (expired) {
      Refuse(408, absl::StrCat("the request was not received whole within ",
                               absl::FormatDuration(o.read_timeout)));
    } else if (ec.category() == http::make_error_code(http::error::bad_target).category() &&
               ec != http::error::end_of_stream && ec != http::error::partial_message) {
      Refuse(400, absl::StrCat("the request is not valid HTTP/1.1: ", ec.message()));
    } else {
      Close();  // the peer closed or reset the connection
    }
  }

  // Asks the routes' guard about a request whose headers are read; false when it refused the
  // request, which is then being answered.
  bool AdmitHeader(const http::request<http::string_body>& msg) {
    HttpResponse res;
    try {
      HttpRequest req;
      req.method = std::string(msg.method_string());
      req.target = std::string(msg.target());
      if (absl::Status parsed = ParseTarget(req.target, &req.path, &req.params); !parsed.ok()) {
        Refuse(400, std::string(parsed.message()));  // its body is not worth reading either
        return false;
      }
      for (const auto& field : msg) {
        req.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
      }
      req.remote_address = remote_address_;
      if (server_->routes_.Admit(req, res)) return true;
    } catch (const std::exception& e) {
      Refuse(500, e.what());
      return false;
    }
    Refused(std::move(res));
    return false;
  }

  // Answers `status` to a request not read whole, and closes the connection after it.
  void Refuse(int status, std::string reason) {
    HttpRequest req;
    req.remote_address = remote_address_;
    if (parser_ && parser_->is_header_done()) {  // what the error handler may word its answer by
      req.method = std::string(parser_->get().method_string());
      if (parser_->get().target().size() <= kMaxTargetBytes) {
        req.target = std::string(parser_->get().target());
        (void)ParseTarget(req.target, &req.path, &req.params);
      }
    }
    HttpResponse res;
    res.status = status;
    res.reason = std::move(reason);
    server_->routes_.Refuse(req, res);
    Refused(std::move(res));
  }

  // Writes `res`, the answer to a request not read whole, and closes the connection after it.
  void Refused(HttpResponse res) {
    Disarm();
    keep_alive_ = false;
    head_ = false;
    drain_ = true;
    if (parser_ && parser_->is_header_done() && parser_->get().version() == 10) version_ = 10;
    parser_.reset();  // a partial body goes now, not after the answer and the drain
    Write(std::move(res));
  }

  void Dispatch() {
    Disarm();
    auto req = std::make_shared<HttpRequest>();
    try {
      auto msg = parser_->release();
      parser_.reset();
      keep_alive_ = msg.keep_alive();
      version_ = msg.version();
      head_ = msg.method() == http::verb::head;
      req->method = std::string(msg.method_string());
      req->target = std::string(msg.target());
      for (const auto& field : msg) {
        req->headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
      }
      req->body = std::move(msg.body());
      req->remote_address = remote_address_;
    } catch (const std::exception& e) {  // out of memory, say
      Refuse(500, e.what());
      return;
    }
    asio::post(server_->pool_, [self = this->shared_from_this(), req]() mutable {
      HttpResponse res;
      self->Handle(*req, res);
      req.reset();  // the body's memory goes back before the answer is written
      asio::post(self->stream_.get_executor(),
                 [self, res = std::move(res)]() mutable { self->Write(std::move(res)); });
    });
  }

  // On a pool thread. Nothing may escape: an exception here would end the process.
  void Handle(HttpRequest& req, HttpResponse& res) {
    server_->routes_.Serve(req, res, server_->options_.parse_forms);
  }

  void Write(HttpResponse res) {
    if (reserved_ > 0) {
      server_->ReleaseBody(reserved_);
      reserved_ = 0;
    }
    try {
      response_.emplace();
      response_->version(version_);
      // Beast refuses a status outside 100-999, and a body on 1xx, 204 and 304.
      if (res.status < 200 || res.status > 599 || res.status == 204 || res.status == 304) {
        res.status = res.status == 204 || res.status == 304 ? res.status : 500;
        res.body.clear();
      }
      response_->result(static_cast<unsigned>(res.status));
      if (!res.content_type.empty()) response_->set(http::field::content_type, res.content_type);
      for (auto& [name, value] : res.headers) response_->insert(name, value);
      response_->keep_alive(keep_alive_);
      if (head_) {
        response_->content_length(res.body.size());
      } else {
        response_->body() = std::move(res.body);
        response_->prepare_payload();
      }
    } catch (const std::exception& e) {  // a header value over Beast's 64 KiB, say
      spdlog::warn("{}: cannot write an answer ({}): closing the connection",
                   server_->options_.what, e.what());
      Close();
      return;
    }
    // Writing is bounded like reading: a client that does not read its answer is let go.
    Lowest().expires_after(ToChrono(server_->options_.read_timeout));
    serializer_.emplace(*response_);
    auto done = [self = this->shared_from_this()](error_code ec, size_t) {
      self->Lowest().expires_never();
      if (!ec && self->drain_) {
        self->Drain();
        return;
      }
      if (ec || !self->keep_alive_) {
        self->Close();
        return;
      }
      self->serializer_.reset();
      self->response_.reset();
      self->WaitForRequest();
    };
    if (head_) {
      http::async_write_header(stream_, *serializer_, std::move(done));  // HEAD: no body
    } else {
      http::async_write(stream_, *serializer_, std::move(done));
    }
  }

  // After refusing a request the client may still be sending (a body over the limit): read and
  // drop what comes, for a few seconds at most, so that the client reads the answer instead of
  // a connection reset, then close.
  void Drain() {
    error_code ec;
    Socket().shutdown(tcp::socket::shutdown_send, ec);
    Lowest().expires_after(ToChrono(std::min(server_->options_.read_timeout, absl::Seconds(5))));
    drain_buffer_ = std::make_unique<char[]>(kDrainBufferSize);
    DrainSome();
  }
  void DrainSome() {
    stream_.async_read_some(asio::buffer(drain_buffer_.get(), kDrainBufferSize),
                            [self = this->shared_from_this()](error_code ec, size_t) {
                              if (ec) {
                                self->Close();
                                return;
                              }
                              self->DrainSome();
                            });
  }

  static constexpr size_t kDrainBufferSize = 16384;
  static constexpr size_t kFirstRead = 1024;
  Impl* const server_;
  Stream stream_;
  asio::steady_timer deadline_;  // of the wait for a request, then of its reading
  uint64_t generation_ = 0;
  bool expired_ = false;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<http::response<http::empty_body>> continue_;
  std::optional<http::response<http::string_body>> response_;
  std::optional<http::response_serializer<http::string_body>> serializer_;
  std::string remote_address_;
  size_t reserved_ = 0;    // of the server's budget of bodies in memory
  size_t body_limit_ = 0;  // of the request being read
  bool keep_alive_ = true;
  bool head_ = false;
  bool drain_ = false;
  std::unique_ptr<char[]> drain_buffer_;
  unsigned version_ = 11;
};

void HttpServer::Impl::Accept(tcp::acceptor* acceptor) {
  acceptor->async_accept([this, acceptor](error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || stopped_) return;
    if (ec) {
      // Out of file descriptors, say: try again shortly rather than spin.
      spdlog::warn("{}: accepting a connection failed: {}", options_.what, ec.message());
      auto timer = std::make_shared<asio::steady_timer>(io_, std::chrono::milliseconds(50));
      timer->async_wait([this, acceptor, timer](error_code) { Accept(acceptor); });
      return;
    }
    if (connections() >= options_.max_connections) {
      error_code ignored;
      socket.close(ignored);
    } else {
      if (tls_) {
        auto session = std::make_shared<Session<beast::ssl_stream<beast::tcp_stream>>>(
            this, std::move(socket), *tls_);
        Register(session);
        session->Start();
      } else {
        auto session = std::make_shared<Session<beast::tcp_stream>>(this, std::move(socket));
        Register(session);
        session->Start();
      }
    }
    Accept(acceptor);
  });
}

absl::Status HttpServer::Impl::SetUpTls() {
  if (!options_.tls) return absl::OkStatus();
  const HttpTlsOptions& t = *options_.tls;
  auto ctx = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
  error_code ec;
  ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                       asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                       asio::ssl::context::no_tlsv1_1 | asio::ssl::context::single_dh_use,
                   ec);
  auto bad = [&](const std::string& key, const std::string& file, const char* what) {
    return absl::InvalidArgumentError(absl::StrCat(options_.what, ": configuration key '", key,
                                                   "': '", file, "' ", what, " (", ec.message(),
                                                   ")"));
  };
  if (t.cert_file.empty() || t.key_file.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(options_.what, ": TLS needs ", t.cert_key,
                                                   " and ", t.key_key, " (PEM files)"));
  }
  // An encrypted key is refused rather than asked for on a terminal.
  ctx->set_password_callback([](size_t, asio::ssl::context::password_purpose) { return ""; }, ec);
  ctx->use_certificate_chain_file(t.cert_file, ec);
  if (ec) return bad(t.cert_key, t.cert_file, "is not a readable PEM certificate chain");
  ctx->use_private_key_file(t.key_file, asio::ssl::context::pem, ec);
  if (ec) return bad(t.key_key, t.key_file, "is not a readable PEM private key of the certificate");
  if (!t.client_ca_file.empty()) {
    ctx->load_verify_file(t.client_ca_file, ec);
    if (ec) return bad(t.client_ca_key, t.client_ca_file, "is not a readable PEM CA certificate");
    ctx->set_verify_mode(asio::ssl::verify_peer | asio::ssl::verify_fail_if_no_peer_cert, ec);
    // Without a session id context OpenSSL refuses to resume a session that verified a client.
    static const unsigned char kContext[] = "sluice-rest";
    SSL_CTX_set_session_id_context(ctx->native_handle(), kContext, sizeof kContext - 1);
  }
  tls_ = std::move(ctx);
  return absl::OkStatus();
}

absl::Status HttpServer::Impl::Bind() {
  const HttpServerOptions& o = options_;
  auto sockets = ListenOnHost(ListenOptions{.what = o.what,
                                            .host = o.host,
                                            .host_key = o.host_key,
                                            .port_key = o.port_key,
                                            .first_port = o.first_port,
                                            .last_port = o.last_port});
  if (!sockets.ok()) return sockets.status();
  error_code ec;
  for (int fd : sockets->fds) {
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    auto acceptor = std::make_unique<tcp::acceptor>(io_);
    if (!ec) acceptor->assign(addr.ss_family == AF_INET6 ? tcp::v6() : tcp::v4(), fd, ec);
    if (ec) {
      ::close(fd);
    } else {
      acceptors_.push_back(std::move(acceptor));
    }
  }
  if (ec) {
    acceptors_.clear();
    return absl::InternalError(absl::StrCat(o.what, ": ", ec.message()));
  }
  port_ = sockets->port;
  return absl::OkStatus();
}

void HttpServer::Impl::Stop() {
  if (stopped_.exchange(true)) return;
  if (io_thread_.joinable()) {
    // On the I/O thread, which owns the sockets: no new connections, every open one closed.
    std::promise<void> closed;
    asio::post(io_, [this, &closed] {
      error_code ec;
      for (auto& a : acceptors_) a->close(ec);
      std::vector<std::shared_ptr<SessionBase>> open;
      {
        absl::MutexLock lock(&sessions_mu_);
        for (auto& [raw, weak] : sessions_) {
          if (auto s = weak.lock()) open.push_back(std::move(s));
        }
      }
      for (auto& s : open) s->Close();
      closed.set_value();
    });
    closed.get_future().wait();
  }
  pool_.join();  // a handler still running finishes; its answer finds its connection closed
  io_.stop();
  if (io_thread_.joinable()) io_thread_.join();
}

absl::StatusOr<std::pair<int, int>> ParsePortRange(const std::string& key,
                                                   const std::string& value) {
  std::vector<std::string> parts = absl::StrSplit(value, '-');
  auto bad = [&] {
    return absl::InvalidArgumentError(absl::StrCat("configuration key '", key, "': '", value,
                                                   "' is not a port or a range of ports "
                                                   "(e.g. 9249 or 9249-9259)"));
  };
  if (parts.empty() || parts.size() > 2) return bad();
  int ends[2];
  for (size_t i = 0; i < parts.size(); ++i) {
    auto n = ParseInt(key, parts[i]);
    if (!n.ok() || *n < 0 || *n > 65535) return bad();
    ends[i] = static_cast<int>(*n);
  }
  if (parts.size() == 1) ends[1] = ends[0];
  if (ends[1] < ends[0] || (ends[0] == 0 && ends[1] != 0)) return bad();
  return std::make_pair(ends[0], ends[1]);
}

void ApplyRestServerLimits(const Configuration& conf, HttpServerOptions* o) {
  o->handler_threads =
      static_cast<int>(std::clamp<int64_t>(conf.GetInt("rest.server.numThreads"), 1, 256));
  o->max_connections =
      static_cast<int>(std::clamp<int64_t>(conf.GetInt("rest.server.max-connections"), 1, 1000000));
  o->max_header_bytes = static_cast<size_t>(
      std::clamp<int64_t>(conf.GetBytes("rest.server.max-header-size"), 1024, kMaxHeaderBytes));
  o->read_timeout =
      absl::Milliseconds(std::max<int64_t>(1, conf.GetDurationMs("rest.server.read-timeout")));
  o->idle_timeout =
      absl::Milliseconds(std::max<int64_t>(1, conf.GetDurationMs("rest.server.idle-timeout")));
}

absl::Status ApplyRestTls(const Configuration& conf, HttpServerOptions* o) {
  if (!conf.GetBool("security.ssl.rest.enabled")) return absl::OkStatus();
  HttpTlsOptions t;
  t.key_key = "security.ssl.rest.key";
  t.key_file = conf.GetString(t.key_key);
  t.cert_key = "security.ssl.rest.cert";
  t.cert_file = conf.GetString(t.cert_key);
  if (conf.GetBool("security.ssl.rest.authentication-enabled")) {
    t.client_ca_key = "security.ssl.rest.trust-cert";
    t.client_ca_file = conf.GetString(t.client_ca_key);
    if (t.client_ca_file.empty()) {
      return absl::InvalidArgumentError(
          "security.ssl.rest.authentication-enabled is true but security.ssl.rest.trust-cert "
          "names no CA file");
    }
  }
  o->tls = std::move(t);
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadRestAuthToken(const Configuration& conf) {
  const std::string path = conf.GetString("security.rest.auth.token-file");
  if (path.empty()) return std::string();
  std::ifstream in(path, std::ios::binary);
  std::string token;
  if (in) std::getline(in, token);
  token = std::string(absl::StripAsciiWhitespace(token));
  if (!in && token.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "configuration key 'security.rest.auth.token-file': cannot read '", path, "'"));
  }
  if (token.size() < 16) {
    return absl::InvalidArgumentError(
        absl::StrCat("configuration key 'security.rest.auth.token-file': the token in '", path,
                     "' is shorter than 16 characters"));
  }
  return token;
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(const HttpServerOptions& options,
                                                              HttpRoutes routes) {
  auto impl = std::make_unique<Impl>(options, std::move(routes));
  if (absl::Status s = impl->SetUpTls(); !s.ok()) return s;
  if (absl::Status s = impl->Bind(); !s.ok()) return s;
  impl->Run();
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

HttpServer::~HttpServer() { Stop(); }

int HttpServer::port() const { return impl_->port(); }

int HttpServer::connections() const { return impl_->connections(); }

void HttpServer::Stop() { impl_->Stop(); }

}  // namespace sluice
