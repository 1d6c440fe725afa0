#include "jobmanager/ha/leader_election.h"

#include <algorithm>
#include <cstdio>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "common/ids.h"

namespace sluice::ha {
namespace {

void LogError(const std::string& what, const absl::Status& s) {
  std::fprintf(stderr, "leader election: %s: %s\n", what.c_str(), std::string(s.message()).c_str());
}

// The sequence number ZooKeeper appended to a sequential node's name (its last 10 digits).
std::string SequenceOf(const std::string& name) {
  return name.size() >= 10 ? name.substr(name.size() - 10) : name;
}

}  // namespace

std::string JobManagerLeaderPath(const std::string& cluster_path) {
  return cluster_path + "/leader/jobmanager";
}

std::string LeaderInfo::Serialize() const {
  return absl::StrCat("rpc_address=", rpc_address, "\nrest_url=", rest_url,
                      "\nsession_id=", session_id, "\n");
}

absl::StatusOr<LeaderInfo> LeaderInfo::Parse(const std::string& bytes, const std::string& path) {
  LeaderInfo info;
  for (absl::string_view line : absl::StrSplit(bytes, '\n', absl::SkipEmpty())) {
    size_t eq = line.find('=');
    if (eq == absl::string_view::npos) continue;
    absl::string_view key = line.substr(0, eq), value = line.substr(eq + 1);
    if (key == "rpc_address") info.rpc_address = std::string(value);
    if (key == "rest_url") info.rest_url = std::string(value);
    if (key == "session_id") info.session_id = std::string(value);
  }
  if (info.rpc_address.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("ZooKeeper node '", path, "' does not hold a leader's address"));
  }
  return info;
}

// ---- LeaderElection ----

struct LeaderElection::Core {
  ZooKeeperClient* client;
  std::string latch_dir, info_path;
  LeaderInfo info;
  LeaderElectionCallbacks callbacks;
  std::string uuid = NewJobId();

  // Held for the whole of each step (a session event, a watch): steps never overlap, and the
  // destructor waits for the one under way.
  absl::Mutex step_mu;
  bool stopped ABSL_GUARDED_BY(step_mu) = false;

  // What the accessors read, apart from the steps (which may wait on ZooKeeper).
  mutable absl::Mutex view_mu;
  bool leader ABSL_GUARDED_BY(view_mu) = false;
  std::string leadership_id ABSL_GUARDED_BY(view_mu);
  std::string latch ABSL_GUARDED_BY(view_mu);  // full path of our latch node

  std::string Latch() const {
    absl::MutexLock lock(&view_mu);
    return latch;
  }
  void SetLatch(std::string l) {
    absl::MutexLock lock(&view_mu);
    latch = std::move(l);
  }
  bool Leads() const {
    absl::MutexLock lock(&view_mu);
    return leader;
  }

  // Decides, from the latch nodes, whether we lead; else watches our predecessor.
  void CheckLocked(const std::shared_ptr<Core>& self) ABSL_EXCLUSIVE_LOCKS_REQUIRED(step_mu) {
    for (int attempt = 0; attempt < 5; ++attempt) {
      auto children = client->Children(latch_dir);
      if (!children.ok()) return LogError("listing the contenders", children.status());
      std::string mine = Latch();
      if (mine.empty()) {
        // A create whose answer was lost may still have made our node: it carries our uuid.
        for (const std::string& c : *children) {
          if (c.find(uuid) != std::string::npos) mine = latch_dir + "/" + c;
        }
        if (mine.empty()) {
          auto created = client->Create(latch_dir + "/latch-" + uuid + "-", "",
                                        CreateMode::kEphemeralSequential);
          if (!created.ok()) return LogError("joining the election", created.status());
          mine = *created;
        }
        SetLatch(mine);
        continue;  // list again, with our node
      }
      std::sort(children->begin(), children->end(), [](const std::string& a, const std::string& b) {
        return SequenceOf(a) < SequenceOf(b);
      });
      std::string name = mine.substr(latch_dir.size() + 1);
      auto it = std::find(children->begin(), children->end(), name);
      if (it == children->end()) {  // our node is gone (a session that ended): join again
        SetLatch("");
        RevokeLocked();
        continue;
      }
      if (it == children->begin()) {
        if (!Leads()) GrantLocked();
        return;
      }
      // Not first. Leadership we held cannot be ours any more (not expected: nodes before ours
      // are never created later).
      RevokeLocked();
      std::string predecessor = latch_dir + "/" + *(it - 1);
      std::weak_ptr<Core> weak = self;
      auto exists = client->Exists(predecessor, [weak](const WatchEvent&) { Step(weak); });
      if (!exists.ok()) return LogError("watching " + predecessor, exists.status());
      if (*exists) return;  // wait for it to go
    }
  }

