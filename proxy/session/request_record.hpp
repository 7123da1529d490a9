#pragma once
/// What one request came to: the typed cache result (with its X-Cache and
/// Cache-Status text in one table), the status, the stats slot. The access log
/// and the per-worker stats are written from it once the request is done.

#include "stats/worker_stats.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace cacheproxy::session {

/// How a request on a cached route was answered (none: not a cached route).
enum class CacheResult : std::uint8_t {
    none,
    hit,                          ///< a fresh entry
    hit_l2,                       ///< a fresh entry from the shared tier (another instance filled it)
    stale_while_revalidate,       ///< an expired entry inside stale-while-revalidate, refreshed behind it
    stale_if_error,               ///< an expired entry because the upstream failed
    miss_stored,                  ///< this request led the fill, and it was stored
    miss_collapsed,               ///< answered by another request's stored fill
    miss_not_storable,            ///< this request's fill, not storable (the detail follows in Cache-Status)
    miss_collapsed_not_storable,  ///< another request's fill, not storable
    miss_failed,                  ///< the fill failed: an error status
    miss_uncoalesced,             ///< not coalesced (fill not shareable, wait timed out): forwarded
    miss_queue_full,              ///< too many waiters on the key: forwarded
    miss_too_large,               ///< larger than an entry may be: streamed through
    bypass_no_identity,           ///< a per-user route without an identity: forwarded, not cached
    bypass_uncacheable,           ///< a request the cache cannot key or answer: forwarded
    bypass_cross_origin,          ///< a per-user route asked with an Origin its key does not hold: forwarded
    bypass_tier_down,             ///< a per-user route while the shared tier's bus is down (on_redis_down: bypass)
};

/// The labels of a result: the X-Cache value, the Cache-Status value (or its
/// prefix, where a detail follows), and the stats label.
struct CacheResultText {
    std::string_view x_cache;  ///< "" for none: no labels at all
    std::string_view cache_status;
    stats::CacheLabel label;
};

/// The one table of labels.
constexpr CacheResultText text_of(CacheResult r) {
    using L = stats::CacheLabel;
    switch (r) {
        case CacheResult::none: return {"", "", L::none};
        case CacheResult::hit: return {"HIT", "cacheproxy; hit; ttl=", L::hit};
        case CacheResult::hit_l2: return {"HIT", "cacheproxy; hit; detail=l2", L::hit};
        case CacheResult::stale_while_revalidate:
            return {"STALE", "cacheproxy; fwd=stale; detail=stale-while-revalidate", L::stale};
        case CacheResult::stale_if_error: return {"STALE", "cacheproxy; fwd=stale; detail=stale-if-error", L::stale};
        case CacheResult::miss_stored: return {"MISS", "cacheproxy; fwd=miss; stored", L::miss};
        case CacheResult::miss_collapsed: return {"MISS", "cacheproxy; fwd=miss; collapsed", L::miss};
        case CacheResult::miss_not_storable: return {"MISS", "cacheproxy; fwd=miss; detail=not-storable-", L::miss};
        case CacheResult::miss_collapsed_not_storable:
            return {"MISS", "cacheproxy; fwd=miss; collapsed; detail=not-storable-", L::miss};
        case CacheResult::miss_failed: return {"MISS", "cacheproxy; fwd=miss; detail=upstream-error", L::miss};
        case CacheResult::miss_uncoalesced: return {"MISS", "cacheproxy; fwd=miss; detail=uncoalesced", L::miss};
        case CacheResult::miss_queue_full: return {"MISS", "cacheproxy; fwd=miss; detail=queue-full", L::miss};
        case CacheResult::miss_too_large: return {"MISS", "cacheproxy; fwd=miss; detail=too-large", L::miss};
        case CacheResult::bypass_no_identity: return {"BYPASS", "cacheproxy; fwd=bypass; detail=no-identity", L::bypass};
        case CacheResult::bypass_uncacheable: return {"BYPASS", "cacheproxy; fwd=bypass; detail=uncacheable", L::bypass};
        case CacheResult::bypass_cross_origin: return {"BYPASS", "cacheproxy; fwd=bypass; detail=cross-origin", L::bypass};
        case CacheResult::bypass_tier_down:
            return {"BYPASS", "cacheproxy; fwd=bypass; detail=shared-tier-down", L::bypass};
    }
    return {"", "", L::none};
}

/// One request's record, filled in by the handler that answers it.
struct RequestRecord {
    unsigned status = 0;
    double upstream_ms = -1;        ///< time spent on the upstream leg, -1 = none
    std::string_view route = "-";   ///< the route or trigger name, "-" for pass-through
    std::size_t slot = 0;           ///< the stats slot (stats::Layout): 0 = pass-through
    CacheResult cache = CacheResult::none;
};

}  // namespace cacheproxy::session
