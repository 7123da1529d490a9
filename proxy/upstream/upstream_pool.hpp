#pragma once
/// Keep-alive connections to the upstream, one pool per worker thread: a pool
/// is only ever touched from its own io_context, so it needs no lock.

#include "config/config.hpp"
#include "upstream/upstream_health.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

namespace cacheproxy::upstream {

/// One connection to the upstream, with its read buffer.
struct Connection {
    explicit Connection(const boost::asio::any_io_executor& ex) : stream(ex) {}
    boost::beast::tcp_stream stream;
    boost::beast::flat_buffer buffer;
    std::chrono::steady_clock::time_point idle_since{};
    std::uint64_t requests = 0;  ///< requests sent on it so far
};
using ConnectionPtr = std::unique_ptr<Connection>;

/// Counters of one pool (read from its own thread, or racily for stats).
struct PoolStats {
    std::uint64_t connects = 0;
    std::uint64_t connect_errors = 0;
    std::uint64_t reused = 0;
    std::uint64_t discarded_dead = 0;  ///< idle connections found closed by the upstream
};

class Pool {
public:
    Pool(boost::asio::any_io_executor ex, const config::UpstreamConfig& cfg,
         boost::asio::ip::tcp::endpoint endpoint, std::size_t max_connections, UpstreamHealth& health);
    ~Pool();

    /// A connection handed out: `reused` tells whether it served a request before.
    struct Lease {
        ConnectionPtr conn;
        bool reused = false;
    };

    /// An idle connection if one is alive (unless `fresh_only`), else a new one
    /// within the connection limit. `ec` is set on failure (upstream down,
    /// connect refused or timed out, no connection free in time).
    boost::asio::awaitable<Lease> acquire(boost::system::error_code& ec, bool fresh_only = false);

    /// Gives a connection back: kept for reuse when `reusable`, else closed.
    void release(ConnectionPtr conn, bool reusable);

    std::size_t open() const { return open_; }
    std::size_t idle() const { return idle_.size(); }
    const PoolStats& stats() const { return stats_; }

    /// Closes the idle connections (shutdown).
    void close_idle();

private:
    struct Waiter;
    bool usable(Connection& c, std::chrono::steady_clock::time_point now) const;

    boost::asio::any_io_executor ex_;
    const config::UpstreamConfig& cfg_;
    boost::asio::ip::tcp::endpoint endpoint_;
    std::size_t max_;
    UpstreamHealth& health_;
    std::vector<ConnectionPtr> idle_;           ///< most recently used last
    std::size_t open_ = 0;                      ///< idle + leased + connecting
    std::deque<std::shared_ptr<Waiter>> waiters_;  ///< requests waiting for a slot
    PoolStats stats_;
};

}  // namespace cacheproxy::upstream
