#pragma once
/// Everything the cached flows share across workers: the identity hasher, the
/// cache (cache/cache.hpp: store, coalescer and generations behind one face),
/// the admin purge counts, and the running rules (RuleSnapshot), which a
/// reload replaces (app/reload.cpp) while the cache and the hasher stay.

#include "cache/cache.hpp"
#include "cache/identity.hpp"
#include "cache/memory_store.hpp"
#include "cache/route_matcher.hpp"
#include "invalidation/trigger_matcher.hpp"
#include "principal/principal.hpp"
#include "rules/route_rule.hpp"
#include "stats/cache_counters.hpp"
#include "tier/shared_tier.hpp"

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace cacheproxy::app {

using stats::bump;
using stats::RouteCounters;
using stats::TriggerCounters;

/// Counter slots: a route counts under its store slot (kept while its
/// fingerprint is, never reused: cache::MemoryStore::kMaxRoutes of them), a
/// trigger under a slot kept while its name is (never reused either). The
/// per-worker counter arrays and the per-request stats cells are sized for
/// all of them at start, so a reload that adds, removes, renames or reorders
/// routes and triggers allocates nothing a worker writes (core/worker.hpp).
inline constexpr std::size_t kRouteSlots = cache::MemoryStore::kMaxRoutes;
inline constexpr std::size_t kTriggerSlots = 256;
/// stats::WorkerStats cells: pass-through (0), then one per route slot, then one per trigger slot.
inline constexpr std::size_t kStatsCells = 1 + kRouteSlots + kTriggerSlots;

/// One version of the rules: what a request runs on from start to finish.
/// Immutable. Each worker holds its own copy (Worker::snapshot, its own
/// reference count: taking it per request writes no cache line another
/// thread writes); a request, its coalesced wait and its background refresh
/// hold a reference, so a reload never changes the rules under them.
struct RuleSnapshot {
    RuleSnapshot(rules::RuleSet r, std::vector<std::size_t> slot_of, std::vector<std::size_t> trigger_slot_of,
                 std::uint64_t v, std::string config_v, cache::Cache& c, const cache::IdentityHasher& h)
        : rules(std::move(r)), matcher(rules), triggers(rules), slots(std::move(slot_of)),
          trigger_slots(std::move(trigger_slot_of)), version(v), config_version(std::move(config_v)), cache(c),
          hasher(h) {}
    RuleSnapshot(const RuleSnapshot&) = delete;
    RuleSnapshot& operator=(const RuleSnapshot&) = delete;

    const rules::RuleSet rules;
    cache::RouteMatcher matcher;                 ///< over rules.routes
    invalidation::TriggerMatcher triggers;       ///< over rules.triggers
    /// Per route (rules order): its store slot, the CacheKey::route_index of
    /// its keys. Kept across reloads while the route's fingerprint is.
    const std::vector<std::size_t> slots;
    /// Per trigger (rules order): its counter slot (< kTriggerSlots), kept
    /// across reloads while a trigger of that name is in the rules.
    const std::vector<std::size_t> trigger_slots;
    const std::uint64_t version;                 ///< 1 at start, +1 per applied reload
    const std::string config_version;            ///< stats::config_version() of the files it came from
    cache::Cache& cache;                         ///< the process's one cache (outlives every snapshot)
    const cache::IdentityHasher& hasher;         ///< the process's one key (outlives every snapshot)

    /// The store slot of route `route_index`.
    std::size_t slot(std::size_t route_index) const { return slots[route_index]; }
    /// The counter slot of trigger `trigger_index`.
    std::size_t trigger_slot(std::size_t trigger_index) const { return trigger_slots[trigger_index]; }
    /// The stats::WorkerStats cell route `route_index` / trigger `trigger_index` counts its requests in.
    std::size_t route_cell(std::size_t route_index) const { return 1 + slot(route_index); }
    std::size_t trigger_cell(std::size_t trigger_index) const { return 1 + kRouteSlots + trigger_slot(trigger_index); }

    /// Index of the route named `name`, or npos.
    std::size_t route_index(std::string_view name) const {
        const auto& routes = matcher.routes();
        for (std::size_t i = 0; i < routes.size(); ++i)
            if (routes[i].name == name) return i;
        return static_cast<std::size_t>(-1);
    }

    /// An equal snapshot with a reference count of its own (one per worker).
    std::shared_ptr<const RuleSnapshot> copy() const {
        return std::make_shared<const RuleSnapshot>(rules, slots, trigger_slots, version, config_version, cache,
                                                    hasher);
    }
};

struct CacheContext {
    /// The cache for `r`'s routes (slots 0..n-1) and the first snapshot. `r`
    /// must outlive the context (cache::Cache keeps its coalesce settings).
    CacheContext(const rules::RuleSet& r, std::string config_version)
        : cache(r), purged(std::make_unique<std::atomic<std::uint64_t>[]>(kRouteSlots)),
          trigger_slot_names(initial_trigger_names(r)), principal(r.principal),
          initial(std::make_shared<const RuleSnapshot>(r, identity_slots(r.routes.size()),
                                                       identity_slots(r.triggers.size()), 1,
                                                       std::move(config_version), cache, hasher)),
          current_(initial), version_(1) {}

    /// A random key per process, or the shared tier's key file (rekeyed at
    /// start, before any worker runs): survives every reload.
    cache::IdentityHasher hasher;
    cache::Cache cache;                          ///< store, coalescer, generations: the one face
    /// Entries dropped by the admin purge API, per route store slot (the
    /// admin thread's counter: RouteCounters::purged of the workers stays 0).
    std::unique_ptr<std::atomic<std::uint64_t>[]> purged;
    /// The trigger name each trigger counter slot was given (index = slot;
    /// a slot is never given to another name). Touched by the reload only.
    std::vector<std::string> trigger_slot_names;
    /// Who is behind a credential (rules.principal, as at start: a reload
    /// that changes the principal section is refused).
    principal::Extractor principal;
    /// The snapshot the process started with.
    const std::shared_ptr<const RuleSnapshot> initial;
    /// The shared tier (shared_tier in the config), or null: every cached
    /// flow tests this one pointer and does nothing more when it is null.
    std::unique_ptr<tier::SharedTier> tier;

    /// The running rules (the admin, the reload, a write that checks for a
    /// newer version). Takes a lock: never called per cached read.
    std::shared_ptr<const RuleSnapshot> current() const {
        std::lock_guard lock(mu_);
        return current_;
    }
    /// current()->version without the lock.
    std::uint64_t version() const { return version_.load(std::memory_order_seq_cst); }
    /// Makes `s` the running rules (before any worker is handed a copy).
    void publish(std::shared_ptr<const RuleSnapshot> s) {
        std::lock_guard lock(mu_);
        version_.store(s->version, std::memory_order_seq_cst);
        current_ = std::move(s);
    }

private:
    static std::vector<std::string> initial_trigger_names(const rules::RuleSet& r) {
        std::vector<std::string> names;
        for (const auto& t : r.triggers) names.push_back(t.name);
        return names;
    }
    static std::vector<std::size_t> identity_slots(std::size_t n) {
        std::vector<std::size_t> v(n);
        for (std::size_t i = 0; i < n; ++i) v[i] = i;
        return v;
    }
    mutable std::mutex mu_;
    std::shared_ptr<const RuleSnapshot> current_;  ///< guarded by mu_
    std::atomic<std::uint64_t> version_;
};

}  // namespace cacheproxy::app
