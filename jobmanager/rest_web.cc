// The dashboard: `/` is jobmanager/web/index.html, `/web/<file>` any file of jobmanager/web/,
// all embedded into the JobManager at build time (jobmanager/web_assets.h), so the page needs
// nothing but this server. A name that is not embedded is a 404.
#include "jobmanager/rest_util.h"
#include "jobmanager/web_assets.h"

namespace sluice {

const WebAssetFile* FindWebAsset(std::string_view name) {
  for (const WebAssetFile& f : WebAssetFiles()) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

std::string_view WebAssetContentType(std::string_view name) {
  static constexpr std::pair<std::string_view, std::string_view> kTypes[] = {
      {".html", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".ico", "image/x-icon"},
      {".json", "application/json"},
      {".txt", "text/plain; charset=utf-8"},
  };
  for (const auto& [ext, type] : kTypes) {
    if (name.size() > ext.size() && name.substr(name.size() - ext.size()) == ext) return type;
  }
  return "application/octet-stream";
}

namespace rest {
namespace {

void ServeAsset(HttpResponse& res, std::string_view name) {
  const WebAssetFile* f = FindWebAsset(name);
  if (f == nullptr) return ReplyError(res, 404, "no such dashboard file: " + std::string(name));
  res.status = 200;
  // The page asks again after a JobManager upgrade rather than running an old script.
  res.set_header("Cache-Control", "no-cache");
  res.set_content(std::string(f->body), std::string(WebAssetContentType(name)));
}

}  // namespace

void AddWebRoutes(HttpRoutes& s) {
  s.Get("/", [](const HttpRequest&, HttpResponse& res) { ServeAsset(res, "index.html"); });
  s.Get("/index.html",
        [](const HttpRequest&, HttpResponse& res) { ServeAsset(res, "index.html"); });
  s.Get(R"(/web/(.*))", [](const HttpRequest& req, HttpResponse& res) {
    ServeAsset(res, std::string(req.matches[1]));
  });
}

}  // namespace rest
}  // namespace sluice
