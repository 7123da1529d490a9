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
///   not_storable  -> fetch for itself, uncoalesced: the leader's response may
///                    not be shared (Set-Cookie, private, ...);
///   failed        -> fetch for itself (or answer from a stale entry within
///                    stale_if_error); nothing was stored.
///   nullopt from wait() (timed out, cancelled, or refused a place because the
///   queue is full) -> fetch for itself.
/// Unlike Envoy, a failed fill is not handed to a promoted waiter: each current
/// waiter gets the failure, and only a *new* request starts a new fill.
///
/// Lifetime: the Coalescer must outlive every Ticket and every wait().

#include "cache/cache_key.hpp"
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
    X(abandoned_fills, "leaders dropped without completing: published as failed")

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

    private:
        friend class Coalescer;
        /// Publishes `failed` (leader) or frees the place (waiter); leaves the ticket empty.
        void release() noexcept;

        Coalescer* owner_ = nullptr;
        std::shared_ptr<Flight> flight_;
        std::shared_ptr<Waiter> waiter_;
        Role role_ = Role::none;
    };

    /// `max_waiters` live waiters per key at most (RuleSet::max_waiters); more are refused.
    explicit Coalescer(std::size_t max_waiters);
    /// Requires that no Ticket or wait() is still alive.
    ~Coalescer();
    Coalescer(const Coalescer&) = delete;
    Coalescer& operator=(const Coalescer&) = delete;

    /// The first caller for `key` becomes the leader; later callers become waiters
    /// (or are rejected when the key already has max_waiters live waiters).
    Ticket join(const CacheKey& key);

    /// A leader ticket when no fill for `key` is in flight, else an empty ticket
    /// (nobody queued): how a background refresh makes sure only one runs.
    Ticket lead_if_idle(const CacheKey& key);

    /// The leader publishes the outcome: the in-flight slot is removed (the next
    /// join starts a fresh fill) and every waiter is woken on its own executor.
    /// `stored` requires an entry; other outcomes carry none. No-op for a
    /// ticket that is not a live leader of this coalescer.
    void complete(Ticket& ticket, FillResult result);

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

    struct Counters {
#define CACHEPROXY_COUNTER_ATOMIC(name, description) std::atomic<std::uint64_t> name{0};
        CACHEPROXY_COALESCER_COUNTERS(CACHEPROXY_COUNTER_ATOMIC)
#undef CACHEPROXY_COUNTER_ATOMIC
    };

    std::size_t max_waiters_;
    std::size_t compact_at_;  ///< a flight's waiter list is purged of released waiters at this size
    std::unique_ptr<Shard[]> shards_;
    mutable Counters counters_;
};

}  // namespace cacheproxy::cache
