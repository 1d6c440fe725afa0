// The job the Dispatcher's tests submit: Source (p) --edge--> Sink (p), on the library `sha`.
#pragma once

#include <string>

#include "proto/jobmanager.pb.h"

namespace sluice {

inline proto::SubmitJobRequest TwoVertexJob(const std::string& sha, int parallelism,
                                            proto::Partitioner edge = proto::PARTITIONER_HASH,
                                            const std::string& name = "two") {
  proto::SubmitJobRequest req;
  req.set_library_sha256(sha);
  auto* g = req.mutable_graph();
  g->set_name(name);
  g->set_max_parallelism(16);
  for (int v = 0; v < 2; ++v) {
    auto* vx = g->add_vertices();
    vx->set_id(v);
    vx->set_name(v == 0 ? "Source" : "Sink");
    vx->set_parallelism(parallelism);
    vx->add_node_ids(v);
    vx->set_is_source(v == 0);
  }
  auto* e = g->add_edges();
  e->set_source_vertex(0);
  e->set_target_vertex(1);
  e->set_partitioner(edge);
  return req;
}

}  // namespace sluice
