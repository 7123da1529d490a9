#pragma once
/// A Redis deployment: one standalone server, or a Redis Cluster (CRC16 hash
/// slots, CLUSTER SLOTS discovery from any seed, one redis::Node per primary,
/// MOVED answered by a topology refresh and one retry). Keys with a hash tag
/// (`{...}`) hash on the tag only, so one user's keys share a slot and every
/// script touches one node. Single-threaded, like Node.

#include "redis/node.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cacheproxy::redis {

/// The Cluster hash slot of `key` (CRC16-CCITT/XMODEM of the key, or of its
/// first non-empty `{tag}`, mod 16384), as Redis computes it.
std::uint16_t key_slot(std::string_view key);

struct Address {
    std::string host;  ///< numeric
    std::uint16_t port = 6379;
};
/// "127.0.0.1:6379", "[::1]:6379" -> Address; nullopt if malformed.
std::optional<Address> parse_address(std::string_view text);

class Client {
public:
    struct Options {
        std::vector<Address> seeds;  ///< standalone: exactly one; cluster: any of the nodes
        bool cluster = false;
        Node::Options node;          ///< host/port ignored: taken from seeds / CLUSTER SLOTS
    };
    Client(boost::asio::any_io_executor executor, Options options);
    ~Client();
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    /// Connects (cluster: reads CLUSTER SLOTS from a seed first, then one Node per primary).
    void start();
    void stop();
    /// Every primary known is up (standalone: the one node).
    bool up() const;

    /// Runs argv on the primary that owns `slot_key`'s slot (standalone: the
    /// server). A MOVED reply refreshes the slot map and retries once; a
    /// second MOVED is Error::redirected.
    boost::asio::awaitable<Result> exec(std::string_view slot_key, std::vector<std::string> argv,
                                        std::chrono::milliseconds timeout = {});
    /// Where `slot_key` lives now (the subscriber for a channel must connect to that primary).
    std::optional<Address> node_for(std::string_view slot_key) const;
    /// The run_id of the node that owns `slot_key` ("" when unknown).
    std::string run_id_for(std::string_view slot_key) const;
    /// Called on the client's thread whenever a node goes up or down, or the slot map changes.
    std::function<void()> on_change;

    /// Summed over the nodes.
    struct Totals { std::uint64_t ops = 0, errors = 0, timeouts = 0, connects = 0, disconnects = 0, last_rtt_us = 0; };
    Totals totals() const;
    std::size_t nodes() const;

private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

}  // namespace cacheproxy::redis
