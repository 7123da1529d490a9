/// A request for a cached route, top to bottom:
///   1. can the cache answer it at all? (identity, body, Range, key) -> else BYPASS
///   2. lookup -> fresh: HIT (maybe refresh ahead); stale within SWR: STALE + refresh
///   3. miss: join the key's fill -> waiter: sleep until it lands; leader: fetch
///   4. leader: store if storable, wake the waiters, answer from the entry

#include "cache/beast_header_view.hpp"
#include "cache/fill.hpp"
#include "cache/freshness.hpp"
#include "cache/identity.hpp"
#include "cache/query_string.hpp"
#include "encoding/accept_encoding.hpp"
#include "http/hop_by_hop.hpp"
#include "http/proxy_error.hpp"
#include "net/send_now.hpp"
#include "session/cache_fill.hpp"
#include "session/client_session.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/write.hpp>
#include <spdlog/spdlog.h>

#include <array>
#include <charconv>
#include <tuple>

namespace cacheproxy::session {

namespace asio = boost::asio;
using boost::system::error_code;
using cache::Freshness;
using Outcome_ = cache::FillResult::Outcome;
constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);

namespace {

void bump(std::atomic<std::uint64_t>& c) { c.fetch_add(1, std::memory_order_relaxed); }

/// Cache-Status of a stale entry served because the upstream failed.
constexpr std::string_view kStaleIfError = "cacheproxy; fwd=stale; detail=stale-if-error";

}  // namespace

bool ClientSession::accepts_gzip(const bhttp::request_header<>& req) {
    std::array<std::string_view, 4> lines;
    std::size_t n = 0;
    for (const auto& f : req)  // a walk: cheaper than Beast's name index for a request's few fields
        if (f.name() == bhttp::field::accept_encoding && n < lines.size()) lines[n++] = f.value();
    return encoding::accepts_gzip(std::span<const std::string_view>(lines.data(), n));
}

