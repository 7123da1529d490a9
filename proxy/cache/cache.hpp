#pragma once
/// The cache's one face. Every read, fill and invalidation goes through this
/// class, and it owns the two checks read-your-writes rests on
/// (ARCHITECTURE.md): an entry is served only under the scope generation it
/// was fetched in (lookup), and a fill is stored only if no write moved that
/// generation while it was in flight (publish). Nothing outside cache/ touches
/// the store, the generations or the coalescer.
///
/// A request for a cached route:
///   lookup()             generation first, then the entry under it
///   miss -> join()       leader, waiter, or a held failure (coalesced on key + generation)
///   leader               [a second, asynchronous tier would be asked here: the
///                         leader alone awaits it, between join() and the upstream]
///                        -> fetch upstream -> publish()
///   waiter -> wait()     the leader's outcome, woken on its own executor
/// A watched write: invalidate() bumps the generations of its scope, then drops
/// the entries, before the write's answer is returned.

#include "cache/cache_key.hpp"
#include "cache/cache_store.hpp"
#include "cache/clock.hpp"
#include "cache/coalescer.hpp"
#include "cache/fill_result.hpp"
#include "cache/freshness.hpp"
#include "cache/generations.hpp"
#include "cache/identity.hpp"
#include "cache/principal_map.hpp"
#include "rules/route_rule.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

namespace cacheproxy::cache {

class Cache {
public:
    /// A store sized from `rules`' routes (slots 0..n-1). `rules` must outlive
    /// the cache; its coalesce settings are the ones a reload may not change.
    explicit Cache(const rules::RuleSet& rules);
    Cache(const Cache&) = delete;
    Cache& operator=(const Cache&) = delete;

    /// What a lookup found.
    struct Lookup {
        EntryPtr entry;                      ///< an entry of the current generation; null: none
        Freshness freshness = Freshness::expired;  ///< classify(entry) when there is one
        std::uint64_t generation = 0;        ///< the scope generation, read before the lookup
    };
    /// Reads `key`'s scope generation, then (unless `skip_store`: the client
    /// bypasses the cache) the entry under `key`: one fetched under an older
    /// generation predates a write and is never returned.
    Lookup lookup(const CacheKey& key, const rules::RouteRule& rule, TimePoint now, bool skip_store = false);

    /// One caller's part in the fill of a key at a generation.
    struct Fill {
        Coalescer::Ticket ticket;
        CacheKey key;                  ///< the cache key (not the flight key)
        std::uint64_t generation = 0;  ///< what the entry it makes records
        bool leader() const { return ticket.leader(); }
        /// Waits (a waiter, or a failure held from the key's last fill).
        bool waits() const { return ticket.waiter() || ticket.held(); }
    };
    /// Joins the fill of `key` at `generation` (the one lookup() read): the
    /// first caller leads, later ones wait, and within a held failure nobody fetches.
    Fill join(const CacheKey& key, std::uint64_t generation, TimePoint now);
    /// A leader's Fill when no fill of `key` at `generation` is in flight or
    /// held, else an empty one: one background refresh at a time.
    Fill lead_if_idle(const CacheKey& key, std::uint64_t generation, TimePoint now);
    /// A waiter's outcome (at once for a held one); nullopt after `timeout`.
    boost::asio::awaitable<std::optional<FillResult>> wait(Fill& fill, boost::asio::any_io_executor executor,
                                                           std::chrono::milliseconds timeout);

    /// What publish() did with a stored outcome.
    enum class Published {
        stored,                 ///< in the store
        invalidated_in_flight,  ///< a write moved the generation meanwhile: not stored (waiters still get it)
        not_stored,             ///< not a stored outcome: only the waiters got it
    };
    /// The leader publishes its outcome. A stored one goes into the store only
    /// if `fill.key`'s generation is still `fill.generation`; a failure (a
    /// failed outcome, or an answer with a 5xx) is held for coalesce.error_hold;
    /// every waiter gets the outcome.
    Published publish(Fill& fill, FillResult result, TimePoint now);

    /// What one invalidation drops: exact keys, and whole routes of one identity.
    struct Invalidation {
        IdentityHash identity{};
        std::vector<CacheKey> exact;
        std::vector<std::size_t> whole_routes;
        /// The writer's principal's other credentials (widen()): each loses its
        /// entries in every route of `exact` and `whole_routes` (wider is safe).
        std::vector<IdentityHash> principal_credentials;
        /// The writer's principal, when widen() knew it (the shared tier tells the other instances).
        std::optional<PrincipalHash> principal;
    };
    /// Bumps the generations first (from then on nothing older is served or
    /// stored), then frees the entries. Returns how many were dropped.
    std::size_t invalidate(const Invalidation& plan);

    /// Every per-user entry and fill in flight is stale from now on (the
    /// shared tier's bus had a gap: invalidations may have been missed).
    void bump_all() { generations_.bump_all(); }

