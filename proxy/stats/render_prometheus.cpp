/// render_prometheus(): the report in Prometheus' text format (GET /metrics).
///
/// Names follow Prometheus' conventions: a cacheproxy_ prefix, base units
/// (seconds, bytes), _total on counters, one # HELP and # TYPE per family.
/// Label values are rule names ([a-z0-9_], unique per slot), status classes
/// (1xx..5xx, other), cache outcomes (HIT, MISS, STALE, BYPASS, none) and a
/// tunnel's direction (up, down): nothing a client chooses, so the series are
/// bounded by the rules file.

#include "stats/report.hpp"

#include <fmt/format.h>

#include <iterator>

namespace cacheproxy::stats {

namespace {

/// Writes families; label values are escaped per the exposition format.
class PromWriter {
public:
    using Labels = std::initializer_list<std::pair<std::string_view, std::string_view>>;

    void family(std::string_view name, std::string_view type, std::string_view help) {
        fmt::format_to(out(), "# HELP {} ", name);
        for (char c : help) {
            if (c == '\\') s_ += "\\\\";
            else if (c == '\n') s_ += "\\n";
            else s_.push_back(c);
        }
        fmt::format_to(out(), "\n# TYPE {} {}\n", name, type);
    }
    /// name{k1="v1",...} value (an integer or a double).
    template <class Value>
    void sample(std::string_view name, Labels labels, Value v) {
        head(name, labels);
        fmt::format_to(out(), " {}\n", v);
    }
    /// A family with exactly one sample.
    template <class Value>
    void single(std::string_view name, std::string_view type, std::string_view help, Value v, Labels labels = {}) {
        family(name, type, help);
        sample(name, labels, v);
    }
    std::string take() { return std::move(s_); }

private:
    std::back_insert_iterator<std::string> out() { return std::back_inserter(s_); }
    void head(std::string_view name, Labels labels) {
        s_ += name;
        if (labels.size() == 0) return;
        s_.push_back('{');
        bool first = true;
        for (const auto& [k, v] : labels) {
            if (!first) s_.push_back(',');
            first = false;
            s_ += k;
            s_ += "=\"";
            for (char c : v) {
                if (c == '\\') s_ += "\\\\";
                else if (c == '"') s_ += "\\\"";
                else if (c == '\n') s_ += "\\n";
                else s_.push_back(c);
            }
            s_.push_back('"');
        }
        s_.push_back('}');
    }
    std::string s_;
};

/// Microseconds as decimal seconds without an exponent: 50 -> "0.00005", 2500000 -> "2.5".
std::string seconds_text(std::uint64_t us) {
    std::string s = fmt::format("{}.{:06}", us / 1'000'000, us % 1'000'000);
    while (s.back() == '0') s.pop_back();
    if (s.back() == '.') s.pop_back();
    return s;
}

/// The upstream: health, the pools (summed over threads), timeouts.
void write_upstream(PromWriter& p, const Report& r) {
    p.single("cacheproxy_upstream_up", "gauge",
             "1 when the upstream is believed up (not marked down by a failure, last active check passed), else 0.",
             r.upstream_up ? 1 : 0);
    p.single("cacheproxy_upstream_pool_max_connections", "gauge",
             "Upstream connections allowed, all threads.", r.pool.max);
    p.single("cacheproxy_upstream_connections_open", "gauge",
             "Upstream connections open now (active + idle).", r.pool.open);
    p.single("cacheproxy_upstream_connections_active", "gauge",
             "Upstream connections leased to a request or connecting.", r.pool.active());
    p.single("cacheproxy_upstream_connections_idle", "gauge",
             "Upstream connections kept alive, unused.", r.pool.idle);
    p.single("cacheproxy_upstream_waiting_requests", "gauge",
             "Requests queued for an upstream connection.", r.pool.waiting);
#define CACHEPROXY_POOL_PROM(field, description) \
    p.single("cacheproxy_upstream_" #field "_total", "counter", "Upstream pool: " description ".", r.pool.field);
    CACHEPROXY_POOL_COUNTERS(CACHEPROXY_POOL_PROM)
#undef CACHEPROXY_POOL_PROM
    p.single("cacheproxy_upstream_timeouts_total", "counter",
             "Requests answered 504: the upstream did not connect or answer in time.", r.gateway_timeouts);
}

/// Upgraded connections (WebSocket tunnels).
void write_tunnels(PromWriter& p, const TunnelReport& t) {
    p.single("cacheproxy_tunnels_open", "gauge",
             "Upgraded connections (WebSocket tunnels) open now, all threads.", t.open);
    p.single("cacheproxy_tunnels_total", "counter",
             "Upgraded connections started: 101 Switching Protocols relayed to the client.", t.opened);
    p.single("cacheproxy_tunnels_refused_total", "counter",
             "Upgrade requests answered 503 because tunnel.max_open tunnels were open.", t.refused);
    p.single("cacheproxy_tunnels_idle_closed_total", "counter",
             "Tunnels closed by the proxy after tunnel.idle_timeout without a byte either way.", t.idle_closed);
    p.family("cacheproxy_tunnel_bytes_total", "counter",
             "Bytes carried by tunnels after the 101, by direction (up: client to upstream, down: upstream to client).");
    p.sample("cacheproxy_tunnel_bytes_total", {{"direction", "up"}}, t.bytes_up);
    p.sample("cacheproxy_tunnel_bytes_total", {{"direction", "down"}}, t.bytes_down);
}

/// The shared tier: 1 while its bus is up, and its counters.
void write_shared_tier(PromWriter& p, const SharedTierReport& t) {
    if (!t.enabled) return;
    p.single("cacheproxy_shared_tier_up", "gauge",
             "1 while the shared tier's bus is connected and the key checked (per-user reads use the cache).",
             t.state == "up" ? 1 : 0);
    for (const auto& item : t.items) {
        const std::string name =
            std::string("cacheproxy_shared_tier_") + item.name + (item.gauge ? "" : "_total");
        p.single(name, item.gauge ? "gauge" : "counter", item.help, item.value);
    }
}

/// The process: connections, workers, uptime, memory, build and config.
void write_process(PromWriter& p, const Report& r) {
    p.single("cacheproxy_client_connections", "gauge", "Client connections open now.", r.client_connections);
    if (!r.connections_accepted.empty())
        p.family("cacheproxy_worker_connections_accepted_total", "counter",
                 "Client connections accepted by each worker thread on its own listener.");
    for (std::size_t i = 0; i < r.connections_accepted.size(); ++i) {
        const std::string worker = std::to_string(i);
        p.sample("cacheproxy_worker_connections_accepted_total", {{"worker", worker}}, r.connections_accepted[i]);
    }
    p.single("cacheproxy_requests_in_flight", "gauge", "Requests being handled now.", r.inflight);
    p.single("cacheproxy_uptime_seconds", "gauge", "Seconds since the process started.", r.uptime_seconds);
    p.single("process_start_time_seconds", "gauge",
             "Start time of the process since the Unix epoch in seconds.", r.start_time_unix);
    p.single("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", r.rss_bytes);
    p.single("cacheproxy_build_info", "gauge",
             "Always 1; the version label says which build runs.", 1, {{"version", r.version}});
    p.single("cacheproxy_config_info", "gauge",
             "Always 1; config_version changes whenever the configuration or the rules file does.", 1,
             {{"config_version", r.config_version}});
    p.single("cacheproxy_config_reloads_total", "counter",
             "SIGHUP reloads applied (the configuration running changed).", r.reloads.ok);
    p.single("cacheproxy_config_reload_failures_total", "counter",
             "SIGHUP reloads refused: a file failed validation or asked for a change that needs a restart.",
             r.reloads.failed);
    p.single("cacheproxy_config_last_reload_ok", "gauge",
             "1 unless the last reload was refused (its error: last_error in /stats).",
             r.reloads.last_ok ? 1 : 0);
}

}  // namespace

std::string render_prometheus(const Report& r) {
    PromWriter p;
    const auto& slots = r.layout.slots();
    auto label_of = [&](std::size_t i) -> std::string_view { return slots[i].label; };

    // ---------------------------------------------------------------- requests
    p.family("cacheproxy_requests_total", "counter",
             "Requests answered, by route (rule name, or passthrough), status class and cache outcome "
             "(HIT, MISS, STALE, BYPASS, none outside cached routes).");
    for (std::size_t i = 0; i < r.slots.size() && i < slots.size(); ++i)
        for (std::size_t s = 0; s < kStatusClasses; ++s)
            for (std::size_t l = 0; l < kCacheLabels; ++l)
                if (const auto n = r.slots[i].requests[s][l])
                    p.sample("cacheproxy_requests_total",
                             {{"route", label_of(i)}, {"status_class", status_class_name(s)}, {"cache", cache_label_name(l)}},
                             n);

    p.family("cacheproxy_response_seconds", "histogram",
             "Time from the request's header to the end of the response, by route and status class.");
    for (std::size_t i = 0; i < r.slots.size() && i < slots.size(); ++i)
        for (std::size_t s = 0; s < kStatusClasses; ++s) {
            const Histogram& h = r.slots[i].latency[s];
            if (h.count == 0) continue;
            std::uint64_t cumulative = 0;
            for (std::size_t b = 0; b < kBuckets; ++b) {
                cumulative += h.buckets[b];
                const std::string le = b < kBucketBoundsUs.size() ? seconds_text(kBucketBoundsUs[b]) : "+Inf";
                p.sample("cacheproxy_response_seconds_bucket",
                         {{"route", label_of(i)}, {"status_class", status_class_name(s)}, {"le", le}}, cumulative);
            }
            p.sample("cacheproxy_response_seconds_sum",
                            {{"route", label_of(i)}, {"status_class", status_class_name(s)}},
                            static_cast<double>(h.sum_us) / 1e6);
            p.sample("cacheproxy_response_seconds_count",
                     {{"route", label_of(i)}, {"status_class", status_class_name(s)}}, cumulative);
        }

    // ---------------------------------------------------------------- cache, per route
    if (r.cache_enabled) {
#define CACHEPROXY_ROUTE_PROM(field, description)                                                   \
    p.family("cacheproxy_cache_" #field "_total", "counter", "Per route: " description ".");          \
    for (const RouteReport& route : r.routes)                                                      \
        p.sample("cacheproxy_cache_" #field "_total", {{"route", route.name}}, route.counters.field);
        CACHEPROXY_ROUTE_COUNTERS(CACHEPROXY_ROUTE_PROM)
#undef CACHEPROXY_ROUTE_PROM

        p.family("cacheproxy_cache_invalidations_total", "counter",
                 "Per route: invalidating writes (trigger firings) that target the route.");
        for (const RouteReport& route : r.routes)
            p.sample("cacheproxy_cache_invalidations_total", {{"route", route.name}}, route.invalidations);
        p.family("cacheproxy_cache_entries", "gauge", "Per route: entries held in the cache now.");
        for (const RouteReport& route : r.routes)
            p.sample("cacheproxy_cache_entries", {{"route", route.name}}, route.store.entries);
        p.family("cacheproxy_cache_bytes", "gauge", "Per route: bytes the cache's entries take now (entry + key + overhead).");
        for (const RouteReport& route : r.routes)
            p.sample("cacheproxy_cache_bytes", {{"route", route.name}}, route.store.bytes);
        p.family("cacheproxy_cache_evictions_total", "counter",
                 "Per route: entries pushed out by the route's entry or byte bound (least recently used first).");
        for (const RouteReport& route : r.routes)
            p.sample("cacheproxy_cache_evictions_total", {{"route", route.name}}, route.store.evictions);
        p.family("cacheproxy_cache_expired_reclaimed_total", "counter",
                 "Per route: entries dropped because they were past their TTL and stale windows.");
        for (const RouteReport& route : r.routes)
            p.sample("cacheproxy_cache_expired_reclaimed_total", {{"route", route.name}}, route.store.expired_reclaimed);

        // ------------------------------------------------------------ triggers
#define CACHEPROXY_TRIGGER_PROM(field, description)                                                  \
    p.family("cacheproxy_trigger_" #field "_total", "counter", "Per invalidation trigger: " description "."); \
    for (const TriggerReport& t : r.triggers)                                                         \
        p.sample("cacheproxy_trigger_" #field "_total", {{"trigger", t.name}}, t.counters.field);
        CACHEPROXY_TRIGGER_COUNTERS(CACHEPROXY_TRIGGER_PROM)
#undef CACHEPROXY_TRIGGER_PROM

        // ------------------------------------------------------------ coalescer
#define CACHEPROXY_COALESCER_PROM(field, description)                                          \
    p.single("cacheproxy_coalescer_" #field "_total", "counter", "Request coalescing: " description ".", \
             r.coalescer.field);
        CACHEPROXY_COALESCER_COUNTERS(CACHEPROXY_COALESCER_PROM)
#undef CACHEPROXY_COALESCER_PROM
        p.single("cacheproxy_coalescer_fills_in_flight", "gauge",
                 "Cache fills in flight now.", r.coalescer_in_flight);
        p.single("cacheproxy_principal_credentials", "gauge", "Credentials mapped to a principal now.",
                 r.principals.credentials);
        p.single("cacheproxy_principal_learned_total", "counter", "Credentials newly mapped to a principal.",
                 r.principals.learned);
        p.single("cacheproxy_principal_remapped_total", "counter",
                 "Credentials found to belong to another principal.", r.principals.remapped);
        p.single("cacheproxy_principal_evicted_total", "counter", "Mappings dropped for room or idle.",
                 r.principals.evicted + r.principals.expired);
        p.single("cacheproxy_refused_credentials_total", "counter",
                 "Upstream 401/403 answers that dropped a credential's entries.", r.refused_credentials);
    }

    write_upstream(p, r);
    write_tunnels(p, r.tunnels);
    write_shared_tier(p, r.shared_tier);

    write_process(p, r);
    return p.take();
}

}  // namespace cacheproxy::stats
