#pragma once
/// Filling the cache: the request a fill sends upstream, turning a fetched
/// response into a stored entry, and the background refresh coroutine.

#include "app/worker.hpp"
#include "cache/cache_key.hpp"
#include "cache/cached_response.hpp"
#include "cache/coalescer.hpp"
#include "cache/storability.hpp"
#include "upstream/fetch.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/message.hpp>

#include <memory>

namespace cacheproxy::session {

using FillRequest = upstream::Request;

/// The GET a fill sends: the client's header less what would make the answer
/// differ from what the key says (conditionals, Range, Accept-Encoding,
/// Cache-Control); hop-by-hop fields stripped, forwarding headers added. On a
/// shared route the credentials are dropped too: a shared entry is fetched
/// anonymously, so it cannot hold one user's data.
std::shared_ptr<FillRequest> make_fill_request(const boost::beast::http::request_header<>& client,
                                               const rules::RouteRule& rule, const rules::IdentitySource& identity,
                                               std::string_view peer_ip, const config::UpstreamConfig& upstream);

/// The stored entry for a fetched response (recording the scope generation
/// read before its fetch started), or null with `why` set. A body the upstream
/// gzipped anyway is stored decoded; a compressible body of at least
/// compression.min_size also gets its gzip variant, made here, once.
cache::EntryPtr admit(const rules::RouteRule& rule, const rules::IdentitySource& identity,
                      const config::CompressionConfig& compression, upstream::FetchResult& fetched,
                      bool request_had_credentials, cache::TimePoint now, std::uint64_t generation,
                      cache::NotStorable& why);

/// Publishes a fill's stored entry: into the store only if no write bumped
/// the key's scope since the fetch started (read-your-writes: an entry from
/// before a write is never stored), then to the fill's waiters either way
/// (they asked before the write). Counts stored / invalidated_in_flight.
void publish_fill(app::CacheContext& cc, std::size_t route_index, const cache::CacheKey& key,
                  std::uint64_t generation, cache::Coalescer::Ticket& ticket, cache::EntryPtr entry);

/// The key fills are coalesced on: the cache key plus its scope generation,
/// so a request that comes after a write never joins a fill from before it.
cache::CacheKey flight_key(const cache::CacheKey& key, std::uint64_t generation);

/// Refreshes `key` in the background (refresh-ahead, stale-while-revalidate)
/// as the leader of `ticket`; stores the result if it can be stored.
boost::asio::awaitable<void> refresh_in_background(app::Worker& worker, std::size_t route_index, cache::CacheKey key,
                                                   std::uint64_t generation, cache::Coalescer::Ticket ticket,
                                                   std::shared_ptr<FillRequest> request, bool had_credentials);

}  // namespace cacheproxy::session
