// Writes the seeds of the targets whose inputs are binary (record, network_buffer, metadata,
// state_file) into <corpus-dir>/<target>/, encoded by the project's own writers, so that the
// fuzzers start from real records, buffers and files. Run it again after a format changes:
//   <build>/bin/sluice_fuzz_make_corpus tests/fuzz/corpus
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "common/checkpoint_storage.h"
#include "fuzz_support.h"
#include "proto/data_exchange.pb.h"
#include "record_types.h"
#include "sluice/internal/heap_backend.h"
#include "sluice/internal/state_table.h"
#include "sluice/internal/timers.h"
#include "sluice/state.h"

namespace {

using namespace sluice;
namespace fs = std::filesystem;

fs::path root;

void Write(const std::string& target, const std::string& name, std::string_view bytes) {
  fs::create_directories(root / target);
  std::ofstream out(root / target / name, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string Prefixed(uint8_t first, std::string_view rest) {
  return std::string(1, static_cast<char>(first)) + std::string(rest);
}

std::string ReadAll(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

fuzz::Bid SampleBid(int n) {
  fuzz::Bid b;
  b.auction = 1000 + n;
  b.bidder = "bidder-" + std::to_string(n);
  b.price = 12.5 * n;
  b.winning = n % 2 == 0;
  b.side = n % 2 == 0 ? fuzz::Side::kBuy : fuzz::Side::kSell;
  if (n % 3 == 0) b.note = "first";
  b.lots = {n, n + 1};
  return b;
}

// record_fuzz: the first byte picks the type (see record_fuzz.cc).
void Records() {
  Write("record", "seed-int64", Prefixed(0, serialize(int64_t{-42})));
  Write("record", "seed-bool", Prefixed(1, serialize(true)));
  Write("record", "seed-string", Prefixed(2, serialize(std::string("hello, sluice"))));
  Write("record", "seed-pair",
        Prefixed(3, serialize(std::make_pair(std::string("word"), int64_t{7}))));
  Write("record", "seed-tuple",
        Prefixed(4, serialize(std::make_tuple(int32_t{3}, std::string("x"), 2.5))));
  Write("record", "seed-vector", Prefixed(5, serialize(std::vector<std::string>{"a", "bb", ""})));
  Write("record", "seed-optional", Prefixed(6, serialize(std::optional<int64_t>(9))));
  Write("record", "seed-map",
        Prefixed(7,
                 serialize(std::map<std::string, std::vector<int32_t>>{{"k", {1, 2}}, {"l", {}}})));
  Write("record", "seed-struct", Prefixed(8, serialize(SampleBid(3))));
  Write("record", "seed-structs",
        Prefixed(9, serialize(std::vector<fuzz::Bid>{SampleBid(1), SampleBid(2)})));
  Write("record", "seed-bools",
        Prefixed(10, serialize(std::make_pair(false, std::optional<bool>(true)))));
  Write("record", "seed-pairs",
        Prefixed(11, serialize(std::vector<std::pair<int64_t, std::string>>{{1, "one"}})));
  std::string entries;
  DataOutput o(entries);
  internal::state_internal::write_entry(o, serialize(std::string("key")), 1000,
                                        serialize(int64_t{5}));
  internal::state_internal::write_entry(o, serialize(std::string("other")), 0,
                                        serialize(std::string("v")));
  Write("record", "seed-state-entries", Prefixed(12, entries));
  std::string timers;
  DataOutput t(timers);
  for (int64_t time : {int64_t{5000}, int64_t{-1}}) {
    std::string sort_key;
    internal::timer_internal::append_sort_key(sort_key, time, std::string("k\0ey", 4), "ns");
    internal::state_internal::write_entry(t, sort_key, 0, {});
  }
  Write("record", "seed-timers", Prefixed(13, timers));
}

// network_buffer_fuzz: NetworkBuffer messages as a producer sends them.
void NetworkBuffers() {
  auto write_buffer = [](const std::string& name, internal::BufferKind kind, std::string data,
                         int64_t value = 0, int64_t value2 = 0) {
    proto::NetworkBuffer msg;
    msg.set_kind(static_cast<int32_t>(kind));
    msg.set_data(std::move(data));
    msg.set_value(value);
    msg.set_value2(value2);
    Write("network_buffer", name, msg.SerializeAsString());
  };
  std::string words, timestamped, bids;
  DataOutput w(words), ts(timestamped), b(bids);
  for (int n = 0; n < 4; ++n) {
    Serializer<std::pair<std::string, int64_t>>::write(w, {"word" + std::to_string(n), n});
    Serializer<int64_t>::write(ts, 1700000000000 + n);
    Serializer<std::string>::write(ts, "event " + std::to_string(n));
    Serializer<fuzz::Bid>::write(b, SampleBid(n));
  }
  write_buffer("seed-words", internal::BufferKind::kData, words);
  write_buffer("seed-timestamped-strings", internal::BufferKind::kData, timestamped);
  write_buffer("seed-bids", internal::BufferKind::kData, bids);
  write_buffer("seed-watermark", internal::BufferKind::kWatermark, "", 1700000000000);
  write_buffer("seed-barrier", internal::BufferKind::kBarrier, std::string(1, '\1'), 7,
               1700000000000);
}

// A checkpoint directory's files, written by checkpoint storage itself.
void CheckpointFiles() {
  const fs::path dir = fuzz::ScratchDir();

  proto::CheckpointMetadata meta;
  meta.set_job_id("0123456789abcdef0123456789abcdef");
  meta.set_checkpoint_id(7);
  meta.set_timestamp_ms(1700000000000);
  meta.set_job_name("word count");
  meta.set_max_parallelism(128);
  meta.add_vertex_parallelism(2);
  meta.add_vertex_nodes("0,1");
  proto::StateHandle* h = meta.add_handles();
  h->set_vertex_id(0);
  h->set_subtask(1);
  h->set_file("chk-7/v0-s1");
  h->set_size(120);
  h->set_crc32c(12345);
  proto::VertexOperators* ops = meta.add_vertex_operators();
  ops->add_node_ids(0);
  ops->add_operator_ids("source");
  ops->add_names("Source: words");
  if (!WriteMetadata(dir.string(), meta).ok()) std::abort();
  const std::string file = ReadAll(dir / "_metadata");
  Write("metadata", "seed-metadata-file", Prefixed(0, file));
  Write("metadata", "seed-metadata-body", Prefixed(5, meta.SerializeAsString()));

  // The keyed state (heap backend) and operator state of one subtask of two.
  internal::HeapKeyedStateBackend keyed(key_group_range(0, 128, 2), [] { return int64_t{1000}; });
  auto& v = keyed.get<ValueState<std::string>>(ValueStateDescriptor<std::string>("v"));
  auto& l = keyed.get<ListState<int>>(ListStateDescriptor<int>("l"));
  auto& m = keyed.get<MapState<std::string, int>>(MapStateDescriptor<std::string, int>("m"));
  auto& c = keyed.get<ValueState<int64_t>>(ValueStateDescriptor<int64_t>("count"));
  for (int n = 0; n < 3; ++n) {
    keyed.set_current_key(serialize("key-" + std::to_string(n)), n * 20);
    v.update("value " + std::to_string(n));
    l.add_all({n, n + 1});
    m.put("field", n);
    c.update(n);
  }
  internal::OperatorSnapshot snap;
  snap.node_id = 1;
  keyed.snapshot(snap);
  internal::OperatorStateStore store;
  store.get_list_state(ListStateDescriptor<int64_t>("offsets")).update({10, 20, 30});
  store.get_list_state(ListStateDescriptor<std::string>("names")).add("partition-0");
  internal::OperatorSnapshot op_snap;
  op_snap.node_id = 0;
  store.snapshot(op_snap);
  const fs::path state = dir / "state-0-1";
  if (!WriteStateFile(state.string(), {op_snap, snap}, nullptr).ok()) std::abort();
  const std::string bytes = ReadAll(state);
  Write("state_file", "seed-state-file", Prefixed(0, bytes));
  // The body alone, framed by the target as format version 3.
  Write("state_file", "seed-state-body", Prefixed(5, bytes.substr(16, bytes.size() - 20)));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <corpus-dir>\n", argv[0]);
    return 2;
  }
  root = argv[1];
  Records();
  NetworkBuffers();
  CheckpointFiles();
  return 0;
}