asio::awaitable<bool> ClientSession::serve_cached(const rules::RouteRule& rule, std::size_t route_index,
                                                  Outcome& out) {
    auto& cc = *worker_.ctx.cache;
    auto& counters = cc.counters[route_index];
    const auto& req = req_parser_->get();
    const cache::BeastHeaderView headers(req.base());

    // 1. Can the cache answer this request at all?
    const auto credential = cache::extract_identity(cc.rules.identity, headers, req.target());
    std::optional<cache::CacheKey> key;
    if (cache::per_user(rule) && !credential) {
        bump(counters.bypass_no_identity);
        co_return co_await forward(out, {"BYPASS", "cacheproxy; fwd=bypass; detail=no-identity"});
    }
    bool length_or_range = false;  // a walk: cheaper than two lookups in Beast's name index
    for (const auto& f : req)
        if (f.name() == bhttp::field::content_length || f.name() == bhttp::field::range) length_or_range = true;
    // A per-user entry under a non-canonical spelling of its key values
    // (`by%62it`, `a+b`) could outlive the write that made it stale: not cached.
    if (!req_parser_->is_done() || length_or_range ||
        !(key = cache::build_key(rule, route_index, req.target(), credential, cc.hasher, headers)) ||
        (cache::per_user(rule) && !key->canonical_values)) {
        bump(counters.bypass_uncacheable);
        co_return co_await forward(out, {"BYPASS", "cacheproxy; fwd=bypass; detail=uncacheable"});
    }
    const bool had_credentials = !rule.shared && credential.has_value();

    // 2. Lookup: the scope's generation first, then an entry fetched under it
    // (an older one predates a write: never served; cache/cache.hpp).
    const auto now = cache::Clock::now();
    auto found = cc.cache.lookup(*key, rule, now, cache::client_bypasses(rule, headers));
    const auto generation = found.generation;
    cache::EntryPtr stale;  // usable only if the upstream fails (stale-if-error)
    if (found.entry) {
        auto& entry = found.entry;
        const auto freshness = found.freshness;
        if (freshness == Freshness::fresh_refresh_ahead || freshness == Freshness::stale_revalidate) {
            if (auto refresh = cc.cache.lead_if_idle(*key, generation, now); refresh.leader()) {
                asio::co_spawn(worker_.ioc,
                               refresh_in_background(worker_, route_index, std::move(refresh),
                                                     make_fill_request(req, rule, cc.rules.identity, peer_ip_,
                                                                       worker_.ctx.upstream_authority),
                                                     had_credentials),
                               asio::detached);
            }
        }
        switch (freshness) {
            case Freshness::fresh:
            case Freshness::fresh_refresh_ahead: {
                bump(counters.hits);
                const auto ttl = std::chrono::duration_cast<std::chrono::seconds>(cache::remaining_ttl(*entry, now));
                char status[48] = "cacheproxy; hit; ttl=";
                const auto r = std::to_chars(status + 21, status + sizeof status, ttl.count());
                co_return co_await write_entry(*entry, "HIT", {status, r.ptr}, out);
            }
            case Freshness::stale_revalidate:
                bump(counters.stale_served);
                co_return co_await write_entry(*entry, "STALE", "cacheproxy; fwd=stale; detail=stale-while-revalidate",
                                               out);
            case Freshness::stale_if_error_only:
                stale = std::move(entry);
                break;
            case Freshness::expired:
                break;
        }
    }

    // 3. Miss: one fetch for every identical request in flight, whatever it
    // answers. A write bumps the generation, so requests after it never join
    // (nor are held) a fill that started before it.
    auto fill = cc.cache.join(*key, generation, now);
    if (fill.waits()) {
        bump(counters.coalesced);
        auto result = co_await cc.cache.wait(fill, worker_.ioc.get_executor(), cc.rules.coalesce_timeout);
        if (result && result->outcome != Outcome_::not_shareable)
            co_return co_await answer_fill(*result, stale, true, route_index, out);
        // Not shareable (our turn came: the ticket passes it on when this
        // request is done), timed out, or the queue was full: fetch on our own.
        bump(counters.bypass_uncoalesced);
        co_return co_await forward(out, {"MISS", "cacheproxy; fwd=miss; detail=uncoalesced"});
    }
    if (!fill.leader()) {
        bump(counters.bypass_uncoalesced);
        co_return co_await forward(out, {"MISS", "cacheproxy; fwd=miss; detail=queue-full"});
    }

    // 4. Leader: fetch the whole response, store it if we may, wake the waiters.
    bump(counters.misses);
    out.cache = "MISS";
    const auto request = make_fill_request(req, rule, cc.rules.identity, peer_ip_, worker_.ctx.upstream_authority);
    const auto t_up = cache::Clock::now();
    auto fetched = co_await upstream::fetch_whole(worker_.pool, cfg_.upstream, *request, rule.max_object_bytes);
    const auto t_done = cache::Clock::now();
    out.upstream_ms = std::chrono::duration<double, std::milli>(t_done - t_up).count();
    if (fetched.too_large) {
        // Larger than an entry may be: nobody shares it; stream it instead.
        // The waiters go upstream too, max_unshared at a time.
        cc.cache.publish(fill, {nullptr, Outcome_::not_shareable, 502, "too-large"}, t_done);
        bump(counters.not_storable);
        co_return co_await forward(out, {"MISS", "cacheproxy; fwd=miss; detail=too-large"});
    }
    if (fetched.ec) {
        bump(counters.fill_errors);
        spdlog::warn("fill for route {} failed: {}", rule.name, fetched.ec.message());
        const cache::FillResult failed{nullptr, Outcome_::failed, http_errors::status_for(fetched.ec), "upstream-error"};
        cc.cache.publish(fill, failed, t_done);
        co_return co_await answer_fill(failed, stale, false, route_index, out);
    }
    cache::NotStorable why{};
    auto entry = cache::admit(rule, cc.rules.identity, gzip_policy(cfg_.compression), fetched.response,
                              fetched.length_known, had_credentials, t_done, generation, why);
    const auto result = cache::fill_result(entry, why);
    if (result.outcome == Outcome_::stored) {
        count_published(counters, cc.cache.publish(fill, result, t_done));
        co_return co_await write_entry(*entry, "MISS", "cacheproxy; fwd=miss; stored", out);
    }
    bump(counters.not_storable);
    cc.cache.publish(fill, result, t_done);
    if (result.outcome != Outcome_::not_shareable) co_return co_await answer_fill(result, stale, false, route_index, out);

    // Not shareable (Set-Cookie, Vary, ...): this one answer goes to this one client.
    auto& res = fetched.response;
    if (stale && res.result_int() >= 500) {
        bump(counters.stale_served);
        co_return co_await write_entry(*stale, "STALE", kStaleIfError, out);
    }
    out.status = res.result_int();
    http::strip_hop_by_hop(res);
    res.set(bhttp::field::via, http::via_token(11));
    res.set("X-Cache", "MISS");
    res.set("Cache-Status", std::string("cacheproxy; fwd=miss; detail=not-storable-") + cache::to_string(why));
    const bool keep_alive = req_parser_->keep_alive() && !worker_.ctx.draining.load();  // the parser's flag: no field lookup
    res.version(req.version());
    res.keep_alive(keep_alive);
    res.content_length(res.body().size());
    if (req.method() == bhttp::verb::head) {
        bhttp::response_serializer<bhttp::string_body> sr{res};
        stream_.expires_after(cfg_.limits.body_timeout);
        auto [ec, n] = co_await bhttp::async_write_header(stream_, sr, tuple_awaitable);
        co_return !ec && keep_alive;
    }
    stream_.expires_after(cfg_.limits.body_timeout);
    auto [ec, n] = co_await bhttp::async_write(stream_, res, tuple_awaitable);
    co_return !ec && keep_alive;
}

