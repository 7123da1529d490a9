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

asio::awaitable<ProbeResult> probe_once(const config::UpstreamConfig& cfg, asio::ip::tcp::endpoint endpoint,
                                        std::string host) {
    beast::tcp_stream stream(co_await asio::this_coro::executor);
    // The connect gets what the pool's gets: a shorter bound here would call
    // the upstream down on evidence the pool would not accept.
    stream.expires_after(cfg.connect_timeout);
    auto [ec] = co_await stream.async_connect(endpoint, tuple_awaitable);
    if (ec) co_return ProbeResult::refused;
    stream.expires_after(cfg.health_timeout);
    http::request<http::empty_body> req{http::verb::get, cfg.health_path, 11};
    req.set(http::field::host, host.empty() ? cfg.host + ":" + std::to_string(cfg.port) : host);
    req.set(http::field::user_agent, "cacheproxy-health");
    req.keep_alive(false);
    auto [wec, wn] = co_await http::async_write(stream, req, tuple_awaitable);
    if (wec) co_return ProbeResult::failed;
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 * 1024);  // a health answer is small; a huge one is not read whole
    auto [rec, rn] = co_await http::async_read(stream, buffer, parser, tuple_awaitable);
    if (rec) co_return ProbeResult::failed;
    beast::error_code ignored;
    stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    const unsigned status = parser.get().result_int();
    co_return status >= 200 && status < 300 ? ProbeResult::ok : ProbeResult::failed;
}

void apply_probe(ProbeResult result, const config::UpstreamConfig& cfg, UpstreamHealth& health) {
    if (result == ProbeResult::refused)
        health.mark_down(std::chrono::steady_clock::now() + cfg.health_interval);
    else
        health.mark_up();  // it takes connections: requests go to it, whatever the probe's answer
    health.last_check_ok.store(result == ProbeResult::ok);
}

asio::awaitable<void> run_health_checks(const config::UpstreamConfig& cfg, const asio::ip::tcp::endpoint& endpoint,
                                        const std::string* const& authority,
                                        UpstreamHealth& health, const std::atomic<bool>& stop) {
    asio::steady_timer timer(co_await asio::this_coro::executor);
    ProbeResult was = ProbeResult::ok;
    while (!stop.load()) {  // ends with the drain (stop) or the io_context
        const ProbeResult now = co_await probe_once(cfg, endpoint, *authority);
        apply_probe(now, cfg, health);
        if (now != was) {
            if (now == ProbeResult::ok)
                spdlog::info("upstream {}:{} is healthy again", endpoint.address().to_string(), endpoint.port());
            else if (now == ProbeResult::refused)
                spdlog::warn("upstream {}:{} refuses connections (health check): requests get 502",
                             endpoint.address().to_string(), endpoint.port());
            else
                spdlog::warn("upstream {}:{} failed its health check ({}): not ready, requests still forwarded",
                             endpoint.address().to_string(), endpoint.port(), cfg.health_path);
            was = now;
        }
        timer.expires_after(cfg.health_interval);
        co_await timer.async_wait(tuple_awaitable);
    }
}

}  // namespace cacheproxy::upstream
