#pragma once
/// Coarse read deadlines (issue 16), as nginx keeps them: a connection
/// waiting for its next request header writes the time it must end by into
/// its own ReadDeadline (a store, no timer, no system call), and its worker
/// walks its connections every tick and ends the reads whose time has
/// passed. A read therefore ends between its deadline and one tick later.
/// The per-read alternative, Beast's basic_stream timer, queues and cancels
/// a timer on every read.
///
/// Pure parts (tick_for, expired) are plain code, unit-tested with made-up
/// times (tests/core/read_deadline_test.cpp); Worker::start_sweep runs them.

#include <algorithm>
#include <chrono>

namespace cacheproxy::app {

using SteadyClock = std::chrono::steady_clock;

/// One connection's pending read: when it must end (max = nothing pending).
struct ReadDeadline {
    SteadyClock::time_point at = SteadyClock::time_point::max();
    bool fired = false;  ///< the sweep ended the read: it timed out (not a drain, not the peer)

    void arm(SteadyClock::time_point deadline) {
        at = deadline;
        fired = false;
    }
    void disarm() { at = SteadyClock::time_point::max(); }
    /// At `now`: true once, when the deadline has passed (it is disarmed and marked fired).
    bool expired(SteadyClock::time_point now) {
        if (now < at) return false;
        at = SteadyClock::time_point::max();
        fired = true;
        return true;
    }
};

/// The sweep's period for these timeouts: an eighth of the shortest, within
/// [5 ms, 250 ms] (10 s and 60 s, the defaults: 250 ms, 4 wake-ups a second).
inline SteadyClock::duration tick_for(SteadyClock::duration header_timeout, SteadyClock::duration idle_timeout) {
    const SteadyClock::duration shortest = std::min(header_timeout, idle_timeout) / 8;
    return std::clamp<SteadyClock::duration>(shortest, std::chrono::milliseconds(5), std::chrono::milliseconds(250));
}

}  // namespace cacheproxy::app
