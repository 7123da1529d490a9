#pragma once
/// Batching of read-your-writes barriers (tier/shared_tier.cpp). A barrier
/// is a PING on the bus's subscriber connection: its answer comes after every
/// invalidation Redis queued for this instance before executing it, so a read
/// that waits for a PING *sent after the read arrived* sees every write
/// answered before it (ARCHITECTURE.md, "Across instances").
///
/// At most one PING is in flight. A read arriving while one is in flight
/// cannot use it (it may have been sent before the read arrived): it waits
/// for the next, which is sent when the current one returns. So Redis sees at
/// most one PING per round trip per instance, however many reads wait.
///
/// With a lag bound H > 0 a read may instead use the last completed barrier
/// if it was *sent* at most H before the read arrived.
///
/// Pure: the caller sends PINGs and completes waiters; one thread.

#include <chrono>
#include <optional>
#include <utility>
#include <vector>

namespace cacheproxy::tier {

template <typename Waiter, typename TimePoint = std::chrono::steady_clock::time_point>
class BarrierBatcher {
public:
    /// Whether a barrier completed recently enough for a read arriving at `now` under bound `lag`.
    bool fresh(TimePoint now, typename TimePoint::duration lag) const {
        return lag.count() > 0 && completed_sent_at_ && now - *completed_sent_at_ <= lag;
    }
    /// Adds a waiter. Returns true when the caller must send a PING now (none in flight).
    bool add(Waiter w, TimePoint now) {
        if (!in_flight_) {
            current_.push_back(std::move(w));
            in_flight_ = true;
            sent_at_ = now;
            return true;
        }
        next_.push_back(std::move(w));
        return false;
    }
    /// A PING is to be sent without a waiter (a background barrier for H > 0).
    /// False when one is in flight already.
    bool start_background(TimePoint now) {
        if (in_flight_) return false;
        in_flight_ = true;
        sent_at_ = now;
        return true;
    }
    /// The in-flight PING returned: its waiters are done. When `send_next`
    /// comes back true the caller must send the next PING at once (the
    /// waiters that came meanwhile are now in flight).
    std::vector<Waiter> on_pong(TimePoint now, bool& send_next) {
        completed_sent_at_ = sent_at_;
        std::vector<Waiter> done = std::exchange(current_, {});
        current_ = std::exchange(next_, {});
        send_next = !current_.empty();
        in_flight_ = send_next;
        if (send_next) sent_at_ = now;
        return done;
    }
    /// The PING failed (or the bus went down): every waiter fails; no barrier
    /// is fresh until one completes again.
    std::vector<Waiter> on_failure() {
        std::vector<Waiter> all = std::exchange(current_, {});
        for (auto& w : next_) all.push_back(std::move(w));
        next_.clear();
        in_flight_ = false;
        completed_sent_at_.reset();
        return all;
    }
    bool in_flight() const { return in_flight_; }
    /// When the last completed PING was sent (none after a failure).
    std::optional<TimePoint> completed_sent_at() const { return completed_sent_at_; }
    std::size_t waiting() const { return current_.size() + next_.size(); }

private:
    std::vector<Waiter> current_;  ///< waiting for the PING in flight
    std::vector<Waiter> next_;     ///< waiting for the one after it
    bool in_flight_ = false;
    TimePoint sent_at_{};
    std::optional<TimePoint> completed_sent_at_;
};

}  // namespace cacheproxy::tier
