#pragma once
/// Everything the cached flows share across workers: the rules, the route and
/// trigger matchers, the identity hasher, the cache (cache/cache.hpp: store,
/// coalescer and generations behind one face), and the admin purge counts.

#include "cache/cache.hpp"
#include "cache/identity.hpp"
#include "cache/route_matcher.hpp"
#include "invalidation/trigger_matcher.hpp"
#include "principal/principal.hpp"
#include "rules/route_rule.hpp"
#include "stats/cache_counters.hpp"

#include <atomic>
#include <cstdint>
#include <memory>

namespace cacheproxy::app {

using stats::bump;
using stats::RouteCounters;
using stats::TriggerCounters;

struct CacheContext {
    explicit CacheContext(const rules::RuleSet& r)
        : rules(r), matcher(r), cache(r), triggers(r), principal(r.principal),
          purged(std::make_unique<std::atomic<std::uint64_t>[]>(r.routes.size())) {}

    const rules::RuleSet& rules;
    cache::RouteMatcher matcher;
    cache::IdentityHasher hasher;                ///< random key per process
    cache::Cache cache;                          ///< store, coalescer, generations: the one face
    invalidation::TriggerMatcher triggers;       ///< writes that make entries stale
    principal::Extractor principal;              ///< who is behind a credential (rules.principal)
    /// Entries dropped by the admin purge API, per route (the admin thread's
    /// counter: RouteCounters::purged of the workers stays 0).
    std::unique_ptr<std::atomic<std::uint64_t>[]> purged;

    /// Index of the route named `name`, or npos.
    std::size_t route_index(std::string_view name) const {
        const auto& routes = matcher.routes();
        for (std::size_t i = 0; i < routes.size(); ++i)
            if (routes[i].name == name) return i;
        return static_cast<std::size_t>(-1);
    }
};

}  // namespace cacheproxy::app
