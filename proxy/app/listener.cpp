#include "app/listener.hpp"

#include "session/client_session.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/socket_base.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>


namespace cacheproxy::app {

namespace asio = boost::asio;
using boost::system::error_code;
using tcp = asio::ip::tcp;

tcp::acceptor open_acceptor(asio::io_context& ioc, const tcp::endpoint& ep, error_code& ec) {
    tcp::acceptor acceptor(ioc);
    acceptor.open(ep.protocol(), ec);
    if (ec) return acceptor;
    acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    acceptor.bind(ep, ec);
    if (ec) return acceptor;
    acceptor.listen(asio::socket_base::max_listen_connections, ec);
    return acceptor;
}

namespace {

asio::awaitable<void> serve(tcp::socket socket, app::Worker& worker) {
    session::ClientSession session(std::move(socket), worker);
    co_await session.run();
}

/// Over the connection cap: a 503 the client can read, then a graceful close
/// (what it sent meanwhile is read and dropped for a moment, so the answer is
/// not destroyed by a reset).
asio::awaitable<void> refuse(tcp::socket socket) {
    static constexpr std::string_view answer =
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 42\r\n"
        "Connection: close\r\nRetry-After: 1\r\n\r\n503 Service Unavailable: too many clients\n";
    static_assert(answer.size() - answer.find("\r\n\r\n") - 4 == 42, "Content-Length must match the body");
    error_code ec;
    socket.non_blocking(true, ec);
    socket.write_some(asio::buffer(answer), ec);  // fits any send buffer: no wait
    socket.shutdown(tcp::socket::shutdown_send, ec);
    asio::steady_timer linger(socket.get_executor(), std::chrono::milliseconds(300));
    linger.async_wait([&socket](const error_code& e) {
        if (!e) socket.cancel();
    });
    char sink[4096];
    for (int i = 0; i < 16; ++i) {
        auto [rec, n] = co_await socket.async_read_some(asio::buffer(sink), asio::as_tuple(asio::use_awaitable));
        if (rec) break;
    }
    linger.cancel();
    socket.close(ec);
}

void log_session_exception(std::exception_ptr e) {
    if (!e) return;
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& ex) {
        spdlog::error("session ended by an exception: {}", ex.what());
    }
}

/// Starts serving `socket` on `worker`, or refuses it over the connection cap.
void hand_over(tcp::socket socket, app::Worker& worker) {
    if (worker.ctx.client_connections.load() >= worker.ctx.cfg.limits.max_client_connections) {
        asio::co_spawn(worker.ioc, refuse(std::move(socket)), log_session_exception);
        return;
    }
    asio::co_spawn(worker.ioc, serve(std::move(socket), worker), log_session_exception);
}

}  // namespace

void accept_pending(tcp::acceptor& acceptor, std::vector<std::unique_ptr<app::Worker>>& workers) {
    error_code ec;
    acceptor.non_blocking(true, ec);
    for (std::size_t next = 0;; next = (next + 1) % workers.size()) {
        app::Worker& worker = *workers[next];
        tcp::socket socket(worker.ioc);
        acceptor.accept(socket, ec);
        if (ec) return;  // would_block: the backlog is empty
        hand_over(std::move(socket), worker);
    }
}

asio::awaitable<void> accept_loop(tcp::acceptor& acceptor, std::vector<std::unique_ptr<app::Worker>>& workers) {
    std::size_t next = 0;
    for (;;) {
        app::Worker& worker = *workers[next];
        next = (next + 1) % workers.size();
        auto [ec, socket] = co_await acceptor.async_accept(worker.ioc, asio::as_tuple(asio::use_awaitable));
        if (ec) {
            if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
            // Out of descriptors and the like: back off briefly, keep serving.
            spdlog::warn("accept failed: {}", ec.message());
            asio::steady_timer pause(acceptor.get_executor(), std::chrono::milliseconds(50));
            co_await pause.async_wait(asio::as_tuple(asio::use_awaitable));
            continue;
        }
        hand_over(std::move(socket), worker);
    }
}

}  // namespace cacheproxy::app
