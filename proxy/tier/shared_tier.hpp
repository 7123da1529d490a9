#pragma once
/// The shared tier (issue 15): N instances share, through Redis,
///   L2 entries      a leader's miss asks Redis before the upstream, a fill is
///                   written to both (tier/entry_codec.hpp);
///   fill leases     N instances missing one key cost one upstream call
///                   (SET NX PX, renewed while the fetch runs; a failure is
///                   held in the lease for coalesce.error_hold);
///   invalidations   a watched write bumps the user's global generations and
///                   publishes on the bus (SPUBLISH) before its answer leaves;
///                   every instance applies it to its own cache;
///   barriers        a per-user read waits for a PING on the bus connection
///                   sent after it arrived, so every invalidation answered
///                   before the read is applied before the read looks
///                   (tier/barrier.hpp; ARCHITECTURE.md, "Across instances").
///
/// All Redis I/O runs on this object's own thread (one io_context: the
/// redis::Client, the subscriber redis::Node, the scripts). Workers call the
/// awaitable functions below, which run there and resume the caller on its
/// own executor; nothing here blocks a worker. Every operation has a
/// deadline; a Redis that is down, slow or restarted gives `unavailable`
/// results, never an exception or a client error: the session then falls
/// back to this instance's cache on the safe side (per-user reads bypass the
/// cache while the bus is down, unless on_redis_down is "local").

#include "cache/cache_key.hpp"
#include "cache/cached_response.hpp"
#include "cache/clock.hpp"
#include "cache/identity.hpp"
#include "config/config.hpp"
#include "rules/route_rule.hpp"
#include "tier/bus_message.hpp"
#include "tier/keys.hpp"

#include <boost/asio/awaitable.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace cacheproxy::tier {

/// Counters for /stats and /metrics. Each is written by one thread (the
/// tier's, except `degraded`, a relaxed add on a read that falls back).
struct TierStats {
    std::atomic<std::uint64_t> barriers{0};          ///< PINGs answered
    std::atomic<std::uint64_t> barrier_waits{0};     ///< reads that waited for one
    std::atomic<std::uint64_t> barrier_fresh{0};     ///< reads served by a recent one (max_invalidation_lag)
    std::atomic<std::uint64_t> barrier_failures{0};  ///< reads whose barrier failed or timed out
    std::atomic<std::uint64_t> barrier_wait_us{0};   ///< summed over barrier_waits
    std::atomic<std::uint64_t> l2_hits{0}, l2_misses{0}, l2_rejected{0}, l2_errors{0};
    std::atomic<std::uint64_t> l2_stores{0}, l2_store_refused{0};
    std::atomic<std::uint64_t> lease_won{0}, lease_waits{0}, lease_failed_seen{0}, lease_timeouts{0};
    std::atomic<std::uint64_t> published{0}, publish_failures{0}, debt{0}, debt_delivered{0};
    std::atomic<std::uint64_t> bus_messages{0}, bus_bad_messages{0}, bus_lag_us_last{0}, bus_lag_us_max{0};
    std::atomic<std::uint64_t> bus_epochs{0};        ///< bump_all() calls: a bus (re)connect
    std::atomic<std::uint64_t> degraded{0};          ///< per-user reads forwarded while the bus was down
};

class SharedTier {
public:
    /// What the tier needs from the process: apply a bus message to this
    /// instance's cache (under its running rules), and make every per-user
    /// entry stale (after a bus gap).
    struct Hooks {
        std::function<void(const BusMessage&)> apply;
        std::function<void()> bump_all;
    };
    /// `generation_ttl`: how long a generation key lives after its last bump
    /// (longer than any entry of the rules, plus the response timeout);
    /// `error_hold`: how long a failed fill is held in its lease.
    SharedTier(const config::SharedTierConfig& cfg, const cache::IdentityHasher& hasher, Hooks hooks,
               std::chrono::milliseconds generation_ttl, std::chrono::milliseconds error_hold, bool principals);
    ~SharedTier();
    SharedTier(const SharedTier&) = delete;
    SharedTier& operator=(const SharedTier&) = delete;

    /// Starts the thread and connects. Waits (this thread, at start-up) up to
    /// `wait` for the first key check: an error when Redis holds another
    /// instance's key fingerprint (instances hashing credentials differently
    /// would miss each other's invalidations). Redis unreachable is not an
    /// error: the tier starts down and connects when it can.
    std::optional<std::string> start(std::chrono::milliseconds wait);
    /// Stops the thread (pending operations complete as unavailable).
    void stop();

