#include "session/tunnel.hpp"

#include "http/date.hpp"
#include "http/hop_by_hop.hpp"
#include "http/wire.hpp"
#include "util/ascii.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/rfc7230.hpp>
#include <spdlog/spdlog.h>

#include <array>
#include <chrono>
#include <memory>

namespace cacheproxy::session {

namespace asio = boost::asio;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;
using namespace asio::experimental::awaitable_operators;
constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);

std::optional<std::string_view> requested_upgrade(const http::RequestHeader& req,
                                                  const config::TunnelConfig& tunnel) {
    if (req.version() != 11 || tunnel.protocols.empty()) return std::nullopt;
    bool connection_upgrade = false;
    std::string_view upgrade;
    for (const auto& f : req) {
        if (f.name() == bhttp::field::connection) {
            for (const auto token : bhttp::token_list{f.value()})
                if (util::iequals(token, "upgrade")) connection_upgrade = true;
        } else if (f.name() == bhttp::field::upgrade) {
            if (!upgrade.empty()) return std::nullopt;  // two Upgrade lines: not one clear ask
            upgrade = f.value();
        }
    }
    if (!connection_upgrade || upgrade.empty()) return std::nullopt;
    // The first protocol offered that the operator allows ("websocket", or
    // "websocket/13": the name before any version).
    for (const auto offered : bhttp::token_list{upgrade}) {
        const auto name = offered.substr(0, offered.find('/'));
        for (const auto& allowed : tunnel.protocols)
            if (util::iequals(name, allowed)) return std::string_view(allowed);
    }
    return std::nullopt;
}

namespace {

/// What both directions of one tunnel share (on the worker's thread only).
struct TunnelState {
    explicit TunnelState(const asio::any_io_executor& ex) : timer(ex) {}
    Clock::time_point last = Clock::now();  ///< the last byte either way
    int live = 2;                           ///< directions still carrying bytes
    bool idle = false;                      ///< closed by the idle timeout
    asio::steady_timer timer;               ///< the idle watchdog
};

/// Ends both directions at once (a reset, an error, the idle timeout).
void abort_both(Exchange& ex, upstream::Connection& up) {
    error_code ec;
    ex.client.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ec);
    ex.client.cancel();
    up.stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ec);
    up.stream.cancel();
}

/// One direction is done: the watchdog may stop once both are.
void direction_done(TunnelState& state) {
    if (--state.live == 0) state.timer.cancel();
}

/// Client -> upstream.
asio::awaitable<void> pump_up(Exchange& ex, upstream::Connection& up, TunnelState& state) {
    std::array<char, 16 * 1024> buf;
    for (;;) {
        ex.client.expires_never();
        auto [ec, n] = co_await ex.client.async_read_some(asio::buffer(buf), tuple_awaitable);
        if (n > 0) {
            state.last = Clock::now();
            stats::bump(ex.worker.tunnels.bytes_up, n);
            up.stream.expires_never();
            auto [wec, wn] = co_await asio::async_write(up.stream, asio::buffer(buf.data(), n), tuple_awaitable);
            if (wec) {
                abort_both(ex, up);
                break;
            }
        }
        if (ec == asio::error::eof) {  // the client's FIN goes on as a FIN
            error_code sec;
            up.stream.socket().shutdown(asio::ip::tcp::socket::shutdown_send, sec);
            break;
        }
        if (ec) {
            abort_both(ex, up);
            break;
        }
    }
    direction_done(state);
}

/// Upstream -> client, through the downstream writer.
asio::awaitable<void> pump_down(Exchange& ex, upstream::Connection& up, TunnelState& state) {
    std::array<char, 16 * 1024> buf;
    for (;;) {
        up.stream.expires_never();
        auto [ec, n] = co_await up.stream.async_read_some(asio::buffer(buf), tuple_awaitable);
        if (n > 0) {
            state.last = Clock::now();
            stats::bump(ex.worker.tunnels.bytes_down, n);
            const std::array<asio::const_buffer, 1> piece{asio::buffer(buf.data(), n)};
            error_code wec;
            const std::size_t sent = ex.down.write_now(piece, wec);
            if (!wec && sent < n) wec = co_await ex.down.write_rest(piece, sent);
            if (wec) {
                abort_both(ex, up);
                break;
            }
        }
        if (ec == asio::error::eof) {
            error_code sec;
            ex.client.socket().shutdown(asio::ip::tcp::socket::shutdown_send, sec);
            break;
        }
        if (ec) {
            abort_both(ex, up);
            break;
        }
    }
    direction_done(state);
}

