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
#include <optional>
#include <string_view>

namespace cacheproxy::session {

using FillRequest = upstream::Request;

/// The GET a fill sends: the client's header less what would make the answer
/// differ from what the key says (conditionals, Range, Accept-Encoding,
/// Cache-Control), as http::append_upstream_head() writes it. On a shared
/// route the credentials are dropped too: a shared entry is fetched
/// anonymously, so it cannot hold one user's data.
std::shared_ptr<FillRequest> make_fill_request(const boost::beast::http::request_header<>& client,
                                               const rules::RouteRule& rule, const rules::IdentitySource& identity,
                                               std::string_view peer_ip, std::string_view upstream_authority);

/// The entry for a fetched response (recording the scope generation read
/// before its fetch started): `why` is none when it may be stored, else why
/// not, and then the entry is there only when the fill's waiters may share it
/// (cache::check_shareable); null otherwise. A body the upstream
/// gzipped anyway is stored decoded (one that does not decode: bad_encoding);
/// a compressible body of at least compression.min_size also gets its gzip
/// variant, made here, once.
cache::EntryPtr admit(const rules::RouteRule& rule, const rules::IdentitySource& identity,
                      const config::CompressionConfig& compression, upstream::FetchResult& fetched,
                      bool request_had_credentials, cache::TimePoint now, std::uint64_t generation,
                      cache::NotStorable& why);

/// What admit()'s entry and reason make of the fill for its waiters: stored,
/// answer (shared, not stored), failed (502: a body that does not decode), or
/// not_shareable.
cache::FillResult fill_result(const cache::EntryPtr& entry, cache::NotStorable why);

/// When a fill's outcome is a failure (failed, or an answer with a 5xx):
/// until when the coalescer holds it (coalesce.error_hold); else none.
std::optional<cache::TimePoint> hold_until(const cache::FillResult& result, const rules::RuleSet& rules,
                                           cache::TimePoint now);

/// True when `gzip` is a valid gzip stream that decodes to more than `bound`
/// bytes (false for a corrupt or truncated one).
bool decodes_past(std::string_view gzip, std::size_t bound);

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
