#include "jobmanager/rest_server.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <regex>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "jobmanager/jar_store.h"
#include "jobmanager/rest_util.h"

namespace sluice {
namespace rest {

void Reply(HttpResponse& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
}

void ReplyError(HttpResponse& res, int status, const std::string& message) {
  Reply(res, status, json{{"errors", json::array({message})}});
}

void ReplyError(HttpResponse& res, const absl::Status& s) {
  int status = 500;
  switch (s.code()) {
    case absl::StatusCode::kNotFound:
      status = 404;
      break;
    case absl::StatusCode::kInvalidArgument:
      status = 400;
      break;
    case absl::StatusCode::kFailedPrecondition:
      status = 409;
      break;
    case absl::StatusCode::kPermissionDenied:
      status = 403;
      break;
    case absl::StatusCode::kResourceExhausted:
      status = 413;
      break;
    case absl::StatusCode::kUnavailable:
      status = 503;
      break;
    default:
      break;
  }
  ReplyError(res, status, std::string(s.message()));
}

absl::StatusOr<json> ParseJsonObject(const std::string& body) {
  if (body.empty()) return json::object();
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::InvalidArgumentError("the request body is not JSON");
  if (!j.is_object()) return absl::InvalidArgumentError("the request body is not a JSON object");
  return j;
}

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

namespace {

// Only an upload carries a library; every other body is JSON of a few kilobytes.
constexpr size_t kMaxOtherBody = 1 << 20;

bool IsUpload(const std::string& method, std::string_view path) {
  return method == "POST" && (path == "/jars/upload" || path == "/v1/jars/upload");
}

// The dashboard's own files: the page must load to ask for the token.
bool IsDashboardFile(const HttpRequest& r) {
  return (r.method == "GET" || r.method == "HEAD") &&
         (r.path == "/" || r.path == "/index.html" || r.path.rfind("/web/", 0) == 0);
}

// Whether `req` carries the token. The SHA-256 digests are compared, in constant time, so that
// neither the token's bytes nor its length show in the time of a refusal.
bool HasToken(const HttpRequest& req, const std::string& token) {
  const std::string auth = req.get_header_value("Authorization");
  const absl::string_view kBearer = "Bearer ";
  if (!absl::StartsWithIgnoreCase(auth, kBearer)) return false;
  unsigned char given[SHA256_DIGEST_LENGTH], expected[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(auth.data()) + kBearer.size(),
         auth.size() - kBearer.size(), given);
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), expected);
  return CRYPTO_memcmp(given, expected, SHA256_DIGEST_LENGTH) == 0;
}

}  // namespace

