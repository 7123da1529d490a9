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

using FillRequest = boost::beast::http::request<boost::beast::http::empty_body>;

/// The GET a fill sends: the client's header less what would make the answer
/// differ from what the key says (conditionals, Range, Accept-Encoding,
/// Cache-Control); hop-by-hop fields stripped, forwarding headers added. On a
/// shared route the credentials are dropped too: a shared entry is fetched
/// anonymously, so it cannot hold one user's data.
std::shared_ptr<FillRequest> make_fill_request(const boost::beast::http::request_header<>& client,
                                               const rules::RouteRule& rule, const rules::IdentitySource& identity,
                                               std::string_view peer_ip);

/// The stored entry for a fetched response, or null with `why` set.
cache::EntryPtr admit(const rules::RouteRule& rule, const rules::IdentitySource& identity,
                      upstream::FetchResult& fetched, bool request_had_credentials, cache::TimePoint now,
                      cache::NotStorable& why);

/// Refreshes `key` in the background (refresh-ahead, stale-while-revalidate)
/// as the leader of `ticket`; stores the result if it can be stored.
boost::asio::awaitable<void> refresh_in_background(app::Worker& worker, std::size_t route_index, cache::CacheKey key,
                                                   cache::Coalescer::Ticket ticket,
                                                   std::shared_ptr<FillRequest> request, bool had_credentials);

}  // namespace cacheproxy::session
