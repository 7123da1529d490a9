#pragma once
/// Request coalescing: identical in-flight misses make one upstream request.
///
/// The first caller for a key becomes the *leader* and fetches; later callers
/// for the same key (same route, same key bytes: same identity) become
/// *waiters* and sleep on a timer on their own executor. When the leader
/// publishes the outcome, every waiter is woken by an event posted to its own
/// executor (no polling), the in-flight slot disappears, and the next request
/// for the key starts a fresh fill. Modelled on Varnish's waiting list
/// (cache_hash.c: busy objects, busy_sleep / busy_wakeup) and Envoy's
/// cache_sessions_impl.h; the fan-out follows Beast's chat-multi
/// shared_state: copy the waiter list under the lock, notify after releasing it.
///
/// What the session does with an outcome (not this class's job):
///   stored        -> answer from FillResult::entry (the same shared entry for all);
///   answer        -> the same, but the entry was never stored (a 4xx/5xx, no-store,
///                    close-delimited): same key, same identity, so the same answer;
///   failed        -> answer FillResult::status (502/504), or a stale entry within
///                    stale_if_error; nothing was stored;
///   not_shareable -> fetch for itself: the leader's response may not be shared
///                    (Set-Cookie, Vary, private, too large to hold). Only
///                    `max_unshared` waiters are told so at once; each passes its
///                    turn on to the next when its ticket is released, so the
///                    upstream never sees the whole queue at once;
///   nullopt from wait() (timed out, cancelled, or refused a place because the
///   queue is full) -> fetch for itself.
/// A burst therefore costs one upstream call whatever the upstream answers.
/// complete() may also *hold* a failed or answer outcome until a given time
/// (coalesce.error_hold, for 5xx): join() for the key before then returns a
/// `held` ticket whose wait() yields that outcome at once, so a burst during an
/// outage costs about one call per key per hold. Unlike Envoy, a failed fill is
/// not handed to a promoted waiter: the waiters share its outcome.
///
/// Lifetime: the Coalescer must outlive every Ticket and every wait().

#include "cache/cache_key.hpp"
#include "cache/clock.hpp"
#include "cache/fill_result.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>

namespace cacheproxy::cache {

/// Every coalescer counter, declared once: X(name, description).
#define CACHEPROXY_COALESCER_COUNTERS(X)                                                        \
    X(leaders, "fills started: the first caller for a key became the leader")                  \
    X(waiters_joined, "callers queued behind an in-flight fill")                                \
    X(waiters_slept, "waiters that slept: the outcome was not there when they began waiting")  \
    X(waiters_woken, "waiters that received the fill's outcome")                                \
    X(waiter_timeouts, "waiters that gave up before the outcome (timeout or cancellation)")     \
    X(queue_full, "callers refused a place: max_waiters live waiters already queued")          \
    X(abandoned_fills, "leaders dropped without completing: published as failed")              \
    X(held_served, "callers given a held failure (error_hold) without a fill")                 \
    X(unshared_turns, "waiters of an unshareable answer sent upstream on their own, in turns")

/// A snapshot of the coalescer's counters.
struct CoalescerStats {
#define CACHEPROXY_COUNTER_FIELD(name, description) std::uint64_t name = 0; /* description */
    CACHEPROXY_COALESCER_COUNTERS(CACHEPROXY_COUNTER_FIELD)
#undef CACHEPROXY_COUNTER_FIELD
};

/// Coalesces identical in-flight misses. Thread-safe.
class Coalescer {
    struct Flight;
    struct Waiter;
    struct Shard;
    struct Relay;
    struct Held;

public:
    /// One caller's part in a fill: leader, waiter, or refused. Move-only.
    /// Destroying a leader's ticket without complete() publishes `failed`, so
    /// waiters never hang; destroying a waiter's ticket frees its place.
    class Ticket {
    public:
        /// What the caller is to do.
        enum class Role {
            none,      ///< empty, or already completed / released
            leader,    ///< fetch, then Coalescer::complete()
            waiter,    ///< co_await Coalescer::wait()
            rejected,  ///< the queue is full: fetch on your own, do not store-share
            held,      ///< a fill just failed and its outcome is held: wait() returns it at once
        };
        /// An empty ticket.
        Ticket() = default;
        /// Takes over `other`'s part; `other` becomes empty.
        Ticket(Ticket&& other) noexcept;
        /// Releases this ticket's part, then takes over `other`'s.
        Ticket& operator=(Ticket&& other) noexcept;
        Ticket(const Ticket&) = delete;
        Ticket& operator=(const Ticket&) = delete;
        /// Releases the part (a leader publishes `failed`).
        ~Ticket();