    /// Admin purge of a whole route: drops its entries (one user's: invalidate()).
    std::size_t purge_route(std::size_t route_index);

    /// A reload (app/reload.cpp), one at a time. `route_index` here is a
    /// store slot (CacheKey::route_index): a route keeps its slot, and so its
    /// entries and generations, for as long as its fingerprint
    /// (rules/rule_diff.hpp) stays the same.
    /// A new empty slot for `rule`; nullopt when none is left.
    std::optional<std::size_t> add_route(const rules::RouteRule& rule);
    /// The route's TTL and stale windows are now `rule`'s.
    void retune_route(std::size_t route_index, const rules::RouteRule& rule) {
        store_->retune_route(route_index, rule);
    }
    /// Nothing is found or stored in the slot any more; its entries are dropped.
    std::size_t retire_route(std::size_t route_index);

    // Principals (cache_principal.cpp; rules.principal). All on the miss,
    // write and refusal paths: a hit never touches the map.

    /// Whether rules.principal names a source.
    bool principals_enabled() const { return principals_ != nullptr; }
    /// The principal write sequence (0 when disabled): a fill reads it before its request goes upstream.
    std::uint64_t write_seq() const { return principals_ ? principals_->write_seq() : 0; }
    /// The mapping step of a per-user fill of `key` whose answer (fetched after
    /// write_seq() was `since`) names `principal`. Returns the generation its
    /// entry records: `generation` when the credential was already mapped to
    /// it; one more when this answer maps it (its older entries are dropped by
    /// the same bump); nullopt when the answer may predate a write of that
    /// principal (not to be stored). ARCHITECTURE.md, invariant 6.
    std::optional<std::uint64_t> learn(const CacheKey& key, std::uint64_t generation, std::uint64_t since,
                                       const PrincipalHash& principal, TimePoint now);
    /// As learn() without a fill (a write's own answer or token names the writer).
    void learn_credential(const IdentityHash& identity, const PrincipalHash& principal, TimePoint now);
    /// A write by plan.identity: stamps its principal (when known) and lists
    /// its other credentials in plan.principal_credentials. False when the
    /// writer's principal is not known (the plan stays the writer's own).
    bool widen(Invalidation& plan, TimePoint now);
    /// A write by `principal` through another instance: lists this
    /// instance's credentials of it in plan.principal_credentials (and
    /// stamps it, so a fill in flight that maps a credential to it is not stored).
    void widen_remote(Invalidation& plan, const PrincipalHash& principal);
    /// Drops every entry of `identity` in every per-user route, and its
    /// mapping: the upstream refused the credential (401/403), or it logged out.
    std::size_t drop_credential(const IdentityHash& identity);
    /// drop_credential() for an upstream 401/403 (counted), or a logout trigger (counted).
    std::size_t drop_refused(const IdentityHash& identity) {
        refused_.fetch_add(1, std::memory_order_relaxed);
        return drop_credential(identity);
    }
    std::size_t drop_logged_out(const IdentityHash& identity) {
        logouts_.fetch_add(1, std::memory_order_relaxed);
        return drop_credential(identity);
    }
    std::uint64_t refused_credentials() const { return refused_.load(std::memory_order_relaxed); }
    std::uint64_t logouts() const { return logouts_.load(std::memory_order_relaxed); }
    PrincipalMapStats principal_stats() const { return principals_ ? principals_->stats() : PrincipalMapStats{}; }

    /// Observers, for /stats.
    RouteStoreStats store_stats(std::size_t route_index) const { return store_->stats(route_index); }
    CoalescerStats coalescer_stats() const { return coalescer_.stats(); }
    std::size_t fills_in_flight() const { return coalescer_.in_flight(); }

private:
    const rules::RuleSet& rules_;
    std::unique_ptr<CacheStore> store_;
    Coalescer coalescer_;
    Generations generations_;
    /// Per store slot: a per-user route runs in it (set by the constructor and
    /// add_route, cleared by retire_route: a reload's, while other threads read).
    std::unique_ptr<std::atomic<bool>[]> per_user_slot_;
    std::atomic<std::size_t> slot_end_{0};        ///< one past the highest slot given out
    /// The store slots of the per-user routes now (the principal steps: never on a hit).
    std::vector<std::size_t> per_user_routes() const;
    std::unique_ptr<PrincipalMap> principals_;    ///< null: rules.principal has no source
    /// Written on refusals and logouts only, never on a hit; a line of their own,
    /// apart from what every lookup reads.
    alignas(64) std::atomic<std::uint64_t> refused_{0};
    std::atomic<std::uint64_t> logouts_{0};
    /// Bumps every per-user route of `identity`, then erases its entries.
    std::size_t drop_entries(const IdentityHash& identity);
};

}  // namespace cacheproxy::cache
