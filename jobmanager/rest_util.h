// What the REST server's route files share: JSON replies with Flink's error shape, the path
// patterns, and the declarations of each file's routes.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/http_routes.h"
#include "jobmanager/rest_server.h"

namespace sluice::rest {

using nlohmann::json;

// A job id in a path: 32 hexadecimal digits (anything else is no route: 404).
#define SLUICE_REST_JOB_ID "([0-9a-f]{32})"

void Reply(HttpResponse& res, int status, const json& body);
// 404 for NotFound, 400 for InvalidArgument, 409 for FailedPrecondition, 403 for
// PermissionDenied, 413 for ResourceExhausted, 503 for Unavailable, 500 otherwise; the message in
// Flink's {"errors": [message]}.
void ReplyError(HttpResponse& res, const absl::Status& s);
void ReplyError(HttpResponse& res, int status, const std::string& message);

// A request body as a JSON object (an empty body is an empty object); InvalidArgument saying
// that it is not JSON, or not an object, otherwise.
absl::StatusOr<json> ParseJsonObject(const std::string& body);

// Milliseconds since the epoch.
int64_t NowMs();

void AddClusterRoutes(HttpRoutes& s, const RestContext& ctx);
void AddJobRoutes(HttpRoutes& s, const RestContext& ctx);
void AddMetricRoutes(HttpRoutes& s, const RestContext& ctx);
void AddCheckpointRoutes(HttpRoutes& s, const RestContext& ctx);
void AddLogRoutes(HttpRoutes& s, const RestContext& ctx);
void AddSavepointRoutes(HttpRoutes& s, const RestContext& ctx);
// /jobs/:id/rescaling and /jobs/:id/resource-requirements (rest_rescale.cc).
void AddRescaleRoutes(HttpRoutes& s, const RestContext& ctx);
// /jars/* (submission over REST), /jobs/:id/status and /jobs/:id/execution-result
// (rest_jars.cc).
void AddJarRoutes(HttpRoutes& s, const RestContext& ctx);
// The dashboard's files: `/` and `/web/<file>` (rest_web.cc).
void AddWebRoutes(HttpRoutes& s);

}  // namespace sluice::rest

namespace sluice::rest {

// A vertex id in a path: its index in the job graph.
#define SLUICE_REST_VERTEX_ID "([0-9]{1,9})"

// The job `job_id` with its tasks and graph, and vertex `vertex` of it: NotFound naming what is
// unknown.
absl::Status FindVertex(const RestContext& ctx, const std::string& job_id,
                        const std::string& vertex, proto::JobStatus* job, int* vertex_id);

// Flink's aggregate IO figures of a vertex (read-records, write-bytes, ...) from its subtasks'
// metrics; *-complete when every subtask's figures are final.
json VertexIoMetrics(const RestContext& ctx, const proto::JobStatus& job, int vertex_id);
// Flink's plan of a job graph: one node per vertex (id, parallelism, description) with its inputs.
json PlanJson(const proto::JobGraph& graph, const std::string& job_id, const std::string& name);

}  // namespace sluice::rest
