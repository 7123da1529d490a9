#include "app/collect.hpp"

#include "stats/process_info.hpp"

#include <algorithm>

namespace cacheproxy::app {

using namespace stats;

namespace {

/// The slots of the running rules: pass-through, their routes, their triggers
/// (views of `cc`'s names: the report holds `cc` alive).
Layout layout_of(const RuleSnapshot& cc) {
    std::vector<std::string_view> routes, triggers;
    for (const auto& route : cc.matcher.routes()) routes.emplace_back(route.name);
    for (const auto& trigger : cc.triggers.triggers()) triggers.emplace_back(trigger.name);
    return Layout(routes, triggers);
}

/// Worker `w`'s per-request cells of the running rules, into the layout's slots.
void add_cells(const RuleSnapshot& cc, const Layout& layout, const Worker& w, std::vector<SlotTotals>& out) {
    w.stats.add_cell(0, out[0]);
    for (std::size_t i = 0; i < cc.rules.routes.size(); ++i) w.stats.add_cell(cc.route_cell(i), out[layout.route_slot(i)]);
    for (std::size_t i = 0; i < cc.rules.triggers.size(); ++i)
        w.stats.add_cell(cc.trigger_cell(i), out[layout.trigger_slot(i)]);
}

/// The label of `slot` when it is rule `index` of `kind`'s own, else the rule's name (past the layout's bound).
std::string name_in(const Layout& layout, std::size_t slot, SlotKind kind, std::size_t index, const std::string& name) {
    return layout[slot].kind == kind && layout[slot].index == index ? layout[slot].label : name;
}

void add_triggers(const RuleSnapshot& cc, Report& r, const std::vector<std::unique_ptr<Worker>>& workers) {
    const auto& triggers = cc.triggers.triggers();
    for (std::size_t i = 0; i < triggers.size(); ++i) {
        TriggerReport t;
        t.slot = r.layout.trigger_slot(i);
        t.name = name_in(r.layout, t.slot, SlotKind::trigger, i, triggers[i].name);
        t.invalidates = triggers[i].invalidate;
        for (const auto& w : workers) {
            const auto& c = w->trigger_counters[cc.trigger_slot(i)];
#define CACHEPROXY_TRIGGER_COPY(name, description) t.counters.name += c.name.load(std::memory_order_relaxed);
            CACHEPROXY_TRIGGER_COUNTERS(CACHEPROXY_TRIGGER_COPY)
#undef CACHEPROXY_TRIGGER_COPY
        }
        r.triggers.push_back(std::move(t));
    }
}

void add_routes(const RuleSnapshot& cc, const std::atomic<std::uint64_t>* purged, Report& r,
                const std::vector<std::unique_ptr<Worker>>& workers) {
    const auto& routes = cc.matcher.routes();
    const auto& triggers = cc.triggers.triggers();
    for (std::size_t i = 0; i < routes.size(); ++i) {
        RouteReport rr;
        rr.slot = r.layout.route_slot(i);
        rr.name = name_in(r.layout, rr.slot, SlotKind::route, i, routes[i].name);
        rr.per_user = routes[i].key.identity && !routes[i].shared;
        for (const auto& w : workers) {
            const auto& c = w->route_counters[cc.slot(i)];
#define CACHEPROXY_ROUTE_COPY(name, description) rr.counters.name += c.name.load(std::memory_order_relaxed);
            CACHEPROXY_ROUTE_COUNTERS(CACHEPROXY_ROUTE_COPY)
#undef CACHEPROXY_ROUTE_COPY
        }
        rr.counters.purged += purged[cc.slot(i)].load(std::memory_order_relaxed);
        rr.store = cc.cache.store_stats(cc.slot(i));
        for (std::size_t t = 0; t < triggers.size(); ++t)
            if (std::find(triggers[t].invalidate.begin(), triggers[t].invalidate.end(), routes[i].name) !=
                triggers[t].invalidate.end())
                rr.invalidations += r.triggers[t].counters.fired;
        r.routes.push_back(std::move(rr));
    }
}

/// The shared tier's counters, named for /stats and /metrics.
stats::SharedTierReport shared_tier_report(const tier::SharedTier& t) {
    const auto& s = t.stats();
    const auto tr = t.transport();
    auto v = [](const std::atomic<std::uint64_t>& a) { return a.load(std::memory_order_relaxed); };
    stats::SharedTierReport r{.enabled = true, .state = t.state(), .instance = t.instance_id(), .items = {}};
    r.items = {
        {"redis_nodes", tr.nodes, true, "Redis primaries the tier talks to."},
        {"redis_rtt_us", tr.last_rtt_us, true, "The latest Redis round trip, microseconds."},
        {"redis_ops", tr.ops, false, "Redis commands sent."},
        {"redis_errors", tr.errors, false, "Redis commands that failed (error reply or transport)."},
        {"redis_timeouts", tr.timeouts, false, "Redis commands past their deadline (the connection was closed)."},
        {"redis_connects", tr.connects, false, "Redis connections made."},
        {"barriers", v(s.barriers), false, "Read-your-writes barriers (PING on the bus) answered."},
        {"barrier_waits", v(s.barrier_waits), false, "Per-user reads that waited for a barrier."},
        {"barrier_wait_us", v(s.barrier_wait_us), false, "Microseconds per-user reads waited for barriers, summed."},
        {"barrier_fresh", v(s.barrier_fresh), false, "Per-user reads served under max_invalidation_lag without a wait."},
        {"barrier_failures", v(s.barrier_failures), false, "Barriers that failed or timed out."},
        {"degraded", v(s.degraded), false, "Per-user reads forwarded uncached because the bus was down."},
        {"l2_hits", v(s.l2_hits), false, "Misses answered from the shared tier (another instance's fill)."},
        {"l2_misses", v(s.l2_misses), false, "Misses the shared tier did not hold (this instance leads the fill)."},
        {"l2_rejected", v(s.l2_rejected), false, "Shared values refused (generation, epoch, key, age, bus gap)."},
        {"l2_errors", v(s.l2_errors), false, "Shared-tier operations that failed (the request went on without)."},
        {"l2_stores", v(s.l2_stores), false, "Fills written to the shared tier."},
        {"l2_store_refused", v(s.l2_store_refused), false, "Fills not written: a write moved the generation meanwhile."},
        {"lease_won", v(s.lease_won), false, "Fill leases taken (this instance called the upstream for the cluster)."},
        {"lease_waits", v(s.lease_waits), false, "Misses that waited for another instance's fill."},
        {"lease_failed_seen", v(s.lease_failed_seen), false, "Misses answered with another instance's held failure."},
        {"lease_timeouts", v(s.lease_timeouts), false, "Lease waits that ran out (the request fetched on its own)."},
        {"invalidations_published", v(s.published), false, "Writes whose invalidation the bus acknowledged."},
        {"invalidations_unpublished", v(s.publish_failures), false, "Writes answered before the bus acknowledged."},
        {"invalidation_debt", v(s.debt), true, "Invalidations queued for delivery when Redis answers again."},
        {"invalidation_debt_delivered", v(s.debt_delivered), false, "Queued invalidations delivered later."},
        {"bus_messages", v(s.bus_messages), false, "Invalidations received on the bus."},
        {"bus_bad_messages", v(s.bus_bad_messages), false, "Bus messages that were not ours or not well formed."},
        {"bus_lag_us", v(s.bus_lag_us_last), true, "The latest invalidation's publish-to-apply time, microseconds."},
        {"bus_lag_max_us", v(s.bus_lag_us_max), true, "The largest publish-to-apply time seen, microseconds."},
        {"bus_epochs", v(s.bus_epochs), false, "Bus (re)connects: each made every per-user entry here stale."},
    };
    return r;
}

}  // namespace

Report collect(const app::ServerContext& ctx, const std::vector<std::unique_ptr<app::Worker>>& workers) {
    Report r;
    r.version = CACHEPROXY_VERSION;
    const auto reload = ctx.reloads.text();
    r.config_version = reload.running_version;
    r.reloads = {ctx.reloads.ok.load(), ctx.reloads.failed.load(), reload.last_error, reload.last_unix, reload.last_ok};
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

    for (const auto& w : workers) {
        r.connections_accepted.push_back(w->connections_accepted.load(std::memory_order_relaxed));
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

    const app::CacheContext* shared = ctx.cache.get();
    r.cache_enabled = shared != nullptr;
    if (!shared) {
        r.slots.assign(r.layout.size(), SlotTotals{});
        for (const auto& w : workers) w->stats.merge_into(r.slots);
        return r;
    }
    // The rules running now: their routes and triggers, by name, with the
    // counters of the slots they hold (kept across reloads: core/cache_context.hpp).
    const auto running = shared->current();
    const app::RuleSnapshot* cc = running.get();
    r.rules_alive = running;
    r.layout = layout_of(*cc);
    r.slots.assign(r.layout.size(), SlotTotals{});
    for (const auto& w : workers) add_cells(*cc, r.layout, *w, r.slots);
    add_triggers(*cc, r, workers);
    add_routes(*cc, shared->purged.get(), r, workers);
    r.coalescer = cc->cache.coalescer_stats();
    r.coalescer_in_flight = cc->cache.fills_in_flight();
    r.principals_enabled = cc->cache.principals_enabled();
    r.principals = cc->cache.principal_stats();
    r.refused_credentials = cc->cache.refused_credentials();
    r.logouts = cc->cache.logouts();
    if (shared->tier) r.shared_tier = shared_tier_report(*shared->tier);
    return r;
}

}  // namespace cacheproxy::app
