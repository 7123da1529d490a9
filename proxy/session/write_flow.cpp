/// A write a trigger rule watches (an order, a close, a cancel, a config
/// change), top to bottom:
///   1. read the request body whole (bounded by the trigger's max_body_bytes;
///      a larger one is streamed and the scope widens)
///   2. send it upstream and read the whole answer (never retried)
///   3. evaluate: success, failure, or unknown (timeout, reset) = success
///   4. invalidate the writer's scope: bump its generations, drop its entries
///   5. only then answer the client: read-your-writes (ARCHITECTURE.md)

#include "cache/beast_header_view.hpp"
#include "cache/header_list.hpp"
#include "cache/identity.hpp"
#include "http/hop_by_hop.hpp"
#include "http/proxy_error.hpp"
#include "http/upstream_head.hpp"
#include "invalidation/write_outcome.hpp"
#include "session/client_session.hpp"
#include "upstream/fetch.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <spdlog/spdlog.h>

namespace cacheproxy::session {

namespace asio = boost::asio;
using boost::system::error_code;
using invalidation::WriteOutcome;
constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);

namespace {

/// The most a write's answer may be; past it the outcome is unknown (and invalidates).
constexpr std::size_t max_write_response_bytes = 8 * 1024 * 1024;

void bump(std::atomic<std::uint64_t>& c, std::uint64_t n = 1) { c.fetch_add(n, std::memory_order_relaxed); }

}  // namespace

asio::awaitable<bool> ClientSession::serve_write(const rules::TriggerRule& trigger, std::size_t trigger_index,
                                                 Outcome& out) {
    auto& req = req_parser_->get();
    auto& counters = worker_.ctx.cache->trigger_counters[trigger_index];
    const bool client_keep_alive = req_parser_->keep_alive() && !worker_.ctx.draining.load();  // the parser's flag: no field lookup
    const auto declared = req_parser_->content_length();

    // 1. The request body, whole, unless it is larger than the rule reads:
    //    then it streams through and everything of the writer's in the target
    //    routes is dropped, whatever the outcome, before the reply goes out.
    if (!req_parser_->chunked() && declared && *declared > trigger.max_body_bytes) {
        bump(counters.unknown_outcome);
        before_reply_ = [this, &trigger, trigger_index] { invalidate(trigger, trigger_index, {}, false, true); };
        const bool keep = co_await forward(out);
        before_reply_ = nullptr;
        co_return keep;
    }
    std::string body;
    if (!req_parser_->is_done())
        if (auto cec = co_await send_continue(); cec) co_return false;
    if (req_parser_->chunked()) {
        if (auto ec = co_await read_chunked_body(); ec) {
            out.status = ec == bhttp::error::body_limit ? 413 : (ec == beast::error::timeout ? 408 : 400);
            const std::string reason = ec.message();  // named: see send_error's note
            co_await send_error(out.status, reason, false);
            co_return false;
        }
        body = std::move(request_body_);
    } else if (!req_parser_->is_done()) {
        body.resize(static_cast<std::size_t>(*declared));
        auto& b = req.body();
        b.data = body.data();
        b.size = body.size();
        stream_.expires_after(cfg_.limits.body_timeout);
        auto [rec, rn] = co_await bhttp::async_read(stream_, buffer_, *req_parser_, tuple_awaitable);
        if (rec == bhttp::error::need_buffer) rec = {};
        if (rec || !req_parser_->is_done()) {
            out.status = rec == beast::error::timeout ? 408 : 400;
            const std::string reason = rec ? rec.message() : std::string("incomplete body");  // named: see send_error's note
            co_await send_error(out.status, reason, false);
            co_return false;
        }
    }
    const bool body_complete = body.size() <= trigger.max_body_bytes;

    // 2. Upstream, whole answer, no retry (a write is never sent twice).
    upstream::Request up;
    const bool has_body = !body.empty() || declared.has_value() || req_parser_->chunked();
    http::append_upstream_head(req,
                               {.peer_ip = peer_ip_,
                                .upstream_authority = worker_.ctx.upstream_authority,
                                .identity_header = identity_header_},
                               has_body ? std::optional<std::uint64_t>(body.size()) : std::nullopt, up.head);
    up.body = std::move(body);
    const auto t_up = std::chrono::steady_clock::now();
    auto fetched = co_await upstream::fetch_whole(worker_.pool, cfg_.upstream, up, max_write_response_bytes,
                                                  /*retry_if_stale=*/false);
    out.upstream_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t_up).count();

    // 3 + 4. Evaluate, invalidate.
    WriteOutcome outcome = WriteOutcome::unknown;
    if (!fetched.ec && !fetched.too_large)
        outcome = invalidation::evaluate(trigger, fetched.response.result_int(), fetched.response.body(), true);
    if (outcome == WriteOutcome::failure) {
        bump(counters.failed_writes);
    } else {
        if (outcome == WriteOutcome::unknown) bump(counters.unknown_outcome);
        invalidate(trigger, trigger_index, up.body, body_complete, outcome == WriteOutcome::unknown);
    }

    // 5. Now the client may see the answer.
    if (fetched.ec || fetched.too_large) {
        out.status = fetched.too_large ? 502 : http_errors::status_for(fetched.ec);
        const std::string reason =
            fetched.too_large ? std::string("upstream answer too large") : fetched.ec.message();  // named: see send_error's note
        co_await send_error(out.status, reason,
                            client_keep_alive);
        co_return client_keep_alive;
    }
    auto& res = fetched.response;
    out.status = res.result_int();
    http::strip_hop_by_hop(res);
    res.set(bhttp::field::via, http::via_token(11));
    res.version(req.version());
    res.keep_alive(client_keep_alive);
    res.content_length(res.body().size());
    stream_.expires_after(cfg_.limits.body_timeout);
    auto [wec, wn] = co_await bhttp::async_write(stream_, res, tuple_awaitable);
    co_return !wec && client_keep_alive;
}