  void GrantLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(step_mu) {
    std::string id = NewJobId();
    {
      absl::MutexLock lock(&view_mu);
      leader = true;
      leadership_id = id;
    }
    std::optional<LeaderInfo> chosen;
    if (callbacks.grant) chosen = callbacks.grant(id);
    LeaderInfo published = chosen ? *chosen : info;
    published.session_id = id;
    // Ephemeral: it goes with our session, at the same moment as our latch node.
    auto created = client->Create(info_path, published.Serialize(), CreateMode::kEphemeral);
    absl::Status s = created.status();
    if (absl::IsAlreadyExists(s)) s = client->Set(info_path, published.Serialize());
    if (!s.ok()) LogError("publishing the leader's address", s);
  }

  void RevokeLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(step_mu) {
    {
      absl::MutexLock lock(&view_mu);
      if (!leader) return;
      leader = false;
      leadership_id.clear();
    }
    if (callbacks.revoke) callbacks.revoke();
  }

  void OnSession(const std::shared_ptr<Core>& self, SessionState state)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(step_mu) {
    switch (state) {
      case SessionState::kSuspended:
        // The connection is lost but the session may live on. We step down now, not when the
        // session expires: the server expires it a session timeout after it last heard from us,
        // and only then deletes our latch node and lets another contender lead; the client
        // notices the lost connection sooner (after about two thirds of the timeout without an
        // answer). Waiting for the expiry, which a client only learns once it reaches a server
        // again, would let a partitioned leader keep acting while another one is elected. If
        // the connection comes back within the session, our node is still there and we lead
        // again under a new leadership id.
        RevokeLocked();
        return;
      case SessionState::kExpired:
        RevokeLocked();
        SetLatch("");  // the server deleted it with the session
        return;
      case SessionState::kClosed:
        RevokeLocked();
        return;
      case SessionState::kConnected:
        CheckLocked(self);
        return;
      case SessionState::kConnecting:
        return;
    }
  }

  static void Step(const std::weak_ptr<Core>& weak) {
    std::shared_ptr<Core> self = weak.lock();
    if (!self) return;
    absl::MutexLock lock(&self->step_mu);
    if (self->stopped) return;
    self->CheckLocked(self);
  }
};

absl::StatusOr<std::unique_ptr<LeaderElection>> LeaderElection::Start(
    ZooKeeperClient* client, std::string path, LeaderInfo info, LeaderElectionCallbacks callbacks) {
  auto core = std::make_shared<Core>();
  core->client = client;
  core->latch_dir = path + "/latch";
  core->info_path = path + "/connection_info";
  core->info = std::move(info);
  core->callbacks = std::move(callbacks);
  if (absl::Status s = client->CreateParents(core->latch_dir); !s.ok()) return s;
  std::unique_ptr<LeaderElection> election(new LeaderElection(core));
  std::weak_ptr<Core> weak = core;
  election->listener_id_ = client->AddSessionListener([weak](SessionState state) {
    std::shared_ptr<Core> self = weak.lock();
    if (!self) return;
    absl::MutexLock lock(&self->step_mu);
    if (self->stopped) return;
    self->OnSession(self, state);
  });
  // The first decision, on the event thread like every later one.
  client->Post([weak] { Core::Step(weak); });
  return election;
}

LeaderElection::~LeaderElection() {
  core_->client->RemoveSessionListener(listener_id_);
  absl::MutexLock lock(&core_->step_mu);
  core_->stopped = true;
  if (core_->Leads()) {
    // Withdraw our address first, so nobody is sent to a contender that left.
    auto data = core_->client->Get(core_->info_path);
    std::string id = leadership_id();
    if (data.ok()) {
      auto published = LeaderInfo::Parse(*data, core_->info_path);
      if (published.ok() && published->session_id == id) {
        (void)core_->client->Delete(core_->info_path);
      }
    }
    core_->RevokeLocked();
  }
  std::string latch = core_->Latch();
  if (!latch.empty()) (void)core_->client->Delete(latch);
  core_->SetLatch("");
}

bool LeaderElection::HasLeadership() const { return core_->Leads(); }

std::string LeaderElection::leadership_id() const {
  absl::MutexLock lock(&core_->view_mu);
  return core_->leadership_id;
}

