#pragma once
/// Read-your-writes by generation counters. No I/O, thread-safe, lock-free.

#include "cache/cache_key.hpp"
#include "cache/identity.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

namespace cacheproxy::cache {

/// Per-scope generations. An entry records current(key) when its upstream fetch
/// STARTS; a lookup serves it only while current(key) still equals that. A write
/// bumps the generation of its scope before its response is returned, so nothing
/// fetched before the write completed is ever served again. Both tables only grow,
/// so their sum changes whenever either does. Slots are hashed: two scopes sharing
/// a slot only cause an extra refetch (wider is safe), never a stale read.
class Generations {
public:
    /// Two tables of `slots` counters each, rounded up to a power of two (at least 1).
    explicit Generations(std::size_t slots = 1 << 16);

    /// The generation of `key`: user[slot(route, identity)] + exact[slot(key.hash)]
    /// (+ the epoch for a key with an identity).
    /// A shared route's key (no identity) uses the all-zero identity's user slot.
    std::uint64_t current(const CacheKey& key) const;
    /// Makes every entry of `key` (a scoped write) stale.
    void bump_exact(const CacheKey& key);
    /// Makes all of a user's entries in one route stale (a widened write).
    void bump_user(std::size_t route_index, const IdentityHash& identity);
    /// bump_user for each of `routes`, each slot once even where two routes
    /// share one (so a key's generation moves by exactly one when its slot is among them).
    void bump_identity(const IdentityHash& identity, std::span<const std::size_t> routes);

    /// Makes every per-user entry stale at once (the shared tier's bus came
    /// back after a gap in which invalidations may have been missed). Shared
    /// routes' keys (no identity) do not read the epoch.
    void bump_all();
    std::uint64_t epoch() const { return epoch_.load(std::memory_order_seq_cst); }

    /// Counters per table.
    std::size_t slots() const { return mask_ + 1; }

private:
    std::size_t user_slot(std::size_t route_index, const IdentityHash& identity) const;
    std::size_t exact_slot(std::string_view key_bytes) const;

    std::size_t mask_;
    std::unique_ptr<std::atomic<std::uint64_t>[]> user_;
    std::unique_ptr<std::atomic<std::uint64_t>[]> exact_;
    /// Added to every per-user key's sum; bumped only when a bus gap is seen.
    alignas(64) std::atomic<std::uint64_t> epoch_{0};
};

}  // namespace cacheproxy::cache
