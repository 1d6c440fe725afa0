#include "jobmanager/ha/zookeeper_client.h"

#include <zookeeper/zookeeper.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/status_macros.h"

namespace sluice::ha {
namespace {

// The C client writes its own log lines to standard error (the daemon's log); only its errors.
void QuietenCClientOnce() {
  static const bool done = [] {
    zoo_set_debug_level(ZOO_LOG_LEVEL_ERROR);
    return true;
  }();
  (void)done;
}

int ModeFlags(CreateMode mode) {
  switch (mode) {
    case CreateMode::kPersistent:
      return ZOO_PERSISTENT;
    case CreateMode::kEphemeral:
      return ZOO_EPHEMERAL;
    case CreateMode::kPersistentSequential:
      return ZOO_PERSISTENT_SEQUENTIAL;
    case CreateMode::kEphemeralSequential:
      return ZOO_EPHEMERAL_SEQUENTIAL;
  }
  return ZOO_PERSISTENT;
}

void* WatchContext(int64_t id) { return reinterpret_cast<void*>(static_cast<intptr_t>(id)); }

}  // namespace

const char* SessionStateName(SessionState s) {
  switch (s) {
    case SessionState::kConnecting:
      return "CONNECTING";
    case SessionState::kConnected:
      return "CONNECTED";
    case SessionState::kSuspended:
      return "SUSPENDED";
    case SessionState::kExpired:
      return "EXPIRED";
    case SessionState::kClosed:
      return "CLOSED";
  }
  return "?";
}

ZooKeeperClient::ZooKeeperClient(ZooKeeperClientOptions options) : options_(std::move(options)) {}

absl::StatusOr<std::unique_ptr<ZooKeeperClient>> ZooKeeperClient::Connect(
    ZooKeeperClientOptions options) {
  QuietenCClientOnce();
  if (options.quorum.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("ZooKeeper quorum is empty: set '", options.quorum_key, "'"));
  }
  std::unique_ptr<ZooKeeperClient> client(new ZooKeeperClient(std::move(options)));
  client->event_thread_ = std::thread([c = client.get()] { c->EventLoop(); });
  {
    absl::MutexLock lock(&client->handle_mu_);
    RETURN_IF_ERROR(client->OpenLocked());
  }
  bool connected;
  {
    absl::MutexLock lock(&client->mu_);
    connected = client->mu_.AwaitWithTimeout(
        absl::Condition(client.get(), &ZooKeeperClient::ConnectedLocked),
        absl::Milliseconds(client->options_.connection_timeout_ms));
  }
  if (!connected) {
    return absl::UnavailableError(
        absl::StrCat("could not connect to the ZooKeeper quorum '", client->options_.quorum, "' ('",
                     client->options_.quorum_key, "') within ",
                     client->options_.connection_timeout_ms, " ms: no server answered"));
  }
  return client;
}

absl::Status ZooKeeperClient::OpenLocked() {
  {
    absl::MutexLock lock(&mu_);
    ++generation_;
    state_ = SessionState::kConnecting;
    session_id_ = 0;
  }
  errno = 0;
  current_ = nullptr;
  zh_ = zookeeper_init(options_.quorum.c_str(), &ZooKeeperClient::Watcher,
                       static_cast<int>(options_.session_timeout_ms), nullptr, this, 0);
  current_ = zh_;
  if (zh_ == nullptr) {
    int err = errno;
    return absl::InvalidArgumentError(
        absl::StrCat("ZooKeeper quorum '", options_.quorum, "' ('", options_.quorum_key,
                     "') was refused: ", err ? std::strerror(err) : "malformed"));
  }
  return absl::OkStatus();
}

