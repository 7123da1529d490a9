#include "app/listener.hpp"

#include "session/client_session.hpp"
#include "stats/cache_counters.hpp"

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

namespace {

using reuse_port = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;

/// Opens and binds with SO_REUSEADDR (a restart binds past TIME_WAIT), and
/// SO_REUSEPORT when `group`; listens when `listening`.
tcp::acceptor bind_socket(asio::io_context& ioc, const tcp::endpoint& ep, bool group, bool listening,
                          error_code& ec) {
    tcp::acceptor acceptor(ioc);
    acceptor.open(ep.protocol(), ec);
    if (ec) return acceptor;
    acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec && group) acceptor.set_option(reuse_port(true), ec);
    if (!ec) acceptor.bind(ep, ec);
    if (!ec && listening) acceptor.listen(asio::socket_base::max_listen_connections, ec);
    return acceptor;
}

}  // namespace

tcp::acceptor open_acceptor(asio::io_context& ioc, const tcp::endpoint& ep, error_code& ec) {
    return bind_socket(ioc, ep, false, true, ec);
}

std::vector<std::unique_ptr<tcp::acceptor>> open_acceptors(std::vector<std::unique_ptr<app::Worker>>& workers,
                                                           const tcp::endpoint& ep, error_code& ec) {
    std::vector<std::unique_ptr<tcp::acceptor>> out;
    if (workers.size() == 1) {
        out.push_back(std::make_unique<tcp::acceptor>(open_acceptor(workers[0]->ioc, ep, ec)));
        if (ec) out.clear();
        return out;
    }
    // The probe: no SO_REUSEPORT, so its bind fails (address in use) while
    // any socket listens on the port, an SO_REUSEPORT group included: a
    // second instance's probe fails on ours. (Left open: two instances whose
    // probes both bind before either group listens, a start-up instant.)
    tcp::endpoint at = ep;
    {
        tcp::acceptor probe = bind_socket(workers[0]->ioc, ep, false, false, ec);
        if (ec) return {};
        at.port(probe.local_endpoint(ec).port());
        if (ec) return {};
    }
    for (auto& w : workers) {
        out.push_back(std::make_unique<tcp::acceptor>(bind_socket(w->ioc, at, true, true, ec)));
        if (ec) return {};
    }
    return out;
}

namespace {

asio::awaitable<void> serve(tcp::socket socket, app::Worker& worker) {
    session::ClientSession session(std::move(socket), worker);
    worker.ctx.client_connections.fetch_sub(1);  // the session counts itself now: hand_over()'s reservation ends
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
    stats::bump(worker.connections_accepted);
    // The place is reserved at once (the session's own count starts when it
    // runs): workers accepting at the same moment cannot pass the cap together,
    // and the drain waits for a connection accepted but not yet started.
    auto& open = worker.ctx.client_connections;
    if (open.fetch_add(1) >= worker.ctx.cfg.limits.max_client_connections) {
        open.fetch_sub(1);
        asio::co_spawn(worker.ioc, refuse(std::move(socket)), log_session_exception);
        return;
    }
    asio::co_spawn(worker.ioc, serve(std::move(socket), worker), log_session_exception);
}

}  // namespace

void accept_pending(tcp::acceptor& acceptor, app::Worker& worker) {
    error_code ec;
    acceptor.non_blocking(true, ec);
    for (;;) {
        tcp::socket socket(worker.ioc);
        acceptor.accept(socket, ec);
        if (ec) return;  // would_block: the backlog is empty
        hand_over(std::move(socket), worker);
    }
}

asio::awaitable<void> accept_loop(tcp::acceptor& acceptor, app::Worker& worker) {
    worker.start_sweep();  // the sessions' header deadlines
    for (;;) {
        // Several workers may wait on one passed socket (socket activation):
        // the one that loses the race sees would_block, which Asio waits out.
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
