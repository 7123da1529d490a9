#pragma once
/// What every connection on one worker thread reaches: the thread's own
/// io_context, upstream pool and stats (no lock needed), and the process-wide
/// shared context (read-only config and atomics).

#include "core/cache_context.hpp"
#include "config/config.hpp"
#include "core/read_deadline.hpp"
#include "http/trusted_proxies.hpp"
#include "net/splice.hpp"
#include "stats/process_info.hpp"
#include "stats/worker_stats.hpp"
#include "upstream/upstream_health.hpp"
#include "upstream/upstream_pool.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/intrusive/list.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace cacheproxy::app {

/// What the SIGHUP reloads did: counters and the last error (app/reload.cpp
/// writes, the admin reads; never touched by a request).
struct ReloadStatus {
    std::atomic<std::uint64_t> ok{0};
    std::atomic<std::uint64_t> failed{0};
    struct Text {
        std::string last_error;       ///< "" until a reload fails; kept after a later success
        std::string running_version;  ///< config_version of the files running now
        double last_unix = 0;         ///< wall time of the last reload attempt (0 = none)
        bool last_ok = true;          ///< the last attempt was applied (true before any)
    };
    Text text() const {
        std::lock_guard lock(mu);
        return text_;
    }
    void set(Text t) {
        std::lock_guard lock(mu);
        text_ = std::move(t);
    }

private:
    mutable std::mutex mu;
    Text text_;
};

/// Process-wide state shared by all workers: immutable config plus atomics.
struct ServerContext {
    explicit ServerContext(const config::Config& c)
        : cfg(c), config_version(stats::config_version(c)),
          cache(c.rules.routes.empty() ? nullptr : std::make_unique<CacheContext>(c.rules, config_version)),
          upstream_authority(authority_of(c.upstream)) {
        reloads.set({.last_error = "", .running_version = config_version, .last_unix = 0, .last_ok = true});
    }
    /// The configuration the process started with. A reload changes only its
    /// rules (in CacheContext's snapshots: never read the rules from here).
    const config::Config& cfg;
    /// stats::config_version() of the configuration this process started
    /// with (the running one: CacheContext::current()->config_version, or
    /// ReloadStatus::running_version).
    const std::string config_version;
    std::unique_ptr<CacheContext> cache;       ///< null when no route is cached
    std::atomic<std::size_t> client_connections{0};
    std::atomic<bool> draining{false};         ///< SIGTERM seen: finish, then close
    /// The drain's grace for connections that have not sent a request yet is over (Drainable).
    std::atomic<bool> drain_fresh_too{false};
    /// Upgraded connections open now, all workers (bounded by tunnel.max_open;
    /// touched when a tunnel opens or closes, never per request).
    std::atomic<std::size_t> tunnels_open{0};
    upstream::UpstreamHealth health;
    /// What the reloads did (app/reload.cpp), for /stats and /metrics.
    ReloadStatus reloads;
    /// "host:port" of the upstream at start ("[v6]:port"): the Host an HTTP/1.0
    /// request without one is sent with. A request reads its worker's
    /// Worker::upstream_authority (a reload may change the upstream).
    const std::string upstream_authority;
    /// The authorities of the upstreams reloads switched to, kept for the
    /// process's life (a request may hold a view of one across a reload;
    /// one short string per applied upstream change). The reload's only.
    std::deque<std::string> later_authorities;
    /// server.trusted_proxies, parsed: a session asks trusted_proxies.contains(peer address)
    /// once per connection and passes the answer as ForwardContext::trusted_peer.
    const http::TrustedProxies trusted_proxies{cfg.server.trusted_proxies};
    const std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
    const std::chrono::system_clock::time_point started_wall = std::chrono::system_clock::now();

    static std::string authority_of(const config::UpstreamConfig& u) {
        const bool v6 = u.host.find(':') != std::string::npos;
        return (v6 ? "[" + u.host + "]" : u.host) + ":" + std::to_string(u.port);
    }
};

/// A client connection its worker can tell that the process is draining
/// (SIGTERM): an idle one closes gracefully, one with a request waiting
/// answers it, then closes. A connection that has not sent its first request
/// yet is left alone by the first pass and closed by the second, a grace
/// later (`fresh_too`): a client that connected just before the drain still
/// gets its answer (a restart through socket activation drops nothing).
/// Touched only on its worker's thread.
///
/// Its worker's sweep also ends the header read it waits on once its
/// `read_deadline` has passed (on_deadline; core/read_deadline.hpp).
struct Drainable
    : boost::intrusive::list_base_hook<boost::intrusive::link_mode<boost::intrusive::auto_unlink>> {
    virtual void on_drain(bool fresh_too) = 0;
    /// `read_deadline` passed (it is marked fired): end the pending read.
    virtual void on_deadline() = 0;
    ReadDeadline read_deadline;

protected:
    ~Drainable() = default;
};

