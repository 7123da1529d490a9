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

asio::awaitable<void> admin_session(tcp::socket socket, AdminContext& admin) {
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer;
    for (;;) {
        stream.expires_after(std::chrono::seconds(30));
        http::request_parser<http::string_body> parser;
        parser.header_limit(16 * 1024);
        parser.body_limit(64 * 1024);
        auto [ec, n] = co_await http::async_read(stream, buffer, parser, tuple_awaitable);
        if (ec) break;
        auto res = handle(parser.get(), admin);
        if (admin.ctx.draining.load()) res.keep_alive(false);
        auto [wec, wn] = co_await http::async_write(stream, res, tuple_awaitable);
        if (wec || !res.keep_alive()) break;
    }
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
}

}  // namespace

asio::awaitable<void> admin_accept_loop(tcp::acceptor& acceptor, AdminContext& admin) {
    for (;;) {
        auto [ec, socket] = co_await acceptor.async_accept(tuple_awaitable);
        if (ec) {
            if (!acceptor.is_open() || ec == asio::error::operation_aborted) co_return;
            continue;
        }
        asio::co_spawn(acceptor.get_executor(), admin_session(std::move(socket), admin), asio::detached);
    }
}

}  // namespace cacheproxy::admin