asio::awaitable<bool> ClientSession::answer_fill(const cache::FillResult& result, const cache::EntryPtr& stale,
                                                 bool collapsed, std::size_t route_index, Outcome& out) {
    auto& counters = worker_.ctx.cache->counters[route_index];
    out.cache = "MISS";
    switch (result.outcome) {
        case Outcome_::stored:
            co_return co_await write_entry(*result.entry, "MISS",
                                           collapsed ? "cacheproxy; fwd=miss; collapsed" : "cacheproxy; fwd=miss; stored",
                                           out);
        case Outcome_::answer: {
            // A 5xx: stale data first, where the rule allows it.
            if (stale && result.entry->status() >= 500) break;
            hit_status_.assign(collapsed ? "cacheproxy; fwd=miss; collapsed; detail=not-storable-"
                                         : "cacheproxy; fwd=miss; detail=not-storable-");
            hit_status_.append(result.detail);
            co_return co_await write_entry(*result.entry, "MISS", hit_status_, out);
        }
        case Outcome_::failed:
        case Outcome_::not_shareable:  // never passed here: its clients fetch on their own
            break;
    }
    if (!stale) {
        out.status = result.outcome == Outcome_::failed ? result.status : 502;
        const std::string_view reason = out.status == 504 ? "upstream timed out" : "upstream failed";
        co_await send_error(out.status, reason, true);
        co_return !worker_.ctx.draining.load();
    }
    bump(counters.stale_served);
    co_return co_await write_entry(*stale, "STALE", kStaleIfError, out);
}

asio::awaitable<bool> ClientSession::write_entry(const cache::CachedResponse& entry, std::string_view x_cache,
                                                 std::string_view cache_status, Outcome& out) {
    const auto& req = req_parser_->get();
    const bool keep_alive = req_parser_->keep_alive() && !worker_.ctx.draining.load();  // the parser's flag: no field lookup
    const bool is_head = req.method() == bhttp::verb::head;
    out.status = entry.status();
    out.cache = x_cache;
    // The variant: the stored gzip bytes for a client that accepts gzip, else
    // the stored identity bytes. No compression work, no copy, either way.
    const bool gzip = !entry.gzip_body().empty() && accepts_gzip(req);
    const std::string_view body = gzip ? entry.gzip_body() : entry.body();

    // Only these few bytes are made per hit; head and body are the stored ones.
    auto append_number = [this](std::uint64_t n) {
        char digits[24];
        const auto r = std::to_chars(digits, digits + sizeof digits, n);
        hit_head_.append(digits, r.ptr);
    };
    hit_head_.clear();
    if (gzip) hit_head_.append("Content-Encoding: gzip\r\n");
    if (!entry.gzip_body().empty()) hit_head_.append("Vary: Accept-Encoding\r\n");
    if (!entry.etag().empty()) hit_head_.append("ETag: ").append(gzip ? entry.weak_etag() : entry.etag()).append("\r\n");
    hit_head_.append("Content-Length: ");
    append_number(body.size());
    hit_head_.append("\r\nAge: ");
    append_number(cache::age_seconds(entry.stored_at(), cache::Clock::now()));
    hit_head_.append("\r\nX-Cache: ").append(x_cache);
    hit_head_.append("\r\nCache-Status: ").append(cache_status);
    hit_head_.append("\r\nVia: 1.1 cacheproxy\r\n");
    if (!keep_alive)
        hit_head_.append("Connection: close\r\n");
    else if (req.version() == 10)
        hit_head_.append("Connection: keep-alive\r\n");
    hit_head_.append("\r\n");

    const std::array<asio::const_buffer, 3> buffers{asio::buffer(entry.head()), asio::buffer(hit_head_),
                                                    is_head ? asio::const_buffer{} : asio::buffer(body)};
    // Sent at once if the socket takes it all (the usual case); suspended only for the rest.
    error_code ec;
    const std::size_t sent = net::send_now(stream_.socket(), buffers, ec);
    if (!ec && sent < asio::buffer_size(buffers))
        std::tie(ec, std::ignore) = co_await net::send_rest(stream_, buffers, sent, cfg_.limits.body_timeout);
    co_return !ec && keep_alive;
}

}  // namespace cacheproxy::session