std::string LeaderElection::latch_node() const { return core_->Latch(); }

// ---- LeaderRetriever ----

struct LeaderRetriever::Core {
  ZooKeeperClient* client;
  std::string info_path;
  std::function<void(const std::optional<LeaderInfo>&)> on_change;

  absl::Mutex step_mu;
  bool stopped ABSL_GUARDED_BY(step_mu) = false;
  int64_t read_in_session ABSL_GUARDED_BY(step_mu) = -1;  // the session whose watch is set

  mutable absl::Mutex view_mu;
  std::optional<LeaderInfo> leader ABSL_GUARDED_BY(view_mu);
  bool HasLeaderLocked() const ABSL_SHARED_LOCKS_REQUIRED(view_mu) { return leader.has_value(); }

  // Reads the published leader and sets a watch for its next change.
  void RefreshLocked(const std::shared_ptr<Core>& self) ABSL_EXCLUSIVE_LOCKS_REQUIRED(step_mu) {
    std::weak_ptr<Core> weak = self;
    auto watch = [weak](const WatchEvent&) { Step(weak); };
    read_in_session = client->session_id();
    for (int attempt = 0; attempt < 5; ++attempt) {
      auto data = client->Get(info_path, watch);
      std::optional<LeaderInfo> now;
      if (data.ok()) {
        auto parsed = LeaderInfo::Parse(*data, info_path);
        if (!parsed.ok()) {
          LogError("reading the leader", parsed.status());
        } else {
          now = *parsed;
        }
      } else if (absl::IsNotFound(data.status())) {
        auto exists = client->Exists(info_path, watch);
        if (!exists.ok()) return LogError("watching " + info_path, exists.status());
        if (*exists) continue;  // published meanwhile
      } else {
        return LogError("reading the leader", data.status());
      }
      Publish(now);
      return;
    }
  }

  void Publish(const std::optional<LeaderInfo>& now) {
    {
      absl::MutexLock lock(&view_mu);
      if (leader == now) return;
      leader = now;
    }
    if (on_change) on_change(now);
  }

  static void Step(const std::weak_ptr<Core>& weak) {
    std::shared_ptr<Core> self = weak.lock();
    if (!self) return;
    absl::MutexLock lock(&self->step_mu);
    if (self->stopped) return;
    self->RefreshLocked(self);
  }
};

absl::StatusOr<std::unique_ptr<LeaderRetriever>> LeaderRetriever::Start(
    ZooKeeperClient* client, std::string path,
    std::function<void(const std::optional<LeaderInfo>&)> on_change) {
  auto core = std::make_shared<Core>();
  core->client = client;
  core->info_path = path + "/connection_info";
  core->on_change = std::move(on_change);
  std::unique_ptr<LeaderRetriever> retriever(new LeaderRetriever(core));
  std::weak_ptr<Core> weak = core;
  retriever->listener_id_ = client->AddSessionListener([weak](SessionState state) {
    std::shared_ptr<Core> self = weak.lock();
    if (!self) return;
    absl::MutexLock lock(&self->step_mu);
    if (self->stopped || state != SessionState::kConnected) return;
    // Within one session ZooKeeper keeps our watch across reconnections (and fires it for what
    // changed meanwhile); a new session after an expiry has none: read and watch again.
    if (self->client->session_id() != self->read_in_session) self->RefreshLocked(self);
  });
  client->Post([weak] { Core::Step(weak); });
  return retriever;
}

LeaderRetriever::~LeaderRetriever() {
  core_->client->RemoveSessionListener(listener_id_);
  absl::MutexLock lock(&core_->step_mu);
  core_->stopped = true;
}

std::optional<LeaderInfo> LeaderRetriever::leader() const {
  absl::MutexLock lock(&core_->view_mu);
  return core_->leader;
}

absl::StatusOr<LeaderInfo> LeaderRetriever::WaitForLeader(int64_t timeout_ms) const {
  absl::MutexLock lock(&core_->view_mu);
  if (!core_->view_mu.AwaitWithTimeout(absl::Condition(core_.get(), &Core::HasLeaderLocked),
                                       absl::Milliseconds(timeout_ms))) {
    return absl::UnavailableError(
        absl::StrCat("no leader published at ZooKeeper node '", core_->info_path, "' (quorum '",
                     core_->client->quorum(), "') within ", timeout_ms, " ms"));
  }
  return *core_->leader;
}

}  // namespace sluice::ha
