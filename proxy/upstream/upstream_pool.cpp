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

PoolLimits PoolLimits::per_worker(const config::UpstreamConfig& cfg, std::size_t workers) {
    const std::size_t n = workers == 0 ? 1 : workers;
    auto share = [n](std::size_t total) { return (total + n - 1) / n; };
    return PoolLimits{.max_active = share(cfg.max_connections), .max_idle = share(cfg.max_idle_connections)};
}

Pool::Pool(asio::any_io_executor ex, const config::UpstreamConfig& cfg, asio::ip::tcp::endpoint endpoint,
           PoolLimits limits, UpstreamHealth& health)
    : ex_(std::move(ex)), cfg_(cfg), endpoint_(endpoint), limits_(limits), health_(health) {}

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

void Pool::close_connection(Connection& c) {
    error_code ignored;
    c.stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    c.stream.socket().close(ignored);
}

asio::awaitable<Pool::Lease> Pool::acquire(error_code& ec, bool fresh_only) {
    ec = {};
    const auto now = Clock::now();
    // Bounded: each turn takes one connection out of the idle list.
    while (!fresh_only && !idle_.empty()) {
        ConnectionPtr c = std::move(idle_.back());
        idle_.pop_back();
        if (usable(*c, now)) {
            PoolStats::bump(stats_.reused);
            publish_gauges();
            co_return Lease{std::move(c), true};
        }
        PoolStats::bump(stats_.discarded_dead);
        close_connection(*c);
        --open_;
    }
    if (health_.is_down(now)) {
        publish_gauges();
        ec = errc::upstream_unavailable;
        co_return Lease{};
    }
    if (at_active_cap()) {
        bool slot = false;
        auto handed = co_await wait_for_slot(ec, fresh_only, slot);
        if (ec || !slot) co_return handed;  // a connection handed over, or nothing in time
    }
    ++open_;
    co_return co_await connect(ec);
}

asio::awaitable<Pool::Lease> Pool::wait_for_slot(error_code& ec, bool fresh_only, bool& slot) {
    auto w = std::make_shared<Waiter>(ex_);
    w->timer.expires_after(cfg_.connect_timeout);
    waiters_.push_back(w);
    publish_gauges();
    co_await w->timer.async_wait(asio::as_tuple(asio::use_awaitable));
    if (w->handed && fresh_only) {
        // Someone who must not meet a kept-alive connection (a write, a retry)
        // takes the handed one's slot instead.
        close_connection(*w->handed);
        w->handed.reset();
        --open_;
        w->slot = true;
    }
    if (w->handed) {
        PoolStats::bump(stats_.reused);
        publish_gauges();
        co_return Lease{std::move(w->handed), true};
    }
    slot = w->slot;
    if (!slot) {
        std::erase(waiters_, w);
        PoolStats::bump(stats_.exhausted);
        publish_gauges();
        ec = errc::upstream_pool_exhausted;
    }
    co_return Lease{};
}

asio::awaitable<Pool::Lease> Pool::connect(error_code& ec) {
    publish_gauges();
    auto c = std::make_unique<Connection>(ex_);
    c->target = target_;
    c->stream.expires_after(cfg_.connect_timeout);
    auto [cec] = co_await c->stream.async_connect(endpoint_, asio::as_tuple(asio::use_awaitable));
    if (cec) {
        // Passive evidence: the upstream refused, is unreachable or did not
        // answer the SYN. Requests get a 502 at once until health_interval has
        // passed (or the active check connects), instead of each waiting.
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
    health_.mark_up();  // recovery: a connect that succeeds is the evidence
    c->stream.expires_never();
    error_code ignored;
    c->stream.socket().set_option(asio::ip::tcp::no_delay(true), ignored);
    c->stream.socket().non_blocking(true, ignored);  // for net::send_now; async operations are unaffected
    co_return Lease{std::move(c), false};
}

void Pool::release(ConnectionPtr conn, bool reusable) {
    if (conn && conn->target != target_) reusable = false;  // to an upstream address no longer used
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
        if (limits_.max_idle == 0) {
            PoolStats::bump(stats_.idle_evicted);
            close_connection(*conn);
            --open_;
            publish_gauges();
            return;
        }
        if (idle_.size() >= limits_.max_idle) {
            // Keep the fresh one: the oldest is the nearest to the upstream's
            // own keep-alive timeout (uvicorn's is 5 s), so the likeliest dead.
            PoolStats::bump(stats_.idle_evicted);
            close_connection(*idle_.front());
            idle_.pop_front();
            --open_;
        }
        idle_.push_back(std::move(conn));
        publish_gauges();
        return;
    }
    if (conn) close_connection(*conn);
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

void Pool::retarget(asio::ip::tcp::endpoint endpoint) {
    endpoint_ = endpoint;
    ++target_;
    close_idle();
}

PoolSnapshot Pool::snapshot() const {
    PoolSnapshot s;
#define CACHEPROXY_POOL_COPY(name, description) s.name = stats_.name.load(std::memory_order_relaxed);
    CACHEPROXY_POOL_COUNTERS(CACHEPROXY_POOL_COPY)
#undef CACHEPROXY_POOL_COPY
    s.max = limits_.max_active;
    s.max_idle = limits_.max_idle;
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
    max_idle += o.max_idle;
    open += o.open;
    idle += o.idle;
    waiting += o.waiting;
    return *this;
}

}  // namespace cacheproxy::upstream
