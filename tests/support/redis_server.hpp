#pragma once
/// Real redis-server processes for the Redis client's end-to-end tests:
/// RedisServer (one server on a free loopback port, nothing persisted, which
/// a test can stop, kill, freeze with SIGSTOP and restart on the same port)
/// and RedisCluster (three cluster-enabled servers joined by
/// `redis-cli --cluster create`, zero replicas). Loopback only; every wait is
/// bounded in time.

#include "redis/resp.hpp"
#include "support/fixtures.hpp"
#include "support/process.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#ifndef CACHEPROXY_REDIS_SERVER
#error "CACHEPROXY_REDIS_SERVER must be defined (absolute path of redis-server)"
#endif
#ifndef CACHEPROXY_REDIS_CLI
#error "CACHEPROXY_REDIS_CLI must be defined (absolute path of redis-cli)"
#endif

namespace cacheproxy::e2e {

class RedisServer {
public:
    struct Options {
        bool cluster = false;                 ///< --cluster-enabled yes, its own nodes-<port>.conf
        std::vector<std::string> extra_args;  ///< appended to the command line
        std::chrono::milliseconds ready_timeout = std::chrono::seconds(5);
    };

    /// Starts the server and waits until it answers PING. Throws
    /// std::runtime_error (with the log's tail) if it does not.
    explicit RedisServer(Options options);
    RedisServer() : RedisServer(Options{}) {}
    ~RedisServer() = default;
    RedisServer(const RedisServer&) = delete;
    RedisServer& operator=(const RedisServer&) = delete;

    std::uint16_t port() const { return port_; }
    pid_t pid() const { return process_ ? process_->pid() : -1; }
    /// "127.0.0.1:PORT"
    std::string address() const;
    const std::string& dir() const { return dir_.path(); }
    std::string log() const { return process_ ? process_->read_log() : std::string(); }

    /// SIGTERM, then waits (bounded) for the exit; SIGKILL if it does not come.
    void stop();
    /// SIGKILL.
    void kill();
    /// SIGSTOP / SIGCONT: the port still accepts connections, nothing answers.
    void pause();
    void resume();
    /// Kills it if it runs and starts a new server on the same port (its
    /// run_id changes: nothing persists), waiting until it answers PING.
    void restart();

    /// One command over a fresh connection. Throws std::runtime_error if there is no reply.
    redis::Reply cmd(const std::vector<std::string>& argv) const;
    /// INFO server's run_id.
    std::string run_id() const;

private:
    std::vector<std::string> argv(std::uint16_t port) const;
    /// Starts on `port`; false if the log says the port was taken.
    bool start_on(std::uint16_t port);

    Options options_;
    TempDir dir_{"redis"};
    std::uint16_t port_ = 0;
    std::unique_ptr<Process> process_;
};

/// Three primaries, slots split by redis-cli, zero replicas.
class RedisCluster {
public:
    /// Starts the nodes, creates the cluster and waits (bounded) until every
    /// node says cluster_state:ok. Throws std::runtime_error otherwise.
    RedisCluster();
    ~RedisCluster() = default;

    std::size_t size() const { return nodes_.size(); }
    RedisServer& node(std::size_t i) { return *nodes_.at(i); }
    /// "127.0.0.1:PORT" of every node.
    std::vector<std::string> seeds() const;
    /// The node whose port is `port` (nullptr if none).
    RedisServer* by_port(std::uint16_t port);

private:
    TempDir dir_{"redis-cluster"};
    std::vector<std::unique_ptr<RedisServer>> nodes_;
};

}  // namespace cacheproxy::e2e
