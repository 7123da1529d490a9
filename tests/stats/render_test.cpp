/// render_prometheus() and render_json() on a report built by hand: the text
/// format's rules (HELP and TYPE once per family, _total on counters,
/// cumulative buckets ending in +Inf == _count, escaped labels, no duplicate
/// series, bounded label names) and the JSON's shape.

#include "stats/report.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <gtest/gtest.h>

#include <map>
#include <regex>
#include <set>
#include <sstream>

namespace cacheproxy::stats {
namespace {

using namespace std::chrono_literals;

struct Fixture {
    std::string balance = "balance", ticker = "ticker", trigger = "balance";  // a trigger named like a route
    Report report;

    Fixture() {
        report.version = "9.9.9";
        report.config_version = "00112233445566ff";
        report.layout = Layout({balance, ticker}, {trigger});
        report.slots.assign(report.layout.size(), SlotTotals{});
        WorkerStats w(report.layout);
        w.record(balance, 200, "HIT", 70us);
        w.record(balance, 200, "MISS", 40ms);
        w.record(ticker, 200, "STALE", 2ms);
        w.record("-", 404, "-", 1ms);
        w.record(trigger, 200, "-", 5ms);
        w.merge_into(report.slots);
        report.cache_enabled = true;
        RouteReport b;
        b.name = "balance";
        b.slot = 1;
        b.per_user = true;
        b.counters.hits = 1;
        b.counters.misses = 1;
        b.store.entries = 1;
        b.store.bytes = 900;
        RouteReport t;
        t.name = "ticker";
        t.slot = 2;
        report.routes = {b, t};
        TriggerReport tr;
        tr.name = report.layout[3].label;
        tr.slot = 3;
        tr.invalidates = {"balance"};
        tr.counters.fired = 1;
        tr.counters.entries_dropped = 1;
        report.triggers = {tr};
        report.pool.max = 50;
        report.pool.open = 3;
        report.pool.idle = 2;
        report.tunnels.open = 2;
        report.tunnels.opened = 5;
        report.tunnels.refused = 1;
        report.tunnels.idle_closed = 3;
        report.tunnels.bytes_up = 1234;
        report.tunnels.bytes_down = 56789;
        report.connections_accepted = {7, 9};
    }
};

/// A family's samples, checked against the exposition format's rules.
struct Family {
    std::string type;
    bool help = false;
    std::vector<std::pair<std::string, double>> samples;  ///< series text (name + labels), value
};

std::map<std::string, Family> parse_exposition(const std::string& text) {
    std::map<std::string, Family> families;
    std::set<std::string> series_seen;
    static const std::regex help_re(R"(^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) \S.*$)");
    static const std::regex type_re(R"(^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram)$)");
    static const std::regex sample_re(
        R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-z_]+="(?:[^"\\\n]|\\.)*"(?:,[a-z_]+="(?:[^"\\\n]|\\.)*")*)\})? (\S+)$)");
    static const std::regex label_re(R"(([a-z_]+)=")");
    static const std::set<std::string> allowed_labels{"route", "status_class", "cache", "le", "trigger", "version",
                                                      "config_version", "direction", "worker"};
    std::istringstream in(text);
    std::string line, current;
    while (std::getline(in, line)) {
        std::smatch m;
        if (std::regex_match(line, m, help_re)) {
            EXPECT_FALSE(families[m[1]].help) << "second HELP for " << m[1];
            families[m[1]].help = true;
            current = m[1];
        } else if (std::regex_match(line, m, type_re)) {
            EXPECT_EQ(m[1], current) << "TYPE without its HELP: " << line;
            families[m[1]].type = m[2];
        } else if (std::regex_match(line, m, sample_re)) {
            const std::string name = m[1];
            const auto& fam = families[current];
            const bool ok = name == current || (fam.type == "histogram" && (name == current + "_bucket" ||
                                                                            name == current + "_sum" ||
                                                                            name == current + "_count"));
            EXPECT_TRUE(ok) << "sample outside its family: " << line;
            const std::string labels = m[3];
            for (auto it = std::sregex_iterator(labels.begin(), labels.end(), label_re); it != std::sregex_iterator(); ++it)
                EXPECT_TRUE(allowed_labels.count((*it)[1])) << "unexpected label in " << line;
            EXPECT_TRUE(series_seen.insert(name + "{" + labels + "}").second) << "duplicate series " << line;
            const std::string v = m[4];
            const double value = v == "+Inf" ? INFINITY : std::stod(v);
            families[current].samples.emplace_back(name + "{" + labels + "}", value);
        } else {
            ADD_FAILURE() << "not exposition format: [" << line << "]";
        }
    }
    return families;
}

