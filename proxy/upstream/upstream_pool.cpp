#include "upstream/upstream_pool.hpp"

#include "http/proxy_error.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <spdlog/spdlog.h>

#include <sys/socket.h>

#include <cerrno>

namespace cacheproxy::upstream {

namespace asio = boost::asio;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;
using http_errors::errc;

/// A request waiting for a connection slot; woken by cancelling its timer.
struct Pool::Waiter {
    explicit Waiter(const asio::any_io_executor& ex) : timer(ex) {}
    asio::steady_timer timer;
    ConnectionPtr handed;   ///< a connection passed on directly by release()
    bool slot = false;      ///< a slot freed up: open a new connection
};

Pool::Pool(asio::any_io_executor ex, const config::UpstreamConfig& cfg, asio::ip::tcp::endpoint endpoint,
           std::size_t max_connections, UpstreamHealth& health)
    : ex_(std::move(ex)), cfg_(cfg), endpoint_(endpoint), max_(max_connections == 0 ? 1 : max_connections),
      health_(health) {
    idle_.reserve(max_);
}

Pool::~Pool() = default;

bool Pool::usable(Connection& c, Clock::time_point now) const {
    if (now - c.idle_since >= cfg_.idle_timeout) return false;
    // Reused only when nothing is readable on it, however recently it was
    // released: a connection the upstream closed reads as EOF (0), and one with
    // bytes nobody asked for (an unsolicited second response, a HEAD answer's
    // late body) would hand them to the next request as its answer. nginx
    // closes an idle keep-alive connection the moment it becomes readable.
    char byte;
    const auto n = ::recv(c.stream.socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

asio::awaitable<Pool::Lease> Pool::acquire(error_code& ec, bool fresh_only) {
    ec = {};
    const auto now = Clock::now();
    while (!fresh_only && !idle_.empty()) {
        ConnectionPtr c = std::move(idle_.back());
        idle_.pop_back();
        if (usable(*c, now)) {
            PoolStats::bump(stats_.reused);
            publish_gauges();
            co_return Lease{std::move(c), true};
        }
        PoolStats::bump(stats_.discarded_dead);
        error_code ignored;
        c->stream.socket().close(ignored);
        --open_;
    }
    if (health_.is_down(now)) {
        publish_gauges();
        ec = errc::upstream_unavailable;
        co_return Lease{};
    }
    if (open_ >= max_) {
        if (fresh_only && !idle_.empty()) {
            // Make room: drop an idle connection to open a fresh one.
            error_code ignored;
            idle_.front()->stream.socket().close(ignored);
            idle_.erase(idle_.begin());
            --open_;
        } else {
            auto w = std::make_shared<Waiter>(ex_);
            w->timer.expires_after(cfg_.connect_timeout);
            waiters_.push_back(w);
            publish_gauges();
            co_await w->timer.async_wait(asio::as_tuple(asio::use_awaitable));
            if (w->handed) {
                PoolStats::bump(stats_.reused);
                publish_gauges();
                co_return Lease{std::move(w->handed), true};
            }
            if (!w->slot) {
                std::erase(waiters_, w);
                PoolStats::bump(stats_.exhausted);
                publish_gauges();
                ec = errc::upstream_pool_exhausted;
                co_return Lease{};
            }
        }
    }
    ++open_;
    publish_gauges();
    auto c = std::make_unique<Connection>(ex_);
    c->stream.expires_after(cfg_.connect_timeout);
    auto [cec] = co_await c->stream.async_connect(endpoint_, asio::as_tuple(asio::use_awaitable));
    if (cec) {
        PoolStats::bump(stats_.connect_errors);
        release(nullptr, false);  // frees the slot, wakes a waiter
        const bool timed_out = cec == boost::beast::error::timeout;
        if (timed_out) PoolStats::bump(stats_.connect_timeouts);
        health_.mark_down(Clock::now() + cfg_.health_interval);
        spdlog::warn("upstream connect to {}:{} failed: {}", endpoint_.address().to_string(), endpoint_.port(),
                     cec.message());
        ec = timed_out ? errc::upstream_timeout : errc::upstream_unavailable;
        co_return Lease{};
    }
    PoolStats::bump(stats_.connects);
    health_.mark_up();
    c->stream.expires_never();
    error_code ignored;
    c->stream.socket().set_option(asio::ip::tcp::no_delay(true), ignored);
    c->stream.socket().non_blocking(true, ignored);  // for net::send_now; async operations are unaffected
    co_return Lease{std::move(c), false};
}

void Pool::release(ConnectionPtr conn, bool reusable) {
    if (conn && reusable) {
        conn->stream.expires_never();
        conn->idle_since = Clock::now();
        if (!waiters_.empty()) {
            auto w = std::move(waiters_.front());
            waiters_.pop_front();
            w->handed = std::move(conn);
            w->timer.cancel();
            publish_gauges();
            return;
        }
        idle_.push_back(std::move(conn));
        publish_gauges();
        return;
    }
    if (conn) {
        error_code ignored;
        conn->stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
        conn->stream.socket().close(ignored);
    }
    --open_;
    if (!waiters_.empty()) {
        auto w = std::move(waiters_.front());
        waiters_.pop_front();
        w->slot = true;
        w->timer.cancel();
    }
    publish_gauges();
}

void Pool::close_idle() {
    for (auto& c : idle_) {
        error_code ignored;
        c->stream.socket().close(ignored);
        --open_;
    }
    idle_.clear();
    publish_gauges();
}

PoolSnapshot Pool::snapshot() const {
    PoolSnapshot s;
#define CACHEPROXY_POOL_COPY(name, description) s.name = stats_.name.load(std::memory_order_relaxed);
    CACHEPROXY_POOL_COUNTERS(CACHEPROXY_POOL_COPY)
#undef CACHEPROXY_POOL_COPY
    s.max = max_;
    s.open = stats_.open.load(std::memory_order_relaxed);
    s.idle = stats_.idle.load(std::memory_order_relaxed);
    s.waiting = stats_.waiting.load(std::memory_order_relaxed);
    return s;
}

void Pool::publish_gauges() {
    stats_.open.store(open_, std::memory_order_relaxed);
    stats_.idle.store(idle_.size(), std::memory_order_relaxed);
    stats_.waiting.store(waiters_.size(), std::memory_order_relaxed);
}

PoolSnapshot& PoolSnapshot::operator+=(const PoolSnapshot& o) {
#define CACHEPROXY_POOL_ADD(name, description) name += o.name;
    CACHEPROXY_POOL_COUNTERS(CACHEPROXY_POOL_ADD)
#undef CACHEPROXY_POOL_ADD
    max += o.max;
    open += o.open;
    idle += o.idle;
    waiting += o.waiting;
    return *this;
}

}  // namespace cacheproxy::upstream
