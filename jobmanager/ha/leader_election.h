// Leader election and leader discovery on ZooKeeper, for the JobManagers of one cluster.
//
// Nodes under an election path P (the JobManager's: <cluster path>/leader/jobmanager):
//   P/latch/latch-<contender uuid>-<sequence>  one ephemeral sequential node per contender; the
//                                              contender whose node has the lowest sequence leads
//   P/connection_info                          ephemeral, written by the leader: its LeaderInfo
// A contender that does not lead watches only the node just before its own (no herd of watches
// when the leader changes). The uuid in the name lets a contender find its own node after a
// create whose answer was lost with the connection.
//
// Threads: both classes do their work on the client's event thread (watch and session
// callbacks); their grant/revoke/change callbacks run there too, one at a time, and must not
// destroy the object that calls them.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "jobmanager/ha/zookeeper_client.h"

namespace sluice::ha {

// What the leader publishes: where to reach it, and the leadership it holds (a new id at every
// grant, so a message from an earlier term can be told apart).
struct LeaderInfo {
  std::string rpc_address;  // host:port of the JobManager's gRPC service
  std::string rest_url;     // http://host:port, or "" without a REST server
  std::string session_id;   // the leadership's id, set by the election
  std::string Serialize() const;
  // InvalidArgument naming `path` when the bytes are not a serialized LeaderInfo.
  static absl::StatusOr<LeaderInfo> Parse(const std::string& bytes, const std::string& path);
  bool operator==(const LeaderInfo& o) const {
    return rpc_address == o.rpc_address && rest_url == o.rest_url && session_id == o.session_id;
  }
};

// The election path of a cluster's JobManagers: <cluster path>/leader/jobmanager.
std::string JobManagerLeaderPath(const std::string& cluster_path);

struct LeaderElectionCallbacks {
  // This contender now leads, under the given leadership id. Called before the contender's
  // address is published, so it is ready when followers find it; returns the address to publish
  // when it is known only now (a port bound on becoming leader), else nullopt for the one given
  // to Start.
  std::function<std::optional<LeaderInfo>(const std::string& leadership_id)> grant;
  // This contender no longer leads: it must stop acting as leader at once.
  std::function<void()> revoke;
};

class LeaderElection {
 public:
  // Joins the election at `path` (creating its nodes as needed) as a contender reachable at
  // `info` (its session_id is ignored). `client` must outlive the election. The first decision
  // comes later, on the event thread. Error when the path cannot be created (naming it and the
  // quorum).
  static absl::StatusOr<std::unique_ptr<LeaderElection>> Start(ZooKeeperClient* client,
                                                               std::string path, LeaderInfo info,
                                                               LeaderElectionCallbacks callbacks);
  // Leaves the election: revokes leadership if held (calling revoke), deletes this contender's
  // address publication and latch node, so another contender leads at once. Must not be called
  // from one of the callbacks.
  ~LeaderElection();
  LeaderElection(const LeaderElection&) = delete;
  LeaderElection& operator=(const LeaderElection&) = delete;

  // Whether this contender leads now, and under which id ("" when not).
  bool HasLeadership() const;
  std::string leadership_id() const;
  // This contender's latch node ("" while it has none).
  std::string latch_node() const;

 private:
  struct Core;
  explicit LeaderElection(std::shared_ptr<Core> core) : core_(std::move(core)) {}
  std::shared_ptr<Core> core_;
  int listener_id_ = 0;
};

// Follows the leader published at an election path.
class LeaderRetriever {
 public:
  // `on_change` (may be empty) is called on the event thread with each new leader, or nullopt
  // when none is published. `client` must outlive the retriever.
  static absl::StatusOr<std::unique_ptr<LeaderRetriever>> Start(
      ZooKeeperClient* client, std::string path,
      std::function<void(const std::optional<LeaderInfo>&)> on_change = nullptr);
  // Stops following; no callback runs after it returns. Not from the callback.
  ~LeaderRetriever();
  LeaderRetriever(const LeaderRetriever&) = delete;
  LeaderRetriever& operator=(const LeaderRetriever&) = delete;

  // The leader as last read (nullopt when none).
  std::optional<LeaderInfo> leader() const;
  // Waits up to `timeout_ms` for a published leader. Unavailable naming the path and the quorum
  // when there is none by then.
  absl::StatusOr<LeaderInfo> WaitForLeader(int64_t timeout_ms) const;

 private:
  struct Core;
  explicit LeaderRetriever(std::shared_ptr<Core> core) : core_(std::move(core)) {}
  std::shared_ptr<Core> core_;
  int listener_id_ = 0;
};

}  // namespace sluice::ha
