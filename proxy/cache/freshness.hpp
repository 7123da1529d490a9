#pragma once
/// How usable an entry is at `now`. Pure functions of the entry's times, the
/// rule and the time passed in (a fake clock in tests).
///
///   stored_at          stored_at+ttl-refresh_ahead   stored_at+ttl   +swr            +sie
///   |---- fresh ------------|-- fresh_refresh_ahead --|-- stale_revalidate --|-- stale_if_error_only --|-- expired
/// Boundaries are half-open [begin, end): at exactly stored_at+ttl the entry is stale.
/// When stale_if_error < stale_while_revalidate the last window is empty
/// (a stale_revalidate entry may be served on error too).

#include "cache/cached_response.hpp"
#include "cache/clock.hpp"
#include "rules/route_rule.hpp"

#include <cstdint>

namespace cacheproxy::cache {

/// What an entry may be used for now.
enum class Freshness {
    fresh,                ///< serve it
    fresh_refresh_ahead,  ///< serve it, and start one background refresh (it is about to expire)
    stale_revalidate,     ///< serve it now, and start one background refresh
    stale_if_error_only,  ///< do not serve it, unless the upstream fails or times out
    expired,              ///< useless: fetch
};

/// Short stable name, for logs and stats.
const char* to_string(Freshness f);

/// Classifies the entry at `now` under the route's current rule: its TTL,
/// stale windows and refresh_ahead, not the ones the entry was stored with
/// (a reload's new TTL applies to the entries it kept; they are equal otherwise).
Freshness classify(const CachedResponse& entry, const rules::RouteRule& rule, TimePoint now);

/// Whole seconds since `stored_at` (the Age header); 0 when `now` precedes it.
std::uint64_t age_seconds(TimePoint stored_at, TimePoint now);

/// Fresh time left under the route's current TTL (see classify):
/// stored_at + ttl - now, never negative.
rules::Duration remaining_ttl(const CachedResponse& entry, const rules::RouteRule& rule, TimePoint now);

}  // namespace cacheproxy::cache
