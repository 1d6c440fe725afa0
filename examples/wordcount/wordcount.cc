// Word count: the words of a text file and how often each occurs.
//
//   sluice run -p 4 build/examples/libwordcount.so --input words.txt --output /tmp/counts
//
// A word is a maximal run of bytes other than space, tab, CR and LF, compared byte for byte (so
// UTF-8 text works). Output lines are `word,count`; counts are rolling updates, the largest count
// of a word being its total. Without --output the counts are printed.
#include <sluice/connectors/files.h>
#include <sluice/sluice.h>

#include <string>
#include <utility>

using WordCount = std::pair<std::string, int64_t>;

namespace {
bool is_separator(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
}  // namespace

SLUICE_JOB(env, args) {
  env.set_job_name("WordCount");
  auto counts = env.add_source(sluice::files::TextFileSource(args.required("input")))
                    .flat_map([](const std::string& line, sluice::Collector<WordCount>& out) {
                      size_t i = 0, n = line.size();
                      while (i < n) {
                        while (i < n && is_separator(line[i])) ++i;
                        size_t start = i;
                        while (i < n && !is_separator(line[i])) ++i;
                        if (i > start) out.collect(WordCount(line.substr(start, i - start), 1));
                      }
                    })
                    .name("Tokenizer")
                    .key_by([](const WordCount& wc) { return wc.first; })
                    .sum<1>();
  if (args.has("output")) {
    counts.add_sink(sluice::files::TextFileSink(args.get("output")));
  } else {
    counts.print();
  }
}
