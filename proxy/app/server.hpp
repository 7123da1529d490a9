#pragma once
/// The process: worker threads (one io_context each), their listeners (one
/// per worker: app/listener.hpp), the admin listener, the health checker,
/// SIGTERM/SIGINT draining and SIGHUP reloads (app/reload.hpp). The client
/// listener is the socket passed by systemd when there is one
/// (app/socket_activation.hpp): every worker then accepts on its own dup of it.

#include "core/worker.hpp"
#include "config/config.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace cacheproxy::admin {
struct AdminContext;
}

namespace cacheproxy::app {

class Server {
public:
    /// Re-reads the configuration files for a reload: the new configuration, or why not.
    using Loader = std::function<std::optional<config::ConfigError>(config::Config&)>;

    /// `load` is asked on every SIGHUP; without one SIGHUP is refused.
    explicit Server(const config::Config& cfg, Loader load = {});
    ~Server();

    /// Resolves the upstream and binds every listener; an error message on failure.
    std::optional<std::string> start();

    /// Serves until SIGTERM/SIGINT, drains in-flight requests (bounded by
    /// limits.drain_timeout), and returns the process exit code.
    int run();

private:
    void begin_drain();
    /// The second pass of the drain: connections still waiting for their first request close too.
    void close_fresh();
    /// How long a connection accepted before the drain has to send its first request.
    static constexpr std::chrono::milliseconds kFreshGrace{500};
    void wait_for_reload();
    std::optional<std::string> open_listener(const boost::asio::ip::tcp::endpoint& listen_ep);

    const config::Config& cfg_;
    ServerContext ctx_;
    std::vector<std::unique_ptr<Worker>> workers_;
    boost::asio::io_context main_ioc_;                        ///< signals and the drain timer
    Loader load_;
    std::unique_ptr<boost::asio::signal_set> signals_;       ///< installed before any port opens
    std::unique_ptr<boost::asio::signal_set> hup_;           ///< SIGHUP: reload (installed with signals_)
    /// One per worker, on its io_context (acceptors_[i] feeds workers_[i]):
    /// an SO_REUSEPORT group, or dups of the passed socket (app/listener.hpp).
    std::vector<std::unique_ptr<boost::asio::ip::tcp::acceptor>> acceptors_;
    std::unique_ptr<boost::asio::ip::tcp::acceptor> admin_acceptor_;
    std::unique_ptr<admin::AdminContext> admin_;             ///< what the admin API reads (stats over workers_)
    std::atomic<bool> stop_health_{false};
    std::atomic<std::size_t> drain_pending_{0};              ///< workers yet to run begin_drain's step
    std::vector<std::thread> threads_;
};

}  // namespace cacheproxy::app