TEST(RenderPrometheusTest, FollowsTheTextFormatsRules) {
    Fixture f;
    const auto text = render_prometheus(f.report);
    ASSERT_FALSE(text.empty());
    EXPECT_EQ(text.back(), '\n');
    const auto families = parse_exposition(text);
    for (const auto& [name, fam] : families) {
        EXPECT_TRUE(fam.help) << name;
        EXPECT_FALSE(fam.type.empty()) << name;
        const bool total = name.size() > 6 && name.compare(name.size() - 6, 6, "_total") == 0;
        EXPECT_EQ(fam.type == "counter", total) << name << " is a " << fam.type;
    }
    for (const char* expected : {"cacheproxy_requests_total", "cacheproxy_response_seconds", "cacheproxy_cache_hits_total",
                                 "cacheproxy_cache_misses_total", "cacheproxy_cache_coalesced_total",
                                 "cacheproxy_cache_stale_served_total", "cacheproxy_cache_bypass_no_identity_total",
                                 "cacheproxy_cache_entries", "cacheproxy_cache_bytes", "cacheproxy_cache_evictions_total",
                                 "cacheproxy_cache_invalidations_total", "cacheproxy_trigger_fired_total",
                                 "cacheproxy_trigger_entries_dropped_total", "cacheproxy_upstream_up",
                                 "cacheproxy_upstream_connections_active", "cacheproxy_upstream_connects_total",
                                 "cacheproxy_upstream_connect_errors_total", "cacheproxy_upstream_timeouts_total",
                                 "cacheproxy_client_connections", "cacheproxy_uptime_seconds",
                                 "process_resident_memory_bytes", "cacheproxy_config_info",
                                 "cacheproxy_tunnels_open", "cacheproxy_tunnels_total", "cacheproxy_tunnels_refused_total",
                                 "cacheproxy_tunnels_idle_closed_total", "cacheproxy_tunnel_bytes_total"})
        EXPECT_TRUE(families.count(expected)) << expected;
}

