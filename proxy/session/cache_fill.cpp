#include "session/cache_fill.hpp"

#include "cache/beast_header_view.hpp"
#include "cache/stored_head.hpp"
#include "encoding/accept_encoding.hpp"
#include "encoding/compressible.hpp"
#include "encoding/gzip.hpp"
#include "encoding/weak_etag.hpp"
#include "http/proxy_error.hpp"
#include "http/upstream_head.hpp"

#include <boost/beast/core/string.hpp>
#include <spdlog/spdlog.h>

#include <array>

namespace cacheproxy::session {

namespace bhttp = boost::beast::http;

std::shared_ptr<FillRequest> make_fill_request(const bhttp::request_header<>& client, const rules::RouteRule& rule,
                                               const rules::IdentitySource& identity, std::string_view peer_ip,
                                               std::string_view upstream_authority) {
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
                                .method = "GET"},
                               std::nullopt, req->head);
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
            // Over the bound is a large answer; anything else is a broken one,
            // which no client of the fill may get as if it were whole.
            why = decodes_past(res.body(), rule.max_object_bytes) ? cache::NotStorable::too_large
                                                                   : cache::NotStorable::bad_encoding;
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
    // An answer the waiters may share is made into an entry as well, never stored.
    if (why != cache::NotStorable::none) {
        if (const auto unsafe = cache::check_shareable(rule, facts, headers); unsafe != cache::NotStorable::none) {
            why = unsafe;
            return nullptr;
        }
    }

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

bool decodes_past(std::string_view gzip, std::size_t bound) {
    // Decoded piece by piece into a scratch buffer, never held whole; the work
    // is bounded too (64 times the bound at most, then it counts as past it).
    encoding::GunzipStream stream;
    std::string scratch;
    constexpr std::size_t piece = 16 * 1024;
    const std::size_t work_limit = bound > SIZE_MAX / 64 ? SIZE_MAX : bound * 64;
    for (std::size_t at = 0; at < gzip.size(); at += piece) {
        scratch.clear();
        if (!stream.write(gzip.substr(at, piece), scratch, work_limit)) return stream.total_out() > bound;
        if (stream.total_out() > bound) return true;
    }
    return false;
}

cache::FillResult fill_result(const cache::EntryPtr& entry, cache::NotStorable why) {
    using Outcome = cache::FillResult::Outcome;
    if (why == cache::NotStorable::bad_encoding) return {nullptr, Outcome::failed, 502, "bad-encoding"};
    if (!entry) return {nullptr, Outcome::not_shareable, 502, cache::to_string(why)};
    if (why == cache::NotStorable::none) return {entry, Outcome::stored, 0, ""};
    return {entry, Outcome::answer, 0, cache::to_string(why)};
}

std::optional<cache::TimePoint> hold_until(const cache::FillResult& result, const rules::RuleSet& rules,
                                           cache::TimePoint now) {
    if (rules.coalesce_error_hold <= std::chrono::milliseconds::zero()) return std::nullopt;
    const bool failure = result.outcome == cache::FillResult::Outcome::failed ||
                         (result.outcome == cache::FillResult::Outcome::answer && result.entry->status() >= 500);
    if (!failure) return std::nullopt;
    return now + rules.coalesce_error_hold;
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
    const auto now = cache::Clock::now();
    if (fetched.too_large) {
        counters.not_storable.fetch_add(1, std::memory_order_relaxed);
        cc.coalescer.complete(ticket, {nullptr, cache::FillResult::Outcome::not_shareable, 502, "too-large"});
        co_return;
    }
    if (fetched.ec) {
        counters.fill_errors.fetch_add(1, std::memory_order_relaxed);
        spdlog::debug("background refresh of route {} failed: {}", rule.name, fetched.ec.message());
        const cache::FillResult failed{nullptr, cache::FillResult::Outcome::failed,
                                       http_errors::status_for(fetched.ec), "upstream-error"};
        cc.coalescer.complete(ticket, failed, hold_until(failed, cc.rules, now));
        co_return;
    }
    cache::NotStorable why{};
    auto entry = admit(rule, cc.rules.identity, worker.ctx.cfg.compression, fetched, had_credentials, now,
                       generation, why);
    const auto result = fill_result(entry, why);
    if (result.outcome == cache::FillResult::Outcome::stored) {
        publish_fill(cc, route_index, key, generation, ticket, std::move(entry));
        co_return;
    }
    counters.not_storable.fetch_add(1, std::memory_order_relaxed);
    cc.coalescer.complete(ticket, result, hold_until(result, cc.rules, now));
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
