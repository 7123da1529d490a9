#pragma once
/// The cached-read handler: a GET/HEAD on a route a rule caches (cached_read.cpp).
///   1. can the cache answer it at all? (identity, body, Range, key) -> else BYPASS, pass-through
///   2. lookup (generation first) -> fresh: HIT (maybe refresh ahead); stale within SWR: STALE + refresh
///   3. miss: join the key's fill -> waiter: sleep until it lands; leader: fetch
///   4. leader: admit, publish (stored only if no write intervened), wake the waiters, answer

#include "session/exchange.hpp"

#include <boost/asio/awaitable.hpp>

namespace cacheproxy::session {

/// Answers `ex` for `rule` (route `route_index`); returns whether the connection stays open.
boost::asio::awaitable<bool> cached_read(Exchange& ex, const rules::RouteRule& rule, std::size_t route_index);

}  // namespace cacheproxy::session
