/// render_json(): the report as GET /stats answers it.

#include "stats/json_writer.hpp"
#include "stats/report.hpp"

namespace cacheproxy::stats {

namespace {

void write_latency(JsonWriter& w, const Histogram& h, bool with_buckets) {
    w.begin_object();
    w.member("count", h.count);
    w.member("mean", h.mean_ms());
    w.member("p50", h.quantile_ms(0.50));
    w.member("p90", h.quantile_ms(0.90));
    w.member("p99", h.quantile_ms(0.99));
    if (with_buckets) {
        w.key("buckets").begin_array();
        for (auto n : h.buckets) w.value(n);
        w.end_array();
    }
    w.end_object();
}

/// requests, responses by status / by cache, latency overall and per status class.
void write_traffic(JsonWriter& w, const SlotTotals& t) {
    w.member("requests", t.total());
    w.key("responses").begin_object();
    w.key("by_status").begin_object();
    for (std::size_t s = 1; s < kStatusClasses; ++s) w.member(status_class_name(s), t.by_status(s));
    w.member(status_class_name(0), t.by_status(0));
    w.end_object();
    w.key("by_cache").begin_object();
    for (std::size_t l = 0; l < kCacheLabels; ++l) w.member(cache_label_name(l), t.by_cache(static_cast<CacheLabel>(l)));
    w.end_object();
    w.end_object();
    w.key("latency_ms");
    write_latency(w, t.all_latency(), true);
    w.key("latency_by_status_ms").begin_object();
    for (std::size_t s = 0; s < kStatusClasses; ++s)
        if (t.latency[s].count) {
            w.key(status_class_name(s));
            write_latency(w, t.latency[s], false);
        }
    w.end_object();
}

/// Upgraded connections (WebSocket tunnels): open now, started, refused, idle-closed, bytes each way.
void write_tunnels(JsonWriter& w, const TunnelReport& t) {
    w.begin_object();
    w.member("open", t.open);
    w.member("opened", t.opened);
    w.member("refused", t.refused);
    w.member("idle_closed", t.idle_closed);
    w.member("bytes_up", t.bytes_up);
    w.member("bytes_down", t.bytes_down);
    w.end_object();
}

void write_reloads(JsonWriter& w, const ReloadReport& r) {
    w.key("reloads").begin_object();
    w.member("ok", r.ok);
    w.member("failed", r.failed);
    w.member("last_error", r.last_error);
    w.member("last_unix", r.last_unix);
    w.member("last_ok", r.last_ok);
    w.end_object();
}

const SlotTotals& slot_or_empty(const Report& r, std::size_t slot) {
    static const SlotTotals empty;
    return slot < r.slots.size() ? r.slots[slot] : empty;
}

/// The credential -> principal map: sizes and counts only (never a principal
/// or a credential), plus the refusals and logouts that dropped a credential.
void write_principals(JsonWriter& w, const Report& r) {
    const auto& p = r.principals;
    w.key("principals").begin_object();
    w.member("enabled", r.principals_enabled);
    w.member("size", static_cast<std::uint64_t>(p.credentials));
    w.member("principals", static_cast<std::uint64_t>(p.principals));
    w.member("learned", p.learned);
    w.member("remapped", p.remapped);
    w.member("evicted", p.evicted);
    w.member("expired", p.expired);
    w.member("forgotten", p.forgotten);
    w.member("widened_writes", p.widened_writes);
    w.member("unknown_writer_writes", p.unknown_writer_writes);
    w.member("refused_credentials", r.refused_credentials);
    w.member("logouts", r.logouts);
    w.end_object();
}

/// The shared tier: state and counters.
void write_shared_tier(JsonWriter& w, const SharedTierReport& t) {
    w.key("shared_tier").begin_object();
    w.member("enabled", t.enabled);
    if (t.enabled) {
        w.member("state", t.state);
        w.member("instance", t.instance);
        for (const auto& item : t.items) w.member(item.name, item.value);
    }
    w.end_object();
}

/// The upstream: health, the pool, timeouts.
void write_upstream(JsonWriter& w, const Report& r) {
    w.key("upstream").begin_object();
    w.member("healthy", r.upstream_up);
    w.member("last_check_ok", r.upstream_last_check_ok);
    w.member("marked_down", r.upstream_marked_down);
    w.member("pool_size", static_cast<std::uint64_t>(r.pool.max));
    w.member("open", static_cast<std::uint64_t>(r.pool.open));
    w.member("active", static_cast<std::uint64_t>(r.pool.active()));
    w.member("idle", static_cast<std::uint64_t>(r.pool.idle));
    w.member("waiting", static_cast<std::uint64_t>(r.pool.waiting));
#define CACHEPROXY_POOL_JSON(name, description) w.member(#name, r.pool.name);
    CACHEPROXY_POOL_COUNTERS(CACHEPROXY_POOL_JSON)
#undef CACHEPROXY_POOL_JSON
    w.member("timeouts", r.gateway_timeouts);
    w.end_object();
}

}  // namespace

std::string render_json(const Report& r) {
    JsonWriter w;
    w.begin_object();
    w.member("version", r.version);
    w.member("config_version", r.config_version);
    write_reloads(w, r.reloads);
    w.member("uptime_seconds", r.uptime_seconds);
    w.member("start_time_unix", r.start_time_unix);
    w.member("rss_bytes", r.rss_bytes);
    w.member("threads", static_cast<std::uint64_t>(r.threads));
    w.key("workers").begin_array();  // by worker thread: how evenly the listeners spread connections
    for (auto accepted : r.connections_accepted) {
        w.begin_object();
        w.member("connections_accepted", accepted);
        w.end_object();
    }
    w.end_array();

    const SlotTotals all = r.totals();
    const auto requests = all.total();
    w.key("totals").begin_object();
    w.member("requests", requests);
    w.member("responses_4xx", all.by_status(4));
    w.member("responses_5xx", all.by_status(5));
    w.member("error_rate", requests ? static_cast<double>(all.by_status(5)) / static_cast<double>(requests) : 0.0);
    SlotTotals cached;  // the cached routes only: pass-through and writes are never cache hits
    for (const RouteReport& route : r.routes) cached += slot_or_empty(r, route.slot);
    w.member("hit_ratio", hit_ratio(cached));
    w.member("client_connections", static_cast<std::uint64_t>(r.client_connections));
    w.member("inflight", static_cast<std::uint64_t>(r.inflight));
    w.member("draining", r.draining);
    w.end_object();

    w.key("latency_bounds_ms").begin_array();
    for (auto us : kBucketBoundsUs) w.value(static_cast<double>(us) / 1000.0);
    w.end_array();

    w.member("cache_enabled", r.cache_enabled);
    w.key("routes").begin_array();
    for (const RouteReport& route : r.routes) {
        const SlotTotals& t = slot_or_empty(r, route.slot);
        const auto& c = route.counters;
        w.begin_object();
        w.member("name", route.name);
        w.member("per_user", route.per_user);
        w.member("hit_ratio", hit_ratio(t));
#define CACHEPROXY_ROUTE_JSON(name, description) w.member(#name, c.name);
        CACHEPROXY_ROUTE_COUNTERS(CACHEPROXY_ROUTE_JSON)
#undef CACHEPROXY_ROUTE_JSON
        w.key("bypasses").begin_object();
        // Requests the cache did not answer from a shared fill, and why; not_storable
        // also counts a fetched answer the cache had to pass on without storing.
        w.member("total", c.bypass_no_identity + c.bypass_uncacheable + c.bypass_uncoalesced + c.not_storable);
        w.member("no_identity", c.bypass_no_identity);
        w.member("uncacheable", c.bypass_uncacheable);
        w.member("uncoalesced", c.bypass_uncoalesced);
        w.member("not_storable", c.not_storable);
        w.end_object();
        w.member("invalidations", route.invalidations);
        w.member("entries", static_cast<std::uint64_t>(route.store.entries));
        w.member("bytes", static_cast<std::uint64_t>(route.store.bytes));
        w.member("evictions", route.store.evictions);
        w.member("expired_reclaimed", route.store.expired_reclaimed);
        write_traffic(w, t);
        w.end_object();
    }
    w.end_array();

    w.key("passthrough").begin_object();
    write_traffic(w, slot_or_empty(r, 0));
    w.end_object();

    w.key("triggers").begin_array();
    for (const TriggerReport& trig : r.triggers) {
        w.begin_object();
        w.member("name", trig.name);
        w.key("invalidates").begin_array();
        for (const auto& name : trig.invalidates) w.value(name);
        w.end_array();
#define CACHEPROXY_TRIGGER_JSON(name, description) w.member(#name, trig.counters.name);
        CACHEPROXY_TRIGGER_COUNTERS(CACHEPROXY_TRIGGER_JSON)
#undef CACHEPROXY_TRIGGER_JSON
        write_traffic(w, slot_or_empty(r, trig.slot));
        w.end_object();
    }
    w.end_array();

    w.key("coalescer").begin_object();
    if (r.cache_enabled) {
#define CACHEPROXY_COALESCER_JSON(name, description) w.member(#name, r.coalescer.name);
        CACHEPROXY_COALESCER_COUNTERS(CACHEPROXY_COALESCER_JSON)
#undef CACHEPROXY_COALESCER_JSON
        w.member("in_flight", static_cast<std::uint64_t>(r.coalescer_in_flight));
    }
    w.end_object();

    write_principals(w, r);
    write_shared_tier(w, r.shared_tier);

    write_upstream(w, r);

    w.key("tunnels");
    write_tunnels(w, r.tunnels);

    w.end_object();
    return w.take();
}

}  // namespace cacheproxy::stats
