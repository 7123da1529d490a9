/// The admin listener end to end: the real proxy in front of the simulator.
/// Each scenario says what the clients sent, what the origin saw, and what
/// the counters on /stats and /metrics say (Varnish's c00013.vtc shape:
/// "-expect busy_sleep >= 1"). Also: purge, the admin token, the refusal of a
/// non-loopback admin bind without a token, and no credential in /stats,
/// /metrics or the logs.

#include "support/cache_helpers.hpp"
#include "support/fixtures.hpp"
#include "support/json_lite.hpp"
#include "support/ports.hpp"
#include "support/raw_client.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace cacheproxy::e2e {
namespace {

using std::chrono::milliseconds;

const std::string kAdminToken = "adm1n-T0ken-do-not-leak";

class Admin : public SimulatorTest {
protected:
    static void SetUpTestSuite() { StartSharedSimulator(); }
    static void TearDownTestSuite() { StopSharedSimulator(); }
};

std::string balance_rules(const std::string& ttl = "30s") {
    return rules_yaml("  - name: balance\n"
                      "    match: { method: GET, path: /api/trading/balance }\n"
                      "    ttl: " + ttl + "\n"
                      "    key: { identity: true, query: [exchange, account_type] }\n"
                      "  - name: ticker\n"
                      "    match: { method: GET, path: /api/trading/ticker }\n"
                      "    ttl: 30s\n"
                      "    shared: true\n"
                      "    key: { query: [symbol] }\n");
}

void wide_pool_with_token(ProxyConfig& c) {
    c.set("upstream.max_connections", "400");
    c.set("admin.token", "\"" + kAdminToken + "\"");
}

Headers admin_auth() { return {{"Authorization", "Bearer " + kAdminToken}}; }

/// GET /stats, parsed; fails the test if it is not JSON.
Json stats_of(Proxy& proxy) {
    Response r = http_request(proxy.admin_port(), "GET", "/stats");
    EXPECT_EQ(r.status, 200u) << describe(r);
    std::string error;
    auto j = parse_json(r.body, &error);
    EXPECT_TRUE(j.has_value()) << error << "\n" << r.body.substr(0, 500);
    return j.value_or(Json{});
}

/// The route named `name` in a /stats answer (a null Json if absent).
const Json& route_of(const Json& stats, const std::string& name) {
    static const Json none;
    const Json& routes = stats["routes"];
    for (std::size_t i = 0; i < routes.size(); ++i)
        if (routes.at(i)["name"].as_string() == name) return routes.at(i);
    return none;
}

/// The value of one sample line "series value" in a /metrics answer, or -1.
double metric(const std::string& text, const std::string& series) {
    const auto at = text.find("\n" + series + " ");
    if (at == std::string::npos) return -1;
    return std::stod(text.substr(at + series.size() + 2));
}

// --------------------------------------------------------------- the counters

TEST_F(Admin, CountersMoveExactlyAsTheScenarioPredicts) {
    sim().set_latency(R"({"balance":1.0})");
    auto proxy = StartProxy(with_rules(balance_rules(), wide_pool_with_token));

    // client: user1 GET balance (cold: 1 miss), then 3 more times (3 hits)
    for (int i = 0; i < 4; ++i) {
        Response r = http_request(proxy->port(), "GET", balance_target(), bearer(1));
        ASSERT_EQ(r.status, 200u) << describe(r);
        EXPECT_TRUE(CacheIs(r, i == 0 ? "MISS" : "HIT"));
    }
    // client: 10 connections, user2's cold balance released at once (1 miss + 9 coalesced waiters)
    std::vector<RequestSpec> specs(10, RequestSpec{"GET", balance_target(), bearer(2)});
    BatchResult b = concurrent_requests(proxy->port(), specs);
    ASSERT_EQ(b.connect_failures, 0u);
    for (const Response& r : b.responses) EXPECT_TRUE(CacheIs(r, "MISS")) << describe(r);
    // client: no credential (1 bypass), one pass-through request
    EXPECT_TRUE(CacheIs(http_request(proxy->port(), "GET", balance_target()), "BYPASS"));
    EXPECT_EQ(http_request(proxy->port(), "GET", "/echo/hello").status, 200u);

    // origin saw: user1 once, user2 once, the anonymous one once
    EXPECT_EQ(sim().stats().route("balance"), 3) << sim().stats().json;

    // counters say: 16 requests; balance: 2 misses, 3 hits, 9 coalesced, 1 bypass (no identity)
    ASSERT_TRUE(wait_until([&] { return stats_of(*proxy)["totals"]["requests"].as_int() >= 16; }, milliseconds(2000)));
    const Json s = stats_of(*proxy);
    EXPECT_EQ(s["totals"]["requests"].as_int(), 16) << s["totals"]["requests"].number;
    const Json& bal = route_of(s, "balance");
    ASSERT_FALSE(bal.is_null());
    EXPECT_EQ(bal["misses"].as_int(), 2);
    EXPECT_EQ(bal["hits"].as_int(), 3);
    EXPECT_EQ(bal["coalesced"].as_int(), 9);
    EXPECT_EQ(bal["stale_served"].as_int(), 0);
    EXPECT_EQ(bal["bypasses"]["no_identity"].as_int(), 1);
    EXPECT_EQ(bal["bypasses"]["total"].as_int(), 1);
    EXPECT_EQ(bal["stored"].as_int(), 2);
    EXPECT_EQ(bal["entries"].as_int(), 2);
    EXPECT_GT(bal["bytes"].as_int(), 0);
    EXPECT_EQ(bal["requests"].as_int(), 15);
    EXPECT_EQ(bal["responses"]["by_cache"]["HIT"].as_int(), 3);
    EXPECT_EQ(bal["responses"]["by_cache"]["MISS"].as_int(), 11);  // 2 leaders + 9 waiters
    EXPECT_EQ(bal["responses"]["by_cache"]["BYPASS"].as_int(), 1);
    EXPECT_EQ(bal["responses"]["by_status"]["2xx"].as_int(), 14);
    EXPECT_EQ(bal["responses"]["by_status"]["4xx"].as_int(), 1);  // the origin refuses the anonymous one
    EXPECT_NEAR(bal["hit_ratio"].number, 3.0 / 15.0, 1e-6);
    EXPECT_EQ(bal["latency_ms"]["count"].as_int(), 15);
    // the misses waited ~1 s for the origin; the hits did not
    EXPECT_GT(bal["latency_ms"]["p99"].number, 500.0);
    EXPECT_LT(bal["latency_ms"]["p50"].number, 2000.0);
    EXPECT_EQ(s["passthrough"]["requests"].as_int(), 1);
    EXPECT_EQ(s["coalescer"]["leaders"].as_int(), 2);
    EXPECT_EQ(s["coalescer"]["waiters_joined"].as_int(), 9);
    EXPECT_EQ(route_of(s, "ticker")["requests"].as_int(), 0);
    // upstream: pooled connections were opened, none failed
    EXPECT_GE(s["upstream"]["connects"].as_int(), 1);
    EXPECT_EQ(s["upstream"]["connect_errors"].as_int(), 0);
    EXPECT_TRUE(s["upstream"]["healthy"].boolean);
    EXPECT_GT(s["uptime_seconds"].number, 0.0);
    EXPECT_GT(s["rss_bytes"].as_int(), 1'000'000);
    EXPECT_EQ(s["config_version"].as_string().size(), 16u);

    // /metrics says the same
    Response m = http_request(proxy->admin_port(), "GET", "/metrics");
    ASSERT_EQ(m.status, 200u);
    EXPECT_EQ(m.header("Content-Type").value_or(""), "text/plain; version=0.0.4; charset=utf-8");
    EXPECT_EQ(metric(m.body, R"(cacheproxy_cache_misses_total{route="balance"})"), 2);
    EXPECT_EQ(metric(m.body, R"(cacheproxy_cache_hits_total{route="balance"})"), 3);
    EXPECT_EQ(metric(m.body, R"(cacheproxy_cache_coalesced_total{route="balance"})"), 9);
    EXPECT_EQ(metric(m.body, R"(cacheproxy_cache_bypass_no_identity_total{route="balance"})"), 1);
    EXPECT_EQ(metric(m.body, R"(cacheproxy_requests_total{route="balance",status_class="2xx",cache="HIT"})"), 3);
    EXPECT_EQ(metric(m.body, R"(cacheproxy_requests_total{route="balance",status_class="2xx",cache="MISS"})"), 11);
    EXPECT_EQ(metric(m.body, R"(cacheproxy_requests_total{route="passthrough",status_class="2xx",cache="none"})"), 1);
    EXPECT_EQ(metric(m.body, R"(cacheproxy_response_seconds_count{route="balance",status_class="2xx"})"), 14);
    EXPECT_EQ(metric(m.body, R"(cacheproxy_requests_total{route="balance",status_class="4xx",cache="BYPASS"})"), 1);
    EXPECT_EQ(metric(m.body, R"(cacheproxy_cache_entries{route="balance"})"), 2);
    EXPECT_EQ(metric(m.body, "cacheproxy_upstream_up"), 1);
}

TEST_F(Admin, HealthAndReadiness) {
    auto proxy = StartProxy(with_rules(balance_rules()));
    Response h = http_request(proxy->admin_port(), "GET", "/healthz");
    EXPECT_EQ(h.status, 200u);
    EXPECT_EQ(h.body, R"({"status":"ok"})");
    ASSERT_TRUE(wait_until([&] { return http_request(proxy->admin_port(), "GET", "/readyz").status == 200; },
                           milliseconds(3000)));
    Response r = http_request(proxy->admin_port(), "GET", "/readyz");
    auto j = parse_json(r.body);
    ASSERT_TRUE(j);
    EXPECT_EQ((*j)["upstream"].as_string(), "up");
    EXPECT_EQ((*j)["config_version"].as_string(), stats_of(*proxy)["config_version"].as_string());
}

// --------------------------------------------------------------- purge

TEST_F(Admin, PurgeOneUserThenARouteThenEverything) {
    auto proxy = StartProxy(with_rules(balance_rules(), wide_pool_with_token));
    const auto admin = proxy->admin_port();
    for (int u = 1; u <= 3; ++u) ASSERT_TRUE(CacheIs(http_request(proxy->port(), "GET", balance_target(), bearer(u)), "MISS"));
    ASSERT_TRUE(CacheIs(http_request(proxy->port(), "GET", "/api/trading/ticker?symbol=BTCUSDT"), "MISS"));

    // admin: without the token, with a wrong one
    EXPECT_EQ(http_request(admin, "POST", "/purge?route=balance").status, 401u);
    EXPECT_EQ(http_request(admin, "POST", "/purge?route=balance", {{"Authorization", "Bearer nope"}}).status, 401u);
    EXPECT_EQ(http_request(admin, "POST", "/purge?route=nosuch", admin_auth()).status, 404u);

    // admin: purge user1's balance entries
    Headers h = admin_auth();
    h.emplace_back("X-Purge-Credential", "Bearer user1");
    Response p = http_request(admin, "POST", "/purge?route=balance", h);
    ASSERT_EQ(p.status, 200u) << describe(p);
    EXPECT_EQ(p.body, R"({"dropped":1})");
    // client got: user1 a MISS (refetched), user2 still a HIT
    EXPECT_TRUE(CacheIs(http_request(proxy->port(), "GET", balance_target(), bearer(1)), "MISS"));
    EXPECT_TRUE(CacheIs(http_request(proxy->port(), "GET", balance_target(), bearer(2)), "HIT"));

    // admin: purge the route: all three users' entries
    p = http_request(admin, "POST", "/purge?route=balance", admin_auth());
    EXPECT_EQ(p.body, R"({"dropped":3})");
    EXPECT_TRUE(CacheIs(http_request(proxy->port(), "GET", balance_target(), bearer(2)), "MISS"));
    EXPECT_TRUE(CacheIs(http_request(proxy->port(), "GET", "/api/trading/ticker?symbol=BTCUSDT"), "HIT"));

    // admin: everything (user2's balance + the ticker)
    p = http_request(admin, "POST", "/purge?all=1", admin_auth());
    EXPECT_EQ(p.body, R"({"dropped":2})");
    EXPECT_TRUE(CacheIs(http_request(proxy->port(), "GET", "/api/trading/ticker?symbol=BTCUSDT"), "MISS"));

    // counters say: 1 + 3 + 1 purged on balance, 1 on ticker
    const Json s = stats_of(*proxy);
    EXPECT_EQ(route_of(s, "balance")["purged"].as_int(), 5);
    EXPECT_EQ(route_of(s, "ticker")["purged"].as_int(), 1);
}

TEST_F(Admin, PurgeWithoutAConfiguredTokenIsForbidden) {
    auto proxy = StartProxy(with_rules(balance_rules()));
    ASSERT_TRUE(CacheIs(http_request(proxy->port(), "GET", balance_target(), bearer(1)), "MISS"));
    Response p = http_request(proxy->admin_port(), "POST", "/purge?all=1", {{"Authorization", "Bearer "}});
    EXPECT_EQ(p.status, 403u);
    EXPECT_EQ(p.body, R"({"error":"set admin.token to enable purge"})");
    EXPECT_TRUE(CacheIs(http_request(proxy->port(), "GET", balance_target(), bearer(1)), "HIT"));
}

// --------------------------------------------------------------- binding

TEST_F(Admin, ANonLoopbackAdminBindWithoutATokenIsRefusedAtStart) {
    auto options = with_rules(balance_rules(), [](ProxyConfig& c) {
        c.set("admin.listen", "\"0.0.0.0:" + std::to_string(c.admin_port()) + "\"");
        c.set("admin.token", "\"\"");
    });
    try {
        auto proxy = StartProxy(options);
        FAIL() << "the proxy started with admin.listen 0.0.0.0 and no token";
    } catch (const std::runtime_error& e) {
        const std::string what = e.what();
        EXPECT_NE(what.find("exited with code"), std::string::npos) << what;
        EXPECT_NE(what.find("admin.token"), std::string::npos) << what;
    }
}

TEST_F(Admin, ANonLoopbackAdminBindWithATokenGuardsTheDataEndpoints) {
    auto proxy = StartProxy(with_rules(balance_rules(), [](ProxyConfig& c) {
        c.set("admin.listen", "\"0.0.0.0:" + std::to_string(c.admin_port()) + "\"");
        c.set("admin.token", "\"" + kAdminToken + "\"");
    }));
    const auto admin = proxy->admin_port();
    ASSERT_TRUE(wait_port_accepts(admin, milliseconds(3000)));
    EXPECT_EQ(http_request(admin, "GET", "/stats").status, 401u);
    EXPECT_EQ(http_request(admin, "GET", "/metrics").status, 401u);
    EXPECT_EQ(http_request(admin, "GET", "/stats", {{"Authorization", "Bearer wrong"}}).status, 401u);
    EXPECT_EQ(http_request(admin, "GET", "/stats", admin_auth()).status, 200u);
    EXPECT_EQ(http_request(admin, "GET", "/metrics", admin_auth()).status, 200u);
    EXPECT_EQ(http_request(admin, "GET", "/healthz").status, 200u);
    EXPECT_EQ(http_request(admin, "GET", "/dashboard").status, 200u);
}

// --------------------------------------------------------------- secrets

TEST_F(Admin, NoCredentialAppearsInStatsMetricsOrLogsAfterAuthenticatedTraffic) {
    auto proxy = StartProxy(with_rules(balance_rules(), wide_pool_with_token));
    const std::vector<std::string> secrets{"Zq9-secret-user-token-1", "Zq9-secret-user-token-2"};
    for (const auto& s : secrets) {
        for (int i = 0; i < 2; ++i) {
            Response r = http_request(proxy->port(), "GET", balance_target() + "&token=" + s,
                                      {{"Authorization", "Bearer " + s}, {"Cookie", "session=" + s}});
            ASSERT_EQ(r.status, 200u) << describe(r);
        }
        http_request(proxy->port(), "GET", "/echo/x?token=" + s, {{"Authorization", "Bearer " + s}});
        http_request(proxy->port(), "POST", "/echo/x", {{"Authorization", "Bearer " + s}}, "{}");
    }
    Headers h = admin_auth();
    h.emplace_back("X-Purge-Credential", "Bearer " + secrets[0]);
    EXPECT_EQ(http_request(proxy->admin_port(), "POST", "/purge?route=balance", h).status, 200u);
    http_request(proxy->admin_port(), "POST", "/purge?route=balance", {{"Authorization", "Bearer wrong-" + kAdminToken}});
    http_request(proxy->admin_port(), "GET", "/stats", admin_auth());

    const std::string stats = http_request(proxy->admin_port(), "GET", "/stats").body;
    const std::string metrics = http_request(proxy->admin_port(), "GET", "/metrics").body;
    ASSERT_FALSE(stats.empty());
    ASSERT_FALSE(metrics.empty());
    proxy->terminate();
    proxy->wait_exit(milliseconds(5000));
    const std::string log = proxy->log();  // debug level: access log, admin log, everything
    ASSERT_NE(log.find("admin purge"), std::string::npos) << log.substr(0, 2000);
    const std::vector<std::pair<std::string, std::string>> outputs{{"/stats", stats}, {"/metrics", metrics}, {"the log", log}};
    for (const auto& [what, text] : outputs) {
        for (const auto& s : secrets) EXPECT_EQ(text.find(s), std::string::npos) << s << " appears in " << what;
        EXPECT_EQ(text.find(kAdminToken), std::string::npos) << "the admin token appears in " << what;
    }
    // Label values are rule names, status classes, cache outcomes: no path, no user.
    EXPECT_EQ(metrics.find("/api/"), std::string::npos);
    EXPECT_EQ(metrics.find("/echo"), std::string::npos);
}

}  // namespace
}  // namespace cacheproxy::e2e
