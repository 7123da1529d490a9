/// SIGHUP reload (issue 14): the proxy re-reads its rules while serving, keeps
/// the entries of every route whose key did not change, applies new TTLs,
/// refuses a bad file without changing anything, and keeps read-your-writes
/// across the swap. Real binary, the legacy simulator on a loopback port
/// chosen at run time; every loop bounded in count and time.

#include "support/cache_helpers.hpp"
#include "support/fixtures.hpp"
#include "support/invalidation_helpers.hpp"
#include "support/json_lite.hpp"
#include "support/raw_client.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <csignal>

namespace cacheproxy::e2e {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

class Reload : public SimulatorTest {
protected:
    static void SetUpTestSuite() { StartSharedSimulator(); }
    static void TearDownTestSuite() { StopSharedSimulator(); }
    long long origin(const std::string& route) { return sim().stats().route(route); }
};

/// The shared ticker route with `ttl`.
std::string ticker(const std::string& ttl) {
    return "  - name: ticker\n"
           "    match: { method: GET, path: /api/trading/ticker }\n"
           "    ttl: " + ttl + "\n"
           "    shared: true\n"
           "    key: { query: [symbol] }\n";
}

/// positions, balance and orders (per user), the order triggers; positions
/// with `positions_ttl`, and keyed on Accept-Language too when `rekeyed`.
std::string trading_rules(const std::string& positions_ttl, bool rekeyed = false) {
    std::string positions = per_user_route("positions", "/api/trading/positions", positions_ttl);
    if (rekeyed) {
        const std::string from = "query: [exchange, account_type] }";
        positions.replace(positions.find(from), from.size(), "query: [exchange, account_type], headers: [accept-language] }");
    }
    return rules_yaml(positions + per_user_route("balance", "/api/trading/balance", "60s") +
                      per_user_route("orders", "/api/trading/orders", "60s") + "triggers:\n" + order_triggers());
}

/// Replaces a file whole (write, then rename: a reload never reads half a file).
void replace_file(const std::string& path, const std::string& text) {
    {
        std::ofstream out(path + ".new", std::ios::binary | std::ios::trunc);
        out << text;
    }
    std::filesystem::rename(path + ".new", path);
}

void rewrite_rules(const Proxy& proxy, const std::string& text) { replace_file(proxy.dir() + "/rules.yaml", text); }

void rewrite_config(const Proxy& proxy, const std::function<void(ProxyConfig&)>& change) {
    ProxyConfig c = proxy.config();
    change(c);
    replace_file(proxy.config_path(), c.to_yaml());
}

Json stats_of(const Proxy& proxy) {
    Response r = http_request(proxy.admin_port(), "GET", "/stats");
    EXPECT_EQ(r.status, 200u) << r.head_text();
    return parse_json(r.body).value_or(Json{});
}

/// SIGHUP, then waits (5 s at most) until /stats counts one more reload, ok or failed.
::testing::AssertionResult reload(Proxy& proxy) {
    const Json before = stats_of(proxy);
    const auto n = before["reloads"]["ok"].as_int() + before["reloads"]["failed"].as_int();
    if (::kill(proxy.process().pid(), SIGHUP) != 0) return ::testing::AssertionFailure() << "kill(SIGHUP) failed";
    const bool seen = wait_until(
        [&] {
            const Json s = stats_of(proxy);
            return s["reloads"]["ok"].as_int() + s["reloads"]["failed"].as_int() > n;
        },
        seconds(5));
    if (!seen) return ::testing::AssertionFailure() << "no reload counted within 5 s\n" << proxy.log();
    std::this_thread::sleep_for(milliseconds(50));  // the workers' posts run right after; be generous
    return ::testing::AssertionSuccess();
}

Response ticker_get(const Proxy& proxy, const std::string& symbol = "BTCUSDT") {
    return http_request(proxy.port(), "GET", "/api/trading/ticker?symbol=" + symbol);
}

/// The value of the Cache-Status `ttl=` parameter, or -1.
long long cache_status_ttl(const Response& r) {
    const auto cs = r.header("Cache-Status").value_or("");
    const auto at = cs.find("ttl=");
    return at == std::string::npos ? -1 : std::atoll(cs.c_str() + at + 4);
}

// --------------------------------------------------------------- TTL change

TEST_F(Reload, ChangedTtlKeepsTheOtherRoutesHitsAndAppliesTheNewTtl) {
    auto proxy = StartProxy(with_rules(rules_yaml(per_user_route("balance", "/api/trading/balance", "60s") + ticker("60s"))));
    const std::string version_before = stats_of(*proxy)["config_version"].as_string();

    // client: fills balance (user1) and ticker
    Response bal = http_request(proxy->port(), "GET", balance_target(), bearer(1));
    ASSERT_TRUE(CacheIs(bal, "MISS")) << describe(bal);
    Response tick = ticker_get(*proxy);
    ASSERT_TRUE(CacheIs(tick, "MISS")) << describe(tick);
    ASSERT_TRUE(CacheIs(ticker_get(*proxy), "HIT"));

    // operator: ticker's TTL 60s -> 1s, SIGHUP
    rewrite_rules(*proxy, rules_yaml(per_user_route("balance", "/api/trading/balance", "60s") + ticker("1s")));
    ASSERT_TRUE(reload(*proxy));
    const Json s = stats_of(*proxy);
    EXPECT_EQ(s["reloads"]["ok"].as_int(), 1) << proxy->log();
    EXPECT_EQ(s["reloads"]["failed"].as_int(), 0);
    EXPECT_NE(s["config_version"].as_string(), version_before);

    // client: balance is still the same entry (a HIT across the reload); the
    // ticker entry is kept too, now with at most 1 s left
    Response bal2 = http_request(proxy->port(), "GET", balance_target(), bearer(1));
    EXPECT_TRUE(CacheIs(bal2, "HIT")) << describe(bal2);
    EXPECT_EQ(bal2.body, bal.body);
    // the ticker entry is older than 1 s by now or soon: past the new TTL it is refetched
    std::this_thread::sleep_for(milliseconds(1100));
    Response tick2 = ticker_get(*proxy);
    EXPECT_TRUE(CacheIs(tick2, "MISS")) << "the new 1 s TTL does not apply to the kept entry\n" << describe(tick2);
    Response tick3 = ticker_get(*proxy);
    EXPECT_TRUE(CacheIs(tick3, "HIT")) << describe(tick3);
    EXPECT_LE(cache_status_ttl(tick3), 1) << describe(tick3);
    // and balance (60 s) is still the very first fill
    Response bal3 = http_request(proxy->port(), "GET", balance_target(), bearer(1));
    EXPECT_TRUE(CacheIs(bal3, "HIT")) << describe(bal3);
    EXPECT_EQ(bal3.body, bal.body);
    EXPECT_EQ(origin("balance"), 1) << sim().stats().json;
}

TEST_F(Reload, ReKeyedRouteStartsEmptyTheOthersKeepTheirEntries) {
    auto proxy = StartProxy(with_rules(trading_rules("60s")));
    Response pos = http_request(proxy->port(), "GET", positions_target(), bearer(1));
    Response bal = http_request(proxy->port(), "GET", balance_target(), bearer(1));
    ASSERT_TRUE(CacheIs(pos, "MISS"));
    ASSERT_TRUE(CacheIs(bal, "MISS"));

    rewrite_rules(*proxy, trading_rules("60s", /*rekeyed=*/true));
    ASSERT_TRUE(reload(*proxy));
    EXPECT_EQ(stats_of(*proxy)["reloads"]["ok"].as_int(), 1) << proxy->log();

    EXPECT_TRUE(CacheIs(http_request(proxy->port(), "GET", positions_target(), bearer(1)), "MISS"));
    EXPECT_TRUE(CacheIs(http_request(proxy->port(), "GET", positions_target(), bearer(1)), "HIT"));
    Response bal2 = http_request(proxy->port(), "GET", balance_target(), bearer(1));
    EXPECT_TRUE(CacheIs(bal2, "HIT")) << describe(bal2);
    EXPECT_EQ(bal2.body, bal.body);
}

// --------------------------------------------------------------- routes and triggers added, removed, renamed

/// The route named `name` in /stats, or a null value.
Json route_in(const Json& stats, const std::string& name) {
    for (std::size_t i = 0; i < stats["routes"].size(); ++i)
        if (stats["routes"].at(i)["name"].as_string() == name) return stats["routes"].at(i);
    return Json{};
}

std::string balance_and(const std::string& more) {
    return rules_yaml(per_user_route("balance", "/api/trading/balance", "60s") + more);
}

TEST_F(Reload, AnAddedRouteCachesAndTheOthersKeepTheirHitsAndCounts) {
    auto proxy = StartProxy(with_rules(balance_and("")));
    Response bal = http_request(proxy->port(), "GET", balance_target(), bearer(1));
    ASSERT_TRUE(CacheIs(bal, "MISS")) << describe(bal);
    ASSERT_TRUE(CacheIs(http_request(proxy->port(), "GET", balance_target(), bearer(1)), "HIT"));
    EXPECT_EQ(x_cache(ticker_get(*proxy)), "<none>");  // no rule: passes through

    // operator: adds the ticker route (ahead of balance), SIGHUP
    rewrite_rules(*proxy, rules_yaml(ticker("60s") + per_user_route("balance", "/api/trading/balance", "60s")));
    ASSERT_TRUE(reload(*proxy));
    const Json s = stats_of(*proxy);
    EXPECT_EQ(s["reloads"]["ok"].as_int(), 1) << proxy->log();
    EXPECT_EQ(s["routes"].size(), 2u);
    EXPECT_EQ(s["routes"].at(0)["name"].as_string(), "ticker");
    EXPECT_EQ(route_in(s, "balance")["hits"].as_int(), 1);  // carried over the reload
    EXPECT_EQ(route_in(s, "ticker")["hits"].as_int(), 0);

    // client: the new route caches; balance's entry is the same one
    EXPECT_TRUE(CacheIs(ticker_get(*proxy), "MISS"));
    EXPECT_TRUE(CacheIs(ticker_get(*proxy), "HIT"));
    Response bal2 = http_request(proxy->port(), "GET", balance_target(), bearer(1));
    EXPECT_TRUE(CacheIs(bal2, "HIT")) << describe(bal2);
    EXPECT_EQ(bal2.body, bal.body);
    const Json s2 = stats_of(*proxy);
    EXPECT_EQ(route_in(s2, "balance")["hits"].as_int(), 2);
    EXPECT_EQ(route_in(s2, "balance")["requests"].as_int(), 3);
    EXPECT_EQ(route_in(s2, "ticker")["hits"].as_int(), 1);
    EXPECT_EQ(route_in(s2, "ticker")["entries"].as_int(), 1);
    Response m = http_request(proxy->admin_port(), "GET", "/metrics");
    EXPECT_NE(m.body.find("route=\"ticker\""), std::string::npos) << m.body;
}

TEST_F(Reload, ARemovedRoutePassesThroughAndItsEntriesAreDropped) {
    auto proxy = StartProxy(with_rules(balance_and(ticker("60s"))));
    ASSERT_TRUE(CacheIs(ticker_get(*proxy), "MISS"));
    ASSERT_TRUE(CacheIs(ticker_get(*proxy), "HIT"));
    ASSERT_TRUE(CacheIs(http_request(proxy->port(), "GET", balance_target(), bearer(1)), "MISS"));
    EXPECT_EQ(route_in(stats_of(*proxy), "ticker")["entries"].as_int(), 1);

    // operator: removes ticker, SIGHUP
    rewrite_rules(*proxy, balance_and(""));
    ASSERT_TRUE(reload(*proxy));
    const Json s = stats_of(*proxy);
    EXPECT_EQ(s["reloads"]["ok"].as_int(), 1) << proxy->log();
    EXPECT_TRUE(route_in(s, "ticker").is_null());
    EXPECT_EQ(s["routes"].size(), 1u);
    EXPECT_NE(proxy->log().find("1 removed; 1 entry of removed or re-keyed routes dropped"), std::string::npos)
        << proxy->log();

    // client: ticker now reaches the origin every time, uncached
    const auto before = origin("ticker");
    for (int i = 0; i < 2; ++i) {
        Response r = ticker_get(*proxy);
        EXPECT_EQ(r.status, 200u);
        EXPECT_EQ(x_cache(r), "<none>") << describe(r);
    }
    EXPECT_EQ(origin("ticker"), before + 2);
    EXPECT_TRUE(CacheIs(http_request(proxy->port(), "GET", balance_target(), bearer(1)), "HIT"));

    // operator: ticker back: a fresh, empty route (the old entry is gone)
    rewrite_rules(*proxy, balance_and(ticker("60s")));
    ASSERT_TRUE(reload(*proxy));
    EXPECT_EQ(route_in(stats_of(*proxy), "ticker")["entries"].as_int(), 0);
    EXPECT_TRUE(CacheIs(ticker_get(*proxy), "MISS"));
    EXPECT_TRUE(CacheIs(ticker_get(*proxy), "HIT"));
}

TEST_F(Reload, ARenameIsARemovalAndAnAddition) {
    auto proxy = StartProxy(with_rules(balance_and(ticker("60s"))));
    ASSERT_TRUE(CacheIs(ticker_get(*proxy), "MISS"));
    ASSERT_TRUE(CacheIs(ticker_get(*proxy), "HIT"));
    std::string renamed = ticker("60s");
    renamed.replace(renamed.find("ticker"), 6, "quotes");
    rewrite_rules(*proxy, balance_and(renamed));
    ASSERT_TRUE(reload(*proxy));
    const Json s = stats_of(*proxy);
    EXPECT_EQ(s["reloads"]["ok"].as_int(), 1) << proxy->log();
    EXPECT_TRUE(route_in(s, "ticker").is_null());
    EXPECT_EQ(route_in(s, "quotes")["entries"].as_int(), 0);
    EXPECT_TRUE(CacheIs(ticker_get(*proxy), "MISS"));  // the name is in the key: the entry is not kept
    EXPECT_TRUE(CacheIs(ticker_get(*proxy), "HIT"));
    EXPECT_EQ(route_in(stats_of(*proxy), "quotes")["hits"].as_int(), 1);
}

TEST_F(Reload, AnAddedTriggerInvalidatesOnTheNextWriteARemovedOneNoLonger) {
    const std::string routes = per_user_route("positions", "/api/trading/positions", "60s") +
                               per_user_route("balance", "/api/trading/balance", "60s") +
                               per_user_route("orders", "/api/trading/orders", "60s");
    Response seed = sim().direct("GET", positions_target(), bearer(1));
    const double eth = position_size(seed, "ETHUSDT");
    auto proxy = StartProxy(with_rules(rules_yaml(routes)));
    ASSERT_TRUE(CacheIs(http_request(proxy->port(), "GET", positions_target(), bearer(1)), "MISS"));

    // operator: adds the order triggers, SIGHUP; client: an order, then a read that shows it
    rewrite_rules(*proxy, rules_yaml(routes) + "triggers:\n" + order_triggers());
    ASSERT_TRUE(reload(*proxy));
    EXPECT_EQ(stats_of(*proxy)["triggers"].size(), 2u) << proxy->log();
    ASSERT_EQ(success_of(place_order(proxy->port(), bearer(1), OrderBody{}.json())), 1);
    Response after = http_request(proxy->port(), "GET", positions_target(), bearer(1));
    EXPECT_NEAR(position_size(after, "ETHUSDT"), eth + 1, 1e-6) << describe(after);
    const Json s = stats_of(*proxy);
    EXPECT_EQ(s["triggers"].at(0)["name"].as_string(), "order_placed");
    EXPECT_EQ(s["triggers"].at(0)["fired"].as_int(), 1);

    // operator: removes them again; an order no longer drops the cached read
    rewrite_rules(*proxy, rules_yaml(routes));
    ASSERT_TRUE(reload(*proxy));
    EXPECT_EQ(stats_of(*proxy)["triggers"].size(), 0u);
    ASSERT_TRUE(CacheIs(http_request(proxy->port(), "GET", positions_target(), bearer(1)), "HIT"));
    ASSERT_EQ(success_of(place_order(proxy->port(), bearer(1), OrderBody{}.json())), 1);
    Response stale = http_request(proxy->port(), "GET", positions_target(), bearer(1));
    EXPECT_TRUE(CacheIs(stale, "HIT")) << describe(stale);
    EXPECT_NEAR(position_size(stale, "ETHUSDT"), eth + 1, 1e-6) << describe(stale);
}

// --------------------------------------------------------------- upstream

TEST_F(Reload, ANewUpstreamTakesTheNewConnectionsUnderKeepAliveTrafficAndNoRequestFails) {
    Simulator b;  // origin B; the shared simulator is origin A
    auto proxy = StartProxy(with_rules(balance_and("")));  // ticker passes through: every request reaches an origin
    const auto a_start = origin("ticker");
    std::atomic<bool> stop{false};
    std::atomic<long long> done{0}, failed{0};
    std::vector<std::jthread> clients;
    for (int c = 0; c < 2; ++c) {
        clients.emplace_back([&] {
            RawClient conn(proxy->port());  // one keep-alive connection per client, across the reload
            const auto deadline = Clock::now() + seconds(10);
            for (int i = 0; i < 5000 && !stop.load() && Clock::now() < deadline; ++i) {
                if (!conn.connected() || !conn.send(build_request("GET", "/api/trading/ticker?symbol=BTCUSDT"))) {
                    failed.fetch_add(1);
                    return;
                }
                const Response r = conn.read_response();
                done.fetch_add(1);
                if (r.status != 200) failed.fetch_add(1);
                std::this_thread::sleep_for(milliseconds(2));
            }
        });
    }
    ASSERT_TRUE(wait_until([&] { return origin("ticker") > a_start + 20; }, seconds(5)));

    // operator: upstream.url from A to B, SIGHUP, under that traffic
    rewrite_config(*proxy, [&](ProxyConfig& c) { c.set("upstream.url", "\"" + b.url() + "\""); });
    ASSERT_TRUE(reload(*proxy));
    const Json s = stats_of(*proxy);
    EXPECT_EQ(s["reloads"]["ok"].as_int(), 1) << s["reloads"]["last_error"].as_string() << proxy->log();
    EXPECT_NE(proxy->log().find("upstream now 127.0.0.1:" + std::to_string(b.port())), std::string::npos);
    std::this_thread::sleep_for(milliseconds(200));  // requests in flight on A's connections finish there

    // client: from now on every request reaches B, none A
    const auto a_after = origin("ticker");
    const auto b_after = b.stats().route("ticker");
    ASSERT_TRUE(wait_until([&] { return b.stats().route("ticker") > b_after + 20; }, seconds(5)));
    stop.store(true);
    clients.clear();
    EXPECT_EQ(origin("ticker"), a_after) << "a request reached the old upstream after the reload";
    EXPECT_GT(b_after, 0) << "no request reached the new upstream";
    EXPECT_EQ(failed.load(), 0) << done.load() << " requests";
    Response fresh = ticker_get(*proxy);
    EXPECT_EQ(fresh.status, 200u);
    EXPECT_EQ(origin("ticker"), a_after);

    // operator: an upstream that does not resolve is refused, naming the key; B stays
    rewrite_config(*proxy, [](ProxyConfig& c) { c.set("upstream.url", "\"http://no-such-host.invalid:80\""); });
    ASSERT_TRUE(reload(*proxy));
    EXPECT_EQ(stats_of(*proxy)["reloads"]["last_error"].as_string().rfind("upstream.url: cannot resolve", 0), 0u)
        << stats_of(*proxy)["reloads"]["last_error"].as_string();
    const auto b_now = b.stats().route("ticker");
    EXPECT_EQ(ticker_get(*proxy).status, 200u);
    EXPECT_EQ(b.stats().route("ticker"), b_now + 1);
}

// --------------------------------------------------------------- refused

TEST_F(Reload, InvalidFileIsRefusedAndTrafficGoesOn) {
    auto proxy = StartProxy(with_rules(rules_yaml(ticker("60s"))));
    const std::string version = stats_of(*proxy)["config_version"].as_string();
    Response tick = ticker_get(*proxy);
    ASSERT_TRUE(CacheIs(tick, "MISS"));

    // operator: a TTL that is not a duration, SIGHUP
    rewrite_rules(*proxy, rules_yaml(ticker("banana")));
    ASSERT_TRUE(reload(*proxy));

    // /stats: one failed reload, its error naming file, line and key; the running version unchanged
    const Json s = stats_of(*proxy);
    EXPECT_EQ(s["reloads"]["failed"].as_int(), 1);
    EXPECT_EQ(s["reloads"]["ok"].as_int(), 0);
    EXPECT_FALSE(s["reloads"]["last_ok"].boolean);
    const std::string err = s["reloads"]["last_error"].as_string();
    EXPECT_NE(err.find("rules.yaml:"), std::string::npos) << err;
    EXPECT_NE(err.find("ttl"), std::string::npos) << err;
    EXPECT_EQ(s["config_version"].as_string(), version);
    Response m = http_request(proxy->admin_port(), "GET", "/metrics");
    EXPECT_NE(m.body.find("cacheproxy_config_reload_failures_total 1"), std::string::npos);
    EXPECT_NE(m.body.find("cacheproxy_config_last_reload_ok 0"), std::string::npos);
    EXPECT_NE(proxy->log().find("reload refused"), std::string::npos);

    // client: the old rules still serve, the entry is still there
    Response tick2 = ticker_get(*proxy);
    EXPECT_TRUE(CacheIs(tick2, "HIT")) << describe(tick2);
    EXPECT_EQ(tick2.body, tick.body);

    // operator: a listen port change is refused too, naming the key
    rewrite_rules(*proxy, rules_yaml(ticker("60s")));
    rewrite_config(*proxy, [](ProxyConfig& c) { c.set("listen", "\"127.0.0.1:1\""); });
    ASSERT_TRUE(reload(*proxy));
    const Json s2 = stats_of(*proxy);
    EXPECT_EQ(s2["reloads"]["failed"].as_int(), 2);
    EXPECT_EQ(s2["reloads"]["last_error"].as_string().rfind("listen: changed: needs a restart", 0), 0u)
        << s2["reloads"]["last_error"].as_string();
    EXPECT_TRUE(CacheIs(ticker_get(*proxy), "HIT"));
}

// --------------------------------------------------------------- read-your-writes

TEST_F(Reload, ReloadDuringACoalescedFillKeepsReadYourWrites) {
    Response seed = sim().direct("GET", positions_target(), bearer(1));
    ASSERT_EQ(seed.status, 200u);
    const double eth_before = position_size(seed, "ETHUSDT");
    const long long reads = origin("positions");
    sim().set_latency(R"({"default":0.0,"positions":2.0})");
    auto proxy = StartProxy(with_rules(trading_rules("60s")));

    // clients A and B: the same positions read, coalesced on one slow fill (snapshot before the order)
    Timed a, b;
    std::jthread ta([&] { a = timed_request(proxy->port(), "GET", positions_target(), bearer(1)); });
    ASSERT_TRUE(wait_until([&] { return origin("positions") == reads + 1; }, seconds(2)));
    std::jthread tb([&] { b = timed_request(proxy->port(), "GET", positions_target(), bearer(1)); });
    std::this_thread::sleep_for(milliseconds(100));

    // operator: positions' TTL changes (the route is kept), SIGHUP during the fill
    rewrite_rules(*proxy, trading_rules("30s"));
    ASSERT_TRUE(reload(*proxy));
    EXPECT_EQ(stats_of(*proxy)["reloads"]["ok"].as_int(), 1) << proxy->log();

    // client C: user1's order, on the new rules, while the fill is still in flight
    sim().set_latency(R"({"default":0.0,"positions":0.0})");
    Response order = place_order(proxy->port(), bearer(1), OrderBody{}.json());
    ASSERT_EQ(success_of(order), 1) << describe(order);
    ta.join();
    tb.join();
    EXPECT_EQ(a.response.status, 200u);
    EXPECT_EQ(b.response.status, 200u) << "the coalesced waiter lost its answer across the reload";
    EXPECT_EQ(origin("positions"), reads + 1) << "the waiter did not coalesce";

    // client C: every later read shows the order: the fill from before it was not stored
    for (int i = 0; i < 3; ++i) {
        Response r = http_request(proxy->port(), "GET", positions_target(), bearer(1));
        EXPECT_NEAR(position_size(r, "ETHUSDT"), eth_before + 1, 1e-6) << describe(r);
    }
}

TEST_F(Reload, ReloadDuringAnOrdersInvalidationKeepsReadYourWrites) {
    Response seed = sim().direct("GET", positions_target(), bearer(1));
    const double eth_before = position_size(seed, "ETHUSDT");
    auto proxy = StartProxy(with_rules(trading_rules("60s")));
    ASSERT_TRUE(CacheIs(http_request(proxy->port(), "GET", positions_target(), bearer(1)), "MISS"));

    // client: user1's order takes 1.5 s at the origin (applied at its end)
    sim().set_latency(R"({"default":0.0,"order":1.5})");
    Response order;
    std::jthread writer([&] { order = place_order(proxy->port(), bearer(1), OrderBody{}.json()); });
    std::this_thread::sleep_for(milliseconds(200));

    // operator: positions re-keyed (a new, empty slot), SIGHUP while the order is in flight
    rewrite_rules(*proxy, trading_rules("60s", /*rekeyed=*/true));
    ASSERT_TRUE(reload(*proxy));
    // client: a read on the new rules before the order lands: stored under the new slot
    Response mid = http_request(proxy->port(), "GET", positions_target(), bearer(1));
    EXPECT_NEAR(position_size(mid, "ETHUSDT"), eth_before, 1e-6) << describe(mid);
    writer.join();
    ASSERT_EQ(success_of(order), 1) << describe(order);

    // the order, started on the old rules, invalidates under the new ones too
    for (int i = 0; i < 3; ++i) {
        Response r = http_request(proxy->port(), "GET", positions_target(), bearer(1));
        EXPECT_NEAR(position_size(r, "ETHUSDT"), eth_before + 1, 1e-6)
            << "a read after the order got an entry from before it\n" << describe(r);
    }
}

// --------------------------------------------------------------- burst

TEST_F(Reload, BurstOfSighupsUnderLoadFailsNoRequest) {
    auto proxy = StartProxy(with_rules(rules_yaml(per_user_route("balance", "/api/trading/balance", "60s") + ticker("60s"))));
    std::atomic<bool> stop{false};
    std::atomic<long long> done{0}, failed{0};
    std::vector<std::jthread> clients;
    for (int c = 0; c < 4; ++c) {
        clients.emplace_back([&, c] {
            const auto deadline = Clock::now() + seconds(20);
            for (int i = 0; i < 5000 && !stop.load() && Clock::now() < deadline; ++i) {
                Response r = (i % 2) ? ticker_get(*proxy, i % 10 == 1 ? "ETHUSDT" : "BTCUSDT")
                                     : http_request(proxy->port(), "GET", balance_target(), bearer(1 + c));
                done.fetch_add(1);
                if (r.status != 200) failed.fetch_add(1);
            }
        });
    }
    // operator: 20 SIGHUPs, 50 ms apart: ticker's TTL changed, ticker removed, added back (and one bad file)
    for (int i = 0; i < 20; ++i) {
        const std::string tick = i % 4 == 2 ? "" : ticker(i % 2 ? "30s" : "60s");
        rewrite_rules(*proxy, i == 10 ? rules_yaml(ticker("oops"))
                                      : rules_yaml(per_user_route("balance", "/api/trading/balance", "60s") + tick));
        ::kill(proxy->process().pid(), SIGHUP);
        std::this_thread::sleep_for(milliseconds(50));
    }
    std::this_thread::sleep_for(milliseconds(200));
    stop.store(true);
    clients.clear();
    EXPECT_GT(done.load(), 40);
    EXPECT_EQ(failed.load(), 0) << done.load() << " requests";
    const Json s = stats_of(*proxy);
    EXPECT_GE(s["reloads"]["ok"].as_int(), 1) << proxy->log();
    EXPECT_TRUE(proxy->process().running());
}

// --------------------------------------------------------------- principals (issue 17)

/// The principal learned from user_id; positions and balance, or also orders
/// (`with_orders`, and the order triggers naming it). Tokens "user1" and
/// "phone-1" are one user.
std::string principal_rules(bool with_orders, const std::string& field = "user_id") {
    std::string triggers = order_triggers();
    if (!with_orders) {
        triggers = triggers.substr(0, triggers.find("  - name: order_cancelled"));
        const std::string all = "[positions, balance, orders]";
        triggers.replace(triggers.find(all), all.size(), "[positions, balance]");
    }
    return "principal: { learn: { field: " + field + " } }\n" +
           rules_yaml(per_user_route("positions", "/api/trading/positions", "60s") +
                      per_user_route("balance", "/api/trading/balance", "60s") +
                      (with_orders ? per_user_route("orders", "/api/trading/orders", "60s") : "") + "triggers:\n" +
                      triggers);
}

TEST_F(Reload, ARouteAReloadAddsIsWidenedToTheUsersOtherTokensAndDroppedOnARefusal) {
    const Headers token_a = {{"Authorization", "Bearer user1"}};
    const Headers token_b = {{"Authorization", "Bearer phone-1"}};
    auto proxy = StartProxy(with_rules(principal_rules(false)));
    // operator: adds the orders route, SIGHUP
    rewrite_rules(*proxy, principal_rules(true));
    ASSERT_TRUE(reload(*proxy));
    ASSERT_EQ(stats_of(*proxy)["reloads"]["ok"].as_int(), 1) << proxy->log();

    // both tokens fill the new route (each fill maps its token to the user)
    for (const auto* token : {&token_a, &token_b}) {
        ASSERT_TRUE(CacheIs(http_request(proxy->port(), "GET", orders_target(), *token), "MISS"));
        ASSERT_TRUE(CacheIs(http_request(proxy->port(), "GET", orders_target(), *token), "HIT"));
    }
    // client: an order through A; got: B's next read of the new route is fresh
    Response order = place_order(proxy->port(), token_a, OrderBody{}.json());
    ASSERT_EQ(success_of(order), 1) << describe(order);
    Response b_after = http_request(proxy->port(), "GET", orders_target(), token_b);
    EXPECT_TRUE(CacheIs(b_after, "MISS")) << "token B was served the new route's entry from before A's order";
    ASSERT_TRUE(CacheIs(http_request(proxy->port(), "GET", orders_target(), token_b), "HIT"));

    // the app starts refusing B: B's entry in the new route goes with the rest
    Response revoke = sim().direct("POST", "/__sim/revoke", {{"Content-Type", "application/json"}},
                                   R"({"token":"phone-1"})");
    ASSERT_EQ(revoke.status, 200u) << describe(revoke);
    Response refused = http_request(proxy->port(), "GET", positions_target(), token_b);
    ASSERT_EQ(refused.status, 401u) << describe(refused);
    Response orders_b = http_request(proxy->port(), "GET", orders_target(), token_b);
    EXPECT_TRUE(CacheIs(orders_b, "MISS")) << "the refused token still got the new route's HIT";
    EXPECT_EQ(orders_b.status, 401u);
}

TEST_F(Reload, AChangedPrincipalSectionIsRefusedNamingIt) {
    auto proxy = StartProxy(with_rules(principal_rules(true)));
    rewrite_rules(*proxy, principal_rules(true, "account_id"));
    ASSERT_TRUE(reload(*proxy));
    const Json s = stats_of(*proxy);
    EXPECT_EQ(s["reloads"]["failed"].as_int(), 1) << proxy->log();
    EXPECT_NE(s["reloads"]["last_error"].as_string().find("principal"), std::string::npos)
        << s["reloads"]["last_error"].as_string();
}

}  // namespace
}  // namespace cacheproxy::e2e