namespace {

/// An unknown outcome (timeout, reset) may still be applied by the app after
/// we gave up: invalidate the same scope again once that can have happened.
asio::awaitable<void> apply_again_later(app::Worker& worker, cache::Cache::Invalidation plan,
                                        std::chrono::milliseconds delay) {
    asio::steady_timer timer(worker.ioc, delay);
    co_await timer.async_wait(tuple_awaitable);
    worker.ctx.cache->cache.invalidate(plan);
}

}  // namespace

void ClientSession::invalidate(const rules::TriggerRule& trigger, std::size_t trigger_index,
                               std::string_view request_body, bool body_complete, bool outcome_unknown) {
    auto& cc = *worker_.ctx.cache;
    auto& counters = cc.trigger_counters[trigger_index];
    const auto& req = req_parser_->get();
    const cache::BeastHeaderView headers(req.base());
    const auto credential = cache::extract_identity(cc.rules.identity, headers, req.target());
    bump(counters.fired);
    if (!credential) return;  // no identity: the writer has no per-user entries

    std::vector<invalidation::PathParam> path_params;
    cc.triggers.match(req.method_string(), write_target_, &path_params);
    const auto scope = invalidation::extract_scope(trigger, request_body, body_complete, write_target_, path_params);
    if (scope.widened) bump(counters.widened);
    cache::Cache::Invalidation plan;
    plan.identity = cc.hasher.hash(*credential);
    const cache::HeaderList no_headers;
    for (const auto& name : trigger.invalidate) {
        const auto index = cc.route_index(name);
        if (index == static_cast<std::size_t>(-1)) continue;
        const auto& route = cc.matcher.routes()[index];
        const auto target = scope.widened ? std::string() : invalidation::scope_target(route, scope);
        auto key = target.empty() ? std::nullopt
                                  : cache::build_key(route, index, target, credential, cc.hasher, no_headers);
        if (key)
            plan.exact.push_back(std::move(*key));
        else
            plan.whole_routes.push_back(index);  // wider is safe
    }
    const auto t0 = std::chrono::steady_clock::now();
    const auto dropped = cc.cache.invalidate(plan);
    const auto us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
    bump(counters.entries_dropped, dropped);
    spdlog::debug("invalidation {}: {} entr{} dropped in {:.1f} us{}", trigger.name, dropped,
                  dropped == 1 ? "y" : "ies", us, scope.widened ? " (scope widened to the writer's whole routes)" : "");
    if (outcome_unknown)
        asio::co_spawn(worker_.ioc, apply_again_later(worker_, std::move(plan), cfg_.upstream.response_timeout),
                       asio::detached);
}

}  // namespace cacheproxy::session