ZooKeeperClient::~ZooKeeperClient() {
  {
    // First, so that an expiry already queued opens no new handle once this one is closed.
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  {
    absl::MutexLock lock(&handle_mu_);
    current_ = nullptr;
    if (zh_ != nullptr) {
      zookeeper_close(zh_);  // joins the C client's threads: no callback after this
      zh_ = nullptr;
    }
    for (_zhandle* old : expired_) zookeeper_close(old);
    expired_.clear();
  }
  {
    absl::MutexLock lock(&mu_);
    state_ = SessionState::kClosed;
    watches_.clear();
  }
  if (event_thread_.joinable()) event_thread_.join();
}

bool ZooKeeperClient::ConnectedLocked() const { return state_ == SessionState::kConnected; }

SessionState ZooKeeperClient::state() const {
  absl::MutexLock lock(&mu_);
  return state_;
}

int64_t ZooKeeperClient::session_id() const {
  absl::MutexLock lock(&mu_);
  return session_id_;
}

int64_t ZooKeeperClient::negotiated_session_timeout_ms() const {
  absl::MutexLock lock(&mu_);
  return negotiated_timeout_ms_ > 0 ? negotiated_timeout_ms_ : options_.session_timeout_ms;
}

int ZooKeeperClient::AddSessionListener(SessionListener listener) {
  absl::MutexLock lock(&mu_);
  int id = next_listener_++;
  listeners_[id] = std::move(listener);
  return id;
}

void ZooKeeperClient::RemoveSessionListener(int id) {
  absl::MutexLock lock(&mu_);
  listeners_.erase(id);
}

void ZooKeeperClient::Post(std::function<void()> fn) { Enqueue(std::move(fn)); }

void ZooKeeperClient::Enqueue(std::function<void()> fn) {
  absl::MutexLock lock(&mu_);
  if (stopping_) return;
  events_.push_back(std::move(fn));
}

void ZooKeeperClient::EventLoop() {
  while (true) {
    std::function<void()> fn;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]()
                       ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stopping_ || !events_.empty(); };
      mu_.Await(absl::Condition(&ready));
      if (stopping_) return;
      fn = std::move(events_.front());
      events_.pop_front();
    }
    fn();
  }
}

// Runs on the C client's completion thread: it only records the event and hands it over.
void ZooKeeperClient::Watcher(_zhandle* zh, int type, int state, const char* path, void* ctx) {
  auto* self = static_cast<ZooKeeperClient*>(const_cast<void*>(zoo_get_context(zh)));
  if (self == nullptr) return;
  _zhandle* current = self->current_.load();
  if (current != nullptr && current != zh) return;  // an expired handle's late event
  // The session's watcher has this client as context; a node's watch its id. Session events reach
  // every node watch as well: only the session's watcher acts on them.
  bool session_watcher = ctx == self;
  if (type == ZOO_SESSION_EVENT && !session_watcher) return;
  if (session_watcher && type != ZOO_SESSION_EVENT) return;
  if (type == ZOO_SESSION_EVENT) {
    SessionState next;
    {
      absl::MutexLock lock(&self->mu_);
      if (state == ZOO_CONNECTED_STATE) {
        next = SessionState::kConnected;
        const clientid_t* id = zoo_client_id(zh);
        self->session_id_ = id ? id->client_id : 0;
        self->negotiated_timeout_ms_ = zoo_recv_timeout(zh);
      } else if (state == ZOO_EXPIRED_SESSION_STATE || state == ZOO_AUTH_FAILED_STATE) {
        next = SessionState::kExpired;
      } else if (self->state_ == SessionState::kConnected) {
        next = SessionState::kSuspended;  // connecting again: the session may still live
      } else {
        return;
      }
      if (next == self->state_) return;
      self->state_ = next;
    }
    self->Enqueue(
        [self, next] { self->OnEvent(ZOO_SESSION_EVENT, static_cast<int>(next), "", 0); });
    if (next == SessionState::kExpired) self->Enqueue([self] { self->OnExpired(); });
    return;
  }
  int64_t id = static_cast<int64_t>(reinterpret_cast<intptr_t>(ctx));
  std::string p = path ? path : "";
  self->Enqueue([self, type, p, id] { self->OnEvent(type, 0, p.c_str(), id); });
}

void ZooKeeperClient::OnEvent(int type, int state, const char* path, int64_t watch_id) {
  if (type == ZOO_SESSION_EVENT) {
    std::vector<int> ids;
    {
      absl::MutexLock lock(&mu_);
      for (const auto& [id, l] : listeners_) ids.push_back(id);
    }
    for (int id : ids) {
      SessionListener l;
      {
        absl::MutexLock lock(&mu_);
        auto it = listeners_.find(id);
        if (it == listeners_.end()) continue;
        l = it->second;
      }
      l(static_cast<SessionState>(state));
    }
    return;
  }
  WatchCallback cb;
  {
    absl::MutexLock lock(&mu_);
    auto it = watches_.find(watch_id);
    if (it == watches_.end()) return;
    cb = std::move(it->second.callback);
    watches_.erase(it);
  }
  WatchEvent ev{WatchEvent::Type::kChanged, path};
  if (type == ZOO_CREATED_EVENT) ev.type = WatchEvent::Type::kCreated;
  if (type == ZOO_DELETED_EVENT) ev.type = WatchEvent::Type::kDeleted;
  if (type == ZOO_CHILD_EVENT) ev.type = WatchEvent::Type::kChildren;
  if (cb) cb(ev);
}

