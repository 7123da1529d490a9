#pragma once
/// The cache's counters per route and per trigger, declared once (X-macros:
/// the fields, the report's copies and the /stats and /metrics names all come
/// from these lists). One set per worker (core/worker.hpp), written by that
/// worker's thread only with bump(), summed when read (app/collect.cpp).

#include <atomic>
#include <cstdint>

namespace cacheproxy::stats {

/// Every per-route cache counter, declared once: X(name, description).
#define CACHEPROXY_ROUTE_COUNTERS(X)                                                          \
    X(hits, "answered from a fresh entry")                                                    \
    X(misses, "fills started: this request fetched for everyone waiting on the key")          \
    X(coalesced, "requests that waited on another request's fill instead of fetching")       \
    X(stale_served, "answered from an expired entry (stale-while-revalidate or stale-if-error)") \
    X(refreshes, "background refreshes started (refresh-ahead and stale-while-revalidate)")    \
    X(stored, "responses stored")                                                             \
    X(not_storable, "responses fetched for the cache that could not be stored")               \
    X(fill_errors, "fills that failed: upstream error or timeout; nothing stored")            \
    X(bypass_no_identity, "per-user route requested without an identity: forwarded, not cached") \
    X(bypass_uncacheable, "request the cache cannot key or answer (body, Range, repeated parameter)") \
    X(bypass_uncoalesced, "waiters that fetched on their own (fill not shareable, wait timed out, queue full)") \
    X(invalidated_in_flight, "fills not stored because a write made them stale while they were in flight") \
    X(purged, "entries dropped by the admin purge API")

/// Every per-trigger counter: X(name, description).
#define CACHEPROXY_TRIGGER_COUNTERS(X)                                                        \
    X(fired, "writes that succeeded (or whose outcome is unknown) and invalidated")          \
    X(failed_writes, "writes the app refused (success false, 4xx/5xx): nothing dropped")     \
    X(unknown_outcome, "writes whose outcome could not be read (timeout, reset, too large)") \
    X(widened, "invalidations widened to all of the writer's entries (scope field missing)") \
    X(entries_dropped, "cache entries dropped")

/// Per-route counters, one set per worker (app::Worker::route_counters):
/// written by that worker's thread only (app::bump), summed when read.
struct RouteCounters {
#define CACHEPROXY_ROUTE_COUNTER_FIELD(name, description) std::atomic<std::uint64_t> name{0};
    CACHEPROXY_ROUTE_COUNTERS(CACHEPROXY_ROUTE_COUNTER_FIELD)
#undef CACHEPROXY_ROUTE_COUNTER_FIELD
};

/// Per-trigger counters, one set per worker, like RouteCounters.
struct TriggerCounters {
#define CACHEPROXY_TRIGGER_COUNTER_FIELD(name, description) std::atomic<std::uint64_t> name{0};
    CACHEPROXY_TRIGGER_COUNTERS(CACHEPROXY_TRIGGER_COUNTER_FIELD)
#undef CACHEPROXY_TRIGGER_COUNTER_FIELD
};

/// Adds `n` to a counter only one thread writes: a relaxed load and store,
/// never a locked read-modify-write.
inline void bump(std::atomic<std::uint64_t>& c, std::uint64_t n = 1) {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

}  // namespace cacheproxy::stats
