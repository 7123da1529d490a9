#include "net/listener.hpp"

#include "session/client_session.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/socket_base.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>


namespace cacheproxy::net {

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

}  // namespace

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
        if (worker.ctx.client_connections.load() >= worker.ctx.cfg.limits.max_client_connections) {
            error_code ignored;
            socket.close(ignored);
            continue;
        }
        asio::co_spawn(worker.ioc, serve(std::move(socket), worker), [](std::exception_ptr e) {
            if (!e) return;
            try {
                std::rethrow_exception(e);
            } catch (const std::exception& ex) {
                spdlog::error("session ended by an exception: {}", ex.what());
            }
        });
    }
}

}  // namespace cacheproxy::net