TEST(RenderPrometheusTest, HistogramBucketsAreCumulativeAndEndInInfEqualToCount) {
    Fixture f;
    const auto families = parse_exposition(render_prometheus(f.report));
    const auto& h = families.at("cacheproxy_response_seconds");
    EXPECT_EQ(h.type, "histogram");
    std::map<std::string, std::vector<double>> buckets;  // series without le -> values
    std::map<std::string, double> counts;
    static const std::regex le_re(R"(,le="[^"]*")");
    for (const auto& [series, value] : h.samples) {
        if (series.rfind("cacheproxy_response_seconds_bucket", 0) == 0)
            buckets[std::regex_replace(series.substr(std::string("cacheproxy_response_seconds_bucket").size()), le_re, "")]
                .push_back(value);
        else if (series.rfind("cacheproxy_response_seconds_count", 0) == 0)
            counts[series.substr(std::string("cacheproxy_response_seconds_count").size())] = value;
    }
    ASSERT_EQ(buckets.size(), 4u);  // balance, ticker, passthrough (4xx), the trigger
    for (const auto& [labels, values] : buckets) {
        ASSERT_EQ(values.size(), kBuckets) << labels;
        for (std::size_t i = 1; i < values.size(); ++i) EXPECT_LE(values[i - 1], values[i]) << labels;
        EXPECT_EQ(values.back(), counts.at(labels)) << labels;
    }
    const auto text = render_prometheus(f.report);
    EXPECT_NE(text.find(R"(cacheproxy_response_seconds_bucket{route="balance",status_class="2xx",le="0.0001"} 1)"),
              std::string::npos);
    EXPECT_NE(text.find(R"(cacheproxy_response_seconds_bucket{route="balance",status_class="2xx",le="0.05"} 2)"),
              std::string::npos);
    EXPECT_NE(text.find(R"(le="+Inf")"), std::string::npos);
}

TEST(RenderPrometheusTest, LabelsAreRuleNamesStatusClassesAndOutcomesOnly) {
    Fixture f;
    const auto text = render_prometheus(f.report);
    EXPECT_NE(text.find(R"(cacheproxy_requests_total{route="balance",status_class="2xx",cache="HIT"} 1)"), std::string::npos);
    EXPECT_NE(text.find(R"(cacheproxy_requests_total{route="ticker",status_class="2xx",cache="STALE"} 1)"), std::string::npos);
    EXPECT_NE(text.find(R"(cacheproxy_requests_total{route="passthrough",status_class="4xx",cache="none"} 1)"),
              std::string::npos);
    // The trigger that shares the route's name has its own, unique label.
    EXPECT_NE(text.find(R"(cacheproxy_requests_total{route="balance_2",status_class="2xx",cache="none"} 1)"),
              std::string::npos);
    EXPECT_NE(text.find(R"(cacheproxy_trigger_fired_total{trigger="balance_2"} 1)"), std::string::npos);
}

TEST(RenderPrometheusTest, TunnelFamilies) {
    Fixture f;
    const auto text = render_prometheus(f.report);
    const auto families = parse_exposition(text);
    EXPECT_EQ(families.at("cacheproxy_tunnels_open").type, "gauge");
    for (const char* counter : {"cacheproxy_tunnels_total", "cacheproxy_tunnels_refused_total",
                                "cacheproxy_tunnels_idle_closed_total", "cacheproxy_tunnel_bytes_total"})
        EXPECT_EQ(families.at(counter).type, "counter") << counter;
    EXPECT_NE(text.find("\ncacheproxy_tunnels_open 2\n"), std::string::npos);
    EXPECT_NE(text.find("\ncacheproxy_tunnels_total 5\n"), std::string::npos);
    EXPECT_NE(text.find("\ncacheproxy_tunnels_refused_total 1\n"), std::string::npos);
    EXPECT_NE(text.find("\ncacheproxy_tunnels_idle_closed_total 3\n"), std::string::npos);
    EXPECT_NE(text.find(R"(cacheproxy_tunnel_bytes_total{direction="up"} 1234)"), std::string::npos);
    EXPECT_NE(text.find(R"(cacheproxy_tunnel_bytes_total{direction="down"} 56789)"), std::string::npos);
    EXPECT_EQ(families.at("cacheproxy_tunnel_bytes_total").samples.size(), 2u);

    // Without a tunnel ever opened every family is still there, at 0 (a rate() has its series from the start).
    Report empty;
    const auto zero = render_prometheus(empty);
    EXPECT_NE(zero.find("\ncacheproxy_tunnels_open 0\n"), std::string::npos);
    EXPECT_NE(zero.find(R"(cacheproxy_tunnel_bytes_total{direction="down"} 0)"), std::string::npos);
    parse_exposition(zero);
}

TEST(RenderPrometheusTest, ConnectionsAcceptedByWorker) {
    Fixture f;
    const auto text = render_prometheus(f.report);
    const auto families = parse_exposition(text);
    const auto& accepted = families.at("cacheproxy_worker_connections_accepted_total");
    EXPECT_EQ(accepted.type, "counter");
    EXPECT_EQ(accepted.samples.size(), 2u);
    EXPECT_NE(text.find(R"(cacheproxy_worker_connections_accepted_total{worker="0"} 7)"), std::string::npos);
    EXPECT_NE(text.find(R"(cacheproxy_worker_connections_accepted_total{worker="1"} 9)"), std::string::npos);
}

TEST(RenderPrometheusTest, LabelValuesAreEscaped) {
    Fixture f;
    f.report.version = "a\"b\\c\nd";
    const auto text = render_prometheus(f.report);
    EXPECT_NE(text.find(R"(cacheproxy_build_info{version="a\"b\\c\nd"} 1)"), std::string::npos);
    parse_exposition(text);
}

TEST(RenderJsonTest, ShapeAndNumbers) {
    Fixture f;
    const auto j = boost::json::parse(render_json(f.report));
    EXPECT_EQ(j.at("version"), "9.9.9");
    EXPECT_EQ(j.at("totals").at("requests").as_int64(), 5);
    EXPECT_EQ(j.at("totals").at("responses_4xx").as_int64(), 1);
    EXPECT_NEAR(j.at("totals").at("hit_ratio").to_number<double>(), 2.0 / 3.0, 1e-6);  // cached routes only
    EXPECT_EQ(j.at("latency_bounds_ms").as_array().size(), kBucketBoundsUs.size());
    const auto& balance = j.at("routes").at(0);
    EXPECT_EQ(balance.at("name"), "balance");
    EXPECT_EQ(balance.at("requests").as_int64(), 2);
    EXPECT_DOUBLE_EQ(balance.at("hit_ratio").to_number<double>(), 0.5);
    EXPECT_EQ(balance.at("latency_ms").at("buckets").as_array().size(), kBuckets);
    EXPECT_EQ(balance.at("latency_by_status_ms").at("2xx").at("count").as_int64(), 2);
    const auto& ticker = j.at("routes").at(1);
    EXPECT_DOUBLE_EQ(ticker.at("hit_ratio").to_number<double>(), 1.0);  // STALE counts as served from cache
    EXPECT_EQ(j.at("triggers").at(0).at("name"), "balance_2");
    EXPECT_EQ(j.at("triggers").at(0).at("requests").as_int64(), 1);
    EXPECT_EQ(j.at("passthrough").at("requests").as_int64(), 1);
    EXPECT_EQ(j.at("upstream").at("active").as_int64(), 1);
    const auto& tunnels = j.at("tunnels");
    EXPECT_EQ(tunnels.at("open").as_int64(), 2);
    EXPECT_EQ(tunnels.at("opened").as_int64(), 5);
    EXPECT_EQ(tunnels.at("refused").as_int64(), 1);
    EXPECT_EQ(tunnels.at("idle_closed").as_int64(), 3);
    EXPECT_EQ(tunnels.at("bytes_up").as_int64(), 1234);
    EXPECT_EQ(tunnels.at("bytes_down").as_int64(), 56789);
    const auto& workers = j.at("workers").as_array();
    ASSERT_EQ(workers.size(), 2u);
    EXPECT_EQ(workers.at(0).at("connections_accepted").as_int64(), 7);
    EXPECT_EQ(workers.at(1).at("connections_accepted").as_int64(), 9);
}

TEST(RenderJsonTest, HitRatioIsServedFromCacheOverRequests) {
    SlotTotals t;
    EXPECT_EQ(hit_ratio(t), 0.0);
    t.requests[2][static_cast<std::size_t>(CacheLabel::hit)] = 6;
    t.requests[2][static_cast<std::size_t>(CacheLabel::stale)] = 1;
    t.requests[2][static_cast<std::size_t>(CacheLabel::miss)] = 2;
    t.requests[5][static_cast<std::size_t>(CacheLabel::bypass)] = 1;
    EXPECT_DOUBLE_EQ(hit_ratio(t), 0.7);
}

}  // namespace
}  // namespace cacheproxy::stats