// The routes of the REST API and dashboard.
void AddRoutes(HttpRoutes& s, const RestContext& ctx) {
  // Flink serves its API under /v1/ too: one route table serves both.
  s.set_pre_routing([](HttpRequest& r) {
    if (r.path == "/v1") {
      r.path = "/";
    } else if (r.path.rfind("/v1/", 0) == 0) {
      r.path = r.path.substr(3);
    }
  });
  if (!ctx.auth_token.empty()) {
    s.set_guard([c = &ctx](const HttpRequest& req, HttpResponse& res) {
      if (IsDashboardFile(req)) return true;
      // A plan is a GET, but builds the library's graph: it runs uploaded code.
      static const std::regex kRunsCode("/jars/[^/]+/plan");
      if (c->auth_changes_only && (req.method == "GET" || req.method == "HEAD") &&
          !std::regex_match(req.path, kRunsCode)) {
        return true;
      }
      if (HasToken(req, c->auth_token)) return true;
      res.set_header("WWW-Authenticate", "Bearer realm=\"sluice\"");
      ReplyError(res, 401,
                 req.get_header_value("Authorization").empty()
                     ? "this request needs the REST token (Authorization: Bearer <token>, "
                       "security.rest.auth.token-file)"
                     : "the REST token is wrong");
      return false;
    });
  }
  s.set_exception_handler([](const HttpRequest&, HttpResponse& res, std::exception_ptr ep) {
    std::string what = "internal error";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    ReplyError(res, 500, what);
  });

  AddWebRoutes(s);

  AddClusterRoutes(s, ctx);
  AddJobRoutes(s, ctx);
  AddMetricRoutes(s, ctx);
  AddCheckpointRoutes(s, ctx);
  AddLogRoutes(s, ctx);
  AddSavepointRoutes(s, ctx);
  AddRescaleRoutes(s, ctx);
  AddJarRoutes(s, ctx);

  s.set_error_handler([c = &ctx](const HttpRequest& req, HttpResponse& res) {
    switch (res.status) {
      case 404:
        ReplyError(res, 404, "no such resource: " + req.path);
        break;
      case 413:
        ReplyError(res, 413,
                   IsUpload(req.method, req.path)
                       ? absl::StrCat("the request body is larger than web.upload.max-size (",
                                      c->conf.GetString("web.upload.max-size"), ")")
                       : absl::StrCat(res.reason,
                                      " (1 MiB for any request but an upload, "
                                      "POST /jars/upload)"));
        break;
      case 431:
        ReplyError(res, 431, absl::StrCat(res.reason, " (rest.server.max-header-size)"));
        break;
      case 408:
        ReplyError(res, 408, absl::StrCat(res.reason, " (rest.server.read-timeout)"));
        break;
      default:
        ReplyError(res, res.status,
                   res.reason.empty() ? absl::StrCat("the request failed (HTTP ", res.status, ")")
                                      : res.reason);
    }
  });
}

}  // namespace rest

absl::StatusOr<std::unique_ptr<RestServer>> RestServer::Start(const RestContext& context,
                                                              const std::string& host, int port) {
  // The handlers keep a pointer to the server's own copy of the context.
  auto ctx = std::make_unique<RestContext>(context);
  if (!ctx->jars && ctx->conf.GetBool("web.submit.enable")) {
    std::string dir = ctx->conf.GetString("web.upload.dir");
    if (dir.empty()) {
      std::error_code ec;
      // Per user: the folder must be the JobManager's own (JarStore::Create).
      dir = (std::filesystem::temp_directory_path(ec) /
             ("sluice-web-upload-" + std::to_string(::geteuid())))
                .string();
    }
    ASSIGN_OR_RETURN(ctx->jars, JarStore::Create(dir));
  }
  HttpServerOptions o;
  o.what = "REST server";
  o.host = host;
  o.host_key = "rest.bind-address";
  o.port_key = "rest.port";
  o.first_port = o.last_port = port;
  ApplyRestServerLimits(ctx->conf, &o);
  RETURN_IF_ERROR(ApplyRestTls(ctx->conf, &o));
  if (ctx->auth_token.empty()) {
    ASSIGN_OR_RETURN(ctx->auth_token, ReadRestAuthToken(ctx->conf));
    ctx->auth_changes_only = ctx->conf.GetChoice("security.rest.auth.required-for") == "CHANGES";
  }
  // Request bodies: an uploaded library is the largest; four may be read at once.
  const size_t upload = static_cast<size_t>(ctx->conf.GetBytes("web.upload.max-size"));
  o.max_body_bytes = upload;
  o.body_limit = [upload](const std::string& method, const std::string& target) {
    const std::string path = PercentDecode(target.substr(0, target.find('?')), false);
    return rest::IsUpload(method, path) ? upload : std::min(upload, rest::kMaxOtherBody);
  };
  o.max_body_bytes_in_flight = std::max<size_t>(4 * upload, 64 << 20);
  HttpRoutes routes;
  AddRestRoutes(routes, *ctx);
  ASSIGN_OR_RETURN(auto server, HttpServer::Start(o, std::move(routes)));
  return std::unique_ptr<RestServer>(new RestServer(std::move(server), std::move(ctx)));
}

void AddRestRoutes(HttpRoutes& routes, const RestContext& context) {
  rest::AddRoutes(routes, context);
}

RestServer::~RestServer() { Stop(); }

void RestServer::Stop() { server_->Stop(); }

}  // namespace sluice
