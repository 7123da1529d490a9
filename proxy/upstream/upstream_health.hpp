#pragma once
/// Whether the upstream is believed to be up, shared by every worker thread.
/// It is fed by connects only: a failed one (the pool's, or the opt-in active
/// check's) marks it down for upstream.health.interval, a successful one marks
/// it up. A request that finds it down gets a 502 at once instead of a hang.
/// Slow or failed *answers* never mark it down (health_checker.hpp says why).

#include <atomic>
#include <chrono>
#include <cstdint>

namespace cacheproxy::upstream {

class UpstreamHealth {
public:
    using Clock = std::chrono::steady_clock;

    /// True while a recent failure says the upstream is down.
    bool is_down(Clock::time_point now) const {
        return now.time_since_epoch().count() < down_until_.load(std::memory_order_relaxed);
    }
    /// Marks the upstream down until `until` (extends, never shortens).
    void mark_down(Clock::time_point until) {
        auto cur = down_until_.load(std::memory_order_relaxed);
        const auto v = until.time_since_epoch().count();
        while (cur < v && !down_until_.compare_exchange_weak(cur, v, std::memory_order_relaxed)) {
        }
    }
    /// A success: the upstream is up.
    void mark_up() { down_until_.store(0, std::memory_order_relaxed); }
    /// Last answer of the active check was a 2xx (for /readyz); true when the check is off.
    std::atomic<bool> last_check_ok{true};

private:
    std::atomic<Clock::rep> down_until_{0};
};

}  // namespace cacheproxy::upstream
