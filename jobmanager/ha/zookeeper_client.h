// jobmanager/ha/: high availability on ZooKeeper. The only code that includes ZooKeeper's C
// client (libzookeeper_mt); the rest of Sluice sees these classes.
//
// ZooKeeperClient: one ZooKeeper session over the C client's multithreaded interface, with
// synchronous calls that return absl::Status naming the quorum and the node, and a session state
// that follows the connection:
//   kConnecting -> kConnected <-> kSuspended (connection lost, the session may still live)
//                      |               |
//                      +-> kExpired <--+  (the server ended the session: its ephemeral nodes
//                            |             and watches are gone) -> kConnecting (a new session)
//   any state -> kClosed (the destructor).
// After an expiry the client opens a new session by itself; its owners re-create what they had.
//
// Threads: the C client's two (I/O and completion) and one of this class, the event thread,
// which runs every session listener and watch callback, one at a time, in the order the events
// came. Callbacks may call the client's synchronous methods (the C client's own completion
// thread may not, which is why events are handed over). Every public method may be called from
// any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

struct _zhandle;  // the C client's zhandle_t

namespace sluice::ha {

enum class SessionState { kConnecting, kConnected, kSuspended, kExpired, kClosed };
const char* SessionStateName(SessionState s);

enum class CreateMode { kPersistent, kEphemeral, kPersistentSequential, kEphemeralSequential };

struct WatchEvent {
  enum class Type { kCreated, kDeleted, kChanged, kChildren };
  Type type;
  std::string path;
};
// A watch fires once, on the event thread, for the first change of its node after it was set.
// A watch set in a session that expires never fires (its owner sets it again on the new session).
using WatchCallback = std::function<void(const WatchEvent&)>;
// Called on the event thread with each new state.
using SessionListener = std::function<void(SessionState)>;

struct ZooKeeperClientOptions {
  // "host:port,host:port". Default: none (required).
  std::string quorum;
  // The session timeout asked of the server (which clamps it to its own bounds). Default: 6000.
  int64_t session_timeout_ms = 6000;
  // How long Connect waits for the first session. Default: 3000.
  int64_t connection_timeout_ms = 3000;
  // Names the quorum's configuration key in errors. Default: the HA key.
  std::string quorum_key = "high-availability.zookeeper.quorum";
};

class ZooKeeperClient {
 public:
  // Opens a session and waits up to connection_timeout_ms for it. InvalidArgument naming the
  // quorum (and its key) when the C client refuses the quorum string; Unavailable naming the
  // quorum when no server answered in time.
  static absl::StatusOr<std::unique_ptr<ZooKeeperClient>> Connect(ZooKeeperClientOptions options);
  // Closes the session (the server removes its ephemeral nodes at once), then stops the event
  // thread: queued events are dropped. Must not be called from a callback of this client.
  ~ZooKeeperClient();
  ZooKeeperClient(const ZooKeeperClient&) = delete;
  ZooKeeperClient& operator=(const ZooKeeperClient&) = delete;

  SessionState state() const;
  // The current session's id (0 while there is none).
  int64_t session_id() const;
  // The session timeout the server granted (the asked one before the first connection).
  int64_t negotiated_session_timeout_ms() const;
  const std::string& quorum() const { return options_.quorum; }

  // Registers a listener; it is called with every later state change. Returns an id for
  // RemoveSessionListener, after which it is no longer called (a call under way may finish).
  int AddSessionListener(SessionListener listener);
  void RemoveSessionListener(int id);

  // Creates `path` with `data`; returns the path created (with the sequence number of a
  // sequential mode). AlreadyExists, NotFound (no parent), Unavailable (no connection),
  // each naming the node and the quorum.
  absl::StatusOr<std::string> Create(const std::string& path, const std::string& data,
                                     CreateMode mode);
  // Creates `path` and every missing ancestor as empty persistent nodes; OK when they exist.
  absl::Status CreateParents(const std::string& path);
  // The node's data; NotFound when there is none. With `watch`, it fires on the node's next
  // change or deletion (when the node exists).
  absl::StatusOr<std::string> Get(const std::string& path, WatchCallback watch = nullptr);
  // Whether the node exists. With `watch`, it fires when the node is created, changed or
  // deleted (set in both cases).
  absl::StatusOr<bool> Exists(const std::string& path, WatchCallback watch = nullptr);
  // Replaces the data; with `version` >= 0 only at that version (FailedPrecondition otherwise).
  absl::Status Set(const std::string& path, const std::string& data, int version = -1);
  // Deletes the node; NotFound when absent, FailedPrecondition when it has children or another
  // version.
  absl::Status Delete(const std::string& path, int version = -1);
  // The names (not paths) of the node's children, unsorted. With `watch`, it fires when a child
  // is added or removed, or the node is deleted.
  absl::StatusOr<std::vector<std::string>> Children(const std::string& path,
                                                    WatchCallback watch = nullptr);

  // Ends this client's session from the server's side, as a session timeout would (another
  // handle takes the session over and closes it): this client sees kExpired, then opens a new
  // session; returns once it has begun to (up to five attempts, each up to two connection
  // timeouts). For tests, and not from this client's callbacks (the new session is begun on the
  // event thread). Unavailable when there is no session or the second handle cannot connect,
  // Internal when it cannot be made, DeadlineExceeded when the session outlived the five
  // attempts.
  absl::Status ExpireSessionForTesting();

  // Runs `fn` on the event thread after the events queued before it.
  void Post(std::function<void()> fn);

 private:
  struct Watch {
    WatchCallback callback;
    int64_t generation;  // the handle it was set on
  };
  explicit ZooKeeperClient(ZooKeeperClientOptions options);
  // Opens a new handle (under handle_mu_ exclusively); InvalidArgument when refused.
  absl::Status OpenLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(handle_mu_);
  static void Watcher(_zhandle* zh, int type, int state, const char* path, void* ctx);
  void OnEvent(int type, int state, const char* path, int64_t watch_id);
  void OnExpired();
  void Enqueue(std::function<void()> fn);
  bool ConnectedLocked() const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  void EventLoop();
  int64_t RegisterWatch(WatchCallback cb);
  void DropWatch(int64_t id);
  absl::Status Error(int rc, const char* op, const std::string& path) const;

  const ZooKeeperClientOptions options_;

  // The handle: shared by calls, held exclusively to open or close it.
  mutable absl::Mutex handle_mu_;
  _zhandle* zh_ ABSL_GUARDED_BY(handle_mu_) = nullptr;
  // The handle whose events count (null while one is being opened, whose first events may come
  // before zookeeper_init returns): an expired handle's late events are ignored.
  std::atomic<_zhandle*> current_{nullptr};
  // Expired handles, closed only by the destructor: closing one while the C client is still
  // handling its expiry crashed the client (free() of an invalid pointer) on a loaded machine.
  // An expired handle holds two idle threads; sessions expire rarely.
  std::vector<_zhandle*> expired_ ABSL_GUARDED_BY(handle_mu_);

  mutable absl::Mutex mu_;
  SessionState state_ ABSL_GUARDED_BY(mu_) = SessionState::kConnecting;
  int64_t session_id_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t negotiated_timeout_ms_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<int, SessionListener> listeners_ ABSL_GUARDED_BY(mu_);
  int next_listener_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<int64_t, Watch> watches_ ABSL_GUARDED_BY(mu_);
  int64_t next_watch_ ABSL_GUARDED_BY(mu_) = 1;
  std::deque<std::function<void()>> events_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread event_thread_;
};

}  // namespace sluice::ha
