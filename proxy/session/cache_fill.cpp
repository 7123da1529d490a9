#include "session/cache_fill.hpp"

#include "http/proxy_error.hpp"
#include "http/upstream_head.hpp"
#include "session/principal_step.hpp"

#include <boost/beast/core/string.hpp>
#include <spdlog/spdlog.h>

#include <array>

namespace cacheproxy::session {

namespace bhttp = boost::beast::http;

std::shared_ptr<FillRequest> make_fill_request(const http::RequestHeader& client, const rules::RouteRule& rule,
                                               const rules::IdentitySource& identity, std::string_view peer_ip,
                                               std::string_view upstream_authority, bool trusted_peer) {
    // What would make the answer differ from what the key says.
    static constexpr std::string_view kNotKeyed[] = {
        "range", "if-range", "if-none-match", "if-modified-since", "if-match", "if-unmodified-since",
        "accept-encoding", "cache-control", "pragma"};
    // A shared entry is fetched anonymously, so it cannot hold one user's data.
    std::array<std::string_view, std::size(kNotKeyed) + 3> drop{};
    std::size_t n = 0;
    for (auto d : kNotKeyed) drop[n++] = d;
    const bool header_identity = identity.kind == rules::IdentitySource::Kind::header;
    if (rule.shared) {
        drop[n++] = "authorization";
        drop[n++] = "cookie";
        if (header_identity) drop[n++] = identity.name;
    }
    auto req = std::make_shared<FillRequest>();
    http::append_upstream_head(client,
                               {.peer_ip = peer_ip,
                                .upstream_authority = upstream_authority,
                                .identity_header = header_identity ? std::string_view(identity.name) : "",
                                .drop = std::span<const std::string_view>(drop.data(), n),
                                .method = "GET",
                                .trusted_peer = trusted_peer && !rule.shared},
                               std::nullopt, req->head);
    return req;
}

cache::GzipPolicy gzip_policy(const config::CompressionConfig& compression) {
    return {.enabled = compression.enabled, .min_size = compression.min_size, .level = compression.level};
}

void count_published(app::RouteCounters& counters, cache::Cache::Published published) {
    if (published == cache::Cache::Published::stored)
        app::bump(counters.stored);
    else if (published == cache::Cache::Published::invalidated_in_flight)
        app::bump(counters.invalidated_in_flight);
}

boost::asio::awaitable<void> refresh_in_background(app::Worker& worker, std::shared_ptr<const app::RuleSnapshot> rules,
                                                   std::size_t route_index, cache::Cache::Fill fill,
                                                   std::shared_ptr<FillRequest> request, bool had_credentials) {
    auto& cc = *rules;
    const auto& rule = cc.matcher.routes()[route_index];
    auto& counters = worker.route_counters[cc.slot(route_index)];
    app::bump(counters.refreshes);
    const auto since = cc.cache.write_seq();  // before the request goes upstream (principal_step.hpp)
    // The shared tier's generation, read before the fetch too: the refreshed
    // entry is shared only if no write moved it meanwhile (no lease: one
    // refresh per instance at most).
    auto* tier = worker.ctx.cache->tier.get();
    tier::SharedTier::Found shared;
    if (tier && tier->l2_for(cache::per_user(rule))) shared = co_await tier->generation(fill.key, rule);
    auto fetched = co_await upstream::fetch_whole(worker.pool, worker.ctx.cfg.upstream, *request, rule.max_object_bytes);
    const auto now = worker.now();
    if (fetched.too_large) {
        app::bump(counters.not_storable);
        cc.cache.publish(fill, {nullptr, cache::FillResult::Outcome::not_shareable, 502, "too-large"}, now);
        co_return;
    }
    if (fetched.ec) {
        app::bump(counters.fill_errors);
        spdlog::debug("background refresh of route {} failed: {}", rule.name, fetched.ec.message());
        cc.cache.publish(fill,
                         {nullptr, cache::FillResult::Outcome::failed, http_errors::status_for(fetched.ec),
                          "upstream-error"},
                         now);
        co_return;
    }
    // No credential text here: a token's principal is learned by lead fills and writes.
    fill.generation = after_fill(*worker.ctx.cache, fill.key, fill.generation, since, fetched.response, std::nullopt, now);
    cache::NotStorable why{};
    auto entry = cache::admit(rule, cc.rules.identity, gzip_policy(worker.ctx.cfg.compression), fetched.response,
                              fetched.length_known, had_credentials, now, fill.generation, why);
    const auto result = cache::fill_result(entry, why);
    if (result.outcome != cache::FillResult::Outcome::stored)
        app::bump(counters.not_storable);
    else if (tier && !shared.generation.empty())
        tier->store(fill.key, shared, entry, now);
    count_published(counters, cc.cache.publish(fill, result, now));
}

}  // namespace cacheproxy::session
