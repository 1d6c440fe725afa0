// The checkpoint views, Flink's: /jobs/:id/checkpoints (counts, summary, latest, history),
// /jobs/:id/checkpoints/config, /jobs/:id/checkpoints/details/:cid (per vertex) and
// /jobs/:id/checkpoints/details/:cid/subtasks/:vid (per subtask, with a summary). They show the
// job's CheckpointStatsTracker through JobManagerGateway::GetCheckpointStats. Figures Sluice has
// no equivalent of (buffered, processed and persisted data: there are no unaligned checkpoints)
// are 0.
#include <cctype>
#include <cerrno>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "jobmanager/rest_util.h"

namespace sluice::rest {
namespace {

// Any path segment: malformed ids get a 400 naming them rather than "no such resource".
#define SLUICE_REST_SEGMENT "([^/]+)"

json Summary(const StatsSummary& s) {
  return json{{"min", s.min}, {"max", s.max}, {"avg", s.avg()}};
}

// A summary of a figure of every acknowledged subtask.
template <typename Read>
json SubtaskSummary(const TaskCheckpointStats& task, Read read) {
  StatsSummary s;
  for (const auto& st : task.subtasks) {
    if (st.acknowledged) s.Add(read(st));
  }
  return Summary(s);
}

json TaskJson(const CheckpointStats& c, const TaskCheckpointStats& t) {
  int64_t latest = t.latest_ack_timestamp();
  return json{
      {"id", c.id},
      {"status", CheckpointStatusName(c.status)},
      {"latest_ack_timestamp", latest},
      {"checkpointed_size", t.checkpointed_size()},
      {"state_size", t.state_size()},
      {"end_to_end_duration", latest < 0 ? -1 : std::max<int64_t>(0, latest - c.trigger_timestamp)},
      {"alignment_buffered", 0},
      {"processed_data", 0},
      {"persisted_data", 0},
      {"num_subtasks", static_cast<int>(t.subtasks.size())},
      {"num_acknowledged_subtasks", t.num_acknowledged()}};
}

json CheckpointJson(const CheckpointStats& c) {
  json tasks = json::object();
  for (const auto& [vertex, t] : c.tasks) tasks[std::to_string(vertex)] = TaskJson(c, t);
  json j{{"className", c.status == CheckpointStatus::kCompleted ? "completed"
                       : c.status == CheckpointStatus::kFailed  ? "failed"
                                                                : "in_progress"},
         {"id", c.id},
         {"status", CheckpointStatusName(c.status)},
         {"is_savepoint", c.is_savepoint},
         {"checkpoint_type", c.is_savepoint ? "SAVEPOINT" : "CHECKPOINT"},
         {"trigger_timestamp", c.trigger_timestamp},
         {"latest_ack_timestamp", c.latest_ack_timestamp()},
         {"checkpointed_size", c.checkpointed_size()},
         {"state_size", c.state_size()},
         {"end_to_end_duration", c.end_to_end_duration()},
         {"alignment_buffered", 0},
         {"processed_data", 0},
         {"persisted_data", 0},
         {"num_subtasks", c.num_subtasks()},
         {"num_acknowledged_subtasks", c.num_acknowledged()},
         {"tasks", std::move(tasks)}};
  if (c.status == CheckpointStatus::kCompleted) {
    j["external_path"] = c.external_path;
    j["discarded"] = c.discarded;
  } else if (c.status == CheckpointStatus::kFailed) {
    j["failure_timestamp"] = c.failure_timestamp;
    j["failure_message"] = c.failure_message;
  }
  return j;
}

json SubtaskJson(const CheckpointStats& c, int index, const SubtaskCheckpointStats& s) {
  if (!s.acknowledged) return json{{"index", index}, {"status", "pending_or_failed"}};
  return json{
      {"index", index},
      {"status", "completed"},
      {"ack_timestamp", s.ack_timestamp},
      {"end_to_end_duration", std::max<int64_t>(0, s.ack_timestamp - c.trigger_timestamp)},
      {"checkpointed_size", s.checkpointed_size},
      {"state_size", s.state_size},
      {"checkpoint", {{"sync", s.sync_duration}, {"async", s.async_duration}}},
      {"alignment",
       {{"buffered", 0}, {"processed", 0}, {"persisted", 0}, {"duration", s.alignment_duration}}},
      {"start_delay", s.start_delay},
      {"unaligned_checkpoint", false},
      {"aborted", false}};
}

// The job's checkpoint statistics; NotFound for an unknown job or one without checkpointing.
absl::StatusOr<JobCheckpointStats> Stats(const RestContext& ctx, const std::string& job_id) {
  auto stats = ctx.gateway->GetCheckpointStats(job_id);
  if (!stats.ok()) return stats.status();
  if (!stats->settings.enabled()) {
    return absl::NotFoundError(absl::StrCat("checkpointing is not enabled for job ", job_id,
                                            " (execution.checkpointing.interval is 0)"));
  }
  return stats;
}

// A non-negative number in a path, or InvalidArgument naming `what`.
absl::StatusOr<int64_t> ParseId(const std::string& text, const char* what) {
  errno = 0;
  char* end = nullptr;
  long long v = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || !std::isdigit(static_cast<unsigned char>(text[0])) || *end != '\0' ||
      errno != 0 || v < 0) {
    return absl::InvalidArgumentError(absl::StrCat(what, " '", text, "' is not a number"));
  }
  return v;
}

// Checkpoint `cid` of the history, or NotFound / InvalidArgument naming what is wrong.
absl::StatusOr<CheckpointStats> FindCheckpoint(const JobCheckpointStats& stats,
                                               const std::string& job_id, const std::string& cid) {
  auto id = ParseId(cid, "checkpoint id");
  if (!id.ok()) return id.status();
  const CheckpointStats* c = stats.stats.Find(*id);
  if (!c) {
    return absl::NotFoundError(absl::StrCat(
        "job ", job_id, " has no checkpoint ", *id,
        " in its history (the newest web.checkpoints.history = ", stats.settings.stats_history,
        " are kept)"));
  }
  return *c;
}

}  // namespace

