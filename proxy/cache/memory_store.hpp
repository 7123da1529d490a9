#pragma once
/// The in-process store: per route, a few independently locked shards, each an
/// exact LRU bounded by its share of the route's max_entries and max_bytes.
///
/// Why split the bounds across shards rather than keep route-wide atomics: a
/// shard then decides evictions alone, under its own lock, with an exact LRU
/// and a hard bound; route-wide counters would need a cross-shard victim
/// search (or an approximate one) on every insert. The cost is that a route's
/// LRU is exact per shard only, and a shard may evict while another still has
/// room; the shard count is chosen so each shard holds at least
/// kMinEntriesPerShard entries and 4 maximal objects, small routes get one
/// shard (exact LRU), and the sum of the shares never exceeds the route's bounds.
///
/// Hot path: lookup hashes nothing (CacheKey carries its hash), allocates
/// nothing (the index is searched with a view of the key), and holds the shard
/// lock only to find the node, move it to the LRU front and copy the EntryPtr.
///
/// Per entry the store spends one heap block: a node holding the LRU links,
/// the hash-chain link, the hash, the EntryPtr and the key bytes inline
/// (Boost.Intrusive containers over it), plus one bucket slot of the shard's
/// index, allocated up front for max_entries. A per-user key ends with its
/// identity hash, so erase_identity reads it from the key bytes.
///
/// Nodes that leave the store are spliced out under the lock and destroyed
/// after it is released, so freeing a large body never happens under a lock.
/// Expired entries are reclaimed when looked up, and up to kReclaimPerInsert of
/// them at the LRU tail per insert: nothing ever sweeps a whole map on the hot path.

#include "cache/cache_store.hpp"
#include "rules/route_rule.hpp"

#include <atomic>
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

namespace cacheproxy::cache {

/// CacheStore in this process's memory.
class MemoryStore final : public CacheStore {
public:
    static constexpr std::size_t kMaxShards = 16;           ///< shards per route, at most (a power of two)
    static constexpr std::size_t kMinEntriesPerShard = 64;  ///< fewer shards rather than tiny LRUs
    static constexpr std::size_t kReclaimPerInsert = 2;     ///< expired tail entries looked at per insert
    /// Partitions a process can ever have: the routes at start plus every
    /// route added or re-keyed by a reload (a slot is never reused).
    static constexpr std::size_t kMaxRoutes = 1024;

    /// One partition per route of `rules`, in rule order (CacheKey::route_index
    /// is the partition's slot: 0..n-1 for these).
    explicit MemoryStore(const rules::RuleSet& rules);
    /// Frees every entry (shared ones live on with their last holder).
    ~MemoryStore() override;

    /// See CacheStore::lookup.
    EntryPtr lookup(const CacheKey& key, TimePoint now) override;
    /// See CacheStore::insert. An entry older (stored_at) than the one it would replace is dropped.
    void insert(const CacheKey& key, EntryPtr entry, TimePoint now) override;
    /// See CacheStore::erase.
    bool erase(const CacheKey& key) override;
    /// See CacheStore::erase_route.
    std::size_t erase_route(std::size_t route_index) override;
    /// See CacheStore::erase_identity (walks the route's shards one lock at a time).
    std::size_t erase_identity(std::size_t route_index, const IdentityHash& identity) override;
    /// See CacheStore::clear.
    std::size_t clear() override;
    /// See CacheStore::stats (sums the shards, one lock at a time).
    RouteStoreStats stats(std::size_t route_index) const override;
    /// See CacheStore::add_route (nullopt past kMaxRoutes).
    std::optional<std::size_t> add_route(const rules::RouteRule& rule) override;
    /// See CacheStore::retune_route.
    void retune_route(std::size_t route_index, const rules::RouteRule& rule) override;
    /// See CacheStore::retire_route.
    std::size_t retire_route(std::size_t route_index) override;

    /// How many shards a route has (tests, reports).
    std::size_t shard_count(std::size_t route_index) const;

    /// The shard count for a route: the largest power of two <= kMaxShards that
    /// leaves each shard kMinEntriesPerShard entries and 4 * max_object_bytes.
    static std::size_t shards_for(const rules::RouteRule& rule);

    /// Bytes an entry costs under `key`: entry.charge() + node_overhead(key.bytes.size()).
    static std::size_t charge_of(const CacheKey& key, const CachedResponse& entry);

    /// The store's own bytes per entry beyond the entry, for a key of
    /// `key_bytes` bytes: the node block (links, hash, handle, key bytes) and
    /// one bucket slot of the index.
    static std::size_t node_overhead(std::size_t key_bytes);

private:
    struct Shard;
    struct Route;
    /// The partition in `slot`, or null. Slots are filled once (before the
    /// rules naming them are published to the workers) and never emptied.
    Route* route(std::size_t slot) const {
        return slot < kMaxRoutes ? slots_[slot].load(std::memory_order_acquire) : nullptr;
    }
    static std::unique_ptr<Route> make_route(const rules::RouteRule& rule);

    std::unique_ptr<std::atomic<Route*>[]> slots_;  ///< kMaxRoutes, null past `used_`
    std::mutex grow_mu_;                           ///< add_route (the reload thread)
    std::size_t used_ = 0;                         ///< guarded by grow_mu_
    std::vector<std::unique_ptr<Route>> owned_;    ///< guarded by grow_mu_; freed with the store
};

}  // namespace cacheproxy::cache
