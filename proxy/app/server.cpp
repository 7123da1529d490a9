#include "app/server.hpp"

#include "admin/admin_server.hpp"
#include "app/listener.hpp"
#include "app/collect.hpp"
#include "app/reload.hpp"
#include "app/shared_tier_start.hpp"
#include "app/socket_activation.hpp"
#include "upstream/health_checker.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <exception>

#include <fcntl.h>
#include <sys/socket.h>

namespace cacheproxy::app {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;

namespace {

/// co_spawn completion: a coroutine that escapes with an exception is logged, never silent.
void log_exception(std::exception_ptr e) {
    if (!e) return;
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& ex) {
        spdlog::error("unexpected exception in a coroutine: {}", ex.what());
    }
}


}  // namespace

Server::Server(const config::Config& cfg, Loader load) : cfg_(cfg), ctx_(cfg), load_(std::move(load)) {}

Server::~Server() {
    for (auto& w : workers_) w->ioc.stop();
    for (auto& t : threads_)
        if (t.joinable()) t.join();
    if (ctx_.cache && ctx_.cache->tier) ctx_.cache->tier->stop();
}

std::optional<std::string> Server::start() {
    std::string err;
    const auto upstream_ep = resolve(cfg_.upstream.host, cfg_.upstream.port, err);
    if (!upstream_ep) return err;
    const auto listen_ep = resolve(cfg_.listen.host, cfg_.listen.port, err);
    if (!listen_ep) return err;

    unsigned n = cfg_.threads ? cfg_.threads : std::max(1u, std::thread::hardware_concurrency());
    const auto per_thread = upstream::PoolLimits::per_worker(cfg_.upstream, n);
    for (unsigned i = 0; i < n; ++i) workers_.push_back(std::make_unique<Worker>(ctx_, *upstream_ep, per_thread));
    if (auto failed = start_shared_tier(ctx_)) return failed;  // before any port opens or any worker runs

    // SIGTERM/SIGINT are caught from before the first port opens: a signal
    // that arrives early still drains and exits 0.
    signals_ = std::make_unique<asio::signal_set>(main_ioc_, SIGTERM, SIGINT);
    hup_ = std::make_unique<asio::signal_set>(main_ioc_, SIGHUP);  // never the default action (exit)

    // The admin port listens first: once the data port accepts, /stats does too.
    if (cfg_.admin.enabled) {
        const auto admin_ep = resolve(cfg_.admin.listen.host, cfg_.admin.listen.port, err);
        if (!admin_ep) return err;
        // The config check refuses this already; the resolved address decides.
        const bool loopback = admin_ep->address().is_loopback();
        if (!loopback && cfg_.admin.token.empty())
            return "admin listener " + cfg_.admin.listen.host + ":" + std::to_string(cfg_.admin.listen.port) +
                   " is not loopback: set admin.token, or listen on 127.0.0.1";
        admin_ = std::make_unique<admin::AdminContext>(admin::AdminContext{
            ctx_, [this] { return app::collect(ctx_, workers_); }, !loopback});
        error_code ec;
        admin_acceptor_ = std::make_unique<tcp::acceptor>(open_acceptor(workers_[0]->ioc, *admin_ep, ec));
        if (ec) return "cannot listen on admin " + cfg_.admin.listen.host + ":" +
                       std::to_string(cfg_.admin.listen.port) + ": " + ec.message();
        spdlog::info("admin listening on {}:{}{}", admin_ep->address().to_string(),
                     admin_acceptor_->local_endpoint().port(),
                     loopback ? "" : " (not loopback: every data endpoint needs the admin token)");
        asio::co_spawn(workers_[0]->ioc, admin::admin_accept_loop(*admin_acceptor_, *admin_), log_exception);
    }
    if (auto failed = open_listener(*listen_ep)) return failed;
    const auto bound = acceptors_[0]->local_endpoint();
    spdlog::info("cacheproxy {} listening on {}:{} with {} worker thread(s), upstream {}", CACHEPROXY_VERSION,
                 bound.address().to_string(), bound.port(), n, cfg_.upstream.url);

    for (std::size_t i = 0; i < workers_.size(); ++i)
        asio::co_spawn(workers_[i]->ioc, accept_loop(*acceptors_[i], *workers_[i]), log_exception);
    if (!cfg_.upstream.health_path.empty())
        asio::co_spawn(workers_[0]->ioc,
                       upstream::run_health_checks(cfg_.upstream, workers_[0]->pool.endpoint(),
                                                   workers_[0]->upstream_authority, ctx_.health, stop_health_),
                       log_exception);
    return std::nullopt;
}