void AddCheckpointRoutes(HttpRoutes& s, const RestContext& ctx) {
  const RestContext* c = &ctx;

  // Flink: GET /jobs/:jobid/checkpoints.
  s.Get("/jobs/" SLUICE_REST_JOB_ID "/checkpoints", [c](const HttpRequest& req, HttpResponse& res) {
    auto stats = Stats(*c, req.matches[1]);
    if (!stats.ok()) return ReplyError(res, stats.status());
    const CheckpointStatsSnapshot& st = stats->stats;
    const auto& n = st.counts;
    const auto& sum = st.summary;
    json zero = Summary(StatsSummary{});
    json restored = nullptr;
    if (st.latest_restored) {
      restored = json{{"id", st.latest_restored->id},
                      {"restore_timestamp", st.latest_restored->restore_timestamp},
                      {"is_savepoint", st.latest_restored->is_savepoint},
                      {"external_path", st.latest_restored->external_path}};
    }
    json history = json::array();
    for (const auto& cp : st.history) history.push_back(CheckpointJson(cp));
    Reply(res, 200,
          json{{"counts",
                {{"restored", n.restored},
                 {"total", n.total},
                 {"in_progress", n.in_progress},
                 {"completed", n.completed},
                 {"failed", n.failed}}},
               {"summary",
                {{"checkpointed_size", Summary(sum.checkpointed_size)},
                 {"state_size", Summary(sum.state_size)},
                 {"end_to_end_duration", Summary(sum.end_to_end_duration)},
                 {"alignment_duration", Summary(sum.alignment_duration)},
                 {"alignment_buffered", zero},
                 {"processed_data", zero},
                 {"persisted_data", zero}}},
               {"latest",
                {{"completed",
                  st.latest_completed ? CheckpointJson(*st.latest_completed) : json(nullptr)},
                 {"savepoint",
                  st.latest_savepoint ? CheckpointJson(*st.latest_savepoint) : json(nullptr)},
                 {"failed", st.latest_failed ? CheckpointJson(*st.latest_failed) : json(nullptr)},
                 {"restored", restored}}},
               {"history", std::move(history)}});
  });

  // Flink: GET /jobs/:jobid/checkpoints/config.
  s.Get("/jobs/" SLUICE_REST_JOB_ID "/checkpoints/config", [c](const HttpRequest& req,
                                                               HttpResponse& res) {
    auto stats = Stats(*c, req.matches[1]);
    if (!stats.ok()) return ReplyError(res, stats.status());
    const CheckpointSettings& cs = stats->settings;
    Reply(res, 200,
          json{{"mode", cs.exactly_once ? "exactly_once" : "at_least_once"},
               {"interval", cs.interval.count()},
               {"timeout", cs.timeout.count()},
               {"min_pause", cs.min_pause.count()},
               {"max_concurrent", 1},
               // Completed checkpoints stay in state.checkpoints.dir when a job ends.
               {"externalization", {{"enabled", true}, {"delete_on_cancellation", false}}},
               {"state_backend", stats->state_backend == "rocksdb" ? "EmbeddedRocksDBStateBackend"
                                                                   : "HashMapStateBackend"},
               {"checkpoint_storage", "FileSystemCheckpointStorage"},
               {"unaligned_checkpoints", false},
               {"tolerable_failed_checkpoints", cs.tolerable_failures},
               {"aligned_checkpoint_timeout", 0},
               {"checkpoints_after_tasks_finish", true},
               {"state_changelog_enabled", false}});
  });

  // Flink: GET /jobs/:jobid/checkpoints/details/:checkpointid.
  s.Get("/jobs/" SLUICE_REST_JOB_ID "/checkpoints/details/" SLUICE_REST_SEGMENT,
        [c](const HttpRequest& req, HttpResponse& res) {
          auto stats = Stats(*c, req.matches[1]);
          if (!stats.ok()) return ReplyError(res, stats.status());
          auto cp = FindCheckpoint(*stats, req.matches[1], req.matches[2]);
          if (!cp.ok()) return ReplyError(res, cp.status());
          Reply(res, 200, CheckpointJson(*cp));
        });

  // Flink: GET /jobs/:jobid/checkpoints/details/:checkpointid/subtasks/:vertexid.
  s.Get(
      "/jobs/" SLUICE_REST_JOB_ID "/checkpoints/details/" SLUICE_REST_SEGMENT
      "/subtasks/" SLUICE_REST_SEGMENT,
      [c](const HttpRequest& req, HttpResponse& res) {
        const std::string job_id = req.matches[1];
        auto stats = Stats(*c, job_id);
        if (!stats.ok()) return ReplyError(res, stats.status());
        auto cp = FindCheckpoint(*stats, job_id, req.matches[2]);
        if (!cp.ok()) return ReplyError(res, cp.status());
        auto vid = ParseId(req.matches[3], "vertex id");
        if (!vid.ok()) return ReplyError(res, vid.status());
        auto t = cp->tasks.find(static_cast<int>(std::min<int64_t>(*vid, INT32_MAX)));
        if (t == cp->tasks.end()) {
          return ReplyError(
              res, absl::NotFoundError(absl::StrCat("checkpoint ", cp->id, " of job ", job_id,
                                                    " has no vertex ", *vid)));
        }
        const TaskCheckpointStats& task = t->second;
        json subtasks = json::array();
        for (size_t i = 0; i < task.subtasks.size(); ++i)
          subtasks.push_back(SubtaskJson(*cp, static_cast<int>(i), task.subtasks[i]));
        json out = TaskJson(*cp, task);
        using S = SubtaskCheckpointStats;
        out["summary"] = json{
            {"checkpointed_size",
             SubtaskSummary(task, [](const S& s) { return s.checkpointed_size; })},
            {"state_size", SubtaskSummary(task, [](const S& s) { return s.state_size; })},
            {"end_to_end_duration",
             SubtaskSummary(task,
                            [&](const S& s) {
                              return std::max<int64_t>(0, s.ack_timestamp - cp->trigger_timestamp);
                            })},
            {"checkpoint_duration",
             {{"sync", SubtaskSummary(task, [](const S& s) { return s.sync_duration; })},
              {"async", SubtaskSummary(task, [](const S& s) { return s.async_duration; })}}},
            {"alignment",
             {{"buffered", Summary(StatsSummary{})},
              {"processed", Summary(StatsSummary{})},
              {"persisted", Summary(StatsSummary{})},
              {"duration", SubtaskSummary(task, [](const S& s) { return s.alignment_duration; })}}},
            {"start_delay", SubtaskSummary(task, [](const S& s) { return s.start_delay; })}};
        out["subtasks"] = std::move(subtasks);
        Reply(res, 200, out);
      });
}

}  // namespace sluice::rest
