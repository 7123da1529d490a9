#pragma once
/// Filling the cache: the request a fill sends upstream, turning a fetched
/// response into a stored entry, and the background refresh coroutine.

#include "cache/cache.hpp"
#include "cache/cache_key.hpp"
#include "cache/cached_response.hpp"
#include "cache/fill.hpp"
#include "cache/storability.hpp"
#include "core/worker.hpp"
#include "http/field_arena.hpp"
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
/// anonymously, so it cannot hold one user's data, and it keeps no client's
/// X-Forwarded-* (a trusted front's are kept on per-user fills only).
std::shared_ptr<FillRequest> make_fill_request(const http::RequestHeader& client,
                                               const rules::RouteRule& rule, const rules::IdentitySource& identity,
                                               std::string_view peer_ip, std::string_view upstream_authority,
                                               bool trusted_peer = false);

/// The compression settings a fill's entry is made with.
cache::GzipPolicy gzip_policy(const config::CompressionConfig& compression);

/// Counts what Cache::publish() did with a stored outcome (stored / invalidated_in_flight).
void count_published(app::RouteCounters& counters, cache::Cache::Published published);

/// Refreshes a key in the background (refresh-ahead, stale-while-revalidate)
/// as the leader of `fill`, on the rules of the request that started it
/// (`rules`, held to the end); publishes what it got.
boost::asio::awaitable<void> refresh_in_background(app::Worker& worker, std::shared_ptr<const app::RuleSnapshot> rules,
                                                   std::size_t route_index, cache::Cache::Fill fill,
                                                   std::shared_ptr<FillRequest> request, bool had_credentials);

}  // namespace cacheproxy::session
