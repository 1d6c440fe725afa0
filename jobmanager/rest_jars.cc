// Submission over REST, with Flink's paths and fields: /jars/upload, /jars, /jars/:jarid,
// /jars/:jarid/plan and /jars/:jarid/run, and what a submitter polls afterwards:
// /jobs/:jobid/status and /jobs/:jobid/execution-result.
//
// The library's graph is built in a child process (graph_builder.h), never in the JobManager;
// the run then goes through the gateway's UploadLibrary and SubmitJob, the calls the CLI's
// gRPC submission makes. With web.submit.enable false the jar routes answer 403.
#include <atomic>
#include <cctype>
#include <fstream>
#include <map>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/ids.h"
#include "common/job_graph.h"
#include "common/job_states.h"
#include "common/status_macros.h"
#include "jobmanager/graph_builder.h"
#include "jobmanager/jar_store.h"
#include "jobmanager/rest_util.h"

namespace sluice::rest {
namespace {

// Anything up to the next slash: the handler checks it (JarStore::Get), so that a malformed id
// gets a 400 that says why rather than a 404.
#define SLUICE_REST_JAR_ID "([^/]+)"

// What /plan and /run take, from the JSON body (Flink's fields) or the query (Flink's
// `programArg`, `parallelism`, `savepointPath`, `allowNonRestoredState`).
struct RunRequest {
  std::vector<std::string> args;
  int parallelism = 0;  // 0: parallelism.default
  std::string savepoint_path;
  bool allow_non_restored_state = false;
  std::map<std::string, std::string> config;
};

// Flink's splitting of `programArgs`: on white space, with single or double quotes keeping a
// part together (the quotes removed).
absl::StatusOr<std::vector<std::string>> SplitProgramArgs(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  bool in_token = false;
  char quote = 0;
  for (char ch : s) {
    if (quote) {
      if (ch == quote) {
        quote = 0;
      } else {
        cur += ch;
      }
    } else if (ch == '"' || ch == '\'') {
      quote = ch;
      in_token = true;
    } else if (std::isspace(static_cast<unsigned char>(ch))) {
      if (in_token) out.push_back(std::move(cur));
      cur.clear();
      in_token = false;
    } else {
      cur += ch;
      in_token = true;
    }
  }
  if (quote) return absl::InvalidArgumentError("'programArgs' has an unclosed quote");
  if (in_token) out.push_back(std::move(cur));
  return out;
}

absl::StatusOr<RunRequest> ParseRunRequest(const HttpRequest& req) {
  auto body = ParseJsonObject(req.body);
  if (!body.ok()) return body.status();
  json b = *body;
  // Query parameters where the body has nothing (Flink takes both).
  if (!b.contains("programArgsList") && req.has_param("programArg")) {
    json list = json::array();
    // Flink's list parameters: repeated, or comma-separated.
    auto [begin, end] = req.params.equal_range("programArg");
    for (auto it = begin; it != end; ++it) {
      for (absl::string_view a : absl::StrSplit(it->second, ',')) list.push_back(std::string(a));
    }
    b["programArgsList"] = list;
  }
  if (!b.contains("parallelism") && req.has_param("parallelism")) {
    int p = 0;
    if (!absl::SimpleAtoi(req.get_param_value("parallelism"), &p)) {
      return absl::InvalidArgumentError("the query parameter 'parallelism' must be an integer");
    }
    b["parallelism"] = p;
  }
  if (!b.contains("savepointPath") && req.has_param("savepointPath")) {
    b["savepointPath"] = req.get_param_value("savepointPath");
  }
  if (!b.contains("allowNonRestoredState") && req.has_param("allowNonRestoredState")) {
    b["allowNonRestoredState"] = req.get_param_value("allowNonRestoredState") == "true";
  }

  RunRequest r;
  const json& list = b.contains("programArgsList") ? b["programArgsList"] : json(nullptr);
  const json& line = b.contains("programArgs") ? b["programArgs"] : json(nullptr);
  if (!list.is_null()) {
    if (!list.is_array()) {
      return absl::InvalidArgumentError("'programArgsList' must be an array of strings");
    }
    for (const auto& a : list) {
      if (!a.is_string()) {
        return absl::InvalidArgumentError("'programArgsList' must be an array of strings");
      }
      r.args.push_back(a.get<std::string>());
    }
  }
  if (!line.is_null()) {
    if (!line.is_string()) return absl::InvalidArgumentError("'programArgs' must be a string");
    if (!list.is_null()) {
      return absl::InvalidArgumentError("give either 'programArgsList' or 'programArgs', not both");
    }
    ASSIGN_OR_RETURN(r.args, SplitProgramArgs(line.get<std::string>()));
  }
  if (b.contains("parallelism") && !b["parallelism"].is_null()) {
    const json& p = b["parallelism"];
    if (!p.is_number_integer() || p.get<int64_t>() < 1 || p.get<int64_t>() > 32768) {
      return absl::InvalidArgumentError("'parallelism' must be an integer from 1 to 32768");
    }
    r.parallelism = p.get<int>();
  }
  if (b.contains("savepointPath") && !b["savepointPath"].is_null()) {
    if (!b["savepointPath"].is_string()) {
      return absl::InvalidArgumentError("'savepointPath' must be a string");
    }
    r.savepoint_path = b["savepointPath"].get<std::string>();
    if (!r.savepoint_path.empty() && r.savepoint_path[0] != '/') {
      return absl::InvalidArgumentError(
          "'savepointPath' must be an absolute path (the savepoint's folder or _metadata file)");
    }
  }
  if (b.contains("allowNonRestoredState") && !b["allowNonRestoredState"].is_null()) {
    if (!b["allowNonRestoredState"].is_boolean()) {
      return absl::InvalidArgumentError("'allowNonRestoredState' must be true or false");
    }
    r.allow_non_restored_state = b["allowNonRestoredState"].get<bool>();
  }
  if (b.contains("flinkConfiguration") && !b["flinkConfiguration"].is_null()) {
    const json& conf = b["flinkConfiguration"];
    if (!conf.is_object()) {
      return absl::InvalidArgumentError("'flinkConfiguration' must be an object of key: value");
    }
    for (const auto& [k, v] : conf.items()) {
      if (v.is_string()) {
        r.config[k] = v.get<std::string>();
      } else if (v.is_number() || v.is_boolean()) {
        r.config[k] = v.dump();
      } else {
        return absl::InvalidArgumentError(absl::StrCat("'flinkConfiguration': the value of '", k,
                                                       "' must be a string, number or boolean"));
      }
    }
  }
  return r;
}

// Graph builds at once, in the whole process: each holds one of the HTTP server's few threads
// for up to web.submit.timeout, so libraries that hang must not take them all.
constexpr int kMaxConcurrentBuilds = 2;
std::atomic<int> builds_in_progress{0};

// Builds the graph of `jar` in a child process, as the CLI would with these settings.
// Unavailable when kMaxConcurrentBuilds are already running.
absl::StatusOr<proto::JobGraph> BuildGraph(const RestContext& ctx, const StoredJar& jar,
                                           const RunRequest& run) {
  if (builds_in_progress.fetch_add(1) >= kMaxConcurrentBuilds) {
    builds_in_progress.fetch_sub(1);
    return absl::UnavailableError(absl::StrCat(
        kMaxConcurrentBuilds, " job graphs are being built for other requests; try again shortly"));
  }
  struct Release {
    ~Release() { builds_in_progress.fetch_sub(1); }
  } release;
  GraphBuildRequest build;
  build.library = jar.path;
  build.args = run.args;
  build.parallelism = run.parallelism > 0
                          ? run.parallelism
                          : static_cast<int>(ctx.conf.GetInt("parallelism.default"));
  build.config["pipeline.max-parallelism"] =
      std::to_string(ctx.conf.GetInt("pipeline.max-parallelism"));
  for (const auto& [k, v] : run.config) build.config[k] = v;
  build.timeout = std::chrono::milliseconds(ctx.conf.GetDurationMs("web.submit.timeout"));
  build.work_dir = ctx.jars->dir() + "/.builds";
  return BuildGraphInChild(build);
}

absl::StatusOr<std::string> ReadLibrary(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return absl::NotFoundError("the uploaded library is gone: " + path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

absl::StatusOr<std::string> Run(const RestContext& ctx, const std::string& jar_id,
                                const HttpRequest& req) {
  ASSIGN_OR_RETURN(StoredJar jar, ctx.jars->Get(jar_id));
  ASSIGN_OR_RETURN(RunRequest run, ParseRunRequest(req));
  // The bytes first: a stored file changed since its upload is neither run nor handed on.
  ASSIGN_OR_RETURN(std::string bytes, ReadLibrary(jar.path));
  const std::string sha = Sha256Hex(bytes);
  if (jar.id.compare(0, sha.size(), sha) != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the stored library ", jar.path, " no longer has the bytes it was uploaded with"));
  }
  ASSIGN_OR_RETURN(proto::JobGraph graph, BuildGraph(ctx, jar, run));
  // As `sluice run`: a job that could never get its slots is refused, not queued (the adaptive
  // schedulers let it wait and run at a lower parallelism).
  const proto::ClusterOverview overview = ctx.gateway->GetOverview();
  const int needed = SlotsNeeded(graph);
  if (overview.scheduler() != "adaptive" && overview.scheduler() != "reactive" &&
      needed > overview.total_slots()) {
    return absl::InvalidArgumentError(
        absl::StrCat("job needs ", needed, " task slots but the cluster has only ",
                     overview.total_slots(), " (", overview.task_managers_size(),
                     " TaskManagers); lower the parallelism or add TaskManagers"));
  }
  ASSIGN_OR_RETURN(std::string uploaded, ctx.gateway->UploadLibrary(bytes));
  proto::SubmitJobRequest submit;
  *submit.mutable_graph() = std::move(graph);
  submit.set_library_sha256(uploaded);
  for (const auto& a : run.args) submit.add_args(a);
  for (const auto& [k, v] : run.config) (*submit.mutable_config())[k] = v;
  submit.set_restore_path(run.savepoint_path);
  submit.set_allow_non_restored_state(run.allow_non_restored_state);
  return ctx.gateway->SubmitJob(submit);
}

// Flink's application status of a job that ended.
const char* ApplicationStatus(proto::JobState state) {
  switch (state) {
    case proto::JOB_FINISHED:
      return "SUCCEEDED";
    case proto::JOB_FAILED:
      return "FAILED";
    case proto::JOB_CANCELED:
      return "CANCELED";
    default:
      return "UNKNOWN";
  }
}

}  // namespace

void AddJarRoutes(HttpRoutes& s, const RestContext& ctx) {
  const RestContext* c = &ctx;
  const bool enabled = ctx.jars != nullptr;
  auto disabled = [](const HttpRequest&, HttpResponse& res) {
    ReplyError(res, 403,
               "submitting jobs over the REST API is disabled on this cluster "
               "(web.submit.enable: false)");
  };
  if (!enabled) {
    s.Post("/jars/upload", disabled);
    s.Get("/jars", disabled);
    s.Delete("/jars/" SLUICE_REST_JAR_ID, disabled);
    s.Get("/jars/" SLUICE_REST_JAR_ID "/plan", disabled);
    s.Post("/jars/" SLUICE_REST_JAR_ID "/plan", disabled);
    s.Post("/jars/" SLUICE_REST_JAR_ID "/run", disabled);
  } else {
    s.Post("/jars/upload", [c](const HttpRequest& req, HttpResponse& res) {
      if (!req.has_file("jarfile")) {
        return ReplyError(res, 400,
                          "the upload needs a multipart/form-data field 'jarfile' holding the job "
                          "library (lib<job>.so)");
      }
      // By reference: the upload may be 100 MB, held once already.
      const HttpFormPart& file = req.files.find("jarfile")->second;
      auto jar = c->jars->Put(file.content, file.filename);
      if (!jar.ok()) return ReplyError(res, jar.status());
      // As Flink's: a path whose last component is the jar id (clients take that part).
      Reply(res, 200,
            json{{"filename", absl::StrCat(c->jars->dir(), "/", jar->id)}, {"status", "success"}});
    });

    s.Get("/jars", [c](const HttpRequest& req, HttpResponse& res) {
      json files = json::array();
      for (const StoredJar& jar : c->jars->List()) {
        json entry = json::array();
        if (jar.has_entry) {
          entry.push_back({{"name", "sluice_job_entry"}, {"description", nullptr}});
        }
        files.push_back(
            {{"id", jar.id}, {"name", jar.name}, {"uploaded", jar.uploaded_ms}, {"entry", entry}});
      }
      std::string host = req.get_header_value("Host");
      const char* scheme = c->conf.GetBool("security.ssl.rest.enabled") ? "https://" : "http://";
      Reply(res, 200, json{{"address", host.empty() ? "" : scheme + host}, {"files", files}});
    });

    s.Delete("/jars/" SLUICE_REST_JAR_ID, [c](const HttpRequest& req, HttpResponse& res) {
      absl::Status st = c->jars->Delete(req.matches[1]);
      if (!st.ok()) return ReplyError(res, st);
      Reply(res, 200, json::object());
    });

    auto plan = [c](const HttpRequest& req, HttpResponse& res) {
      auto jar = c->jars->Get(req.matches[1]);
      if (!jar.ok()) return ReplyError(res, jar.status());
      auto run = ParseRunRequest(req);
      if (!run.ok()) return ReplyError(res, run.status());
      auto built = BuildGraph(*c, *jar, *run);
      if (!built.ok()) return ReplyError(res, built.status());
      Reply(res, 200, json{{"plan", PlanJson(*built, "", built->name())}});
    };
    s.Get("/jars/" SLUICE_REST_JAR_ID "/plan", plan);
    s.Post("/jars/" SLUICE_REST_JAR_ID "/plan", plan);

    s.Post("/jars/" SLUICE_REST_JAR_ID "/run", [c](const HttpRequest& req, HttpResponse& res) {
      auto job_id = Run(*c, req.matches[1], req);
      if (!job_id.ok()) return ReplyError(res, job_id.status());
      Reply(res, 200, json{{"jobid", *job_id}});
    });
  }

  // Flink: the job's state alone.
  s.Get("/jobs/" SLUICE_REST_JOB_ID "/status", [c](const HttpRequest& req, HttpResponse& res) {
    auto job = c->gateway->GetJob(req.matches[1]);
    if (!job.ok()) return ReplyError(res, job.status());
    Reply(res, 200, json{{"status", JobStateName(job->state())}});
  });

  // Flink: IN_PROGRESS until the job has ended, then its result.
  s.Get("/jobs/" SLUICE_REST_JOB_ID "/execution-result", [c](const HttpRequest& req,
                                                             HttpResponse& res) {
    auto job = c->gateway->GetJob(req.matches[1]);
    if (!job.ok()) return ReplyError(res, job.status());
    if (!IsTerminalJobState(job->state())) {
      return Reply(res, 200, json{{"status", {{"id", "IN_PROGRESS"}}}});
    }
    json result = {
        {"id", job->job_id()},
        {"application-status", ApplicationStatus(job->state())},
        {"accumulator-results", json::object()},
        {"net-runtime", std::max<int64_t>(0, job->end_time_ms() - job->start_time_ms())}};
    if (job->state() == proto::JOB_FAILED) {
      result["failure-cause"] = {{"class", "sluice.JobExecutionException"},
                                 {"stack-trace", job->failure()},
                                 {"serialized-throwable", ""}};
    }
    Reply(res, 200, json{{"status", {{"id", "COMPLETED"}}}, {"job-execution-result", result}});
  });
}

}  // namespace sluice::rest
