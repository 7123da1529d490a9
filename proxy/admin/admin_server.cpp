#include "admin/admin_server.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>

namespace cacheproxy::admin {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);

namespace {

/// The pure part: an admin request in, a response out.
http::response<http::string_body> handle(const http::request<http::string_body>& req, app::ServerContext& ctx) {
    http::response<http::string_body> res{http::status::ok, req.version()};
    res.set(http::field::content_type, "application/json");
    res.set(http::field::cache_control, "no-store");
    const auto path = req.target().substr(0, req.target().find('?'));
    if (req.method() != http::verb::get && req.method() != http::verb::head) {
        res.result(http::status::method_not_allowed);
        res.body() = R"({"error":"method not allowed"})";
    } else if (path == "/healthz") {
        res.body() = R"({"status":"ok"})";
    } else if (path == "/readyz") {
        const bool up = !ctx.health.is_down(std::chrono::steady_clock::now()) && ctx.health.last_check_ok.load();
        if (!up) res.result(http::status::service_unavailable);
        res.body() = up ? R"({"status":"ready","upstream":"up"})" : R"({"status":"not ready","upstream":"down"})";
    } else {
        res.result(http::status::not_found);
        res.body() = R"({"error":"not found"})";
    }
    res.keep_alive(req.keep_alive());
    res.prepare_payload();
    return res;
}

asio::awaitable<void> admin_session(tcp::socket socket, app::ServerContext& ctx) {
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer;
    for (;;) {
        stream.expires_after(std::chrono::seconds(30));
        http::request_parser<http::string_body> parser;
        parser.body_limit(64 * 1024);
        auto [ec, n] = co_await http::async_read(stream, buffer, parser, tuple_awaitable);
        if (ec) break;
        auto res = handle(parser.get(), ctx);
        auto [wec, wn] = co_await http::async_write(stream, res, tuple_awaitable);
        if (wec || !res.keep_alive()) break;
    }
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
}

}  // namespace

asio::awaitable<void> admin_accept_loop(tcp::acceptor& acceptor, app::ServerContext& ctx) {
    for (;;) {
        auto [ec, socket] = co_await acceptor.async_accept(tuple_awaitable);
        if (ec) {
            if (!acceptor.is_open() || ec == asio::error::operation_aborted) co_return;
            continue;
        }
        asio::co_spawn(acceptor.get_executor(), admin_session(std::move(socket), ctx), asio::detached);
    }
}

}  // namespace cacheproxy::admin
