// sluice-jobmanager: the JobManager daemon. Runs until SIGTERM or SIGINT.
//
// With high-availability.type: zookeeper it first contends for leadership: a standby holds no
// RPC port, and its REST port only redirects to the leader's REST API (307; 503 while none
// leads); the JobManager (Dispatcher, gRPC, REST) starts when leadership is granted, and its
// address is then published for TaskManagers and clients, and the jobs kept in ZooKeeper and
// high-availability.storageDir are recovered. Losing leadership (the ZooKeeper connection or
// session) stops that JobManager at once, so it does not act beside a new leader (its writes to
// ZooKeeper fail from then on anyway); the process goes back to being a standby and contends
// again.
#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/http_server.h"
#include "common/internal_tls.h"
#include "common/process.h"
#include "jobmanager/ha/ha_options.h"
#include "jobmanager/ha/ha_services.h"
#include "jobmanager/ha/leader_election.h"
#include "jobmanager/ha/zookeeper_ha_services.h"
#include "jobmanager/job_manager.h"
#include "jobmanager/rest_util.h"
#include "spdlog/spdlog.h"

namespace {

// Starts the JobManager on the first port of the HA range it can bind (any free one for 0).
absl::StatusOr<std::unique_ptr<sluice::JobManager>> StartOnHaPort(
    const sluice::Configuration& conf, const sluice::ha::HaOptions& ha,
    sluice::HighAvailabilityServices* services) {
  absl::Status last;
  for (int port = ha.first_port; port <= ha.last_port; ++port) {
    sluice::Configuration c = conf;
    if (absl::Status s = c.Set("jobmanager.rpc.port", std::to_string(port)); !s.ok()) return s;
    auto jm = sluice::JobManager::Start(c, services, /*recover=*/false);
    if (jm.ok()) return jm;
    last = jm.status();
  }
  return absl::UnavailableError(absl::StrCat("no port of high-availability.jobmanager.port ",
                                             ha.first_port, "-", ha.last_port,
                                             " could be used: ", last.message()));
}

int RunHighlyAvailable(const sluice::Configuration& conf, const sluice::ha::HaOptions& ha) {
  if (absl::Status s = sluice::ha::CheckStorageDir(ha); !s.ok()) {
    std::fprintf(stderr, "sluice-jobmanager: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  auto zk = sluice::ha::ConnectToQuorum(ha);
  if (!zk.ok()) {
    std::fprintf(stderr, "sluice-jobmanager: %s\n", std::string(zk.status().message()).c_str());
    return 1;
  }
  std::string path = sluice::ha::JobManagerLeaderPath(ha.cluster_path);
  auto retriever = sluice::ha::LeaderRetriever::Start(zk->get(), path);
  if (!retriever.ok()) {
    std::fprintf(stderr, "sluice-jobmanager: %s\n",
                 std::string(retriever.status().message()).c_str());
    return 1;
  }
  auto services = sluice::ha::ZooKeeperHaServices::Create(zk->get(), ha);
  if (!services.ok()) {
    std::fprintf(stderr, "sluice-jobmanager: %s\n",
                 std::string(services.status().message()).c_str());
    return 1;
  }
  // The standby's REST port sends every request to the leader's REST API.
  std::unique_ptr<sluice::HttpServer> standby_rest;
  int rest_port = static_cast<int>(conf.GetInt("rest.port"));
  sluice::ha::LeaderRetriever* leader = retriever->get();
  // The REST URL this process published while it led: after stepping down it may still be
  // published (until its session ends), and must not be redirected to.
  absl::Mutex own_mu;
  std::string own_rest_url;
  auto redirect = [leader, path, &ha, &own_mu, &own_rest_url](const sluice::HttpRequest& req,
                                                              sluice::HttpResponse& res) {
    auto l = leader->leader();
    bool own;
    {
      absl::MutexLock lock(&own_mu);
      own = l && l->rest_url == own_rest_url;
    }
    if (l && !l->rest_url.empty() && !own) {
      res.set_redirect(l->rest_url + req.target, 307);
      return;
    }
    res.status = 503;
    res.set_content(absl::StrCat("{\"errors\": [\"this JobManager is a standby and no leader's "
                                 "REST address is published at ZooKeeper node ",
                                 path, "/connection_info (quorum ", ha.quorum, ")\"]}"),
                    "application/json");
  };
  // A bad token file is found now, not when this JobManager is first elected.
  if (auto token = sluice::ReadRestAuthToken(conf); !token.ok()) {
    std::fprintf(stderr, "sluice-jobmanager: %s\n", std::string(token.status().message()).c_str());
    return 1;
  }
  auto start_standby_rest = [&]() -> absl::Status {
    if (rest_port < 0) return absl::OkStatus();
    sluice::HttpServerOptions o;
    o.what = "standby REST server";
    o.host = conf.GetString("rest.bind-address");
    o.host_key = "rest.bind-address";
    o.port_key = "rest.port";
    o.first_port = o.last_port = rest_port;
    sluice::ApplyRestServerLimits(conf, &o);
    if (absl::Status s = sluice::ApplyRestTls(conf, &o); !s.ok()) return s;
    o.max_body_bytes = static_cast<size_t>(conf.GetBytes("web.upload.max-size"));
    o.max_body_bytes_in_flight = std::max<size_t>(4 * o.max_body_bytes, 64 << 20);  // as REST
    o.parse_forms = false;  // bodies are only redirected
    sluice::HttpRoutes routes;
    routes.Get(".*", redirect);
    routes.Post(".*", redirect);
    routes.Put(".*", redirect);
    routes.Patch(".*", redirect);
    routes.Delete(".*", redirect);
    auto listener = sluice::HttpServer::Start(o, std::move(routes));
    if (!listener.ok()) return listener.status();
    standby_rest = std::move(*listener);
    spdlog::info("standby REST at {}://{}:{}/ redirects to the leader", o.tls ? "https" : "http",
                 o.host, standby_rest->port());
    return absl::OkStatus();
  };
  if (absl::Status s = start_standby_rest(); !s.ok()) {
    std::fprintf(stderr, "sluice-jobmanager: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  std::unique_ptr<sluice::JobManager> jm;  // written on the election's thread, read after it
  std::atomic<bool> stopping{false};
  sluice::ha::LeaderElectionCallbacks callbacks;
  callbacks.grant = [&](const std::string& id) -> std::optional<sluice::ha::LeaderInfo> {
    spdlog::info("leadership granted (id {}); starting the JobManager", id);
    if (standby_rest) standby_rest->Stop();  // frees the REST port for the leader's server
    auto started = StartOnHaPort(conf, ha, services->get());
    // The jobs kept for the cluster, before the address is published; a ZooKeeper that just came
    // back may need a moment.
    absl::Status recovered = started.ok() ? absl::UnknownError("") : started.status();
    for (int attempt = 0; started.ok() && attempt < 5; ++attempt) {
      recovered = (*started)->RecoverJobs();
      if (recovered.ok()) break;
      spdlog::warn("cannot recover the cluster's jobs yet: {}", std::string(recovered.message()));
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
    if (!recovered.ok()) {
      spdlog::critical("cannot act as leader: {}", std::string(recovered.message()));
      if (started.ok()) (*started)->Shutdown();
      std::fflush(nullptr);
      // Another contender leads once this process's session has ended (a session timeout).
      std::_Exit(1);
    }
    jm = std::move(*started);
    sluice::ha::LeaderInfo info;
    info.rpc_address = jm->address();
    if (jm->rest_port() >= 0) {
      info.rest_url =
          absl::StrCat(conf.GetBool("security.ssl.rest.enabled") ? "https://" : "http://",
                       conf.GetString("rest.bind-address"), ":", jm->rest_port());
    }
    {
      absl::MutexLock lock(&own_mu);
      own_rest_url = info.rest_url;
    }
    spdlog::info("JobManager leads at {} (REST {})", info.rpc_address, info.rest_url);
    return info;
  };
  callbacks.revoke = [&] {
    // Also when stopping: the JobManager ends before the latch goes and a standby leads.
    if (!stopping) {
      spdlog::error(
          "leadership lost (ZooKeeper connection lost or session expired): stopping the "
          "JobManager; its jobs go on under the next leader, which may be this process again");
    }
    if (jm) jm->Shutdown();
    jm.reset();
    if (stopping) return;
    if (absl::Status s = start_standby_rest(); !s.ok()) {
      spdlog::warn("the standby REST server did not start again: {}", std::string(s.message()));
    }
  };
  auto election =
      sluice::ha::LeaderElection::Start(zk->get(), path, sluice::ha::LeaderInfo{}, callbacks);
  if (!election.ok()) {
    std::fprintf(stderr, "sluice-jobmanager: %s\n",
                 std::string(election.status().message()).c_str());
    return 1;
  }
  spdlog::info("JobManager contending for leadership at ZooKeeper {} node {} (session {} ms)",
               ha.quorum, path, (*zk)->negotiated_session_timeout_ms());
  int sig = sluice::WaitForTerminationSignal();
  spdlog::info("signal {} received, stopping", sig);
  stopping = true;
  // Stops our JobManager (revoke), then withdraws our address and latch: a standby takes over at
  // once.
  election->reset();
  if (standby_rest) standby_rest->Stop();
  retriever->reset();
  if (jm) jm->Shutdown();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Sluice JobManager: schedules jobs onto TaskManagers"};
  std::string config_dir;
  std::vector<std::string> dynamic;
  app.add_option("--config-dir,-c", config_dir,
                 "folder holding config.yaml (default: $SLUICE_CONF_DIR)");
  app.add_option("-D", dynamic, "override a configuration key: -D key=value");
  CLI11_PARSE(app, argc, argv);

  sluice::BlockTerminationSignals();
  sluice::RaiseOpenFileLimit();
  sluice::InitLogging("jobmanager");
  auto conf = sluice::LoadConfiguration(config_dir, dynamic);
  if (!conf.ok()) {
    std::fprintf(stderr, "sluice-jobmanager: %s\n", std::string(conf.status().message()).c_str());
    return 2;
  }
  if (absl::Status s = sluice::ConfigureInternalTls(*conf); !s.ok()) {
    std::fprintf(stderr, "sluice-jobmanager: %s\n", std::string(s.message()).c_str());
    return 2;
  }
  sluice::LogGrpcErrors();
  if (absl::Status s =
          sluice::CheckStartupSecurity(*conf, {"jobmanager.bind-host"}, "rest.bind-address");
      !s.ok()) {
    std::fprintf(stderr, "sluice-jobmanager: %s\n", std::string(s.message()).c_str());
    return 2;
  }
  auto ha = sluice::ha::HaOptions::FromConfiguration(*conf);
  if (!ha.ok()) {
    std::fprintf(stderr, "sluice-jobmanager: %s\n", std::string(ha.status().message()).c_str());
    return 2;
  }
  if (ha->enabled) return RunHighlyAvailable(*conf, *ha);
  auto jm = sluice::JobManager::Start(*conf);
  if (!jm.ok()) {
    std::fprintf(stderr, "sluice-jobmanager: %s\n", std::string(jm.status().message()).c_str());
    return 1;
  }
  int sig = sluice::WaitForTerminationSignal();
  spdlog::info("signal {} received, stopping", sig);
  (*jm)->Shutdown();
  return 0;
}