// A dead session's handle cannot be used again: set it aside (closed by the destructor) and open
// a new session. Its watches are forgotten (their owners set them again on kConnected).
void ZooKeeperClient::OnExpired() {
  absl::MutexLock hl(&handle_mu_);
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    int64_t old = generation_;
    for (auto it = watches_.begin(); it != watches_.end();) {
      it = it->second.generation <= old ? watches_.erase(it) : std::next(it);
    }
  }
  if (zh_ != nullptr) expired_.push_back(zh_);
  zh_ = nullptr;
  if (absl::Status s = OpenLocked(); !s.ok()) {
    std::fprintf(stderr, "ZooKeeper: cannot open a new session: %s\n",
                 std::string(s.message()).c_str());
  }
}

absl::Status ZooKeeperClient::ExpireSessionForTesting() {
  clientid_t id{};
  int64_t generation = 0;
  {
    // Both under handle_mu_, which OnExpired holds while it replaces the handle: the session
    // and the generation read are of the same handle.
    absl::ReaderMutexLock lock(&handle_mu_);
    const clientid_t* current = zh_ ? zoo_client_id(zh_) : nullptr;
    if (current == nullptr || current->client_id == 0) {
      return absl::UnavailableError("no ZooKeeper session to expire");
    }
    id = *current;
    absl::MutexLock lock2(&mu_);
    generation = generation_;
  }
  auto reopened = [&] {
    absl::MutexLock lock(&mu_);
    return generation_ != generation;
  };
  // The second handle takes the session over, and the server drops this client's connection;
  // this client may then take the session back before the second handle closes it, and a handle
  // without a connection closes nothing. So it is done again until this client has seen the
  // session end and begun a new one. A later attempt on a session already ended finds it
  // expired, which is harmless.
  for (int attempt = 0; attempt < 5; ++attempt) {
    zhandle_t* other = zookeeper_init(
        options_.quorum.c_str(), [](zhandle_t*, int, int, const char*, void*) {},
        static_cast<int>(options_.session_timeout_ms), &id, nullptr, 0);
    if (other == nullptr) return absl::InternalError("cannot open a second handle");
    auto deadline = absl::Now() + absl::Milliseconds(options_.connection_timeout_ms);
    int other_state = zoo_state(other);
    while (other_state != ZOO_CONNECTED_STATE && other_state != ZOO_EXPIRED_SESSION_STATE &&
           absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(10));
      other_state = zoo_state(other);
    }
    zookeeper_close(other);  // closes the shared session on the server, if still connected
    // Until this client has begun a new session: it reconnects within a connection timeout.
    deadline = absl::Now() + absl::Milliseconds(options_.connection_timeout_ms);
    bool done = reopened();
    while (!done && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(10));
      done = reopened();
    }
    if (done) return absl::OkStatus();
    if (other_state != ZOO_CONNECTED_STATE && other_state != ZOO_EXPIRED_SESSION_STATE) {
      return absl::UnavailableError("the second handle did not connect");
    }
  }
  return absl::DeadlineExceededError("the session did not end after five attempts");
}

int64_t ZooKeeperClient::RegisterWatch(WatchCallback cb) {
  absl::MutexLock lock(&mu_);
  int64_t id = next_watch_++;
  watches_[id] = Watch{std::move(cb), generation_};
  return id;
}

void ZooKeeperClient::DropWatch(int64_t id) {
  absl::MutexLock lock(&mu_);
  watches_.erase(id);
}

absl::Status ZooKeeperClient::Error(int rc, const char* op, const std::string& path) const {
  std::string msg = absl::StrCat("ZooKeeper ", op, " '", path, "' (quorum '", options_.quorum,
                                 "'): ", zerror(rc));
  if (rc == ZNONODE) return absl::NotFoundError(msg);
  if (rc == ZNODEEXISTS) return absl::AlreadyExistsError(msg);
  if (rc == ZBADVERSION || rc == ZNOTEMPTY || rc == ZNOCHILDRENFOREPHEMERALS) {
    return absl::FailedPreconditionError(msg);
  }
  if (rc == ZBADARGUMENTS) return absl::InvalidArgumentError(msg);
  if (rc == ZNOAUTH || rc == ZAUTHFAILED) return absl::PermissionDeniedError(msg);
  if (rc == ZCONNECTIONLOSS || rc == ZOPERATIONTIMEOUT || rc == ZSESSIONEXPIRED ||
      rc == ZINVALIDSTATE || rc == ZCLOSING || rc == ZSESSIONMOVED) {
    return absl::UnavailableError(msg);
  }
  return absl::InternalError(msg);
}

