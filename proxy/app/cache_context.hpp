#pragma once
/// Everything the cached flows share across workers: the rules, the route and
/// trigger matchers, the identity hasher, the cache (cache/cache.hpp: store,
/// coalescer and generations behind one face), and the per-route counters.

#include "cache/cache.hpp"
#include "cache/identity.hpp"
#include "cache/route_matcher.hpp"
#include "invalidation/trigger_matcher.hpp"
#include "rules/route_rule.hpp"

#include <atomic>
#include <cstdint>
#include <memory>

namespace cacheproxy::app {

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

/// Per-route counters (relaxed atomics).
struct RouteCounters {
#define CACHEPROXY_ROUTE_COUNTER_FIELD(name, description) std::atomic<std::uint64_t> name{0};
    CACHEPROXY_ROUTE_COUNTERS(CACHEPROXY_ROUTE_COUNTER_FIELD)
#undef CACHEPROXY_ROUTE_COUNTER_FIELD
};

/// Per-trigger counters.
struct TriggerCounters {
#define CACHEPROXY_TRIGGER_COUNTER_FIELD(name, description) std::atomic<std::uint64_t> name{0};
    CACHEPROXY_TRIGGER_COUNTERS(CACHEPROXY_TRIGGER_COUNTER_FIELD)
#undef CACHEPROXY_TRIGGER_COUNTER_FIELD
};

struct CacheContext {
    explicit CacheContext(const rules::RuleSet& r)
        : rules(r), matcher(r), cache(r), counters(std::make_unique<RouteCounters[]>(r.routes.size())), triggers(r),
          trigger_counters(std::make_unique<TriggerCounters[]>(r.triggers.size())) {}

    const rules::RuleSet& rules;
    cache::RouteMatcher matcher;
    cache::IdentityHasher hasher;                ///< random key per process
    cache::Cache cache;                          ///< store, coalescer, generations: the one face
    std::unique_ptr<RouteCounters[]> counters;   ///< indexed like rules.routes
    invalidation::TriggerMatcher triggers;       ///< writes that make entries stale
    std::unique_ptr<TriggerCounters[]> trigger_counters;  ///< indexed like rules.triggers

    /// Index of the route named `name`, or npos.
    std::size_t route_index(std::string_view name) const {
        const auto& routes = matcher.routes();
        for (std::size_t i = 0; i < routes.size(); ++i)
            if (routes[i].name == name) return i;
        return static_cast<std::size_t>(-1);
    }
};

}  // namespace cacheproxy::app
