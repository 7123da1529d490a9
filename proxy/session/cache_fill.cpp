#include "session/cache_fill.hpp"

#include "cache/beast_header_view.hpp"
#include "cache/stored_head.hpp"
#include "encoding/accept_encoding.hpp"
#include "encoding/compressible.hpp"
#include "encoding/gzip.hpp"
#include "encoding/weak_etag.hpp"
#include "http/hop_by_hop.hpp"

#include <boost/beast/core/string.hpp>
#include <spdlog/spdlog.h>

namespace cacheproxy::session {

namespace bhttp = boost::beast::http;

std::shared_ptr<FillRequest> make_fill_request(const bhttp::request_header<>& client, const rules::RouteRule& rule,
                                               const rules::IdentitySource& identity, std::string_view peer_ip,
                                               const config::UpstreamConfig& upstream) {
    auto req = std::make_shared<FillRequest>(bhttp::verb::get, client.target(), 11);
    for (const auto& f : client) req->insert(f.name_string(), f.value());
    http::strip_hop_by_hop(*req);
    for (auto f : {bhttp::field::expect, bhttp::field::range, bhttp::field::if_range, bhttp::field::if_none_match,
                   bhttp::field::if_modified_since, bhttp::field::if_match, bhttp::field::if_unmodified_since,
                   bhttp::field::accept_encoding, bhttp::field::cache_control, bhttp::field::pragma,
                   bhttp::field::content_length, bhttp::field::transfer_encoding})
        req->erase(f);
    if (rule.shared) {
        req->erase(bhttp::field::authorization);
        req->erase(bhttp::field::cookie);
        if (identity.kind == rules::IdentitySource::Kind::header) req->erase(identity.name);
    }
    http::add_forwarding_headers(*req, peer_ip, 11);
    http::ensure_host(*req, upstream.host, upstream.port);
    return req;
}

cache::EntryPtr admit(const rules::RouteRule& rule, const rules::IdentitySource& identity,
                      const config::CompressionConfig& compression, upstream::FetchResult& fetched,
                      bool request_had_credentials, cache::TimePoint now, std::uint64_t generation,
                      cache::NotStorable& why) {
    auto& res = fetched.response;
    // An upstream that gzips whatever the request said: store the identity
    // bytes (bounded like any entry), so every client can be served.
    if (encoding::applied_coding(res[bhttp::field::content_encoding]) == encoding::Applied::gzip) {
        std::string plain;
        if (!encoding::gzip_decompress(res.body(), plain, rule.max_object_bytes)) {
            why = cache::NotStorable::encoded;
            return nullptr;
        }
        res.body() = std::move(plain);
        res.erase(bhttp::field::content_encoding);
    }
    cache::ResponseFacts facts;
    facts.status = res.result_int();
    facts.request_had_credentials = request_had_credentials;
    facts.length_known = fetched.length_known;
    facts.complete = true;
    facts.body_bytes = res.body().size();
    if (identity.kind == rules::IdentitySource::Kind::header && !rule.shared) facts.identity_header = identity.name;
    const cache::BeastHeaderView headers(res.base());
    why = cache::check_storable(rule, facts, headers);
    if (why != cache::NotStorable::none) return nullptr;

    auto fields = headers.list();
    // ETag and Vary: Accept-Encoding are written per variant at hit time.
    std::erase_if(fields, [](const cache::HeaderField& f) {
        return boost::beast::iequals(f.name, "etag") ||
               (boost::beast::iequals(f.name, "vary") && boost::beast::iequals(f.value, "accept-encoding"));
    });
    const std::string head = cache::build_stored_head(facts.status, res.reason(), fields);
    const std::string_view etag = res[bhttp::field::etag];
    const std::string weak_etag = etag.empty() ? std::string() : encoding::weaken_etag(etag);
    const std::string_view body = res.body();
    std::string gz;
    if (compression.enabled &&
        encoding::worth_compressing(res[bhttp::field::content_type], body.size(), compression.min_size)) {
        // A failure, or no gain, leaves the entry identity-only: never a failed request.
        if (!encoding::gzip_compress(body, compression.level, gz) || gz.size() >= body.size()) gz.clear();
    }
    // One block for the whole entry: the head, the bodies and the ETags are copied into it once, here.
    auto entry = cache::CachedResponse::make({.status = facts.status,
                                              .head = head,
                                              .body = body,
                                              .gzip_body = gz,
                                              .etag = etag,
                                              .weak_etag = weak_etag,
                                              .stored_at = now,
                                              .ttl = rule.ttl,
                                              .stale_while_revalidate = rule.stale_while_revalidate,
                                              .stale_if_error = rule.stale_if_error,
                                              .generation = generation});
    if (!entry) why = cache::NotStorable::too_large;  // a part over 4 GiB, or out of memory
    return entry;
}

cache::CacheKey flight_key(const cache::CacheKey& key, std::uint64_t generation) {
    cache::CacheKey k = key;
    k.bytes.push_back('\0');
    k.bytes.append(reinterpret_cast<const char*>(&generation), sizeof generation);
    k.hash = cache::key_hash(k.bytes);
    return k;
}

boost::asio::awaitable<void> refresh_in_background(app::Worker& worker, std::size_t route_index, cache::CacheKey key,
                                                   std::uint64_t generation, cache::Coalescer::Ticket ticket,
                                                   std::shared_ptr<FillRequest> request, bool had_credentials) {
    auto& cc = *worker.ctx.cache;
    const auto& rule = cc.matcher.routes()[route_index];
    auto& counters = cc.counters[route_index];
    counters.refreshes.fetch_add(1, std::memory_order_relaxed);
    auto fetched = co_await upstream::fetch_whole(worker.pool, worker.ctx.cfg.upstream, *request, rule.max_object_bytes);
    if (fetched.ec || fetched.too_large) {
        counters.fill_errors.fetch_add(1, std::memory_order_relaxed);
        spdlog::debug("background refresh of route {} failed: {}", rule.name,
                      fetched.too_large ? "too large" : fetched.ec.message());
        cc.coalescer.complete(ticket, {nullptr, cache::FillResult::Outcome::failed});
        co_return;
    }
    cache::NotStorable why{};
    auto entry = admit(rule, cc.rules.identity, worker.ctx.cfg.compression, fetched, had_credentials,
                       cache::Clock::now(), generation, why);
    if (!entry) {
        counters.not_storable.fetch_add(1, std::memory_order_relaxed);
        cc.coalescer.complete(ticket, {nullptr, cache::FillResult::Outcome::not_storable});
        co_return;
    }
    publish_fill(cc, route_index, key, generation, ticket, std::move(entry));
}

void publish_fill(app::CacheContext& cc, std::size_t route_index, const cache::CacheKey& key,
                  std::uint64_t generation, cache::Coalescer::Ticket& ticket, cache::EntryPtr entry) {
    auto& counters = cc.counters[route_index];
    if (cc.generations.current(key) == generation) {
        cc.store->insert(key, entry, entry->stored_at());
        counters.stored.fetch_add(1, std::memory_order_relaxed);
    } else {
        counters.invalidated_in_flight.fetch_add(1, std::memory_order_relaxed);
    }
    cc.coalescer.complete(ticket, {std::move(entry), cache::FillResult::Outcome::stored});
}

}  // namespace cacheproxy::session
