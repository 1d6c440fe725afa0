// Word count on a real cluster (2 TaskManagers x 2 slots, parallelism 4) over a generated text of
// more than a million words, checked against counts kept while generating it.
#include <iostream>
#include <random>
#include <set>
#include <sstream>
#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "integration/harness.h"

namespace sluice::itest {
namespace {

using namespace std::chrono_literals;

struct Corpus {
  std::string text;
  std::unordered_map<std::string, int64_t> counts;
  int64_t words = 0;
};

// A deterministic text: ASCII and UTF-8 words (some with commas and quotes), separated by one or
// more spaces and tabs, lone CRs, lines ending in LF or CRLF, blank and whitespace-only lines, and
// a last line without a line feed. Word frequencies are skewed, so some keys are hot.
Corpus MakeCorpus(int64_t min_words, uint32_t seed) {
  std::mt19937 rng(seed);  // the standard fixes mt19937's sequence; only raw values are used
  std::vector<std::string> vocab;
  for (int i = 0; i < 4000; ++i) {
    std::string w;
    int len = 1 + i % 9;
    uint32_t x = static_cast<uint32_t>(i) * 2654435761u;
    for (int k = 0; k < len; ++k) {
      w.push_back(static_cast<char>((k == 0 && i % 7 == 0 ? 'A' : 'a') + x % 26));
      x = x / 26 + static_cast<uint32_t>(k) * 31 + 7;
    }
    vocab.push_back(w + std::to_string(i));  // distinct by construction
  }
  const char* kUtf8[] = {"größe", "naïve",     "café",  "日本語", "中文",     "Ελλάδα", "слово",
                         "😀",     "mix🙂ed", "ñandú", "Zürich", "שלום",     "عربى",   "ü",
                         "a,b",   "q\"uote",   "x,y,z", "Ōsaka",  "İstanbul", "€100"};
  for (const char* base : kUtf8) {
    vocab.push_back(base);
    for (int j = 0; j < 25; ++j) vocab.push_back(absl::StrCat(base, j));
  }
  const char* kSeparators[] = {" ", " ", " ", "  ", "\t", " \t ", "   ", "\t\t", " \r "};
  const char* kLineEnds[] = {"\n", "\n", "\r\n", " \n", "\t\r\n"};
  Corpus c;
  c.text.reserve(static_cast<size_t>(min_words) * 9);
  auto pick = [&](size_t n) { return static_cast<size_t>(rng() % n); };
  while (c.words < min_words) {
    size_t kind = pick(60);
    if (kind == 0) {
      c.text += kLineEnds[pick(std::size(kLineEnds))];  // blank line
      continue;
    }
    if (kind == 1) {
      c.text += " \t  ";  // whitespace-only line
      c.text += kLineEnds[pick(std::size(kLineEnds))];
      continue;
    }
    if (pick(8) == 0) c.text += kSeparators[pick(std::size(kSeparators))];  // leading blanks
    size_t n = 1 + pick(24);
    for (size_t k = 0; k < n; ++k) {
      if (k > 0) c.text += kSeparators[pick(std::size(kSeparators))];
      size_t idx = pick(vocab.size());
      if (pick(2) == 0) idx %= 40;  // hot words
      c.text += vocab[idx];
      c.counts[vocab[idx]]++;
      c.words++;
    }
    if (pick(6) == 0) c.text += kSeparators[pick(std::size(kSeparators))];  // trailing blanks
    c.text += kLineEnds[pick(std::size(kLineEnds))];
  }
  c.text += "tail-word-without-line-feed";
  c.counts["tail-word-without-line-feed"]++;
  c.words++;
  return c;
}

// Word counts from `word,count` lines (the word may hold commas: the count follows the last one).
// The largest count of a word is its total. Fails on malformed lines and on a word found in two
// part files (keyed output must not be split).
::testing::AssertionResult CountsMatch(const std::map<std::string, std::vector<std::string>>& parts,
                                       const Corpus& corpus) {
  std::unordered_map<std::string, int64_t> max_count;
  std::unordered_map<std::string, std::string> file_of;
  int64_t lines = 0;
  for (const auto& [file, content] : parts) {
    for (const std::string& line : content) {
      ++lines;
      size_t comma = line.rfind(',');
      if (comma == std::string::npos || comma == 0 || comma + 1 == line.size()) {
        return ::testing::AssertionFailure() << file << ": malformed line '" << line << "'";
      }
      std::string word = line.substr(0, comma);
      int64_t n = std::strtoll(line.c_str() + comma + 1, nullptr, 10);
      auto [it, inserted] = file_of.emplace(word, file);
      if (!inserted && it->second != file) {
        return ::testing::AssertionFailure()
               << "word '" << word << "' in both " << it->second << " and " << file;
      }
      auto& m = max_count[word];
      m = std::max(m, n);
    }
  }
  // One rolling update per word occurrence.
  if (lines != corpus.words) {
    return ::testing::AssertionFailure()
           << "expected " << corpus.words << " output lines, got " << lines;
  }
  int shown = 0;
  std::ostringstream diffs;
  for (const auto& [word, n] : corpus.counts) {
    auto it = max_count.find(word);
    int64_t got = it == max_count.end() ? 0 : it->second;
    if (got != n && shown++ < 10)
      diffs << "\n  '" << word << "': expected " << n << ", got " << got;
  }
  for (const auto& [word, n] : max_count) {
    if (!corpus.counts.count(word) && shown++ < 10)
      diffs << "\n  unexpected word '" << word << "' (" << n << ")";
  }
  if (shown > 0)
    return ::testing::AssertionFailure() << shown << " words counted wrong:" << diffs.str();
  return ::testing::AssertionSuccess();
}

TEST(WordCountTest, MillionWordsAtParallelismFourOnTwoTaskManagers) {
  TestCluster cluster(2, 2);
  SLUICE_ASSERT_OK(cluster.Start());
  Corpus corpus = MakeCorpus(1'000'000, 20240611);
  ASSERT_GE(corpus.words, 1'000'000);
  ASSERT_GT(corpus.counts.size(), 4000u);
  const std::string input = cluster.dir() + "/words.txt";
  const std::string output = cluster.dir() + "/counts";
  ASSERT_TRUE(WriteFile(input, corpus.text));

  auto start = std::chrono::steady_clock::now();
  CommandResult r = cluster.Cli(
      {"run", "-p", "4", ExampleLibrary("wordcount"), "--", "--input", input, "--output", output},
      150s);
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - start);
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_NE(r.out.find("FINISHED"), std::string::npos) << r.Describe();
  std::cout << "word count of " << corpus.words << " words (" << corpus.text.size()
            << " bytes) took " << took.count() << " ms\n";

  // Four sink subtasks, four part files; the job's tasks ran on both TaskManagers.
  auto parts = ReadPartFiles(output);
  EXPECT_EQ(parts.size(), 4u);
  for (const char* name : {"part-0", "part-1", "part-2", "part-3"})
    EXPECT_TRUE(parts.count(name)) << name;
  EXPECT_TRUE(CountsMatch(parts, corpus));

  auto jobs = cluster.client().ListJobs(/*include_terminated=*/true);
  ASSERT_TRUE(jobs.ok()) << jobs.status();
  ASSERT_EQ(jobs->size(), 1u);
  auto job = cluster.client().GetJob(jobs->front().job_id());
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->state(), proto::JOB_FINISHED);
  EXPECT_EQ(job->parallelism(), 4);
  std::set<std::string> tms;
  for (const auto& t : job->tasks()) tms.insert(t.tm_id());
  EXPECT_EQ(tms, (std::set<std::string>{cluster.tm_id(0), cluster.tm_id(1)}));
  SLUICE_EXPECT_OK(cluster.Stop());
}

}  // namespace
}  // namespace sluice::itest
