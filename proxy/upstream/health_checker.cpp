#include "upstream/health_checker.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <spdlog/spdlog.h>

namespace cacheproxy::upstream {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);

namespace {

/// One probe: true when the upstream answered 2xx within the timeout.
asio::awaitable<bool> probe(const config::UpstreamConfig& cfg, asio::ip::tcp::endpoint endpoint) {
    beast::tcp_stream stream(co_await asio::this_coro::executor);
    stream.expires_after(cfg.health_timeout);
    auto [ec] = co_await stream.async_connect(endpoint, tuple_awaitable);
    if (ec) co_return false;
    http::request<http::empty_body> req{http::verb::get, cfg.health_path, 11};
    req.set(http::field::host, cfg.host + ":" + std::to_string(cfg.port));
    req.set(http::field::user_agent, "cacheproxy-health");
    req.keep_alive(false);
    auto [wec, wn] = co_await http::async_write(stream, req, tuple_awaitable);
    if (wec) co_return false;
    beast::flat_buffer buffer;
    http::response<http::string_body> res;
    auto [rec, rn] = co_await http::async_read(stream, buffer, res, tuple_awaitable);
    if (rec) co_return false;
    beast::error_code ignored;
    stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    co_return res.result_int() >= 200 && res.result_int() < 300;
}

}  // namespace

asio::awaitable<void> run_health_checks(const config::UpstreamConfig& cfg, asio::ip::tcp::endpoint endpoint,
                                        UpstreamHealth& health, const std::atomic<bool>& stop) {
    asio::steady_timer timer(co_await asio::this_coro::executor);
    bool was_ok = true;
    while (!stop.load()) {
        const bool ok = co_await probe(cfg, endpoint);
        if (ok) {
            health.mark_up();
        } else {
            health.mark_down(std::chrono::steady_clock::now() + 2 * cfg.health_interval);
        }
        health.last_check_ok.store(ok);
        if (ok != was_ok) {
            if (ok)
                spdlog::info("upstream {}:{} is healthy again", cfg.host, cfg.port);
            else
                spdlog::warn("upstream {}:{} failed its health check ({})", cfg.host, cfg.port, cfg.health_path);
            was_ok = ok;
        }
        timer.expires_after(cfg.health_interval);
        co_await timer.async_wait(tuple_awaitable);
    }
}

}  // namespace cacheproxy::upstream
