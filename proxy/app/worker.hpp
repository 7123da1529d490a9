#pragma once
/// What every connection on one worker thread reaches: the thread's own
/// io_context and upstream pool (no lock needed), and the process-wide
/// shared context (read-only config and atomics).

#include "app/cache_context.hpp"
#include "config/config.hpp"
#include "upstream/upstream_health.hpp"
#include "upstream/upstream_pool.hpp"

#include <boost/asio/io_context.hpp>

#include <atomic>
#include <cstddef>
#include <memory>

namespace cacheproxy::app {

/// Process-wide state shared by all workers: immutable config plus atomics.
struct ServerContext {
    explicit ServerContext(const config::Config& c)
        : cfg(c), cache(c.rules.routes.empty() ? nullptr : std::make_unique<CacheContext>(c.rules)) {}
    const config::Config& cfg;
    std::unique_ptr<CacheContext> cache;       ///< null when no route is cached
    std::atomic<std::size_t> client_connections{0};
    std::atomic<std::size_t> inflight{0};      ///< requests being handled now
    std::atomic<bool> draining{false};         ///< SIGTERM seen: finish, then close
    upstream::UpstreamHealth health;
};

/// One worker thread's world. Connections accepted here stay here.
struct Worker {
    Worker(ServerContext& context, boost::asio::ip::tcp::endpoint upstream_endpoint, std::size_t pool_max)
        : ctx(context),
          pool(ioc.get_executor(), context.cfg.upstream, upstream_endpoint, pool_max, context.health) {}

    boost::asio::io_context ioc{1};   ///< concurrency hint 1: this thread only
    ServerContext& ctx;
    upstream::Pool pool;
};

}  // namespace cacheproxy::app
