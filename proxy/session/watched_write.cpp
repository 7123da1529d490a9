#include "session/watched_write.hpp"

#include "cache/beast_header_view.hpp"
#include "cache/header_list.hpp"
#include "cache/identity.hpp"
#include "http/hop_by_hop.hpp"
#include "http/proxy_error.hpp"
#include "http/upstream_head.hpp"
#include "invalidation/write_outcome.hpp"
#include "session/pass_through.hpp"
#include "session/principal_step.hpp"
#include "tier/shared_tier.hpp"
#include "upstream/fetch.hpp"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

namespace cacheproxy::session {

namespace asio = boost::asio;
using boost::system::error_code;
using invalidation::WriteOutcome;
using app::bump;
constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);

namespace {

/// The most a write's answer may be; past it the outcome is unknown (and invalidates).
constexpr std::size_t max_write_response_bytes = 8 * 1024 * 1024;

/// What a write invalidates.
struct WriteScope {
    const rules::TriggerRule& trigger;
    std::size_t trigger_index;
    std::string_view target;        ///< normalized, as the trigger matched it
    std::string_view request_body;  ///< "" when it was not read
    bool body_complete;             ///< the body was read whole (else the scope widens)
    std::string_view response_body = {};  ///< the write's answer ("" when there is none)
};

/// What `w`'s write drops under the rules `cc` (the request's own, or newer
/// ones) with `trigger`, their rule for it: exact keys where the scope gives
/// them, else the writer's whole routes (wider is safe).
cache::Cache::Invalidation plan_under(const app::RuleSnapshot& cc, const rules::TriggerRule& trigger,
                                      const Exchange& ex, const WriteScope& w, std::string_view credential,
                                      bool& widened) {
    std::vector<invalidation::PathParam> path_params;
    cc.triggers.match(ex.req.method_string(), w.target, &path_params);
    const auto scope = invalidation::extract_scope(trigger, w.request_body, w.body_complete, w.target, path_params);
    widened = scope.widened;
    cache::Cache::Invalidation plan;
    plan.identity = cc.hasher.hash(credential);
    const cache::HeaderList no_headers;
    for (const auto& name : trigger.invalidate) {
        const auto index = cc.route_index(name);
        if (index == static_cast<std::size_t>(-1)) continue;
        const auto& route = cc.matcher.routes()[index];
        const auto target = scope.widened ? std::string() : invalidation::scope_target(route, scope);
        auto key = target.empty() ? std::nullopt
                                  : cache::build_key(route, cc.slot(index), target, credential, cc.hasher, no_headers);
        if (key)
            plan.exact.push_back(std::move(*key));
        else
            plan.whole_routes.push_back(cc.slot(index));  // wider is safe
    }
    return plan;
}

/// A reload may have published newer rules while this write ran: a route
/// they re-keyed has a slot of its own, which the request's plan does not
/// reach. The write is applied under each newer version it sees, until none
/// is newer (ARCHITECTURE.md, "Reload"). Returns the entries dropped.
std::size_t invalidate_under_newer(const Exchange& ex, const WriteScope& w, std::string_view credential,
                                   const std::vector<cache::IdentityHash>& principal_credentials, std::uint64_t done) {
    const auto& shared = *ex.worker.ctx.cache;
    std::size_t dropped = 0;
    while (shared.version() != done) {
        const auto newer = shared.current();
        done = newer->version;
        // The trigger by name (a reload may move, change or remove it; removed,
        // the request's own rule names the routes, looked up in the newer rules).
        const auto& triggers = newer->rules.triggers;
        const auto it = std::find_if(triggers.begin(), triggers.end(),
                                     [&](const rules::TriggerRule& t) { return t.name == w.trigger.name; });
        bool widened = false;
        auto plan = plan_under(*newer, it != triggers.end() ? *it : w.trigger, ex, w, credential, widened);
        plan.principal_credentials = principal_credentials;
        dropped += newer->cache.invalidate(plan);
    }
    return dropped;
}

/// The shared tier, when there is one (null: nothing to do, nothing
/// allocated): the other instances drop the same scope before this write's
/// answer leaves (tier/shared_tier.hpp).
tier::SharedTier* shared_tier_of(app::Worker& worker, const std::vector<std::string>& routes, bool drop_credential) {
    auto* tier = worker.ctx.cache->tier.get();
    return tier && (!routes.empty() || drop_credential) ? tier : nullptr;
}

/// An unknown outcome (timeout, reset) may still be applied by the app after
/// we gave up: invalidate the same scope again once that can have happened
/// (`routes`: what to tell the shared tier, empty without one).
asio::awaitable<void> apply_again_later(app::Worker& worker, std::vector<std::string> routes,
                                        cache::Cache::Invalidation plan, std::chrono::milliseconds delay) {
    asio::steady_timer timer(worker.ioc, delay);
    co_await timer.async_wait(tuple_awaitable);
    worker.ctx.cache->cache.invalidate(plan);
    if (auto* tier = shared_tier_of(worker, routes, false))
        co_await tier->publish(plan.identity, std::move(routes), false, plan.principal);
}

/// Step 4: drops (and bumps the generations of) the writer's entries in the
/// trigger's scope, here and (shared tier) on every instance; an unknown
/// outcome does it once more a response timeout later, in case the app
/// applies the write late.
asio::awaitable<void> invalidate(Exchange& ex, WriteScope w, bool outcome_unknown) {
    auto& cc = *ex.rules;
    auto& counters = ex.worker.trigger_counters[cc.trigger_slot(w.trigger_index)];
    const cache::BeastHeaderView headers(ex.req);
    const auto credential = cache::extract_identity(cc.rules.identity, headers, ex.req.target());
    bump(counters.fired);
    if (!credential) co_return;  // no identity: the writer has no per-user entries

    bool widened = false;
    auto plan = plan_under(cc, w.trigger, ex, w, *credential, widened);
    if (widened) bump(counters.widened);
    // The writer's principal's other credentials too (learned from this
    // answer or token if not known yet); a logout drops everything of its own.
    const auto t0 = std::chrono::steady_clock::now();
    const bool to_principal = !w.trigger.invalidate.empty() &&
                              widen_write(*ex.worker.ctx.cache, plan, w.response_body, *credential, ex.worker.now());
    auto dropped = cc.cache.invalidate(plan);
    dropped += invalidate_under_newer(ex, w, *credential, plan.principal_credentials, cc.version);
    if (w.trigger.drop_credential) dropped += cc.cache.drop_logged_out(plan.identity);
    const auto us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
    bump(counters.entries_dropped, dropped);
    spdlog::debug("invalidation {}: {} entr{} dropped in {:.1f} us{}{}", w.trigger.name, dropped,
                  dropped == 1 ? "y" : "ies", us, widened ? " (scope widened to the writer's whole routes)" : "",
                  to_principal ? " (and the writer's principal's other credentials)" : "");
    auto* tier = shared_tier_of(ex.worker, w.trigger.invalidate, w.trigger.drop_credential);
    if (tier) co_await tier->publish(plan.identity, w.trigger.invalidate, w.trigger.drop_credential, plan.principal);
    if (outcome_unknown)
        asio::co_spawn(ex.worker.ioc,
                       apply_again_later(ex.worker, tier ? w.trigger.invalidate : std::vector<std::string>{},
                                         std::move(plan), ex.cfg().upstream.response_timeout),
                       asio::detached);
}

}  // namespace

