#include "app/reload.hpp"
#include "app/collect.hpp"
#include "app/socket_activation.hpp"

#include "cache/header_list.hpp"

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

namespace cacheproxy::app {
namespace {

config::Config base() {
    config::Config c;
    c.rules_path = "/etc/cacheproxy/rules.yaml";
    rules::RouteRule r;
    r.name = "ticker";
    r.path = "/ticker";
    r.shared = true;
    c.rules.routes = {r};
    return c;
}

TEST(Reload, OnlyTheRulesMayChange) {
    auto next = base();
    next.rules.routes[0].ttl = std::chrono::seconds(99);
    next.rules_path = "/etc/cacheproxy/other.yaml";
    next.source_path = "/elsewhere.yaml";
    next.upstream.url = "http://10.0.0.1:80";  // applied by apply_reload
    next.upstream.host = "10.0.0.1";
    next.upstream.port = 80;
    next.logging.level = "debug";  // applied too
    EXPECT_EQ(config_restart_needed(base(), next), std::nullopt);
}

TEST(Reload, AConfigChangeIsRefusedNamingItsKey) {
    const auto refusal = [](void (*change)(config::Config&)) {
        auto next = base();
        change(next);
        return config_restart_needed(base(), next).value_or("");
    };
    EXPECT_EQ(refusal([](config::Config& c) { c.listen.port = 9999; }), "listen: changed: needs a restart");
    EXPECT_EQ(refusal([](config::Config& c) { c.threads = 7; }), "threads: changed: needs a restart");
    EXPECT_EQ(refusal([](config::Config& c) { c.upstream.max_connections = 3; }),
              "upstream.max_connections: changed: needs a restart");
    EXPECT_EQ(refusal([](config::Config& c) { c.upstream.health_interval = std::chrono::seconds(9); }),
              "upstream.health.interval: changed: needs a restart");
    EXPECT_EQ(refusal([](config::Config& c) { c.limits.max_body_bytes = 1; }),
              "limits.max_body_bytes: changed: needs a restart");
    EXPECT_EQ(refusal([](config::Config& c) { c.admin.listen.port = 1; }), "admin.listen: changed: needs a restart");
    EXPECT_EQ(refusal([](config::Config& c) { c.admin.token = "secret"; }), "admin.token: changed: needs a restart");
    EXPECT_EQ(refusal([](config::Config& c) { c.timeouts.push_back({"/api", std::nullopt, std::nullopt}); }),
              "timeouts: changed: needs a restart");
    EXPECT_EQ(refusal([](config::Config& c) { c.rules_path.clear(); }),
              "rules: turning the cache on or off needs a restart");
}

/// A running process without threads: the context, one worker whose posts
/// the test runs by hand, the rules balance (per user) and ticker (shared).
struct Running {
    static config::Config rules_config() {
        config::Config c;
        rules::RouteRule balance, ticker;
        balance.name = "balance";
        balance.path = "/balance";
        balance.key.identity = true;
        balance.key.query = {"k"};
        balance.ttl = std::chrono::seconds(60);
        ticker.name = "ticker";
        ticker.path = "/ticker";
        ticker.shared = true;
        ticker.key.query = {"k"};
        ticker.ttl = std::chrono::seconds(60);
        c.rules.routes = {balance, ticker};
        return c;
    }
    Running() : cfg(rules_config()), ctx(cfg) {
        workers.push_back(std::make_unique<Worker>(
            ctx, boost::asio::ip::tcp::endpoint(boost::asio::ip::address_v4::loopback(), 1),
            upstream::PoolLimits{.max_active = 4, .max_idle = 4}));
    }
    void run_posts() {
        workers[0]->ioc.restart();
        workers[0]->ioc.poll();
    }
    /// Stores an entry for `k` on route `index` of the running rules, as a fill would.
    void put(std::size_t index, const std::string& k) {
        const auto running = ctx.cache->current();
        const auto& rule = running->rules.routes[index];
        auto key = *cache::build_key(rule, running->slot(index), rule.path + "?k=" + k,
                                     std::optional<std::string_view>("Bearer u1"), running->hasher,
                                     cache::HeaderList{});
        const auto now = cache::Clock::now();
        const auto g = running->cache.lookup(key, rule, now, true).generation;
        auto fill = running->cache.join(key, g, now);
        const auto e = cache::CachedResponse::make(
            {.head = "HTTP/1.1 200 OK\r\n", .body = "{}", .stored_at = now, .ttl = rule.ttl, .generation = g});
        running->cache.publish(fill, {e, cache::FillResult::Outcome::stored}, now);
    }
    std::size_t entries(std::size_t slot) const { return ctx.cache->cache.store_stats(slot).entries; }

