#include "app/collect.hpp"

#include "stats/process_info.hpp"

#include <algorithm>

namespace cacheproxy::app {

using namespace stats;

Report collect(const app::ServerContext& ctx, const std::vector<std::unique_ptr<app::Worker>>& workers) {
    Report r;
    r.version = CACHEPROXY_VERSION;
    r.config_version = ctx.config_version;
    const auto now = std::chrono::steady_clock::now();
    r.uptime_seconds = std::chrono::duration<double>(now - ctx.started).count();
    r.start_time_unix = std::chrono::duration<double>(ctx.started_wall.time_since_epoch()).count();
    r.rss_bytes = resident_bytes();
    r.threads = workers.size();
    r.client_connections = ctx.client_connections.load(std::memory_order_relaxed);
    r.inflight = app::in_flight(workers);
    r.draining = ctx.draining.load(std::memory_order_relaxed);

    r.upstream_marked_down = ctx.health.is_down(now);
    r.upstream_last_check_ok = ctx.health.last_check_ok.load(std::memory_order_relaxed);
    r.upstream_up = !r.upstream_marked_down && r.upstream_last_check_ok;

    r.layout = ctx.stats_layout;
    r.slots.assign(r.layout.size(), SlotTotals{});
    for (const auto& w : workers) {
        w->stats.merge_into(r.slots);
        r.pool += w->pool.snapshot();
        r.gateway_timeouts += w->stats.gateway_timeouts();
        const auto& t = w->tunnels;
        r.tunnels.opened += t.opened.load(std::memory_order_relaxed);
        r.tunnels.refused += t.refused.load(std::memory_order_relaxed);
        r.tunnels.idle_closed += t.idle_closed.load(std::memory_order_relaxed);
        r.tunnels.bytes_up += t.bytes_up.load(std::memory_order_relaxed);
        r.tunnels.bytes_down += t.bytes_down.load(std::memory_order_relaxed);
    }
    r.tunnels.open = ctx.tunnels_open.load(std::memory_order_relaxed);

    const app::CacheContext* cc = ctx.cache.get();
    r.cache_enabled = cc != nullptr;
    if (!cc) return r;

    const auto& routes = cc->matcher.routes();
    const auto& triggers = cc->triggers.triggers();
    for (std::size_t i = 0; i < triggers.size(); ++i) {
        TriggerReport t;
        t.slot = r.layout.trigger_slot(i);
        t.name = r.layout[t.slot].kind == SlotKind::trigger && r.layout[t.slot].index == i ? r.layout[t.slot].label
                                                                                          : triggers[i].name;
        t.invalidates = triggers[i].invalidate;
        for (const auto& w : workers) {
            const auto& c = w->trigger_counters[i];
#define CACHEPROXY_TRIGGER_COPY(name, description) t.counters.name += c.name.load(std::memory_order_relaxed);
            CACHEPROXY_TRIGGER_COUNTERS(CACHEPROXY_TRIGGER_COPY)
#undef CACHEPROXY_TRIGGER_COPY
        }
        r.triggers.push_back(std::move(t));
    }
    for (std::size_t i = 0; i < routes.size(); ++i) {
        RouteReport rr;
        rr.slot = r.layout.route_slot(i);
        rr.name = r.layout[rr.slot].kind == SlotKind::route && r.layout[rr.slot].index == i ? r.layout[rr.slot].label
                                                                                          : routes[i].name;
        rr.per_user = routes[i].key.identity && !routes[i].shared;
        for (const auto& w : workers) {
            const auto& c = w->route_counters[i];
#define CACHEPROXY_ROUTE_COPY(name, description) rr.counters.name += c.name.load(std::memory_order_relaxed);
            CACHEPROXY_ROUTE_COUNTERS(CACHEPROXY_ROUTE_COPY)
#undef CACHEPROXY_ROUTE_COPY
        }
        rr.counters.purged += cc->purged[i].load(std::memory_order_relaxed);
        rr.store = cc->cache.store_stats(i);
        for (std::size_t t = 0; t < triggers.size(); ++t)
            if (std::find(triggers[t].invalidate.begin(), triggers[t].invalidate.end(), routes[i].name) !=
                triggers[t].invalidate.end())
                rr.invalidations += r.triggers[t].counters.fired;
        r.routes.push_back(std::move(rr));
    }
    r.coalescer = cc->cache.coalescer_stats();
    r.coalescer_in_flight = cc->cache.fills_in_flight();
    r.principals_enabled = cc->cache.principals_enabled();
    r.principals = cc->cache.principal_stats();
    r.refused_credentials = cc->cache.refused_credentials();
    r.logouts = cc->cache.logouts();
    return r;
}

}  // namespace cacheproxy::app