/// One worker thread's world. Connections are accepted here (its own
/// listener, app/listener.hpp) and stay here.
struct Worker {
    Worker(ServerContext& context, boost::asio::ip::tcp::endpoint upstream_endpoint, upstream::PoolLimits pool_limits)
        : ctx(context),
          pool(ioc.get_executor(), context.cfg.upstream, upstream_endpoint, pool_limits, context.health),
          stats(context.cache ? kStatsCells : 1),
          snapshot(context.cache ? context.cache->current()->copy() : nullptr),
          route_counters(std::make_unique<RouteCounters[]>(snapshot ? kRouteSlots : 0)),
          trigger_counters(std::make_unique<TriggerCounters[]>(
              snapshot ? std::max(kTriggerSlots, snapshot->rules.triggers.size()) : 0)) {}

    /// The time every cache decision on this worker is made at: the steady
    /// clock, or a test's clock (tests/session/).
    cache::TimePoint now() const { return now_fn(); }
    cache::TimePoint (*now_fn)() = &cache::Clock::now;

    boost::asio::io_context ioc{1};   ///< concurrency hint 1: this thread only
    ServerContext& ctx;
    upstream::Pool pool;
    /// Per request: cell 0 pass-through, then RuleSnapshot::route_cell() /
    /// trigger_cell() (stable across reloads). Written by this thread only;
    /// merged by the admin, for the running rules, when read (app::collect).
    stats::WorkerStats stats;
    /// This thread's copy of the running rules (null when nothing is cached):
    /// read and replaced on this thread only (a reload posts the new copy).
    /// A request copies it once and runs on that copy to its end.
    std::shared_ptr<const RuleSnapshot> snapshot;
    /// The Host for an HTTP/1.0 request without one: the running upstream's
    /// authority (ServerContext's; a reload posts a new one, on this thread).
    const std::string* upstream_authority = &ctx.upstream_authority;
    /// This thread's cache counters, indexed by the route's store slot
    /// (RuleSnapshot::slot) and the trigger's counter slot
    /// (RuleSnapshot::trigger_slot), so a reload neither moves nor resizes
    /// them: written by this thread only, summed by app::collect() for the
    /// routes and triggers of the running rules.
    std::unique_ptr<RouteCounters[]> route_counters;
    std::unique_ptr<TriggerCounters[]> trigger_counters;
    /// Requests this thread is handling now. Written by this thread only (a
    /// relaxed load and store, no locked instruction, no cache line shared
    /// with other workers); summed by in_flight() for the drain and /stats.
    std::atomic<std::size_t> inflight{0};
    /// Client connections this thread accepted (its own listener's; the 503s
    /// over the cap included): written by this thread only (stats::bump).
    std::atomic<std::uint64_t> connections_accepted{0};
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
    /// This thread's client connections (for the drain and the deadline
    /// sweep); unlinked by their destructors.
    boost::intrusive::list<Drainable, boost::intrusive::constant_time_size<false>> sessions;

    /// Starts this thread's deadline sweep (core/read_deadline.hpp), once:
    /// every accept loop calls it. It runs until the io_context stops.
    void start_sweep() {
        if (sweep_tick_ != SteadyClock::duration::zero()) return;
        sweep_tick_ = tick_for(ctx.cfg.limits.header_timeout, ctx.cfg.limits.idle_timeout);
        arm_sweep();
    }

private:
    void arm_sweep() {
        sweep_timer_.expires_after(sweep_tick_);
        sweep_timer_.async_wait([this](const boost::system::error_code& ec) {
            if (ec) return;
            const auto now = SteadyClock::now();
            // on_deadline() only cancels a read: its handler runs later, so
            // no session leaves the list while it is walked.
            for (auto& s : sessions)
                if (s.read_deadline.expired(now)) s.on_deadline();
            arm_sweep();
        });
    }
    boost::asio::steady_timer sweep_timer_{ioc};
    SteadyClock::duration sweep_tick_{};  ///< zero until start_sweep()
};

/// Requests being handled now, all workers.
inline std::size_t in_flight(const std::vector<std::unique_ptr<Worker>>& workers) {
    std::size_t n = 0;
    for (const auto& w : workers) n += w->inflight.load(std::memory_order_relaxed);
    return n;
}

}  // namespace cacheproxy::app
