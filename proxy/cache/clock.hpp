#pragma once
/// The cache's notion of time. Every cache function takes `now` as a parameter,
/// so tests drive TTLs with explicit time points (a fake clock) and never sleep.

#include <chrono>

namespace cacheproxy::cache {

/// Monotonic: TTLs never jump when the wall clock is set.
using Clock = std::chrono::steady_clock;
/// A point on Clock.
using TimePoint = Clock::time_point;

}  // namespace cacheproxy::cache
