#include "upstream/fetch.hpp"

#include "http/proxy_error.hpp"
#include "http/request_guard.hpp"

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

bool stale_connection_error(const error_code& ec) {
    return ec == asio::error::eof || ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
           ec == bhttp::error::end_of_stream || ec == asio::error::connection_aborted;
}

}  // namespace

asio::awaitable<FetchResult> fetch_whole(Pool& pool, const config::UpstreamConfig& cfg, const Request& req,
                                         std::size_t body_limit, bool retry_if_stale) {
    FetchResult out;
    for (int attempt = 0;; ++attempt) {
        error_code ec;
        // A write goes on a fresh connection: it must not meet a dead keep-alive one.
        auto lease = co_await pool.acquire(ec, attempt > 0 || !retry_if_stale);
        if (ec) {
            out.ec = ec;
            co_return out;
        }
        auto& up = *lease.conn;
        ++up.requests;
        up.stream.expires_after(cfg.response_timeout);
        const std::array<asio::const_buffer, 2> wire{asio::buffer(req.head), asio::buffer(req.body)};
        auto [wec, wn] = co_await asio::async_write(up.stream, wire, tuple_awaitable);
        if (wec) {
            pool.release(std::move(lease.conn), false);
            if (retry_if_stale && attempt == 0 && lease.reused && stale_connection_error(wec)) continue;
            out.ec = wec == beast::error::timeout ? make_error_code(errc::upstream_timeout)
                                                  : make_error_code(errc::upstream_unavailable);
            co_return out;
        }
        std::optional<bhttp::response_parser<bhttp::string_body>> parser;
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
        if (!rec && !http::check_response(parser->get())) rec = errc::upstream_bad_response;
        if (!rec) {
            auto [bec, bn] = co_await bhttp::async_read(up.stream, up.buffer, *parser, tuple_awaitable);
            rec = bec;
        }
        if (rec) {
            const bool nothing_received = !parser->got_some() && up.buffer.size() == 0;
            pool.release(std::move(lease.conn), false);
            if (retry_if_stale && attempt == 0 && lease.reused && nothing_received && stale_connection_error(rec))
                continue;
            if (rec == bhttp::error::body_limit) {
                out.too_large = true;
                co_return out;
            }
            out.ec = rec == beast::error::timeout ? make_error_code(errc::upstream_timeout)
                                                  : make_error_code(errc::upstream_bad_response);
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