    config::Config cfg;
    ServerContext ctx;
    std::vector<std::unique_ptr<Worker>> workers;
};

TEST(Reload, KeptRoutesKeepTheirSlotReKeyedOnesGetANewOneAndWorkersGetTheRulesByAPost) {
    Running p;
    p.put(0, "a");
    p.put(1, "a");
    ASSERT_EQ(p.entries(0), 1u);
    ASSERT_EQ(p.entries(1), 1u);

    auto next = p.cfg;
    next.rules.routes[0].key.query = {"k", "x"};            // balance re-keyed
    next.rules.routes[1].ttl = std::chrono::seconds(5);     // ticker retuned
    const auto out = apply_reload(p.ctx, p.workers, next);
    ASSERT_TRUE(out.applied) << out.message;
    EXPECT_NE(out.message.find("0 kept, 1 retuned, 1 rekeyed"), std::string::npos) << out.message;
    EXPECT_EQ(p.workers[0]->snapshot->version, 1u);  // the worker's copy changes on its own thread
    p.run_posts();
    const auto& snap = *p.workers[0]->snapshot;
    EXPECT_EQ(snap.version, 2u);
    EXPECT_EQ(snap.slot(1), 1u);  // ticker: same slot, its entry kept
    EXPECT_EQ(snap.slot(0), 2u);  // balance: a new slot; the old one retired and emptied
    EXPECT_EQ(snap.rules.routes[1].ttl, std::chrono::seconds(5));
    EXPECT_EQ(p.entries(1), 1u);
    EXPECT_EQ(p.entries(0), 0u);
    EXPECT_EQ(p.ctx.cache->current()->version, 2u);
    EXPECT_EQ(p.ctx.reloads.ok.load(), 1u);
    EXPECT_TRUE(p.ctx.reloads.text().last_ok);
}

TEST(Reload, ARefusedReloadChangesNothing) {
    Running p;
    p.put(1, "a");
    auto fewer = p.cfg;  // a restart-only rules key
    fewer.rules.identity.name = "X-Other";
    auto moved = p.cfg;
    moved.listen.port = 1;
    for (const auto* next : {&fewer, &moved}) {
        const auto out = apply_reload(p.ctx, p.workers, *next);
        EXPECT_FALSE(out.applied);
        p.run_posts();
        EXPECT_EQ(p.workers[0]->snapshot->version, 1u);
        EXPECT_EQ(p.ctx.cache->current()->version, 1u);
    }
    EXPECT_EQ(p.ctx.reloads.failed.load(), 2u);
    const auto text = p.ctx.reloads.text();
    EXPECT_EQ(text.last_error, "listen: changed: needs a restart");
    EXPECT_FALSE(text.last_ok);
    EXPECT_EQ(text.running_version, p.ctx.config_version);
    EXPECT_EQ(p.entries(1), 1u);
    EXPECT_EQ(refuse_reload(p.ctx, "rules.yaml:3:5: routes[0].ttl: bad").message, "rules.yaml:3:5: routes[0].ttl: bad");
    EXPECT_EQ(p.ctx.reloads.failed.load(), 3u);
}

/// The route named `name` in a report, or null.
const stats::RouteReport* route_named(const stats::Report& r, std::string_view name) {
    for (const auto& route : r.routes)
        if (route.name == name) return &route;
    return nullptr;
}

rules::TriggerRule trigger(std::string name, std::string path) {
    rules::TriggerRule t;
    t.name = std::move(name);
    t.path = std::move(path);
    t.invalidate = {"balance"};
    return t;
}

TEST(Reload, AddedRemovedAndReorderedRoutesMoveNoCounterOfAKeptRoute) {
    Running p;
    p.put(0, "a");
    p.put(1, "a");
    p.workers[0]->route_counters[p.ctx.cache->current()->slot(0)].hits = 7;  // balance
    p.workers[0]->route_counters[p.ctx.cache->current()->slot(1)].hits = 5;  // ticker
    p.workers[0]->stats.record(p.ctx.cache->current()->route_cell(1), 200, stats::CacheLabel::hit,
                               std::chrono::microseconds(80));

    auto next = p.cfg;  // ticker first, balance gone, quotes added
    auto quotes = next.rules.routes[1];
    quotes.name = "quotes";
    quotes.path = "/quotes";
    next.rules.routes = {next.rules.routes[1], quotes};
    const auto out = apply_reload(p.ctx, p.workers, next);
    ASSERT_TRUE(out.applied) << out.message;
    EXPECT_NE(out.message.find("1 kept, 0 retuned, 0 rekeyed, 1 added, 1 removed"), std::string::npos) << out.message;
    EXPECT_NE(out.message.find("1 entry of removed or re-keyed routes dropped"), std::string::npos) << out.message;
    p.run_posts();
    const auto& snap = *p.workers[0]->snapshot;
    EXPECT_EQ(snap.slot(0), 1u);  // ticker: its slot, moved to index 0
    EXPECT_EQ(snap.slot(1), 2u);  // quotes: a fresh slot
    EXPECT_EQ(p.entries(0), 0u);  // balance's slot retired, its entry dropped
    EXPECT_EQ(p.entries(1), 1u);

    const auto r = collect(p.ctx, p.workers);
    ASSERT_EQ(r.routes.size(), 2u);
    EXPECT_EQ(route_named(r, "balance"), nullptr);
    ASSERT_NE(route_named(r, "ticker"), nullptr);
    EXPECT_EQ(route_named(r, "ticker")->counters.hits, 5u);  // carried over
    EXPECT_EQ(route_named(r, "ticker")->store.entries, 1u);
    EXPECT_EQ(r.slots[route_named(r, "ticker")->slot].by_cache(stats::CacheLabel::hit), 1u);
    ASSERT_NE(route_named(r, "quotes"), nullptr);
    EXPECT_EQ(route_named(r, "quotes")->counters.hits, 0u);  // starts at 0
    EXPECT_EQ(r.slots[route_named(r, "quotes")->slot].total(), 0u);
    EXPECT_EQ(r.layout[1].label, "ticker");
    EXPECT_EQ(r.layout[2].label, "quotes");

    auto back = next;  // balance again: a new slot, empty, its counters from 0 (it was removed)
    back.rules.routes.push_back(p.cfg.rules.routes[0]);
    ASSERT_TRUE(apply_reload(p.ctx, p.workers, back).applied);
    p.run_posts();
    EXPECT_EQ(p.workers[0]->snapshot->slot(2), 3u);
    EXPECT_EQ(route_named(collect(p.ctx, p.workers), "balance")->counters.hits, 0u);
}

TEST(Reload, TriggersKeepTheirCountersByNameNewOnesGetAFreshSlot) {
    Running p;
    auto with = p.cfg;
    with.rules.triggers = {trigger("order", "/order"), trigger("cancel", "/cancel")};
    ASSERT_TRUE(apply_reload(p.ctx, p.workers, with).applied);
    p.run_posts();
    EXPECT_EQ(p.workers[0]->snapshot->trigger_slot(0), 0u);
    EXPECT_EQ(p.workers[0]->snapshot->trigger_slot(1), 1u);
    p.workers[0]->trigger_counters[1].fired = 4;  // cancel

    auto swapped = p.cfg;  // cancel first, order removed, transfer added
    swapped.rules.triggers = {trigger("cancel", "/cancel"), trigger("transfer", "/transfer")};
    ASSERT_TRUE(apply_reload(p.ctx, p.workers, swapped).applied);
    p.run_posts();
    const auto& snap = *p.workers[0]->snapshot;
    EXPECT_EQ(snap.trigger_slot(0), 1u);  // cancel keeps its slot
    EXPECT_EQ(snap.trigger_slot(1), 2u);  // transfer: a new one (order's is not reused)
    ASSERT_NE(snap.triggers.match("POST", "/transfer"), nullptr);
    EXPECT_EQ(snap.triggers.match("POST", "/transfer")->name, "transfer");
    const auto r = collect(p.ctx, p.workers);
    ASSERT_EQ(r.triggers.size(), 2u);
    EXPECT_EQ(r.triggers[0].name, "cancel");
    EXPECT_EQ(r.triggers[0].counters.fired, 4u);
    EXPECT_EQ(r.triggers[1].name, "transfer");
    EXPECT_EQ(r.triggers[1].counters.fired, 0u);
    EXPECT_EQ(route_named(r, "balance")->invalidations, 4u);  // both target balance; only cancel fired
}

TEST(Reload, ANewUpstreamIsResolvedOnTheReloadsThreadAndPostedToEachPool) {
    Running p;
    auto next = p.cfg;
    next.upstream.host = "127.0.0.2";
    next.upstream.port = 8081;
    next.upstream.url = "http://127.0.0.2:8081";
    const auto out = apply_reload(p.ctx, p.workers, next);
    ASSERT_TRUE(out.applied) << out.message;
    EXPECT_NE(out.message.find("upstream now 127.0.0.2:8081"), std::string::npos) << out.message;
    EXPECT_EQ(*p.workers[0]->upstream_authority, p.ctx.upstream_authority);  // on the worker's thread, by a post
    p.run_posts();
    EXPECT_EQ(p.workers[0]->pool.endpoint().address().to_string(), "127.0.0.2");
    EXPECT_EQ(p.workers[0]->pool.endpoint().port(), 8081);
    EXPECT_EQ(*p.workers[0]->upstream_authority, "127.0.0.2:8081");

    // the same upstream again: nothing to post; one that does not resolve: refused, nothing changes
    EXPECT_EQ(apply_reload(p.ctx, p.workers, next).message.find("upstream now"), std::string::npos);
    auto bad = next;
    bad.upstream.host = "no-such-host.invalid";
    bad.upstream.url = "http://no-such-host.invalid:8081";
    const auto refused = apply_reload(p.ctx, p.workers, bad);
    EXPECT_FALSE(refused.applied);
    EXPECT_EQ(refused.message.rfind("upstream.url: cannot resolve no-such-host.invalid", 0), 0u) << refused.message;
    p.run_posts();
    EXPECT_EQ(*p.workers[0]->upstream_authority, "127.0.0.2:8081");
}

TEST(Reload, ANewLoggingLevelAppliesTheOtherLoggingKeysNeedARestart) {
    Running p;
    const auto before = spdlog::default_logger()->level();
    spdlog::default_logger()->set_level(spdlog::level::info);
    auto next = p.cfg;
    next.logging.level = "warn";
    const auto out = apply_reload(p.ctx, p.workers, next);
    EXPECT_TRUE(out.applied) << out.message;
    EXPECT_NE(out.message.find("logging.level now warn"), std::string::npos) << out.message;
    EXPECT_EQ(spdlog::default_logger()->level(), spdlog::level::warn);
    next.logging.file = "/tmp/other.log";
    EXPECT_EQ(apply_reload(p.ctx, p.workers, next).message, "logging.file: changed: needs a restart");
    spdlog::default_logger()->set_level(before);
}

TEST(SocketActivation, TheSocketIsFd3WhenPassedToThisProcess) {
    EXPECT_EQ(activated_fd("1234", "1", 1234), 3);
    EXPECT_EQ(activated_fd("1234", "2", 1234), 3);  // the first of several
}

TEST(SocketActivation, NothingPassedOrPassedToAnotherProcess) {
    EXPECT_EQ(activated_fd(nullptr, nullptr, 1234), std::nullopt);
    EXPECT_EQ(activated_fd("1234", nullptr, 1234), std::nullopt);
    EXPECT_EQ(activated_fd("999", "1", 1234), std::nullopt);  // a parent's, inherited
    EXPECT_EQ(activated_fd("1234", "0", 1234), std::nullopt);
    EXPECT_EQ(activated_fd("1234", "x", 1234), std::nullopt);
    EXPECT_EQ(activated_fd("12a34", "1", 1234), std::nullopt);
    EXPECT_EQ(activated_fd("", "1", 1234), std::nullopt);
}

}  // namespace
}  // namespace cacheproxy::app
