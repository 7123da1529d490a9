#include "session/cached_read.hpp"

#include "cache/beast_header_view.hpp"
#include "cache/fill.hpp"
#include "cache/freshness.hpp"
#include "cache/identity.hpp"
#include "http/hop_by_hop.hpp"
#include "http/proxy_error.hpp"
#include "session/cache_fill.hpp"
#include "session/client_head.hpp"
#include "session/pass_through.hpp"
#include "session/principal_step.hpp"
#include "tier/shared_tier.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>

namespace cacheproxy::session {

namespace asio = boost::asio;
using boost::system::error_code;
using cache::Freshness;
using Outcome = cache::FillResult::Outcome;
using app::bump;

namespace {

/// How `entry` answers `ex` (the record filled in too): the stored gzip
/// variant for a client that accepts gzip, else the stored identity bytes.
/// No compression, no copy.
Downstream::EntryAnswer answer_of(Exchange& ex, const cache::CachedResponse& entry, CacheResult result,
                                  std::string_view detail = {}) {
    ex.record.status = entry.status();
    ex.record.cache = result;
    const auto text = text_of(result);
    return {.x_cache = text.x_cache,
            .cache_status = text.cache_status,
            .status_detail = detail,
            .age = cache::age_seconds(entry.stored_at(), ex.worker.now()),
            .gzip = !entry.gzip_body().empty() && accepts_gzip(ex.req),
            .head = ex.is_head(),
            .keep_alive = ex.keep_alive(),
            .version = ex.req.version()};
}

/// Answers from a stored entry. Not a coroutine itself (it hands back
/// write_entry's): a hit costs one coroutine frame below cached_read.
asio::awaitable<bool> answer_entry(Exchange& ex, const cache::CachedResponse& entry, CacheResult result,
                                   std::string_view detail = {}) {
    return ex.down.write_entry(entry, answer_of(ex, entry, result, detail));
}

/// Answers from a fill's outcome (its own, or one it waited for:
/// `collapsed`): the entry, or `stale` for a failure or a 5xx where the rule
/// allows it, or the failure's status.
asio::awaitable<bool> answer_fill(Exchange& ex, const cache::FillResult& result, const cache::EntryPtr& stale,
                                  bool collapsed, app::RouteCounters& counters) {
    ex.record.cache = CacheResult::miss_failed;
    switch (result.outcome) {
        case Outcome::stored:
            co_return co_await answer_entry(ex, *result.entry,
                                            collapsed ? CacheResult::miss_collapsed : CacheResult::miss_stored);
        case Outcome::answer:
            // A 5xx: stale data first, where the rule allows it.
            if (stale && result.entry->status() >= 500) break;
            co_return co_await answer_entry(
                ex, *result.entry,
                collapsed ? CacheResult::miss_collapsed_not_storable : CacheResult::miss_not_storable, result.detail);
        case Outcome::failed:
        case Outcome::not_shareable:  // never passed here: its clients fetch on their own
            break;
    }
    if (!stale) {
        const unsigned status = result.outcome == Outcome::failed ? result.status : 502;
        const std::string_view reason = status == 504 ? "upstream timed out" : "upstream failed";
        co_await ex.send_error(status, reason, true);
        co_return !ex.worker.ctx.draining.load();
    }
    bump(counters.stale_served);
    co_return co_await answer_entry(ex, *stale, CacheResult::stale_if_error);
}

/// A fill's answer that may not be shared (Set-Cookie, Vary, ...): this one
/// response goes to this one client, as fetched.
asio::awaitable<bool> answer_unshared(Exchange& ex, bhttp::response<bhttp::string_body>& res, cache::NotStorable why) {
    ex.record.status = res.result_int();
    ex.record.cache = CacheResult::miss_not_storable;
    http::strip_hop_by_hop(res);
    res.set(bhttp::field::via, http::via_token(11));
    res.set("X-Cache", "MISS");
    ex.scratch.cache_status.assign(text_of(CacheResult::miss_not_storable).cache_status).append(cache::to_string(why));
    res.set("Cache-Status", ex.scratch.cache_status);
    const bool keep_alive = ex.keep_alive();
    res.version(ex.req.version());
    res.keep_alive(keep_alive);
    res.content_length(res.body().size());
    const auto ec = co_await ex.down.reply(res, ex.is_head());
    co_return !ec && keep_alive;
}

/// What a failed fill may answer with instead of its error: this
/// instance's stale entry, else the shared tier's, while the route's
/// stale_if_error window holds.
cache::EntryPtr fallback(const cache::EntryPtr& stale, const tier::SharedTier::Found* shared,
                         const rules::RouteRule& rule, cache::TimePoint now) {
    if (stale || !shared || !shared->stale) return stale;
    const auto& e = *shared->stale;
    return now < e.stored_at() + rule.ttl + rule.stale_if_error && rule.stale_if_error.count() > 0 ? shared->stale
                                                                                                   : nullptr;
}

/// The shared tier's answer for a fill's leader, in a block of its own: a
/// fill without the tier keeps none of it in its coroutine frame (with it
/// there, 16 parallel fills left ~10 B more heap slack per stored entry:
/// scripts/bench/memory.sh, BENCHMARKS.md).
asio::awaitable<std::unique_ptr<tier::SharedTier::Found>> ask_tier(tier::SharedTier& tier, Exchange& ex,
                                                                   const rules::RouteRule& rule,
                                                                   const cache::Cache::Fill& fill) {
    auto found = co_await tier.find(fill.key, rule, fill.generation, ex.worker.now(), ex.rules->rules.coalesce_timeout);
    co_return std::make_unique<tier::SharedTier::Found>(std::move(found));
}

/// Step 4: leads the fill of `key`: fetches the whole response, admits it,
/// publishes it (stored only if no write intervened), answers.
asio::awaitable<bool> lead_fill(Exchange& ex, const rules::RouteRule& rule, app::RouteCounters& counters,
                                cache::Cache::Fill& fill, const cache::EntryPtr& stale, bool had_credentials,
                                std::optional<std::string_view> credential) {
    auto& cc = *ex.rules;
    const auto since = cc.cache.write_seq();  // before the request goes upstream (principal_step.hpp)
    ex.record.cache = CacheResult::miss_stored;
    // The shared tier first: another instance's entry, its failure, or the
    // lease (one upstream call across the instances).
    auto* tier = ex.worker.ctx.cache->tier.get();
    std::unique_ptr<tier::SharedTier::Found> shared;  // null: no tier, or no L2 for this route
    if (tier && tier->l2_for(cache::per_user(rule))) {
        shared = co_await ask_tier(*tier, ex, rule, fill);
        if (shared->kind == tier::SharedTier::Found::Kind::hit) {
            bump(counters.hits);
            count_published(counters, cc.cache.publish(fill, cache::fill_result(shared->entry, {}), ex.worker.now()));
            co_return co_await answer_entry(ex, *shared->entry, CacheResult::hit_l2);
        }
    }
    bump(counters.misses);
    if (shared && shared->kind == tier::SharedTier::Found::Kind::failed) {  // another instance's fill failed just now
        const cache::FillResult failed{nullptr, Outcome::failed, shared->status, "upstream-error"};
        cc.cache.publish(fill, failed, ex.worker.now());
        co_return co_await answer_fill(ex, failed, fallback(stale, shared.get(), rule, ex.worker.now()), false,
                                       counters);
    }
    const auto request = make_fill_request(ex.req, rule, cc.rules.identity, ex.peer.ip, *ex.worker.upstream_authority,
                                           ex.peer.trusted);
    const auto t_up = ex.worker.now();
    auto fetched = co_await upstream::fetch_whole(ex.worker.pool, ex.cfg().upstream, *request, rule.max_object_bytes);
    const auto t_done = ex.worker.now();
    ex.record.upstream_ms = std::chrono::duration<double, std::milli>(t_done - t_up).count();
    if (fetched.too_large) {
        // Larger than an entry may be: nobody shares it; stream it instead.
        // The waiters go upstream too, max_unshared at a time.
        if (shared) tier->release(*shared);
        cc.cache.publish(fill, {nullptr, Outcome::not_shareable, 502, "too-large"}, t_done);
        bump(counters.not_storable);
        co_return co_await pass_through(ex, {.label = CacheResult::miss_too_large});
    }
    if (fetched.ec) {
        bump(counters.fill_errors);
        spdlog::warn("fill for route {} failed: {}", rule.name, fetched.ec.message());
        const cache::FillResult failed{nullptr, Outcome::failed, http_errors::status_for(fetched.ec), "upstream-error"};
        if (shared) tier->fail(*shared, failed.status);
        cc.cache.publish(fill, failed, t_done);
        co_return co_await answer_fill(ex, failed, fallback(stale, shared.get(), rule, t_done), false, counters);
    }
    // A refusal drops the credential; an answer naming its principal maps it.
    fill.generation =
        after_fill(*ex.worker.ctx.cache, fill.key, fill.generation, since, fetched.response, credential, t_done);
    cache::NotStorable why{};
    auto entry = cache::admit(rule, cc.rules.identity, gzip_policy(ex.cfg().compression), fetched.response,
                              fetched.length_known, had_credentials, t_done, fill.generation, why);
    const auto result = cache::fill_result(entry, why);
    if (result.outcome == Outcome::stored) {
        if (shared) tier->store(fill.key, *shared, entry, t_done);
        count_published(counters, cc.cache.publish(fill, result, t_done));
        co_return co_await answer_entry(ex, *entry, CacheResult::miss_stored);
    }
    if (shared) tier->release(*shared);
    bump(counters.not_storable);
    cc.cache.publish(fill, result, t_done);
    if (result.outcome != Outcome::not_shareable) co_return co_await answer_fill(ex, result, stale, false, counters);
    if (stale && fetched.response.result_int() >= 500) {
        bump(counters.stale_served);
        co_return co_await answer_entry(ex, *stale, CacheResult::stale_if_error);
    }
    co_return co_await answer_unshared(ex, fetched.response, why);
}

}  // namespace

asio::awaitable<bool> cached_read(Exchange& ex, const rules::RouteRule& rule, std::size_t route_index) {
    auto& cc = *ex.rules;  // this request's rules (app::RuleSnapshot), to its end
    auto& counters = ex.worker.route_counters[cc.slot(route_index)];
    const auto& req = ex.req;
    const cache::BeastHeaderView headers(req);

    // 1. Can the cache answer this request at all?
    const auto credential = cache::extract_identity(cc.rules.identity, headers, req.target());
    if (cache::per_user(rule) && !credential) {
        bump(counters.bypass_no_identity);
        co_return co_await pass_through(ex, {.label = CacheResult::bypass_no_identity});
    }
    bool length_or_range = false;  // a walk: cheaper than three lookups in Beast's name index
    bool origin = false;
    for (const auto& f : req) {
        if (f.name() == bhttp::field::content_length || f.name() == bhttp::field::range) length_or_range = true;
        if (f.name() == bhttp::field::origin) origin = true;
    }
    if (origin && cache::per_user(rule) && rule.key.origin &&
        std::find(rule.key.headers.begin(), rule.key.headers.end(), "origin") == rule.key.headers.end()) {
        // The app's CORS answer follows the Origin; this key does not hold it.
        bump(counters.bypass_uncacheable);
        co_return co_await pass_through(ex, {.label = CacheResult::bypass_cross_origin});
    }
    // A per-user entry under a non-canonical spelling of its key values
    // (`by%62it`, `a+b`) could outlive the write that made it stale: not cached.
    cache::CacheKey& key = ex.scratch.key;  // the connection's: its bytes keep their capacity
    if (!ex.body.is_done() || length_or_range ||
        !cache::build_key_into(key, rule, cc.slot(route_index), req.target(), credential, cc.hasher, headers) ||
        (cache::per_user(rule) && !key.canonical_values)) {
        bump(counters.bypass_uncacheable);
        co_return co_await pass_through(ex, {.label = CacheResult::bypass_uncacheable});
    }
    const bool had_credentials = !rule.shared && credential.has_value();

    // 1b. Across instances (the shared tier): a per-user read first waits
    // until every invalidation published before it arrived is applied here.
    if (auto* tier = ex.worker.ctx.cache->tier.get(); tier && cache::per_user(rule)) {
        const bool applied = co_await tier->barrier();
        if (!applied && tier->bypass_when_down()) {
            tier->count_degraded();
            bump(counters.bypass_uncacheable);
            co_return co_await pass_through(ex, {.label = CacheResult::bypass_tier_down});
        }
    }

    // 2. Lookup: the scope's generation first, then an entry fetched under it
    // (an older one predates a write: never served; cache/cache.hpp).
    const auto now = ex.worker.now();
    auto found = cc.cache.lookup(key, rule, now, cache::client_bypasses(rule, headers));
    const auto generation = found.generation;
    cache::EntryPtr stale;  // usable only if the upstream fails (stale-if-error)
    if (found.entry) {
        const auto freshness = found.freshness;
        if (freshness == Freshness::fresh_refresh_ahead || freshness == Freshness::stale_revalidate) {
            if (auto refresh = cc.cache.lead_if_idle(key, generation, now); refresh.leader()) {
                asio::co_spawn(ex.worker.ioc,
                               refresh_in_background(ex.worker, ex.rules, route_index, std::move(refresh),
                                                     make_fill_request(req, rule, cc.rules.identity, ex.peer.ip,
                                                                       *ex.worker.upstream_authority, ex.peer.trusted),
                                                     had_credentials),
                               asio::detached);
            }
        }
        switch (freshness) {
            case Freshness::fresh:
            case Freshness::fresh_refresh_ahead: {
                bump(counters.hits);
                const auto ttl = std::chrono::duration_cast<std::chrono::seconds>(cache::remaining_ttl(*found.entry, rule, now));
                char digits[24];
                const auto r = std::to_chars(digits, digits + sizeof digits, ttl.count());
                co_return co_await answer_entry(ex, *found.entry, CacheResult::hit, {digits, r.ptr});
            }
            case Freshness::stale_revalidate:
                bump(counters.stale_served);
                co_return co_await answer_entry(ex, *found.entry, CacheResult::stale_while_revalidate);
            case Freshness::stale_if_error_only:
                stale = std::move(found.entry);
                break;
            case Freshness::expired:
                break;
        }
    }

    // 3. Miss: one fetch for every identical request in flight, whatever it
    // answers. A write bumps the generation, so requests after it never join
    // (nor are held) a fill that started before it.
    auto fill = cc.cache.join(key, generation, now);
    if (fill.waits()) {
        bump(counters.coalesced);
        auto result = co_await cc.cache.wait(fill, ex.worker.ioc.get_executor(), cc.rules.coalesce_timeout);
        if (result && result->outcome != Outcome::not_shareable)
            co_return co_await answer_fill(ex, *result, stale, true, counters);
        // Not shareable (our turn came: the ticket passes it on when this
        // request is done), timed out, or the queue was full: fetch on our own.
        bump(counters.bypass_uncoalesced);
        co_return co_await pass_through(ex, {.label = CacheResult::miss_uncoalesced});
    }
    if (!fill.leader()) {
        bump(counters.bypass_uncoalesced);
        co_return co_await pass_through(ex, {.label = CacheResult::miss_queue_full});
    }
    co_return co_await lead_fill(ex, rule, counters, fill, stale, had_credentials, credential);
}

}  // namespace cacheproxy::session
