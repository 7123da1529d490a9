/// The admin API as a plain function: requests in, responses out, against a
/// real ServerContext (rules, store, hasher, generations) and a worker whose
/// stats the test writes directly. (Lives beside the stats tests it shares
/// helpers with; the handler is proxy/admin/admin_handler.cpp.)

#include "admin/admin_handler.hpp"

#include "cache/cache_key.hpp"
#include "cache/header_list.hpp"
#include "app/collect.hpp"
#include "stats/report.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <gtest/gtest.h>

#include <memory>
#include <regex>
#include <set>

namespace cacheproxy::admin {
namespace {

namespace bhttp = boost::beast::http;
using namespace std::chrono_literals;

rules::RouteRule route(std::string name, bool per_user) {
    rules::RouteRule r;
    r.name = name;
    r.path = "/api/trading/" + name;
    r.ttl = 60s;
    if (per_user) r.key.identity = true;
    else r.shared = true;
    r.key.query = {"k"};
    return r;
}

config::Config make_config(std::string token) {
    config::Config c;
    c.admin.token = std::move(token);
    c.rules.routes = {route("balance", true), route("ticker", false)};
    rules::TriggerRule t;
    t.name = "order_placed";
    t.path = "/api/trading/order";
    t.invalidate = {"balance"};
    c.rules.triggers = {t};
    return c;
}

/// A ServerContext, one worker (never run: the test writes its stats) and the admin context.
struct Admin {
    explicit Admin(std::string token, bool reads_need_token = false)
        : cfg(make_config(std::move(token))), ctx(cfg) {
        workers.push_back(std::make_unique<app::Worker>(
            ctx, boost::asio::ip::tcp::endpoint(boost::asio::ip::address_v4::loopback(), 1),
            upstream::PoolLimits{.max_active = 4, .max_idle = 4}));
        admin = std::make_unique<AdminContext>(
            AdminContext{ctx, [this] { return app::collect(ctx, workers); }, reads_need_token});
    }

    Response get(std::string target, std::vector<std::pair<std::string, std::string>> headers = {},
                 bhttp::verb method = bhttp::verb::get) {
        Request req{method, target, 11};
        for (auto& [k, v] : headers) req.insert(k, v);
        req.prepare_payload();
        return handle(req, *admin);
    }
    Response post(std::string target, std::vector<std::pair<std::string, std::string>> headers = {}) {
        return get(std::move(target), std::move(headers), bhttp::verb::post);
    }

    /// Stores an entry for `k` on route `index`, as `credential` when given.
    cache::CacheKey put(std::size_t index, const std::string& k, std::optional<std::string> credential) {
        auto& cc = *ctx.cache->current();
        const auto& r = cc.matcher.routes()[index];
        auto key = *cache::build_key(r, index, r.path + "?k=" + k,
                                     credential ? std::optional<std::string_view>(*credential) : std::nullopt,
                                     cc.hasher, cache::HeaderList{});
        // Through the cache's face, as a fill would: join at the current generation, publish.
        const auto now = cache::Clock::now();
        auto fill = cc.cache.join(key, generation(index, key), now);
        const auto e = cache::CachedResponse::make({.head = "HTTP/1.1 200 OK\r\n",
                                                    .body = "{}",
                                                    .stored_at = now,
                                                    .ttl = 60s,
                                                    .generation = fill.generation});
        EXPECT_EQ(cc.cache.publish(fill, {e, cache::FillResult::Outcome::stored}, now), cache::Cache::Published::stored);
        return key;
    }
    std::size_t entries(std::size_t index) const { return ctx.cache->cache.store_stats(index).entries; }
    /// The scope generation of `key` (a lookup that skips the store).
    std::uint64_t generation(std::size_t index, const cache::CacheKey& key) {
        return ctx.cache->cache.lookup(key, ctx.cache->current()->matcher.routes()[index], cache::Clock::now(), true).generation;
    }

