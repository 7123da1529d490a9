#pragma once
/// One connection to one Redis node, owned by Asio (no blocking call, no
/// hiredis I/O): commands are pipelined and replies matched in FIFO order;
/// every command has a deadline, and a deadline missed closes the connection
/// (a late reply could otherwise answer the next command) and fails every
/// pending command. A closed connection reconnects by itself with jittered
/// exponential backoff; while it is down, exec() fails at once with
/// Error::not_connected, which is the circuit breaker: nothing is sent to a
/// dead node, and the reconnect attempt is the probe.
///
/// Single-threaded: every member is called on the executor given to the
/// constructor (the shared tier's own thread, cluster/tier.hpp).
///
/// Subscriber use (RESP2): after SSUBSCRIBE/SUBSCRIBE, "message",
/// "smessage" and "pmessage" arrays are pushes, given to on_push in stream
/// order; everything else still answers the pending commands in order, so a
/// PING sent on the subscriber connection ( -> ["pong", ""] ) completes only
/// after every message Redis queued for it before executing the PING has gone
/// to on_push (the cross-instance read-your-writes barrier rests on this).

#include "redis/errors.hpp"
#include "redis/resp.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace cacheproxy::redis {

/// A reply, or the transport's error (then `reply` is nil).
struct Result {
    boost::system::error_code ec;
    Reply reply;
    bool ok() const { return !ec && !reply.is_error(); }
};

class Node {
public:
    struct Options {
        std::string host;              ///< numeric IPv4/IPv6 (no resolver on this path)
        std::uint16_t port = 6379;
        std::chrono::milliseconds connect_timeout{200};
        std::chrono::milliseconds op_timeout{50};      ///< every command's default deadline
        std::chrono::milliseconds backoff_min{50};     ///< first reconnect delay (jittered)
        std::chrono::milliseconds backoff_max{1000};   ///< ceiling of the doubling delay
        std::string password;          ///< AUTH on connect when not empty
        std::string client_name;       ///< CLIENT SETNAME on connect when not empty
    };
    /// Counters, written on the node's thread only (relaxed atomics: read by /stats).
    struct Stats {
        std::atomic<std::uint64_t> ops{0}, errors{0}, timeouts{0}, connects{0}, disconnects{0};
        std::atomic<std::uint64_t> last_rtt_us{0};    ///< the latest command's round trip
    };

    Node(boost::asio::any_io_executor executor, Options options);
    ~Node();
    Node(const Node&) = delete;
    Node& operator=(const Node&) = delete;

    /// Starts connecting (and reconnecting whenever the connection closes).
    void start();
    /// Closes the connection for good: pending commands fail with Error::closed.
    void stop();
    /// Connected, and on_connect succeeded.
    bool up() const;

    /// Sends argv and waits for its reply, at most `timeout` (0: options.op_timeout).
    /// Fails at once with not_connected while down. Never throws.
    boost::asio::awaitable<Result> exec(std::vector<std::string> argv, std::chrono::milliseconds timeout = {});

    /// Runs after every TCP connect (after AUTH / CLIENT SETNAME / INFO
    /// server), before up() turns true; exec() works inside it. An error
    /// closes the connection and the reconnect loop tries again later.
    std::function<boost::asio::awaitable<boost::system::error_code>()> on_connect;
    /// After on_connect succeeded (up() is true).
    std::function<void()> on_up;
    /// The connection closed (after every pending command was failed).
    std::function<void(boost::system::error_code)> on_down;
    /// Pub/Sub pushes, in stream order.
    std::function<void(const Reply&)> on_push;

    /// The node's run_id (INFO server), read on every connect; "" before the first.
    const std::string& run_id() const;
    const Options& options() const;
    const Stats& stats() const;

private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

}  // namespace cacheproxy::redis
