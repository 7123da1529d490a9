#include "upstream/fetch.hpp"

#include "http/proxy_error.hpp"
#include "http/request_guard.hpp"
#include "upstream/retry.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include <array>

namespace cacheproxy::upstream {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using boost::system::error_code;
using http_errors::errc;
constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);

namespace {

/// One attempt on `up`: write the request, read the whole answer into `parser`.
asio::awaitable<Attempt> exchange(Connection& up, const config::UpstreamConfig& cfg, const Request& req,
                                  std::size_t body_limit,
                                  std::optional<bhttp::response_parser<bhttp::string_body>>& parser, bool& wrote) {
    wrote = false;
    up.stream.expires_after(cfg.response_timeout);
    const std::array<asio::const_buffer, 2> wire{asio::buffer(req.head), asio::buffer(req.body)};
    auto [wec, wn] = co_await asio::async_write(up.stream, wire, tuple_awaitable);
    if (wec) co_return Attempt{wec, false};
    wrote = true;
    error_code rec;
    for (;;) {  // 1xx interim answers are skipped
        parser.emplace();
        parser->body_limit(body_limit);
        parser->header_limit(64 * 1024);
        if (req.head_method) parser->skip(true);
        auto [hec, hn] = co_await bhttp::async_read_header(up.stream, up.buffer, *parser, tuple_awaitable);
        rec = hec;
        if (rec || parser->get().result_int() >= 200) break;
    }
    // A response whose Connection names its own framing would lose it on the way through.
    if (!rec && !http::check_response(parser->get())) co_return Attempt{errc::upstream_bad_response, true};
    if (!rec) {
        auto [bec, bn] = co_await bhttp::async_read(up.stream, up.buffer, *parser, tuple_awaitable);
        rec = bec;
    }
    co_return Attempt{rec, parser->got_some() || up.buffer.size() != 0};
}

/// The error a failed exchange reports (the pool's own errors pass as they are).
error_code fetch_error(const error_code& ec, bool wrote) {
    if (ec == beast::error::timeout) return make_error_code(errc::upstream_timeout);
    if (ec.category() == http_errors::category()) return ec;
    return make_error_code(wrote ? errc::upstream_bad_response : errc::upstream_unavailable);
}

}  // namespace

asio::awaitable<FetchResult> fetch_whole(Pool& pool, const config::UpstreamConfig& cfg, const Request& req,
                                         std::size_t body_limit, bool retry_if_stale) {
    FetchResult out;
    std::optional<bhttp::response_parser<bhttp::string_body>> parser;
    // A write goes on a fresh connection: it must not meet a dead keep-alive one.
    const RetryPolicy policy{.retry_if_stale = retry_if_stale, .fresh_first = !retry_if_stale};
    for (int n = 0;; ++n) {
        error_code ec;
        auto lease = co_await pool.acquire(ec, fresh_only(policy, n));
        if (ec) {
            out.ec = ec;
            co_return out;
        }
        auto& up = *lease.conn;
        ++up.requests;
        bool wrote = false;
        const Attempt tried = co_await exchange(up, cfg, req, body_limit, parser, wrote);
        if (tried.ec) {
            pool.release(std::move(lease.conn), false);
            if (retry_on_stale(policy, n, lease, tried)) continue;
            if (tried.ec == bhttp::error::body_limit)
                out.too_large = true;
            else
                out.ec = fetch_error(tried.ec, wrote);
            co_return out;
        }
        out.length_known = !parser->need_eof();
        // Nothing unread may stay on a pooled connection: not a byte after the
        // response, and not the body a HEAD answer may still send late.
        const bool reusable =
            parser->get().keep_alive() && out.length_known && up.buffer.size() == 0 && !req.head_method;
        out.response = parser->release();
        pool.release(std::move(lease.conn), reusable);
        co_return out;
    }
}

}  // namespace cacheproxy::upstream
