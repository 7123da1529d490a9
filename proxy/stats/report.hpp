#pragma once
/// Everything /stats, /metrics and the dashboard show, gathered at one moment
/// into plain numbers (collect()), then written as JSON (render_json) or in
/// Prometheus' text format (render_prometheus). The renderers are pure.
///
/// Sources, each declared once with its description:
///   per request, per thread   stats::WorkerStats (route slot x status class x cache label, latency)
///   per route                 CACHEPROXY_ROUTE_COUNTERS (stats/cache_counters.hpp) + the store's stats()
///   per trigger               CACHEPROXY_TRIGGER_COUNTERS (stats/cache_counters.hpp)
///   coalescer                 CACHEPROXY_COALESCER_COUNTERS (cache/coalescer.hpp)
///   upstream pools            CACHEPROXY_POOL_COUNTERS (upstream/upstream_pool.hpp), summed over threads
///   tunnels (WebSocket)       app::Worker::tunnels summed over threads + ServerContext::tunnels_open

#include "stats/cache_counters.hpp"
#include "cache/cache_store.hpp"
#include "cache/coalescer.hpp"
#include "cache/principal_map.hpp"
#include "stats/worker_stats.hpp"
#include "upstream/upstream_pool.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace cacheproxy::app {
struct ServerContext;
struct Worker;
}  // namespace cacheproxy::app

namespace cacheproxy::stats {

/// A copy of one route's CACHEPROXY_ROUTE_COUNTERS.
struct RouteCounterValues {
#define CACHEPROXY_ROUTE_VALUE_FIELD(name, description) std::uint64_t name = 0;
    CACHEPROXY_ROUTE_COUNTERS(CACHEPROXY_ROUTE_VALUE_FIELD)
#undef CACHEPROXY_ROUTE_VALUE_FIELD
};

/// A copy of one trigger's CACHEPROXY_TRIGGER_COUNTERS.
struct TriggerCounterValues {
#define CACHEPROXY_TRIGGER_VALUE_FIELD(name, description) std::uint64_t name = 0;
    CACHEPROXY_TRIGGER_COUNTERS(CACHEPROXY_TRIGGER_VALUE_FIELD)
#undef CACHEPROXY_TRIGGER_VALUE_FIELD
};

/// One cached route.
struct RouteReport {
    std::string name;                  ///< the slot's label (the rule name)
    std::size_t slot = 0;              ///< index into Report::slots
    bool per_user = false;             ///< the key holds the identity
    RouteCounterValues counters;
    cache::RouteStoreStats store;
    std::uint64_t invalidations = 0;   ///< trigger firings that target this route
};

/// One invalidation trigger.
struct TriggerReport {
    std::string name;                  ///< the slot's label
    std::size_t slot = 0;
    std::vector<std::string> invalidates;  ///< the route names it targets
    TriggerCounterValues counters;
};

/// Upgraded connections (session/tunnel.cpp), all workers.
struct TunnelReport {
    std::uint64_t open = 0;         ///< tunnels open now (gauge)
    std::uint64_t opened = 0;       ///< 101s relayed: tunnels started
    std::uint64_t refused = 0;      ///< upgrades refused with a 503: tunnel.max_open reached
    std::uint64_t idle_closed = 0;  ///< tunnels closed by tunnel.idle_timeout
    std::uint64_t bytes_up = 0;     ///< client -> upstream, after the 101
    std::uint64_t bytes_down = 0;   ///< upstream -> client, after the 101
};

/// What the SIGHUP reloads did (app/reload.cpp).
struct ReloadReport {
    std::uint64_t ok = 0;      ///< reloads applied
    std::uint64_t failed = 0;  ///< reloads refused: the running configuration stayed
    std::string last_error;    ///< the last refusal ("" = none yet)
    double last_unix = 0;      ///< when the last reload was asked for (0 = never)
    bool last_ok = true;       ///< the last reload was applied (true before any)
};

/// The whole picture at one moment.
/// The shared tier (tier/shared_tier.hpp): its state and counters, as
/// plain numbers (no key, no user, no credential).
struct SharedTierReport {
    bool enabled = false;
    std::string state;     ///< up, down, connecting, key-mismatch
    std::string instance;  ///< this instance's random id (its bus messages carry it)
    struct Item {
        const char* name;  ///< JSON member; Prometheus cacheproxy_shared_tier_<name>[_total]
        std::uint64_t value;
        bool gauge;
        const char* help;
    };
    std::vector<Item> items;
};

struct Report {
    std::string version;               ///< CACHEPROXY_VERSION
    std::string config_version;        ///< of the configuration running now (a reload changes it)
    ReloadReport reloads;
    double uptime_seconds = 0;
    double start_time_unix = 0;        ///< seconds since the epoch
    std::uint64_t rss_bytes = 0;
    std::size_t threads = 0;
    std::size_t client_connections = 0;
    /// Client connections each worker thread accepted on its own listener, by worker.
    std::vector<std::uint64_t> connections_accepted;
    std::size_t inflight = 0;
    bool draining = false;

    bool upstream_up = true;           ///< not marked down, and the last active check passed
    bool upstream_last_check_ok = true;
    bool upstream_marked_down = false; ///< a recent failure marked it down
    upstream::PoolSnapshot pool;       ///< summed over the worker threads
    /// Requests answered 504: the upstream did not connect or answer in time.
    std::uint64_t gateway_timeouts = 0;
    TunnelReport tunnels;              ///< upgraded connections (WebSocket)

    /// Slot labels and kinds: the running rules' routes and triggers (a
    /// reload changes them; their names point into `rules_alive`).
    Layout layout;
    std::shared_ptr<const void> rules_alive;  ///< keeps the names `layout` views alive
    std::vector<SlotTotals> slots;     ///< merged over the workers, like layout
    std::vector<RouteReport> routes;
    std::vector<TriggerReport> triggers;

    bool cache_enabled = false;
    cache::CoalescerStats coalescer;
    std::size_t coalescer_in_flight = 0;
    bool principals_enabled = false;       ///< rules.principal names a source
    cache::PrincipalMapStats principals;   ///< counts only: never a principal or credential
    std::uint64_t refused_credentials = 0; ///< 401/403 from the upstream that dropped a credential's entries
    std::uint64_t logouts = 0;             ///< drop_credential triggers that fired
    SharedTierReport shared_tier;

    /// Sum over every slot.
    SlotTotals totals() const;
};

/// Share of a route's requests answered from the cache: (HIT + STALE) / requests; 0 without requests.
double hit_ratio(const SlotTotals& slot);

/// The report as JSON (GET /stats).
std::string render_json(const Report& report);

/// The report in Prometheus' text exposition format 0.0.4 (GET /metrics).
/// Labels hold only rule names, status classes, cache outcomes and a tunnel's
/// direction: never a user, a token or a raw path, so the number of series
/// stays bounded.
std::string render_prometheus(const Report& report);

}  // namespace cacheproxy::stats
