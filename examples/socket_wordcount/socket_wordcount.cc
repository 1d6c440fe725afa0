// Socket word count, as in Flink's quickstart: start `nc -lk 9999`, then
//
//   sluice run build/examples/libsocket_wordcount.so -- --hostname localhost --port 9999
//
// and type lines into nc; the running counts appear in the TaskManager's output (log/*.out).
#include <sluice/connectors/socket.h>
#include <sluice/sluice.h>

#include <sstream>
#include <string>
#include <utility>

using WordCount = std::pair<std::string, int64_t>;

SLUICE_JOB(env, args) {
  env.set_job_name("Socket WordCount");
  env.add_source(sluice::sockets::SocketTextSource(args.get("hostname", "localhost"),
                                                   static_cast<int>(args.get_int("port", 9999))))
      .flat_map([](const std::string& line, sluice::Collector<WordCount>& out) {
        std::istringstream in(line);
        std::string w;
        while (in >> w) out.collect(WordCount(w, 1));
      })
      .key_by([](const WordCount& wc) { return wc.first; })
      .sum<1>()
      .print();
}