std::optional<std::string> Server::open_listener(const tcp::endpoint& listen_ep) {
    error_code ec;
    std::string err;
    if (const auto fd = take_activated_socket(err)) {
        // Socket activation: the socket is systemd's (or a parent's); listen.host/port are its business.
        sockaddr_storage addr{};
        socklen_t len = sizeof addr;
        ::getsockname(*fd, reinterpret_cast<sockaddr*>(&addr), &len);
        // Every worker waits on its own dup of it; the one whose accept wins serves the connection.
        for (auto& w : workers_) {
            const int own = acceptors_.empty() ? *fd : ::fcntl(*fd, F_DUPFD_CLOEXEC, 0);
            if (own < 0) return std::string("cannot use the passed socket (LISTEN_FDS): dup: ") + std::strerror(errno);
            acceptors_.push_back(std::make_unique<tcp::acceptor>(w->ioc));
            acceptors_.back()->assign(addr.ss_family == AF_INET6 ? tcp::v6() : tcp::v4(), own, ec);
            if (ec) return "cannot use the passed socket (LISTEN_FDS): " + ec.message();
        }
        spdlog::info("socket activation: serving on the passed socket (fd {})", *fd);
        return std::nullopt;
    }
    if (!err.empty()) return err;
    acceptors_ = open_acceptors(workers_, listen_ep, ec);
    if (ec)
        return "cannot listen on " + cfg_.listen.host + ":" + std::to_string(cfg_.listen.port) + ": " + ec.message();
    return std::nullopt;
}

void Server::wait_for_reload() {
    hup_->async_wait([this](const error_code& ec, int) {
        if (ec) return;
        if (ctx_.draining.load()) return;  // shutting down: no more reloads
        spdlog::info("signal SIGHUP: reloading {}", cfg_.source_path.empty() ? "(built-in defaults)" : cfg_.source_path);
        config::Config next;
        if (!load_) {
            refuse_reload(ctx_, "no configuration file to re-read");
        } else if (auto err = load_(next)) {
            refuse_reload(ctx_, err->to_string());
        } else {
            apply_reload(ctx_, workers_, next);
        }
        wait_for_reload();
    });
}

void Server::begin_drain() {
    ctx_.draining.store(true);
    stop_health_.store(true);
    drain_pending_.store(workers_.size());
    for (std::size_t i = 0; i < workers_.size(); ++i) {
        asio::post(workers_[i]->ioc, [this, i] {
            error_code ignored;
            // Connections that reached this worker's listener before the
            // signal are answered, not reset (an SO_REUSEPORT socket resets
            // its backlog when it closes: each worker empties its own first).
            accept_pending(*acceptors_[i], *workers_[i]);
            acceptors_[i]->close(ignored);
            if (i == 0 && admin_acceptor_) admin_acceptor_->close(ignored);
            for (auto& session : workers_[i]->sessions) session.on_drain(false);
            workers_[i]->pool.close_idle();
            drain_pending_.fetch_sub(1);
        });
    }
}

void Server::close_fresh() {
    ctx_.drain_fresh_too.store(true);
    for (auto& w : workers_)
        asio::post(w->ioc, [&worker = *w] {
            for (auto& session : worker.sessions) session.on_drain(true);
        });
}

int Server::run() {
    std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
    for (auto& w : workers_) {
        guards.push_back(asio::make_work_guard(w->ioc));
        threads_.emplace_back([&ioc = w->ioc] {
            for (;;) {
                try {
                    ioc.run();
                    return;
                } catch (const std::exception& e) {
                    spdlog::error("worker: unexpected exception: {}", e.what());
                }
            }
        });
    }

    asio::steady_timer poll(main_ioc_);
    std::chrono::steady_clock::time_point deadline, fresh_deadline;
    std::function<void(const error_code&)> check_drained = [&](const error_code&) {
        if (!ctx_.drain_fresh_too.load() && std::chrono::steady_clock::now() >= fresh_deadline) close_fresh();
        // Done when no request is in flight and every connection has closed
        // (idle ones close at once; the others after their answer).
        const auto left = in_flight(workers_);
        const auto open = ctx_.client_connections.load();
        const bool told = drain_pending_.load() == 0;  // every worker has run begin_drain's step
        if ((told && left == 0 && open == 0) || std::chrono::steady_clock::now() >= deadline) {
            if (left || open)
                spdlog::warn("drain timeout: {} request(s) still in flight on {} connection(s), closing", left, open);
            for (auto& w : workers_) w->ioc.stop();
            return;
        }
        poll.expires_after(std::chrono::milliseconds(20));
        poll.async_wait(check_drained);
    };
    wait_for_reload();
    signals_->async_wait([&](const error_code& ec, int signo) {
        if (ec) return;
        hup_->cancel();
        spdlog::info("signal {}: no new connections; draining {} in-flight request(s) (at most {} ms)", signo,
                     in_flight(workers_), cfg_.limits.drain_timeout.count());
        begin_drain();
        deadline = std::chrono::steady_clock::now() + cfg_.limits.drain_timeout;
        fresh_deadline = std::chrono::steady_clock::now() + kFreshGrace;
        check_drained({});
    });
    main_ioc_.run();
    guards.clear();
    for (auto& t : threads_) t.join();
    threads_.clear();
    spdlog::info("cacheproxy stopped");
    spdlog::default_logger()->flush();
    return 0;
}

}  // namespace cacheproxy::app