    config::Config cfg;
    app::ServerContext ctx;
    std::vector<std::unique_ptr<app::Worker>> workers;
    std::unique_ptr<AdminContext> admin;
};

const std::pair<std::string, std::string> kAdminAuth{"Authorization", "Bearer t0ken-admin"};

boost::json::value json_of(const Response& r) { return boost::json::parse(r.body()); }

TEST(AdminHandlerTest, HealthAndReadiness) {
    Admin a("");
    auto h = a.get("/healthz");
    EXPECT_EQ(h.result_int(), 200u);
    EXPECT_EQ(json_of(h).at("status"), "ok");
    EXPECT_EQ(h[bhttp::field::cache_control], "no-store");

    auto r = a.get("/readyz");
    EXPECT_EQ(r.result_int(), 200u);
    EXPECT_EQ(json_of(r).at("upstream"), "up");
    EXPECT_EQ(json_of(r).at("config_version").as_string(), a.ctx.config_version);
    a.ctx.health.last_check_ok = false;
    r = a.get("/readyz");
    EXPECT_EQ(r.result_int(), 503u);
    EXPECT_EQ(json_of(r).at("upstream"), "down");
}

TEST(AdminHandlerTest, UnknownPathsAndMethods) {
    Admin a("");
    EXPECT_EQ(a.get("/nope").result_int(), 404u);
    auto r = a.post("/stats");
    EXPECT_EQ(r.result_int(), 405u);
    EXPECT_EQ(r[bhttp::field::allow], "GET, HEAD");
    r = a.get("/purge?all=1");
    EXPECT_EQ(r.result_int(), 405u);
    EXPECT_EQ(r[bhttp::field::allow], "POST");
    r = a.get("/");
    EXPECT_EQ(r.result_int(), 302u);
    EXPECT_EQ(r[bhttp::field::location], "/dashboard");
}

TEST(AdminHandlerTest, StatsAreJsonWithRoutesTriggersUpstreamAndTotals) {
    Admin a("");
    auto& w = a.workers[0]->stats;
    const auto balance_cell = a.ctx.cache->current()->route_cell(0);  // a worker's cells are numbered, not named
    w.record(balance_cell, 200, stats::CacheLabel::miss, 3ms);
    w.record(balance_cell, 200, stats::CacheLabel::hit, 100us);
    w.record(balance_cell, 200, stats::CacheLabel::hit, 100us);
    w.record(balance_cell, 200, stats::CacheLabel::hit, 100us);
    w.record(0, 502, stats::CacheLabel::none, 1ms);
    a.workers[0]->route_counters[0].hits = 3;
    a.workers[0]->route_counters[0].misses = 1;
    a.put(0, "a", "Bearer user1");

    auto r = a.get("/stats");
    ASSERT_EQ(r.result_int(), 200u);
    EXPECT_EQ(r[bhttp::field::content_type], "application/json");
    const auto j = json_of(r);
    EXPECT_EQ(j.at("config_version").as_string(), a.ctx.config_version);
    EXPECT_GT(j.at("rss_bytes").as_int64(), 0);
    EXPECT_EQ(j.at("totals").at("requests").as_int64(), 5);
    EXPECT_EQ(j.at("totals").at("responses_5xx").as_int64(), 1);
    EXPECT_DOUBLE_EQ(j.at("totals").at("error_rate").to_number<double>(), 0.2);

    const auto& balance = j.at("routes").at(0);
    EXPECT_EQ(balance.at("name"), "balance");
    EXPECT_EQ(balance.at("hits").as_int64(), 3);
    EXPECT_EQ(balance.at("misses").as_int64(), 1);
    EXPECT_EQ(balance.at("entries").as_int64(), 1);
    EXPECT_GT(balance.at("bytes").as_int64(), 0);
    EXPECT_EQ(balance.at("requests").as_int64(), 4);
    EXPECT_DOUBLE_EQ(balance.at("hit_ratio").to_number<double>(), 0.75);
    EXPECT_EQ(balance.at("responses").at("by_cache").at("HIT").as_int64(), 3);
    EXPECT_EQ(balance.at("latency_ms").at("count").as_int64(), 4);
    EXPECT_GT(balance.at("latency_ms").at("p99").to_number<double>(),
              balance.at("latency_ms").at("p50").to_number<double>());
    EXPECT_TRUE(balance.at("bypasses").is_object());

    EXPECT_EQ(j.at("passthrough").at("responses").at("by_status").at("5xx").as_int64(), 1);
    EXPECT_EQ(j.at("triggers").at(0).at("name"), "order_placed");
    EXPECT_EQ(j.at("triggers").at(0).at("invalidates").at(0), "balance");
    EXPECT_EQ(j.at("upstream").at("pool_size").as_int64(), 4);
    EXPECT_TRUE(j.at("upstream").at("healthy").as_bool());
    EXPECT_TRUE(j.at("coalescer").as_object().contains("leaders"));
}

TEST(AdminHandlerTest, MetricsArePrometheusText) {
    Admin a("");
    a.workers[0]->stats.record(a.ctx.cache->current()->route_cell(0), 200, stats::CacheLabel::hit, 100us);
    auto r = a.get("/metrics");
    ASSERT_EQ(r.result_int(), 200u);
    EXPECT_EQ(r[bhttp::field::content_type], "text/plain; version=0.0.4; charset=utf-8");
    EXPECT_NE(r.body().find("cacheproxy_requests_total{route=\"balance\",status_class=\"2xx\",cache=\"HIT\"} 1\n"),
              std::string::npos);
    EXPECT_NE(r.body().find("# TYPE cacheproxy_response_seconds histogram\n"), std::string::npos);
}

TEST(AdminHandlerTest, HeadAnswersWithoutABody) {
    Admin a("");
    auto r = a.get("/stats", {}, bhttp::verb::head);
    EXPECT_EQ(r.result_int(), 200u);
    EXPECT_TRUE(r.body().empty());
    EXPECT_NE(r[bhttp::field::content_length], "0");
}

TEST(AdminHandlerTest, DashboardIsOneSelfContainedPage) {
    Admin a("");
    auto r = a.get("/dashboard");
    ASSERT_EQ(r.result_int(), 200u);
    EXPECT_EQ(r[bhttp::field::content_type], "text/html; charset=utf-8");
    const std::string& html = r.body();
    EXPECT_NE(html.find("fetch(\"/stats\""), std::string::npos);
    EXPECT_NE(html.find("<canvas id=\"c-rps\""), std::string::npos);
    EXPECT_NE(html.find("<canvas id=\"c-hit\""), std::string::npos);
    // Nothing from elsewhere: no external script, style or font, and a CSP that forbids it.
    EXPECT_EQ(html.find("http://"), std::string::npos);
    EXPECT_EQ(html.find("https://"), std::string::npos);
    EXPECT_EQ(html.find("<script src"), std::string::npos);
    EXPECT_EQ(html.find("<link"), std::string::npos);
    EXPECT_NE(std::string(r["Content-Security-Policy"]).find("default-src 'none'"), std::string::npos);
}

TEST(AdminHandlerTest, PurgeWithoutAConfiguredTokenIsForbidden) {
    Admin a("");
    a.put(0, "a", "Bearer user1");
    auto r = a.post("/purge?route=balance", {{"Authorization", "Bearer "}});
    EXPECT_EQ(r.result_int(), 403u);
    EXPECT_EQ(r.body(), R"({"error":"set admin.token to enable purge"})");
    EXPECT_EQ(a.entries(0), 1u);
}

TEST(AdminHandlerTest, PurgeNeedsTheRightToken) {
    Admin a("t0ken-admin");
    a.put(0, "a", "Bearer user1");
    for (const auto& headers : std::vector<std::vector<std::pair<std::string, std::string>>>{
             {},
             {{"Authorization", "Bearer wrong"}},
             {{"Authorization", "Bearer t0ken-admin2"}},
             {{"Authorization", "Basic t0ken-admin"}},
             {{"Authorization", "t0ken-admin"}},
             {kAdminAuth, kAdminAuth},  // repeated: refused
         }) {
        auto r = a.post("/purge?route=balance", headers);
        EXPECT_EQ(r.result_int(), 401u) << r.body();
        EXPECT_NE(r[bhttp::field::www_authenticate], "");
        EXPECT_EQ(r.body().find("t0ken"), std::string::npos);
    }
    EXPECT_EQ(a.entries(0), 1u);
    auto ok = a.post("/purge?route=balance", {{"Authorization", "bearer t0ken-admin"}});  // scheme is case-insensitive
    EXPECT_EQ(ok.result_int(), 200u);
}

TEST(AdminHandlerTest, PurgeARouteDropsAllItsEntriesAndCountsThem) {
    Admin a("t0ken-admin");
    a.put(0, "a", "Bearer user1");
    a.put(0, "b", "Bearer user2");
    a.put(1, "BTC", std::nullopt);
    auto r = a.post("/purge?route=balance", {kAdminAuth});
    ASSERT_EQ(r.result_int(), 200u) << r.body();
    EXPECT_EQ(r.body(), R"({"dropped":2})");
    EXPECT_EQ(a.entries(0), 0u);
    EXPECT_EQ(a.entries(1), 1u);
    EXPECT_EQ(a.ctx.cache->purged[0].load(), 2u);
}

TEST(AdminHandlerTest, PurgeOneUserDropsOnlyThatUsersEntriesAndBumpsTheirGeneration) {
    Admin a("t0ken-admin");
    const auto k1 = a.put(0, "a", "Bearer user1");
    a.put(0, "b", "Bearer user1");
    const auto k2 = a.put(0, "a", "Bearer user2");
    const auto g1 = a.generation(0, k1);
    const auto g2 = a.generation(0, k2);
    auto r = a.post("/purge?route=balance", {kAdminAuth, {"X-Purge-Credential", "  Bearer user1 "}});
    ASSERT_EQ(r.result_int(), 200u) << r.body();
    EXPECT_EQ(r.body(), R"({"dropped":2})");
    EXPECT_EQ(a.entries(0), 1u);
    EXPECT_NE(a.generation(0, k1), g1);  // an in-flight fill of user1 is not stored
    EXPECT_EQ(a.generation(0, k2), g2);
    EXPECT_EQ(a.ctx.cache->purged[0].load(), 2u);
    EXPECT_EQ(r.body().find("user1"), std::string::npos);
}

TEST(AdminHandlerTest, PurgeAllDropsEverythingPerRoute) {
    Admin a("t0ken-admin");
    a.put(0, "a", "Bearer user1");
    a.put(1, "BTC", std::nullopt);
    a.put(1, "ETH", std::nullopt);
    auto r = a.post("/purge?all=1", {kAdminAuth});
    ASSERT_EQ(r.result_int(), 200u);
    EXPECT_EQ(r.body(), R"({"dropped":3})");
    EXPECT_EQ(a.ctx.cache->purged[0].load(), 1u);
    EXPECT_EQ(a.ctx.cache->purged[1].load(), 2u);
}

TEST(AdminHandlerTest, PurgeRefusesUnknownRoutesAndBadQueries) {
    Admin a("t0ken-admin");
    EXPECT_EQ(a.post("/purge?route=nope", {kAdminAuth}).result_int(), 404u);
    EXPECT_EQ(a.post("/purge", {kAdminAuth}).result_int(), 400u);
    EXPECT_EQ(a.post("/purge?route=balance&all=1", {kAdminAuth}).result_int(), 400u);
    EXPECT_EQ(a.post("/purge?route=balance&route=ticker", {kAdminAuth}).result_int(), 400u);
    EXPECT_EQ(a.post("/purge?user=1", {kAdminAuth}).result_int(), 400u);
    EXPECT_EQ(a.post("/purge?all=0", {kAdminAuth}).result_int(), 400u);
    // A shared route has no per-user entries.
    EXPECT_EQ(a.post("/purge?route=ticker", {kAdminAuth, {"X-Purge-Credential", "Bearer user1"}}).result_int(), 400u);
    EXPECT_EQ(a.post("/purge?route=balance", {kAdminAuth, {"X-Purge-Credential", " "}}).result_int(), 400u);
}

TEST(AdminHandlerTest, BeyondLoopbackReadsNeedTheTokenButProbesDoNot) {
    Admin a("t0ken-admin", /*reads_need_token=*/true);
    EXPECT_EQ(a.get("/stats").result_int(), 401u);
    EXPECT_EQ(a.get("/metrics").result_int(), 401u);
    EXPECT_EQ(a.get("/stats", {kAdminAuth}).result_int(), 200u);
    EXPECT_EQ(a.get("/metrics", {kAdminAuth}).result_int(), 200u);
    EXPECT_EQ(a.get("/healthz").result_int(), 200u);
    EXPECT_EQ(a.get("/readyz").result_int(), 200u);
    EXPECT_EQ(a.get("/dashboard").result_int(), 200u);  // static HTML; its /stats calls carry the token
}

TEST(AdminHandlerTest, NoCredentialEverAppearsInStatsOrMetrics) {
    Admin a("t0ken-admin");
    a.put(0, "a", "Bearer secret-user-token");
    a.post("/purge?route=balance", {kAdminAuth, {"X-Purge-Credential", "Bearer secret-user-token"}});
    for (const auto* path : {"/stats", "/metrics"}) {
        const auto body = a.get(path).body();
        EXPECT_EQ(body.find("secret-user-token"), std::string::npos) << path;
        EXPECT_EQ(body.find("t0ken-admin"), std::string::npos) << path;
    }
}

}  // namespace
}  // namespace cacheproxy::admin
