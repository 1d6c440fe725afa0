// The checkpoint views: /jobs/:id/checkpoints.
#include "jobmanager/rest_util.h"

namespace sluice::rest {

void AddCheckpointRoutes(httplib::Server& s, const RestContext& ctx) {
  const RestContext* c = &ctx;
  // Flink: GET /jobs/:jobid/checkpoints (counts and the latest completed checkpoint).
  s.Get("/jobs/" SLUICE_REST_JOB_ID "/checkpoints", [c](const httplib::Request& req,
                                                        httplib::Response& res) {
    auto job = c->gateway->GetJob(req.matches[1]);
    if (!job.ok()) return ReplyError(res, job.status());
    const proto::JobStatus& st = *job;
    json latest = nullptr;
    if (st.last_checkpoint_id() > 0) {
      latest = json{{"id", st.last_checkpoint_id()}, {"external_path", st.last_checkpoint_path()}};
    }
    Reply(res, 200,
          json{{"counts",
                {{"completed", st.completed_checkpoints()},
                 {"failed", st.failed_checkpoints()},
                 {"total", st.completed_checkpoints() + st.failed_checkpoints()}}},
               {"latest", {{"completed", latest}}}});
  });
}

}  // namespace sluice::rest
