#pragma once
/// The in-process storage interface, behind cache::Cache (cache/cache.hpp),
/// which alone calls it: MemoryStore implements it. It is synchronous on
/// purpose: a lookup is a shard lock and a pointer copy. A networked tier
/// (Redis) cannot sit behind it without blocking a worker; it belongs on the
/// fill leader's path instead, an awaitable step between "I lead this fill"
/// and "go upstream" (cache/cache.hpp).

#include "cache/cache_key.hpp"
#include "cache/cached_response.hpp"
#include "cache/clock.hpp"
#include "cache/identity.hpp"
#include "rules/route_rule.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>

namespace cacheproxy::cache {

/// One route's occupancy and reclamation counts.
struct RouteStoreStats {
    std::size_t entries = 0;              ///< entries held
    std::size_t bytes = 0;                ///< bytes charged (entry + key + store overhead)
    std::uint64_t evictions = 0;          ///< entries pushed out by the entry/byte bounds (LRU)
    std::uint64_t expired_reclaimed = 0;  ///< entries dropped because past ttl + stale windows
};

/// Where entries live. Thread-safe; no method throws.
class CacheStore {
public:
    /// Virtual: stores are owned through the interface.
    virtual ~CacheStore();

    /// The entry under `key`, including one past its TTL but within its stale
    /// windows (the caller decides with classify()); null when absent. An entry
    /// past ttl + max(stale windows) is dropped here and null returned.
    virtual EntryPtr lookup(const CacheKey& key, TimePoint now) = 0;

    /// Stores `entry` under `key` (replacing any previous one), evicting as the
    /// route's bounds require. An entry that cannot fit, or is already useless
    /// at `now`, is not stored.
    virtual void insert(const CacheKey& key, EntryPtr entry, TimePoint now) = 0;

    /// Removes the entry under `key`; true when there was one.
    virtual bool erase(const CacheKey& key) = 0;

    /// Removes every entry of a route; returns how many.
    virtual std::size_t erase_route(std::size_t route_index) = 0;

    /// Removes every entry of one identity on a route; returns how many.
    virtual std::size_t erase_identity(std::size_t route_index, const IdentityHash& identity) = 0;

    /// Removes everything; returns how many.
    virtual std::size_t clear() = 0;

    /// A route's counts (zeros for an unknown route).
    virtual RouteStoreStats stats(std::size_t route_index) const = 0;

    // A reload (app/reload.cpp), from one thread at a time:
    /// A new, empty partition for `rule`: its slot (the CacheKey::route_index
    /// of its keys), never one used before; nullopt when no slot is left.
    virtual std::optional<std::size_t> add_route(const rules::RouteRule& rule) = 0;
    /// The route's TTL and stale windows changed: its entries are kept until
    /// past the longer of the windows they were stored with and the new ones.
    virtual void retune_route(std::size_t route_index, const rules::RouteRule& rule) = 0;
    /// The route is gone or re-keyed: from now on nothing is found or stored
    /// in its partition; its entries are dropped. Returns how many.
    virtual std::size_t retire_route(std::size_t route_index) = 0;
};

}  // namespace cacheproxy::cache
