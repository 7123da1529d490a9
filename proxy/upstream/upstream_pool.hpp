#pragma once
/// Keep-alive connections to the upstream, one pool per worker thread: a pool
/// is only ever touched from its own io_context, so it needs no lock.
///
/// Two caps, as in nginx (`keepalive N` vs `max_conns`): `max_idle` bounds the
/// connections *kept* for reuse, `max_active` those in use (leased or
/// connecting). They are separate because a long-lived response (an event
/// stream, a big download) holds its connection for as long as it runs: were
/// one cap to bound both, 50 open streams would make every other request wait
/// and get a 503. The active cap only guards against runaway fan-out (0 = none).

#include "config/config.hpp"
#include "upstream/upstream_health.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

namespace cacheproxy::upstream {

/// What an upstream read asks the socket for. Beast reads
/// max(512, capacity - size) bytes at a time into a dynamic buffer, so an
/// unreserved buffer reads a body 512 bytes per recv(); reserved, a download
/// moves in pieces this large.
inline constexpr std::size_t kReadBufferBytes = 64 * 1024;

/// One connection to the upstream, with its read buffer.
struct Connection {
    explicit Connection(const boost::asio::any_io_executor& ex) : stream(ex) { buffer.reserve(kReadBufferBytes); }
    boost::beast::tcp_stream stream;
    boost::beast::flat_buffer buffer;
    std::chrono::steady_clock::time_point idle_since{};
    std::uint64_t requests = 0;  ///< requests sent on it so far
    std::uint64_t target = 0;    ///< the pool's target (Pool::retarget) when it was opened
};
using ConnectionPtr = std::unique_ptr<Connection>;

/// Every pool counter, declared once: X(name, description).
#define CACHEPROXY_POOL_COUNTERS(X)                                                          \
    X(connects, "connections opened to the upstream")                                       \
    X(connect_errors, "connects that failed (refused, reset or timed out)")                  \
    X(connect_timeouts, "connects that timed out (also counted in connect_errors)")          \
    X(reused, "requests sent on a kept-alive connection")                                    \
    X(discarded_dead, "idle connections found closed by the upstream and dropped")           \
    X(exhausted, "requests that found no connection free within connect_timeout")                 \
    X(idle_evicted, "kept-alive connections closed because max_idle_connections were idle already")

/// Counters and gauges of one pool. Written only by the pool's own thread
/// (relaxed load + store: no lock, no read-modify-write); any thread may read
/// them (the admin's /stats), seeing each value exact or slightly behind.
struct PoolStats {
#define CACHEPROXY_POOL_COUNTER_FIELD(name, description) std::atomic<std::uint64_t> name{0};
    CACHEPROXY_POOL_COUNTERS(CACHEPROXY_POOL_COUNTER_FIELD)
#undef CACHEPROXY_POOL_COUNTER_FIELD
    std::atomic<std::size_t> open{0};     ///< idle + leased + connecting
    std::atomic<std::size_t> idle{0};     ///< kept alive, unused
    std::atomic<std::size_t> waiting{0};  ///< requests queued for a connection

    /// Single writer: +1 without a locked instruction.
    static void bump(std::atomic<std::uint64_t>& c) {
        c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    }
};

/// A copy of one pool's numbers, taken from any thread.
struct PoolSnapshot {
#define CACHEPROXY_POOL_SNAPSHOT_FIELD(name, description) std::uint64_t name = 0;
    CACHEPROXY_POOL_COUNTERS(CACHEPROXY_POOL_SNAPSHOT_FIELD)
#undef CACHEPROXY_POOL_SNAPSHOT_FIELD
    std::size_t max = 0;      ///< active connection cap of this pool (0 = none)
    std::size_t max_idle = 0; ///< idle connections kept at most
    std::size_t open = 0;
    std::size_t idle = 0;
    std::size_t waiting = 0;
    /// Leased or connecting: open - idle.
    std::size_t active() const { return open > idle ? open - idle : 0; }
    PoolSnapshot& operator+=(const PoolSnapshot& o);
};

/// One pool's share of upstream.max_connections / max_idle_connections.
struct PoolLimits {
    std::size_t max_active = 0;  ///< leased + connecting; 0 = no cap
    std::size_t max_idle = 0;    ///< kept for reuse; 0 = none kept (every connection closes after use)