#define SLUICE_ZK_HANDLE(op, path)                                                          \
  absl::ReaderMutexLock handle_lock(&handle_mu_);                                           \
  if (zh_ == nullptr) {                                                                     \
    return absl::UnavailableError(absl::StrCat("ZooKeeper ", op, " '", path, "' (quorum '", \
                                               options_.quorum,                             \
                                               "'): no session (client closed)"));          \
  }

absl::StatusOr<std::string> ZooKeeperClient::Create(const std::string& path,
                                                    const std::string& data, CreateMode mode) {
  SLUICE_ZK_HANDLE("create", path);
  std::string created(path.size() + 32, '\0');
  int rc = zoo_create(zh_, path.c_str(), data.data(), static_cast<int>(data.size()),
                      &ZOO_OPEN_ACL_UNSAFE, ModeFlags(mode), created.data(),
                      static_cast<int>(created.size()));
  if (rc != ZOK) return Error(rc, "create", path);
  created.resize(std::strlen(created.c_str()));
  return created;
}

absl::Status ZooKeeperClient::CreateParents(const std::string& path) {
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = path.find('/', pos + 1);
    std::string prefix = path.substr(0, pos);
    if (prefix.empty() || prefix == "/") continue;
    auto created = Create(prefix, "", CreateMode::kPersistent);
    if (!created.ok() && !absl::IsAlreadyExists(created.status())) return created.status();
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ZooKeeperClient::Get(const std::string& path, WatchCallback watch) {
  int64_t id = watch ? RegisterWatch(std::move(watch)) : 0;
  SLUICE_ZK_HANDLE("get", path);
  std::string buf(4096, '\0');
  while (true) {
    int len = static_cast<int>(buf.size());
    struct Stat st {};
    int rc = zoo_wget(zh_, path.c_str(), id ? &ZooKeeperClient::Watcher : nullptr, WatchContext(id),
                      buf.data(), &len, &st);
    if (rc != ZOK) {
      if (id) DropWatch(id);
      return Error(rc, "get", path);
    }
    if (st.dataLength > static_cast<int>(buf.size())) {
      buf.assign(st.dataLength, '\0');
      continue;
    }
    buf.resize(len < 0 ? 0 : len);
    return buf;
  }
}

absl::StatusOr<bool> ZooKeeperClient::Exists(const std::string& path, WatchCallback watch) {
  int64_t id = watch ? RegisterWatch(std::move(watch)) : 0;
  SLUICE_ZK_HANDLE("exists", path);
  struct Stat st {};
  int rc = zoo_wexists(zh_, path.c_str(), id ? &ZooKeeperClient::Watcher : nullptr,
                       WatchContext(id), &st);
  if (rc == ZOK) return true;
  if (rc == ZNONODE) return false;  // the watch is set and fires on creation
  if (id) DropWatch(id);
  return Error(rc, "exists", path);
}

absl::Status ZooKeeperClient::Set(const std::string& path, const std::string& data, int version) {
  SLUICE_ZK_HANDLE("set", path);
  int rc = zoo_set(zh_, path.c_str(), data.data(), static_cast<int>(data.size()), version);
  if (rc != ZOK) return Error(rc, "set", path);
  return absl::OkStatus();
}

absl::Status ZooKeeperClient::Delete(const std::string& path, int version) {
  SLUICE_ZK_HANDLE("delete", path);
  int rc = zoo_delete(zh_, path.c_str(), version);
  if (rc != ZOK) return Error(rc, "delete", path);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> ZooKeeperClient::Children(const std::string& path,
                                                                   WatchCallback watch) {
  int64_t id = watch ? RegisterWatch(std::move(watch)) : 0;
  SLUICE_ZK_HANDLE("children", path);
  String_vector children{};
  int rc = zoo_wget_children(zh_, path.c_str(), id ? &ZooKeeperClient::Watcher : nullptr,
                             WatchContext(id), &children);
  if (rc != ZOK) {
    if (id) DropWatch(id);
    return Error(rc, "children", path);
  }
  std::vector<std::string> out;
  for (int i = 0; i < children.count; ++i) out.emplace_back(children.data[i]);
  deallocate_String_vector(&children);
  return out;
}

}  // namespace sluice::ha
