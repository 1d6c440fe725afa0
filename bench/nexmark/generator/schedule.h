// Which event numbers a share of the stream emits, in which order, and where it stands.
//
// The stream is events 0..config.events-1. Subtask i of p owns the numbers i, i + p, i + 2p, ...
// (a cursor), so every subtask moves through event time at the same pace and the union over
// the subtasks is the same at any parallelism. Events come in order of their (monotonic) event
// time, except those the config holds back (prob_delayed_event): such an event is emitted after
// the events up to its time + its delay (1 ms to occasional_delay_ms, drawn from its number).
//
// The position (SchedulePosition list) is what a checkpoint stores: the cursors' next numbers and
// the held-back events not yet emitted. Positions may be split among any number of schedules
// (a restore at another parallelism): together they emit exactly what is left.
#pragma once

#include <cstdint>
#include <queue>
#include <tuple>
#include <vector>

#include "generator/config.h"

namespace nexmark {

struct SchedulePosition {
  int64_t next = 0;    // the next number of a cursor, or a held-back event's number
  int64_t stride = 0;  // the cursor's step; 0 for a held-back event
  bool operator==(const SchedulePosition&) const = default;
  auto tie() { return std::tie(next, stride); }
  auto tie() const { return std::tie(next, stride); }
};

class EventSchedule {
 public:
  EventSchedule(const GeneratorConfig& config, const std::vector<SchedulePosition>& positions);
  // The position of subtask `subtask` of `parallelism` at the start.
  static std::vector<SchedulePosition> Start(int64_t events, int subtask, int parallelism);

  // The number of the next event to emit, or -1 when all have been. Stays the same until pop().
  int64_t peek();
  // The event peek() returned has been emitted.
  void pop();
  // What is left to emit, the peeked event included.
  std::vector<SchedulePosition> position() const;

  // Whether event n is held back, and until when (event time, ms).
  static bool HeldBack(const GeneratorConfig& config, int64_t n, int64_t* release_ms);

 private:
  struct Held {
    int64_t release_ms;
    int64_t n;
    bool operator>(const Held& o) const {
      return release_ms != o.release_ms ? release_ms > o.release_ms : n > o.n;
    }
  };

  GeneratorConfig config_;
  std::vector<SchedulePosition> cursors_;
  std::priority_queue<Held, std::vector<Held>, std::greater<Held>> held_;
  int64_t peeked_ = -1;
  int peeked_cursor_ = -1;  // index into cursors_, or -1 when the peeked event is held_.top()
};

}  // namespace nexmark
