#include "generator/schedule.h"

#include <stdexcept>

#include "generator/random.h"

namespace nexmark {

EventSchedule::EventSchedule(const GeneratorConfig& config,
                             const std::vector<SchedulePosition>& positions)
    : config_(config) {
  for (const SchedulePosition& p : positions) {
    if (p.next < 0 || p.stride < 0) {
      throw std::invalid_argument("nexmark schedule: a negative position (" +
                                  std::to_string(p.next) + ", " + std::to_string(p.stride) + ")");
    }
    if (p.stride == 0) {
      int64_t release = 0;
      if (!HeldBack(config_, p.next, &release)) {
        throw std::invalid_argument("nexmark schedule: event " + std::to_string(p.next) +
                                    " is stored as held back but this config does not hold it");
      }
      held_.push(Held{release, p.next});
    } else if (p.next < config_.events) {
      cursors_.push_back(p);
    }
  }
}

std::vector<SchedulePosition> EventSchedule::Start(int64_t events, int subtask, int parallelism) {
  if (parallelism < 1 || subtask < 0 || subtask >= parallelism) {
    throw std::invalid_argument("nexmark schedule: subtask " + std::to_string(subtask) + " of " +
                                std::to_string(parallelism));
  }
  if (subtask >= events) return {};
  return {SchedulePosition{subtask, parallelism}};
}

bool EventSchedule::HeldBack(const GeneratorConfig& config, int64_t n, int64_t* release_ms) {
  if (config.prob_delayed_event <= 0) return false;
  Rng rng(config.seed ^ 0x5bd1e9955bd1e995ULL, static_cast<uint64_t>(n));
  if (rng.next_double() >= config.prob_delayed_event) return false;
  *release_ms = config.timestamp_for(n) + 1 + rng.next_int(config.occasional_delay_ms);
  return true;
}

int64_t EventSchedule::peek() {
  if (peeked_ >= 0) return peeked_;
  for (;;) {
    int best = -1;
    for (size_t i = 0; i < cursors_.size(); ++i) {
      if (cursors_[i].next >= config_.events) continue;
      if (best < 0 || cursors_[i].next < cursors_[static_cast<size_t>(best)].next) {
        best = static_cast<int>(i);
      }
    }
    if (best >= 0) {
      SchedulePosition& c = cursors_[static_cast<size_t>(best)];
      int64_t release = 0;
      if (HeldBack(config_, c.next, &release)) {
        held_.push(Held{release, c.next});
        c.next += c.stride;
        continue;
      }
      Held here{config_.timestamp_for(c.next), c.next};
      if (held_.empty() || held_.top() > here) {
        peeked_cursor_ = best;
        return peeked_ = c.next;
      }
    }
    if (held_.empty()) return -1;
    peeked_cursor_ = -1;
    return peeked_ = held_.top().n;
  }
}

void EventSchedule::pop() {
  if (peeked_ < 0) throw std::logic_error("nexmark schedule: pop() without peek()");
  if (peeked_cursor_ >= 0) {
    SchedulePosition& c = cursors_[static_cast<size_t>(peeked_cursor_)];
    c.next += c.stride;
  } else {
    held_.pop();
  }
  peeked_ = -1;
}

std::vector<SchedulePosition> EventSchedule::position() const {
  std::vector<SchedulePosition> out;
  for (const SchedulePosition& c : cursors_) {
    if (c.next < config_.events) out.push_back(c);
  }
  auto held = held_;
  for (; !held.empty(); held.pop()) out.push_back(SchedulePosition{held.top().n, 0});
  return out;
}

}  // namespace nexmark
