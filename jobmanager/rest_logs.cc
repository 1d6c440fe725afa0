// The daemons' log files, with Flink's paths:
//   /jobmanager/logs                 {"logs": [{"name", "size", "mtime"}]}
//   /jobmanager/logs/:name           one of them (text/plain)
//   /jobmanager/log, /stdout         the current log (standard error) and standard output files
//   /taskmanagers/:id/logs, /logs/:name, /log, /stdout   the same of a TaskManager, which the
//                                    JobManager asks for them (TaskExecutorService.ListLogs and
//                                    ReadLog)
// A daemon serves only its own files (common/log_files.h): a name must equal a listed name
// exactly; anything else is a 404 (400 when it could never be a file's name, e.g. holds a '/')
// with Flink's {"errors": [...]} body. At most the last 8 MiB of a file is served; the headers
// X-Log-File-Size (the whole file's size) and X-Log-File-Offset (where the body starts in it)
// tell when the body is only the end.
#include <string>

#include "absl/strings/str_cat.h"
#include "common/log_files.h"
#include "jobmanager/rest_util.h"
#include "proto/taskmanager.pb.h"

namespace sluice::rest {
namespace {

// A TaskManager id in a path, as /taskmanagers/:id has it.
#define SLUICE_REST_TM_ID "([A-Za-z0-9_.-]+)"

json LogsJson(const std::vector<LogFileInfo>& files) {
  json logs = json::array();
  for (const LogFileInfo& f : files) {
    logs.push_back({{"name", f.name}, {"size", f.size}, {"mtime", f.mtime_ms}});
  }
  return json{{"logs", logs}};
}

void ReplyFile(HttpResponse& res, const std::string& data, int64_t size, int64_t offset) {
  res.status = 200;
  res.set_header("X-Log-File-Size", std::to_string(size));
  res.set_header("X-Log-File-Offset", std::to_string(offset));
  res.set_content(data, "text/plain; charset=utf-8");
}

void ReplyTail(HttpResponse& res, const absl::StatusOr<LogFileTail>& tail) {
  if (!tail.ok()) return ReplyError(res, tail.status());
  ReplyFile(res, tail->data, tail->size, tail->offset);
}

// The gateway of TaskManager `tm_id`, or null after a 404 naming it.
std::shared_ptr<TaskManagerGateway> TaskManager(const RestContext& ctx, const std::string& tm_id,
                                                HttpResponse& res) {
  std::shared_ptr<TaskManagerGateway> g = ctx.task_manager ? ctx.task_manager(tm_id) : nullptr;
  if (!g) ReplyError(res, 404, "no TaskManager " + tm_id);
  return g;
}

void ReplyTaskManagerFile(const RestContext& ctx, const HttpRequest& req, HttpResponse& res,
                          proto::ReadLogRequest::Which which) {
  auto g = TaskManager(ctx, req.matches[1], res);
  if (!g) return;
  if (which == proto::ReadLogRequest::NAMED) {
    // Refused here too: what is sent on must be a well-formed name.
    if (absl::Status s = CheckLogFileName(std::string(req.matches[2])); !s.ok()) {
      return ReplyError(res, s);
    }
  }
  proto::ReadLogRequest read;
  read.set_which(which);
  if (which == proto::ReadLogRequest::NAMED) read.set_name(req.matches[2]);
  read.set_max_bytes(kMaxLogBytesServed);
  absl::StatusOr<proto::LogFileTail> tail = g->ReadLog(read);
  if (!tail.ok()) {
    return ReplyError(res, absl::Status(tail.status().code(),
                                        absl::StrCat("TaskManager ", std::string(req.matches[1]),
                                                     ": ", tail.status().message())));
  }
  ReplyFile(res, tail->data(), tail->size(), tail->offset());
}

}  // namespace

void AddLogRoutes(HttpRoutes& s, const RestContext& ctx) {
  const RestContext* c = &ctx;

  s.Get("/jobmanager/logs", [](const HttpRequest&, HttpResponse& res) {
    Reply(res, 200, LogsJson(DaemonLogFiles().List()));
  });
  s.Get("/jobmanager/log", [](const HttpRequest&, HttpResponse& res) {
    ReplyTail(res, DaemonLogFiles().ReadCurrentLog());
  });
  s.Get("/jobmanager/stdout", [](const HttpRequest&, HttpResponse& res) {
    ReplyTail(res, DaemonLogFiles().ReadCurrentOut());
  });
  // Any rest of the path is taken as the name, and must be a listed file's.
  s.Get("/jobmanager/logs/(.*)", [](const HttpRequest& req, HttpResponse& res) {
    ReplyTail(res, DaemonLogFiles().Read(std::string(req.matches[1])));
  });

  s.Get("/taskmanagers/" SLUICE_REST_TM_ID "/logs", [c](const HttpRequest& req, HttpResponse& res) {
    auto g = TaskManager(*c, req.matches[1], res);
    if (!g) return;
    absl::StatusOr<proto::LogList> list = g->ListLogs();
    if (!list.ok()) return ReplyError(res, list.status());
    std::vector<LogFileInfo> files;
    for (const auto& f : list->files()) files.push_back({f.name(), f.size(), f.mtime_ms()});
    Reply(res, 200, LogsJson(files));
  });
  s.Get("/taskmanagers/" SLUICE_REST_TM_ID "/log", [c](const HttpRequest& req, HttpResponse& res) {
    ReplyTaskManagerFile(*c, req, res, proto::ReadLogRequest::CURRENT_LOG);
  });
  s.Get("/taskmanagers/" SLUICE_REST_TM_ID "/stdout",
        [c](const HttpRequest& req, HttpResponse& res) {
          ReplyTaskManagerFile(*c, req, res, proto::ReadLogRequest::CURRENT_STDOUT);
        });
  s.Get("/taskmanagers/" SLUICE_REST_TM_ID "/logs/(.*)",
        [c](const HttpRequest& req, HttpResponse& res) {
          ReplyTaskManagerFile(*c, req, res, proto::ReadLogRequest::NAMED);
        });
}

}  // namespace sluice::rest