asio::awaitable<bool> watched_write(Exchange& ex, const rules::TriggerRule& trigger, std::size_t trigger_index,
                                    std::string_view target) {
    auto& counters = ex.worker.trigger_counters[ex.rules->trigger_slot(trigger_index)];
    const bool keep_alive = ex.keep_alive();
    const auto declared = ex.body.content_length();

    // 1. The request body, whole, unless it is larger than the rule reads:
    //    then it passes through and everything of the writer's in the target
    //    routes is dropped, whatever the outcome, before the reply goes out.
    if (!ex.body.chunked() && declared && *declared > trigger.max_body_bytes) {
        bump(counters.unknown_outcome);
        const WriteScope whole{trigger, trigger_index, target, {}, false};
        co_return co_await pass_through(ex, {.before_reply = [&ex, whole] { return invalidate(ex, whole, true); }});
    }
    upstream::Request up;
    if (auto ec = co_await ex.body.read_whole(up.body); ec) {
        co_await ex.send_error(http_errors::status_for_client_body(ec), ec, false);
        co_return false;
    }
    WriteScope scope{trigger, trigger_index, target, up.body, up.body.size() <= trigger.max_body_bytes};

    // 2. Upstream, whole answer, no retry (a write is never sent twice).
    const bool has_body = !up.body.empty() || declared.has_value() || ex.body.chunked();
    http::append_upstream_head(ex.req, ex.forward_context(),
                               has_body ? std::optional<std::uint64_t>(up.body.size()) : std::nullopt, up.head);
    const auto t_up = std::chrono::steady_clock::now();
    auto fetched = co_await upstream::fetch_whole(ex.worker.pool, ex.cfg().upstream, up, max_write_response_bytes,
                                                  /*retry_if_stale=*/false);
    ex.record.upstream_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t_up).count();

    // 3 + 4. Evaluate, invalidate.
    WriteOutcome outcome = WriteOutcome::unknown;
    if (!fetched.ec && !fetched.too_large) {
        outcome = invalidation::evaluate(trigger, fetched.response.result_int(), fetched.response.body(), true);
        drop_if_refused(*ex.worker.ctx.cache, fetched.response.result_int(), ex.req);
        scope.response_body = fetched.response.body();  // may name the writer's principal
    }
    if (outcome == WriteOutcome::failure) {
        bump(counters.failed_writes);
    } else {
        if (outcome == WriteOutcome::unknown) bump(counters.unknown_outcome);
        co_await invalidate(ex, scope, outcome == WriteOutcome::unknown);
    }

    // 5. Now the client may see the answer.
    if (fetched.too_large) {
        co_await ex.send_error(502, "upstream answer too large", keep_alive);
        co_return keep_alive;
    }
    if (fetched.ec) {
        co_await ex.send_error(http_errors::status_for(fetched.ec), fetched.ec, keep_alive);
        co_return keep_alive;
    }
    auto& res = fetched.response;
    ex.record.status = res.result_int();
    http::strip_hop_by_hop(res);
    res.set(bhttp::field::via, http::via_token(11));
    res.version(ex.req.version());
    res.keep_alive(keep_alive);
    res.content_length(res.body().size());
    const auto ec = co_await ex.down.reply(res, false);
    co_return !ec && keep_alive;
}

}  // namespace cacheproxy::session