    /// The bus is connected, subscribed and the key checked: barriers work.
    bool bus_up() const { return bus_up_.load(std::memory_order_acquire); }
    /// Per-user reads while the bus is down are forwarded uncached.
    bool bypass_when_down() const { return bypass_when_down_; }
    /// Whether misses of a route ask (and fills go to) the shared tier. Not
    /// for per-user routes when the rules map tokens to principals: another
    /// instance may map a token this one does not know, so a write through
    /// here could not reach that token's shared entries.
    bool l2_for(bool per_user) const { return l2_ && (!per_user || !principals_); }
    /// "up", "connecting", "down", "key-mismatch".
    std::string state() const;
    const std::string& instance_id() const { return instance_id_; }
    const TierStats& stats() const { return stats_; }
    void count_degraded() { stats_.degraded.fetch_add(1, std::memory_order_relaxed); }
    /// Redis round trips: ops, errors, timeouts, the latest round trip (us), nodes.
    struct Transport { std::uint64_t ops = 0, errors = 0, timeouts = 0, connects = 0, last_rtt_us = 0, nodes = 0; };
    Transport transport() const;

    /// Read-your-writes across instances: true once every invalidation
    /// published before this call has been applied here (or, with
    /// max_invalidation_lag H, before a barrier sent at most H before this
    /// call). False when the bus is down or slower than barrier_timeout.
    boost::asio::awaitable<bool> barrier();

    /// What the shared tier holds for a leader's miss.
    struct Found {
        enum class Kind { unavailable, hit, lead, failed };
        Kind kind = Kind::unavailable;
        EntryKeys keys;          ///< the key's names in Redis (what store / fail / release use)
        cache::EntryPtr entry;   ///< hit: the entry, recording `local_generation`
        std::string generation;  ///< the global generation read (hit, lead); "" = none (a store is not attempted)
        std::string lease;       ///< our lease's value ("" = none held)
        unsigned status = 0;     ///< failed: the status the lease holder's fill failed with
        /// lead: the shared entry of this generation past its freshness (a
        /// fallback for a failed fetch, within the route's stale_if_error).
        cache::EntryPtr stale;
    };
    /// Looks `key` up for its local fill's leader: an L2 entry valid under the
    /// global generation, or the lease (lead), or, while another instance
    /// holds the lease, polls (20 ms doubling to 200 ms) until its entry or
    /// its failure is there, the lease is free, or `wait_limit` passes (then
    /// lead without a lease). `local_generation`: this instance's generation
    /// of the key, read before (what an L2 entry made here records).
    boost::asio::awaitable<Found> find(const cache::CacheKey& key, const rules::RouteRule& rule,
                                       std::uint64_t local_generation, cache::TimePoint now,
                                       std::chrono::milliseconds wait_limit);
    /// The global generation of `key` now, without a lease (a lead without
    /// one; unavailable when Redis is not): a background refresh reads it
    /// before its fetch, and stores with it.
    boost::asio::awaitable<Found> generation(const cache::CacheKey& key, const rules::RouteRule& rule);
    /// After the leader's fetch (detached; the client's answer never waits):
    /// stores `entry` if the global generation is still `found.generation`
    /// (compare-and-set), and releases the lease.
    void store(const cache::CacheKey& key, const Found& found, cache::EntryPtr entry, cache::TimePoint now);
    /// The fetch failed with `status`: the lease holds the failure for error_hold.
    void fail(const Found& found, unsigned status);
    /// Nothing to share (not storable, too large): the lease is dropped.
    void release(const Found& found);

    /// A watched write's invalidation, before its answer is written: bumps
    /// `identity`'s global generations of `routes` and publishes the message.
    /// True when the bus acknowledged it within publish_timeout; false: it
    /// is queued (the debt) and delivered when Redis answers again.
    boost::asio::awaitable<bool> publish(cache::IdentityHash identity, std::vector<std::string> routes,
                                         bool drop_credential, std::optional<cache::IdentityHash> principal);

private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
    TierStats stats_;
    std::atomic<bool> bus_up_{false};
    bool bypass_when_down_ = true;
    bool l2_ = true;
    bool principals_ = false;
    std::string instance_id_;
};

}  // namespace cacheproxy::tier