/// Closes the tunnel once no byte went either way for `idle`.
asio::awaitable<void> watchdog(Exchange& ex, upstream::Connection& up, TunnelState& state, config::Duration idle) {
    while (state.live > 0) {
        state.timer.expires_at(state.last + idle);
        co_await state.timer.async_wait(tuple_awaitable);
        if (state.live > 0 && Clock::now() - state.last >= idle) {
            state.idle = true;
            abort_both(ex, up);
            break;
        }
    }
}

/// Counts the tunnel open for as long as it lives.
struct OpenTunnel {
    explicit OpenTunnel(std::atomic<std::size_t>& c) : count(c) { count.fetch_add(1, std::memory_order_relaxed); }
    ~OpenTunnel() { count.fetch_sub(1, std::memory_order_relaxed); }
    std::atomic<std::size_t>& count;
};

}  // namespace

asio::awaitable<bool> tunnel(Exchange& ex, upstream::Pool::Lease lease, std::string_view protocol) {
    auto& up = *lease.conn;
    auto& res = ex.scratch.response->get();
    const std::string upgrade(res[bhttp::field::upgrade]);
    if (upgrade.empty()) {
        // A 101 must say what it switched to (RFC 9110 15.2.2).
        ex.worker.pool.release(std::move(lease.conn), false);
        co_await ex.send_error(502, "upstream switched protocols without an Upgrade field", false);
        co_return false;
    }
    OpenTunnel open(ex.worker.ctx.tunnels_open);
    stats::bump(ex.worker.tunnels.opened);
    ex.record.status = 101;

    // The 101 as the client sees it: the upstream's fields less hop-by-hop,
    // the upgrade itself, our Date and Via.
    http::strip_hop_by_hop(res);
    res.set(bhttp::field::connection, "upgrade");
    res.set(bhttp::field::upgrade, upgrade);
    res.set(bhttp::field::date, http::current_date());
    res.set(bhttp::field::via, http::via_token(11));
    res.version(11);
    auto& head = ex.scratch.wire_head;
    head.clear();
    http::append_head(res, head);
    // What either side sent after its head belongs to the tunnel.
    const std::array<asio::const_buffer, 2> first{asio::buffer(head), up.buffer.data()};
    error_code ec;
    const std::size_t sent = ex.down.write_now(first, ec);
    if (!ec && sent < asio::buffer_size(first)) ec = co_await ex.down.write_rest(first, sent);
    stats::bump(ex.worker.tunnels.bytes_down, up.buffer.size());
    up.buffer.consume(up.buffer.size());
    if (!ec && ex.client_buffer.size() > 0) {
        stats::bump(ex.worker.tunnels.bytes_up, ex.client_buffer.size());
        up.stream.expires_after(ex.cfg().limits.body_timeout);
        std::tie(ec, std::ignore) = co_await asio::async_write(up.stream, ex.client_buffer.data(), tuple_awaitable);
        ex.client_buffer.consume(ex.client_buffer.size());
    }
    if (!ec) {
        spdlog::debug("tunnel ({}) open for {}", protocol, ex.peer.ip);
        TunnelState state(ex.worker.ioc.get_executor());
        const auto idle = ex.cfg().tunnel.idle_timeout;
        if (idle > config::Duration::zero())
            co_await (pump_up(ex, up, state) && pump_down(ex, up, state) && watchdog(ex, up, state, idle));
        else
            co_await (pump_up(ex, up, state) && pump_down(ex, up, state));
        if (state.idle) stats::bump(ex.worker.tunnels.idle_closed);
    }
    ex.worker.pool.release(std::move(lease.conn), false);  // never pooled again
    co_return false;
}

}  // namespace cacheproxy::session