    /// Each of `workers` pools gets its share, rounded up (a cap of 0 stays 0 = none).
    static PoolLimits per_worker(const config::UpstreamConfig& cfg, std::size_t workers);
};

class Pool {
public:
    Pool(boost::asio::any_io_executor ex, const config::UpstreamConfig& cfg,
         boost::asio::ip::tcp::endpoint endpoint, PoolLimits limits, UpstreamHealth& health);
    ~Pool();

    /// A connection handed out: `reused` tells whether it served a request before.
    struct Lease {
        ConnectionPtr conn;
        bool reused = false;
    };

    /// An idle connection if one is alive (unless `fresh_only`), else a new one
    /// within the active cap (waiting up to connect_timeout for a slot). `ec` is
    /// set on failure (upstream down, connect refused or timed out, no slot in time).
    /// A failed connect marks the upstream down for health_interval; a
    /// successful one marks it up (the evidence UpstreamHealth runs on).
    boost::asio::awaitable<Lease> acquire(boost::system::error_code& ec, bool fresh_only = false);

    /// Gives a connection back: handed to a waiter, or kept for reuse when
    /// `reusable` (the least recently used idle one closes when max_idle are
    /// kept already), else closed.
    void release(ConnectionPtr conn, bool reusable);

    std::size_t open() const { return open_; }
    std::size_t idle() const { return idle_.size(); }
    /// Leased or connecting.
    std::size_t active() const { return open_ - idle_.size(); }
    /// The counters and gauges; safe to call from any thread.
    PoolSnapshot snapshot() const;

    /// Closes the idle connections (shutdown).
    void close_idle();

    /// New connections go to `endpoint` from now on (a reload's new
    /// upstream.url): the idle ones, to the old address, are closed; those in
    /// use finish their exchange and are closed when released, never pooled.
    void retarget(boost::asio::ip::tcp::endpoint endpoint);
    /// Where new connections go. Read on the pool's own thread only.
    const boost::asio::ip::tcp::endpoint& endpoint() const { return endpoint_; }

private:
    struct Waiter;
    bool usable(Connection& c, std::chrono::steady_clock::time_point now) const;
    bool at_active_cap() const { return limits_.max_active != 0 && active() >= limits_.max_active; }
    /// Waits for a slot under the active cap: a connection handed over (never
    /// to `fresh_only`: it gets the slot instead), a slot, or nothing in time.
    boost::asio::awaitable<Lease> wait_for_slot(boost::system::error_code& ec, bool fresh_only, bool& slot);
    /// Opens a new connection (the slot is already counted in open_).
    boost::asio::awaitable<Lease> connect(boost::system::error_code& ec);
    void close_connection(Connection& c);

    boost::asio::any_io_executor ex_;
    const config::UpstreamConfig& cfg_;
    boost::asio::ip::tcp::endpoint endpoint_;
    std::uint64_t target_ = 0;  ///< +1 per retarget(): a connection opened before is not reused
    PoolLimits limits_;
    UpstreamHealth& health_;
    std::deque<ConnectionPtr> idle_;            ///< most recently used last
    std::size_t open_ = 0;                      ///< idle + leased + connecting
    std::deque<std::shared_ptr<Waiter>> waiters_;  ///< requests waiting for a slot
    PoolStats stats_;
    /// Mirrors open_, idle_.size() and waiters_.size() into stats_ (own thread only).
    void publish_gauges();
};

}  // namespace cacheproxy::upstream