        /// The caller's role.
        Role role() const { return role_; }
        /// True for the one caller that fetches.
        bool leader() const { return role_ == Role::leader; }
        /// True for a caller queued behind the leader.
        bool waiter() const { return role_ == Role::waiter; }
        /// True when the queue was full.
        bool rejected() const { return role_ == Role::rejected; }
        /// True when the key's last fill failed within its hold: no fill, wait() answers at once.
        bool held() const { return role_ == Role::held; }

    private:
        friend class Coalescer;
        /// Publishes `failed` (leader) or frees the place (waiter); leaves the ticket empty.
        void release() noexcept;

        Coalescer* owner_ = nullptr;
        std::shared_ptr<Flight> flight_;
        std::shared_ptr<Waiter> waiter_;
        std::optional<FillResult> held_;  ///< role held: the outcome
        Role role_ = Role::none;
    };

    /// `max_waiters` live waiters per key at most (RuleSet::max_waiters); more
    /// are refused. `max_unshared`: how many waiters of a not_shareable fill go
    /// upstream at once (at least 1).
    explicit Coalescer(std::size_t max_waiters, std::size_t max_unshared = 4);
    /// Requires that no Ticket or wait() is still alive.
    ~Coalescer();
    Coalescer(const Coalescer&) = delete;
    Coalescer& operator=(const Coalescer&) = delete;

    /// The first caller for `key` becomes the leader; later callers become waiters
    /// (or are rejected when the key already has max_waiters live waiters). A
    /// key whose last fill's outcome is held past `now` gives a `held` ticket.
    Ticket join(const CacheKey& key, TimePoint now = {});

    /// A leader ticket when no fill for `key` is in flight and no outcome is
    /// held past `now`, else an empty ticket (nobody queued): how a background
    /// refresh makes sure only one runs.
    Ticket lead_if_idle(const CacheKey& key, TimePoint now = {});

    /// The leader publishes the outcome: the in-flight slot is removed (the next
    /// join starts a fresh fill) and the waiters are woken on their own
    /// executors (all of them, or max_unshared at a time for not_shareable).
    /// `stored` and `answer` require an entry; other outcomes carry none. With
    /// `hold_until`, a failed or answer outcome is also held: join() before
    /// then returns it without a fill. No-op for a ticket that is not a live
    /// leader of this coalescer.
    void complete(Ticket& ticket, FillResult result, std::optional<TimePoint> hold_until = std::nullopt);

    /// A waiter sleeps until the outcome arrives or `timeout` passes. `executor`
    /// is the waiter's own, serialized executor (an io_context run by one thread,
    /// or a strand): the wake-up is posted there. Returns the outcome, or nullopt
    /// when timed out, cancelled, or the ticket is not a waiter (fetch on your own).
    boost::asio::awaitable<std::optional<FillResult>> wait(Ticket& ticket, boost::asio::any_io_executor executor,
                                                           std::chrono::milliseconds timeout);

    /// The counters.
    CoalescerStats stats() const;

    /// Fills in flight now.
    std::size_t in_flight() const;

private:
    static constexpr std::size_t kShards = 16;  ///< in-flight map shards, each with its own mutex

    /// The shard holding `hash`'s flights.
    Shard& shard_for(std::uint64_t hash) const;
    /// Creates a flight for `key` with a leader ticket; the shard's lock must be held.
    Ticket start_flight(Shard& shard, const CacheKey& key);
    /// Frees a waiter ticket's place (state queued/sleeping -> abandoned).
    void abandon(Ticket& ticket) noexcept;
    /// Hands `result` to a queued or sleeping waiter and wakes it; false when
    /// it is no longer waiting. `relay`: the turn it takes (not_shareable).
    bool deliver(const std::shared_ptr<Waiter>& w, const FillResult& result, std::shared_ptr<Relay> relay);
    /// Gives the next still-waiting waiter of `relay` its turn.
    void pass_turn(const std::shared_ptr<Relay>& relay);
    /// The outcome held for `key` past `now`, if any; drops an expired one. Shard lock held.
    const Held* held_for(Shard& shard, const CacheKey& key, TimePoint now);

    struct Counters {
#define CACHEPROXY_COUNTER_ATOMIC(name, description) std::atomic<std::uint64_t> name{0};
        CACHEPROXY_COALESCER_COUNTERS(CACHEPROXY_COUNTER_ATOMIC)
#undef CACHEPROXY_COUNTER_ATOMIC
    };

    std::size_t max_waiters_;
    std::size_t max_unshared_;
    std::size_t compact_at_;  ///< a flight's waiter list is purged of released waiters at this size
    std::unique_ptr<Shard[]> shards_;
    mutable Counters counters_;
};

}  // namespace cacheproxy::cache
