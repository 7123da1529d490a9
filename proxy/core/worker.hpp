#pragma once
/// What every connection on one worker thread reaches: the thread's own
/// io_context, upstream pool and stats (no lock needed), and the process-wide
/// shared context (read-only config and atomics).

#include "core/cache_context.hpp"
#include "config/config.hpp"
#include "http/trusted_proxies.hpp"
#include "net/splice.hpp"
#include "stats/process_info.hpp"
#include "stats/worker_stats.hpp"
#include "upstream/upstream_health.hpp"
#include "upstream/upstream_pool.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/intrusive/list.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace cacheproxy::app {

/// Process-wide state shared by all workers: immutable config plus atomics.
struct ServerContext {
    explicit ServerContext(const config::Config& c)
        : cfg(c), cache(c.rules.routes.empty() ? nullptr : std::make_unique<CacheContext>(c.rules)),
          stats_layout(make_layout(cache.get())), config_version(stats::config_version(c)),
          upstream_authority(authority_of(c.upstream)) {}
    const config::Config& cfg;
    std::unique_ptr<CacheContext> cache;       ///< null when no route is cached
    std::atomic<std::size_t> client_connections{0};
    std::atomic<bool> draining{false};         ///< SIGTERM seen: finish, then close
    /// Upgraded connections open now, all workers (bounded by tunnel.max_open;
    /// touched when a tunnel opens or closes, never per request).
    std::atomic<std::size_t> tunnels_open{0};
    upstream::UpstreamHealth health;
    /// The stats slots: pass-through, the cached routes, the triggers (names as the matchers hold them).
    const stats::Layout stats_layout;
    /// stats::config_version() of the configuration this process runs.
    const std::string config_version;
    /// "host:port" of the upstream ("[v6]:port"): the Host an HTTP/1.0 request without one is sent with.
    const std::string upstream_authority;
    /// server.trusted_proxies, parsed: a session asks trusted_proxies.contains(peer address)
    /// once per connection and passes the answer as ForwardContext::trusted_peer.
    const http::TrustedProxies trusted_proxies{cfg.server.trusted_proxies};
    const std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
    const std::chrono::system_clock::time_point started_wall = std::chrono::system_clock::now();

private:
    static std::string authority_of(const config::UpstreamConfig& u) {
        const bool v6 = u.host.find(':') != std::string::npos;
        return (v6 ? "[" + u.host + "]" : u.host) + ":" + std::to_string(u.port);
    }
    static stats::Layout make_layout(const CacheContext* cache) {
        if (!cache) return stats::Layout{};
        std::vector<std::string_view> routes, triggers;
        for (const auto& r : cache->matcher.routes()) routes.emplace_back(r.name);
        for (const auto& t : cache->triggers.triggers()) triggers.emplace_back(t.name);
        return stats::Layout(routes, triggers);
    }
};

/// A client connection its worker can tell that the process is draining
/// (SIGTERM): an idle one closes gracefully, one with a request waiting
/// answers it, then closes. Touched only on its worker's thread.
struct Drainable
    : boost::intrusive::list_base_hook<boost::intrusive::link_mode<boost::intrusive::auto_unlink>> {
    virtual void on_drain() = 0;

protected:
    ~Drainable() = default;
};

/// One worker thread's world. Connections accepted here stay here.
struct Worker {
    Worker(ServerContext& context, boost::asio::ip::tcp::endpoint upstream_endpoint, upstream::PoolLimits pool_limits)
        : ctx(context),
          pool(ioc.get_executor(), context.cfg.upstream, upstream_endpoint, pool_limits, context.health),
          stats(context.stats_layout),
          route_counters(std::make_unique<RouteCounters[]>(context.cache ? context.cache->rules.routes.size() : 0)),
          trigger_counters(
              std::make_unique<TriggerCounters[]>(context.cache ? context.cache->rules.triggers.size() : 0)) {}

    /// The time every cache decision on this worker is made at: the steady
    /// clock, or a test's clock (tests/session/).
    cache::TimePoint now() const { return now_fn(); }
    cache::TimePoint (*now_fn)() = &cache::Clock::now;

    boost::asio::io_context ioc{1};   ///< concurrency hint 1: this thread only
    ServerContext& ctx;
    upstream::Pool pool;
    stats::WorkerStats stats;         ///< written by this thread only; merged by the admin when read
    /// This thread's cache counters, indexed like the rules' routes and
    /// triggers: written by this thread only, summed by app::collect().
    std::unique_ptr<RouteCounters[]> route_counters;
    std::unique_ptr<TriggerCounters[]> trigger_counters;
    /// Requests this thread is handling now. Written by this thread only (a
    /// relaxed load and store, no locked instruction, no cache line shared
    /// with other workers); summed by in_flight() for the drain and /stats.
    std::atomic<std::size_t> inflight{0};
    /// This thread's tunnels (session/tunnel.cpp): written by this thread only (stats::bump).
    struct TunnelCounters {
        std::atomic<std::uint64_t> opened{0};     ///< 101s relayed: tunnels started
        std::atomic<std::uint64_t> refused{0};    ///< upgrades refused: tunnel.max_open reached (503)
        std::atomic<std::uint64_t> idle_closed{0};  ///< closed by tunnel.idle_timeout
        std::atomic<std::uint64_t> bytes_up{0};   ///< client -> upstream
        std::atomic<std::uint64_t> bytes_down{0}; ///< upstream -> client
    } tunnels;
    /// Empty kernel pipes for the splice relay of large bodies (net/splice.hpp), reused.
    net::PipePool pipes;
    /// This thread's client connections (for the drain); unlinked by their destructors.
    boost::intrusive::list<Drainable, boost::intrusive::constant_time_size<false>> sessions;
};

/// Requests being handled now, all workers.
inline std::size_t in_flight(const std::vector<std::unique_ptr<Worker>>& workers) {
    std::size_t n = 0;
    for (const auto& w : workers) n += w->inflight.load(std::memory_order_relaxed);
    return n;
}

}  // namespace cacheproxy::app
