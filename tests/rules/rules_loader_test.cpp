#include "rules/rules_loader.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using cacheproxy::config::ConfigError;
using cacheproxy::rules::IdentitySource;
using cacheproxy::rules::load_rules;
using cacheproxy::rules::RouteRule;
using cacheproxy::rules::RuleSet;

namespace {

/// A rules file in a fresh temp directory, removed afterwards.
class TempRules {
public:
    explicit TempRules(const std::string& yaml) {
        static int counter = 0;
        dir_ = fs::temp_directory_path() /
               ("cacheproxy-rules-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
        fs::create_directories(dir_);
        std::ofstream(path()) << yaml;
    }
    ~TempRules() {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }
    TempRules(const TempRules&) = delete;
    TempRules& operator=(const TempRules&) = delete;

    std::string path() const { return (dir_ / "rules.yaml").string(); }

private:
    fs::path dir_;
};

RuleSet load_ok(const std::string& yaml) {
    TempRules file(yaml);
    RuleSet rules;
    auto error = load_rules(file.path(), rules);
    EXPECT_FALSE(error.has_value()) << error->to_string() << "\nin:\n" << yaml;
    return rules;
}

ConfigError load_error(const std::string& yaml) {
    TempRules file(yaml);
    RuleSet rules;
    auto error = load_rules(file.path(), rules);
    EXPECT_TRUE(error.has_value()) << "expected an error for:\n" << yaml;
    if (!error) return {};
    EXPECT_EQ(error->file, file.path());
    return *error;
}

/// A rules file with one route named x: lines 2-4 are name, match and ttl, then `rest`.
std::string route(const std::string& rest) {
    return "routes:\n"
           "  - name: x\n"
           "    match: { path: /api/x }\n"
           "    ttl: 15s\n" + rest;
}

/// route() for a per-user route: line 5 is "key: { identity: true }", then `rest`.
std::string user_route(const std::string& rest) { return route("    key: { identity: true }\n" + rest); }

const fs::path source_dir = fs::path(__FILE__).parent_path().parent_path().parent_path();

const RouteRule* find_route(const RuleSet& rules, const std::string& name) {
    auto it = std::find_if(rules.routes.begin(), rules.routes.end(), [&](const RouteRule& r) { return r.name == name; });
    return it == rules.routes.end() ? nullptr : &*it;
}

}  // namespace

TEST(RulesLoaderTest, ShippedTradingRulesLoad) {
    RuleSet rules;
    auto error = load_rules((source_dir / "rules" / "trading.yaml").string(), rules);
    ASSERT_FALSE(error.has_value()) << error->to_string();
    EXPECT_EQ(rules.identity.kind, IdentitySource::Kind::header);
    EXPECT_EQ(rules.identity.name, "Authorization");
    EXPECT_EQ(rules.coalesce_timeout, 35s);
    EXPECT_EQ(rules.max_waiters, 10000u);
    EXPECT_EQ(rules.coalesce_error_hold, 1s);
    EXPECT_EQ(rules.max_unshared, 4u);
    ASSERT_EQ(rules.routes.size(), 5u);

    const RouteRule* balance = find_route(rules, "balance");
    ASSERT_NE(balance, nullptr);
    EXPECT_EQ(balance->path, "/api/trading/balance");
    EXPECT_EQ(balance->ttl, 15s);
    EXPECT_TRUE(balance->key.identity);
    EXPECT_FALSE(balance->shared);
    EXPECT_EQ(balance->key.query, (std::vector<std::string>{"exchange", "account_type"}));
    EXPECT_EQ(balance->max_entries, 1000u);

    const RouteRule* positions = find_route(rules, "positions");
    ASSERT_NE(positions, nullptr);
    EXPECT_EQ(positions->ttl, 10s);
    EXPECT_TRUE(positions->key.identity);
    EXPECT_EQ(positions->max_entries, 1000u);

    const RouteRule* orders = find_route(rules, "orders");
    ASSERT_NE(orders, nullptr);
    EXPECT_EQ(orders->ttl, 3s);
    EXPECT_TRUE(orders->key.identity);

    const RouteRule* ticker = find_route(rules, "ticker");
    ASSERT_NE(ticker, nullptr);
    EXPECT_EQ(ticker->ttl, 5s);
    EXPECT_TRUE(ticker->shared);
    EXPECT_FALSE(ticker->key.identity);
    EXPECT_EQ(ticker->key.query, std::vector<std::string>{"symbol"});
    EXPECT_EQ(ticker->max_entries, 500u);
    EXPECT_EQ(ticker->stale_while_revalidate, 5s);

    const RouteRule* config = find_route(rules, "config");
    ASSERT_NE(config, nullptr);
    EXPECT_EQ(config->ttl, 60s);
    EXPECT_TRUE(config->key.identity);
    EXPECT_TRUE(config->key.query.empty());
}

TEST(RulesLoaderTest, OmittedKeysTakeTheDefaults) {
    RuleSet rules = load_ok(user_route(""));
    EXPECT_EQ(rules.identity.name, "Authorization");
    EXPECT_EQ(rules.coalesce_timeout, 35s);
    ASSERT_EQ(rules.routes.size(), 1u);
    const RouteRule& r = rules.routes[0];
    RouteRule defaults;
    EXPECT_EQ(r.method, "GET");
    EXPECT_EQ(r.max_entries, defaults.max_entries);
    EXPECT_EQ(r.max_bytes, defaults.max_bytes);
    EXPECT_EQ(r.max_object_bytes, defaults.max_object_bytes);
    EXPECT_EQ(r.statuses, defaults.statuses);
    EXPECT_EQ(r.stale_if_error, 0ms);
    EXPECT_FALSE(r.shared);
    EXPECT_FALSE(r.allow_client_no_cache);
}

TEST(RulesLoaderTest, EmptyFileMeansNoRoutes) { EXPECT_TRUE(load_ok("").routes.empty()); }

TEST(RulesLoaderTest, ReadsEveryRouteKey) {
    RuleSet rules = load_ok(R"(identity: { cookie: session }
coalesce: { timeout: 10s, max_waiters: 7 }
routes:
  - name: search_2
    match: { method: GET, path: /api/search }
    ttl: 2m
    max_entries: 9
    max_bytes: 1MiB
    max_object_bytes: 4KiB
    key:
      identity: true
      query: [q, page]
      headers: [X-Tenant, Accept-Language]
    shared: false
    stale_while_revalidate: 1s
    stale_if_error: 2s
    refresh_ahead: 3s
    statuses: [200, 404]
    allow_client_no_cache: true
  - name: root
    match: { path: / }
    ttl: 1s
    shared: true
)");
    EXPECT_EQ(rules.identity.kind, IdentitySource::Kind::cookie);
    EXPECT_EQ(rules.identity.name, "session");
    EXPECT_EQ(rules.coalesce_timeout, 10s);
    EXPECT_EQ(rules.max_waiters, 7u);
    ASSERT_EQ(rules.routes.size(), 2u);
    const RouteRule& r = rules.routes[0];
    EXPECT_EQ(r.name, "search_2");
    EXPECT_EQ(r.path, "/api/search");
    EXPECT_EQ(r.ttl, 2min);
    EXPECT_EQ(r.max_entries, 9u);
    EXPECT_EQ(r.max_bytes, 1024u * 1024);
    EXPECT_EQ(r.max_object_bytes, 4096u);
    EXPECT_TRUE(r.key.identity);
    EXPECT_EQ(r.key.query, (std::vector<std::string>{"q", "page"}));
    EXPECT_EQ(r.key.headers, (std::vector<std::string>{"x-tenant", "accept-language"}));  // lower-cased
    EXPECT_EQ(r.stale_while_revalidate, 1s);
    EXPECT_EQ(r.stale_if_error, 2s);
    EXPECT_EQ(r.refresh_ahead, 3s);
    EXPECT_EQ(r.statuses, (std::vector<unsigned>{200, 404}));
    EXPECT_TRUE(r.allow_client_no_cache);
    EXPECT_EQ(rules.routes[1].path, "/");
    EXPECT_TRUE(rules.routes[1].shared);
}

TEST(RulesLoaderTest, IdentitySources) {
    EXPECT_EQ(load_ok("identity: { query: token }\n").identity.kind, IdentitySource::Kind::query);
    EXPECT_EQ(load_ok("identity: { header: X-User }\n").identity.name, "X-User");

    ConfigError none = load_error("routes: []\nidentity: {}\n");
    EXPECT_EQ(none.key, "identity");
    EXPECT_EQ(none.line, 2);
    EXPECT_EQ(load_error("identity: { header: A, cookie: b }\n").key, "identity");
    ConfigError empty = load_error("identity:\n  header: \"\"\n");
    EXPECT_EQ(empty.key, "identity.header");
    EXPECT_EQ(empty.line, 2);
    EXPECT_EQ(empty.message, "must not be empty");
    EXPECT_EQ(load_error("identity: { header: \"Bad Header\" }\n").key, "identity.header");
    EXPECT_EQ(load_error("identity: { cookie: \"\" }\n").key, "identity.cookie");
    EXPECT_EQ(load_error("identity: { hedaer: A }\n").key, "identity.hedaer");
}

TEST(RulesLoaderTest, CoalesceSettings) {
    EXPECT_EQ(load_error("coalesce: { timeout: 0s }\n").key, "coalesce.timeout");
    EXPECT_EQ(load_error("coalesce: { timeout: soon }\n").message, "bad duration \"soon\" (expected e.g. 300ms, 15s, 2m)");
    EXPECT_EQ(load_error("coalesce: { waiters: 1 }\n").key, "coalesce.waiters");
    EXPECT_EQ(load_error("coalesce: { error_hold: 2m }\n").key, "coalesce.error_hold");
    EXPECT_EQ(load_error("coalesce: { max_unshared: 0 }\n").key, "coalesce.max_unshared");
    const RuleSet rules = load_ok("coalesce: { error_hold: 0s, max_unshared: 2 }\n");
    EXPECT_EQ(rules.coalesce_error_hold, 0s);
    EXPECT_EQ(rules.max_unshared, 2u);
    const RuleSet defaults = load_ok("identity: { header: Authorization }\n");
    EXPECT_EQ(defaults.coalesce_error_hold, 1s);
    EXPECT_EQ(defaults.max_unshared, 4u);
}

TEST(RulesLoaderTest, NumbersHaveUpperBounds) {
    EXPECT_EQ(load_error(user_route("    max_object_bytes: 2GiB\n    max_bytes: 4GiB\n")).key, "routes[0].max_object_bytes");
    EXPECT_EQ(load_error(user_route("    max_entries: 1000000000\n")).key, "routes[0].max_entries");
    EXPECT_EQ(load_error(user_route("    stale_if_error: 100000h\n")).key, "routes[0].stale_if_error");
}

TEST(RulesLoaderTest, AStrayFlowIndicatorEndsWithAnError) {
    const ConfigError e = load_error(",\nroutes: []\n");
    EXPECT_EQ(e.line, 1);
}

TEST(RulesLoaderTest, UnknownKeysAnywhere) {
    ConfigError top = load_error("routes: []\nroute: []\n");
    EXPECT_EQ(top.key, "route");
    EXPECT_EQ(top.line, 2);
    EXPECT_EQ(top.message, "unknown key");

    ConfigError in_route = load_error(user_route("    tll: 5s\n"));
    EXPECT_EQ(in_route.key, "routes[0].tll");
    EXPECT_EQ(in_route.line, 6);
    EXPECT_EQ(in_route.column, 5);

    EXPECT_EQ(load_error(route("    key: { identity: true, querry: [a] }\n")).key, "routes[0].key.querry");
    EXPECT_EQ(load_error("routes:\n  - name: x\n    match: { path: /x, methd: GET }\n    ttl: 1s\n    shared: true\n").key,
              "routes[0].match.methd");
}

TEST(RulesLoaderTest, WrongTypes) {
    ConfigError ttl = load_error(user_route("    max_entries: many\n"));
    EXPECT_EQ(ttl.key, "routes[0].max_entries");
    EXPECT_EQ(ttl.line, 6);
    EXPECT_EQ(ttl.message, "expected an unsigned integer, got \"many\"");
    EXPECT_EQ(load_error(user_route("    shared: nope\n")).key, "routes[0].shared");
    EXPECT_EQ(load_error(user_route("    max_bytes: 1 MiB\n")).key, "routes[0].max_bytes");
    EXPECT_EQ(load_error(user_route("    stale_if_error: 30\n")).message,
              "bad duration \"30\" (expected e.g. 300ms, 15s, 2m)");
    EXPECT_EQ(load_error(route("    key: { identity: true, query: symbol }\n")).key, "routes[0].key.query");
    ConfigError element = load_error(user_route("    statuses: [200, ok]\n"));
    EXPECT_EQ(element.key, "routes[0].statuses[1]");
    EXPECT_EQ(element.line, 6);
    EXPECT_EQ(element.column, 21);
    EXPECT_EQ(load_error("routes: { name: x }\n").key, "routes");
    EXPECT_EQ(load_error("routes:\n  - just a string\n").key, "routes[0]");
}

TEST(RulesLoaderTest, RequiredKeys) {
    ConfigError name = load_error("routes:\n  - match: { path: /x }\n    ttl: 1s\n    shared: true\n");
    EXPECT_EQ(name.key, "routes[0].name");
    EXPECT_EQ(name.line, 2);
    EXPECT_EQ(name.message, "required key missing");
    EXPECT_EQ(load_error("routes:\n  - name: x\n    ttl: 1s\n    shared: true\n").key, "routes[0].match.path");
    EXPECT_EQ(load_error("routes:\n  - name: x\n    match: { method: GET }\n    ttl: 1s\n    shared: true\n").key,
              "routes[0].match.path");
    ConfigError ttl = load_error("routes:\n  - name: x\n    match: { path: /x }\n    shared: true\n");
    EXPECT_EQ(ttl.key, "routes[0].ttl");
    EXPECT_EQ(ttl.line, 2);
}

TEST(RulesLoaderTest, RouteNames) {
    EXPECT_EQ(load_error(route("    name: y\n")).message, "duplicate key (first given on line 2)");
    for (const char* bad : {"Balance", "my-route", "\"\"", "\"a b\""}) {
        ConfigError e = load_error("routes:\n  - name: " + std::string(bad) + "\n    match: { path: /x }\n    ttl: 1s\n    shared: true\n");
        EXPECT_EQ(e.key, "routes[0].name") << bad;
        EXPECT_EQ(e.line, 2) << bad;
    }
    ConfigError twice = load_error(R"(routes:
  - name: x
    match: { path: /a }
    ttl: 1s
    shared: true
  - name: x
    match: { path: /b }
    ttl: 1s
    shared: true
)");
    EXPECT_EQ(twice.key, "routes[1].name");
    EXPECT_EQ(twice.line, 6);
    EXPECT_EQ(twice.message, "duplicate name, also used by routes[0] (x)");
}

TEST(RulesLoaderTest, OnlyGet) {
    ConfigError e = load_error("routes:\n  - name: x\n    match: { method: POST, path: /x }\n    ttl: 1s\n    shared: true\n");
    EXPECT_EQ(e.key, "routes[0].match.method");
    EXPECT_EQ(e.line, 3);
    EXPECT_EQ(e.column, 22);
}

TEST(RulesLoaderTest, PathMustBeExact) {
    for (const char* bad : {"api/x", "/api/x?a=1", "/api/x#f", "/api/%41", "/api;v=1", "/api/*", "/api//x", "/api/x/",
                            "/api/caf\xc3\xa9", "\"/api x\"", "/api/../x", "\"\""}) {
        ConfigError e = load_error("routes:\n  - name: x\n    match:\n      path: " + std::string(bad) +
                                   "\n    ttl: 1s\n    shared: true\n");
        EXPECT_EQ(e.key, "routes[0].match.path") << bad;
        EXPECT_EQ(e.line, 4) << bad;
        EXPECT_EQ(e.column, 13) << bad;
    }
    EXPECT_EQ(load_error("routes:\n  - name: x\n    match: { path: /api/x/ }\n    ttl: 1s\n    shared: true\n").message,
              "must not end with '/'");
}

TEST(RulesLoaderTest, NoTwoRoutesOnOnePath) {
    ConfigError e = load_error(R"(routes:
  - name: a
    match: { path: /x }
    ttl: 1s
    shared: true
  - name: b
    match: { path: /x }
    ttl: 1s
    shared: true
)");
    EXPECT_EQ(e.key, "routes[1].match.path");
    EXPECT_EQ(e.line, 7);
    EXPECT_EQ(e.message, "same path as routes[0] (a)");
}

TEST(RulesLoaderTest, TtlMustBePositive) {
    ConfigError e = load_error("routes:\n  - name: x\n    match: { path: /x }\n    ttl: 0s\n    shared: true\n");
    EXPECT_EQ(e.key, "routes[0].ttl");
    EXPECT_EQ(e.line, 4);
    EXPECT_EQ(e.column, 10);
    EXPECT_EQ(e.message, "ttl must be > 0");
}

TEST(RulesLoaderTest, LeakCheckRefusesRoutesNeitherPerUserNorShared) {
    ConfigError absent = load_error(route(""));
    EXPECT_EQ(absent.key, "routes[0].key.identity");
    EXPECT_EQ(absent.line, 2);  // the route itself
    EXPECT_NE(absent.message.find("one user's response would be served to another"), std::string::npos)
        << absent.message;

    ConfigError explicit_false = load_error(route("    key: { identity: false, query: [symbol] }\n    shared: false\n"));
    EXPECT_EQ(explicit_false.key, "routes[0].key.identity");
    EXPECT_EQ(explicit_false.line, 5);

    ConfigError both = load_error(user_route("    shared: true\n"));
    EXPECT_EQ(both.key, "routes[0].shared");
    EXPECT_EQ(both.line, 6);

    EXPECT_TRUE(load_ok(route("    shared: true\n")).routes[0].shared);
}

TEST(RulesLoaderTest, SizesCountsAndTimes) {
    ConfigError refresh = load_error(user_route("    refresh_ahead: 15s\n"));
    EXPECT_EQ(refresh.key, "routes[0].refresh_ahead");
    EXPECT_EQ(refresh.line, 6);
    EXPECT_EQ(refresh.message, "must be shorter than ttl (15s)");
    load_ok(user_route("    refresh_ahead: 14999ms\n"));

    EXPECT_EQ(load_error(user_route("    max_entries: 0\n")).key, "routes[0].max_entries");
    ConfigError bytes = load_error(user_route("    max_bytes: 1MiB\n    max_object_bytes: 2MiB\n"));
    EXPECT_EQ(bytes.key, "routes[0].max_bytes");
    EXPECT_EQ(bytes.line, 6);
    EXPECT_EQ(bytes.message, "must be >= max_object_bytes (2MiB)");
    load_ok(user_route("    max_bytes: 1MiB\n    max_object_bytes: 1MiB\n"));
    EXPECT_EQ(load_error(user_route("    max_object_bytes: 0\n")).key, "routes[0].max_object_bytes");
}

TEST(RulesLoaderTest, Statuses) {
    ConfigError high = load_error(user_route("    statuses: [200, 600]\n"));
    EXPECT_EQ(high.key, "routes[0].statuses[1]");
    EXPECT_EQ(high.line, 6);
    EXPECT_EQ(high.message, "status 600 is outside 200..599");
    EXPECT_EQ(load_error(user_route("    statuses:\n      - 199\n")).line, 7);
    EXPECT_EQ(load_error(user_route("    statuses: []\n")).key, "routes[0].statuses");
    EXPECT_EQ(load_ok(user_route("    statuses: [200, 203, 404, 599]\n")).routes[0].statuses.size(), 4u);
}

TEST(RulesLoaderTest, QueryAndHeaderNames) {
    ConfigError twice = load_error(route("    key:\n      identity: true\n      query: [exchange, exchange]\n"));
    EXPECT_EQ(twice.key, "routes[0].key.query[1]");
    EXPECT_EQ(twice.line, 7);
    EXPECT_EQ(twice.message, "listed twice: \"exchange\"");
    EXPECT_EQ(load_error(route("    key: { identity: true, query: [\"\"] }\n")).key, "routes[0].key.query[0]");
    EXPECT_EQ(load_error(route("    key: { identity: true, headers: [X-A, x-a] }\n")).key, "routes[0].key.headers[1]");
    EXPECT_EQ(load_error(route("    key: { identity: true, headers: [\"x a\"] }\n")).key, "routes[0].key.headers[0]");
}

TEST(RulesLoaderTest, SyntaxErrorAndMissingFile) {
    ConfigError syntax = load_error("routes:\n  - name: x\n   ttl: [1s\n");
    EXPECT_GT(syntax.line, 0);
    EXPECT_EQ(syntax.message.rfind("invalid YAML: ", 0), 0u) << syntax.message;

    RuleSet rules;
    auto missing = load_rules("/nonexistent/rules.yaml", rules);
    ASSERT_TRUE(missing.has_value());
    EXPECT_EQ(missing->to_string(), "/nonexistent/rules.yaml:0:0: : cannot open file");
}

TEST(RulesLoaderTest, OutputUntouchedOnError) {
    TempRules file(route(""));
    RuleSet rules;
    rules.max_waiters = 3;
    ASSERT_TRUE(load_rules(file.path(), rules).has_value());
    EXPECT_EQ(rules.max_waiters, 3u);
    EXPECT_TRUE(rules.routes.empty());
}

// ---- triggers ----

namespace {

using cacheproxy::rules::ScopeField;
using cacheproxy::rules::TriggerRule;

/// Four routes (lines 1-18): positions and orders per user keyed on exchange +
/// account_type, ticker shared, config per user; then "triggers:" on line 19 and `triggers`.
std::string with_triggers(const std::string& triggers) {
    return "routes:\n"                                                                          // 1
           "  - name: positions\n"                                                              // 2
           "    match: { path: /api/trading/positions }\n"                                      // 3
           "    ttl: 10s\n"                                                                     // 4
           "    key: { identity: true, query: [exchange, account_type] }\n"                     // 5
           "  - name: orders\n"                                                                 // 6
           "    match: { path: /api/trading/orders }\n"                                         // 7
           "    ttl: 3s\n"                                                                      // 8
           "    key: { identity: true, query: [exchange, account_type] }\n"                     // 9
           "  - name: ticker\n"                                                                 // 10
           "    match: { path: /api/trading/ticker }\n"                                         // 11
           "    ttl: 5s\n"                                                                      // 12
           "    key: { query: [symbol] }\n"                                                     // 13
           "    shared: true\n"                                                                 // 14
           "  - name: config\n"                                                                 // 15
           "    match: { path: /api/trading/config }\n"                                         // 16
           "    key: { identity: true }\n"                                                      // 17
           "    ttl: 60s\n"                                                                     // 18
           "triggers:\n" +                                                                      // 19
           triggers;
}

/// One trigger (lines 20-23: name, match, invalidate, then `rest`).
std::string trigger(const std::string& rest, const std::string& match = "{ method: POST, path: /api/order }",
                    const std::string& invalidate = "[positions]") {
    return with_triggers("  - name: t\n"                     // 20
                         "    match: " + match + "\n"        // 21
                         "    invalidate: " + invalidate + "\n" +  // 22
                         rest);                               // 23...
}

const TriggerRule* find_trigger(const RuleSet& rules, const std::string& name) {
    auto it = std::find_if(rules.triggers.begin(), rules.triggers.end(), [&](const TriggerRule& t) { return t.name == name; });
    return it == rules.triggers.end() ? nullptr : &*it;
}

}  // namespace

TEST(RulesLoaderTriggersTest, ShippedTradingRulesHaveTheLegacyWrites) {
    RuleSet rules;
    auto error = load_rules((source_dir / "rules" / "trading.yaml").string(), rules);
    ASSERT_FALSE(error.has_value()) << error->to_string();
    ASSERT_EQ(rules.triggers.size(), 5u);
    EXPECT_EQ(rules.principal.source, cacheproxy::rules::PrincipalRule::Source::response_field);
    EXPECT_EQ(rules.principal.field, "user_id");
    const TriggerRule* logout = find_trigger(rules, "logged_out");
    ASSERT_NE(logout, nullptr);
    EXPECT_TRUE(logout->drop_credential);
    EXPECT_TRUE(logout->invalidate.empty());

    const TriggerRule* order = find_trigger(rules, "order_placed");
    ASSERT_NE(order, nullptr);
    EXPECT_EQ(order->method, "POST");
    EXPECT_EQ(order->path, "/api/trading/order");
    EXPECT_EQ(order->success_status_class, 2u);
    EXPECT_EQ(order->success_field, "success");
    EXPECT_TRUE(order->success_equals);
    EXPECT_EQ(order->invalidate, (std::vector<std::string>{"positions", "balance", "orders"}));
    ASSERT_EQ(order->scope.size(), 2u);
    EXPECT_EQ(order->scope[0].key, "exchange");
    EXPECT_EQ(order->scope[0].source, ScopeField::Source::body);
    EXPECT_EQ(order->scope[0].name, "exchange");
    EXPECT_EQ(order->scope[1].key, "account_type");
    EXPECT_EQ(order->max_body_bytes, 64u * 1024);

    const TriggerRule* close = find_trigger(rules, "position_closed");
    ASSERT_NE(close, nullptr);
    EXPECT_EQ(close->path, "/api/trading/close");
    EXPECT_EQ(close->invalidate, (std::vector<std::string>{"positions", "balance", "orders"}));

    const TriggerRule* cancel = find_trigger(rules, "order_cancelled");
    ASSERT_NE(cancel, nullptr);
    EXPECT_EQ(cancel->method, "DELETE");
    EXPECT_EQ(cancel->path, "/api/trading/order/{id}");
    EXPECT_EQ(cancel->invalidate, (std::vector<std::string>{"orders", "balance"}));
    ASSERT_EQ(cancel->scope.size(), 2u);
    EXPECT_EQ(cancel->scope[0].source, ScopeField::Source::query);

    const TriggerRule* config = find_trigger(rules, "config_changed");
    ASSERT_NE(config, nullptr);
    EXPECT_EQ(config->method, "PUT");
    EXPECT_EQ(config->invalidate, std::vector<std::string>{"config"});
    EXPECT_TRUE(config->scope.empty());
}

TEST(RulesLoaderTriggersTest, ReadsEveryKey) {
    RuleSet rules = load_ok(with_triggers(R"(  - name: cancel_2
    match: { method: DELETE, path: "/api/order/{id}/{Leg_2}" }
    success: { status: 3xx, field: ok, equals: false }
    invalidate: [orders, positions]
    scope: { account_type: query.acct, exchange: path.id }
    max_body_bytes: 1KiB
  - name: minimal
    match: { method: PATCH, path: /api/x }
    invalidate: [config]
)"));
    ASSERT_EQ(rules.triggers.size(), 2u);
    const TriggerRule& t = rules.triggers[0];
    EXPECT_EQ(t.name, "cancel_2");
    EXPECT_EQ(t.method, "DELETE");
    EXPECT_EQ(t.path, "/api/order/{id}/{Leg_2}");
    EXPECT_EQ(t.success_status_class, 3u);
    EXPECT_EQ(t.success_field, "ok");
    EXPECT_FALSE(t.success_equals);
    EXPECT_EQ(t.invalidate, (std::vector<std::string>{"orders", "positions"}));
    ASSERT_EQ(t.scope.size(), 2u);
    EXPECT_EQ(t.scope[0].key, "account_type");  // file order
    EXPECT_EQ(t.scope[0].source, ScopeField::Source::query);
    EXPECT_EQ(t.scope[0].name, "acct");
    EXPECT_EQ(t.scope[1].key, "exchange");
    EXPECT_EQ(t.scope[1].source, ScopeField::Source::path);
    EXPECT_EQ(t.scope[1].name, "id");
    EXPECT_EQ(t.max_body_bytes, 1024u);

    const TriggerRule& m = rules.triggers[1];
    TriggerRule defaults;
    EXPECT_EQ(m.method, "PATCH");
    EXPECT_EQ(m.success_status_class, 2u);
    EXPECT_TRUE(m.success_field.empty());
    EXPECT_TRUE(m.success_equals);
    EXPECT_TRUE(m.scope.empty());
    EXPECT_EQ(m.max_body_bytes, defaults.max_body_bytes);
}

TEST(RulesLoaderTriggersTest, TriggersMayComeBeforeRoutes) {
    RuleSet rules = load_ok(R"(triggers:
  - name: t
    match: { method: PUT, path: /api/c }
    invalidate: [c]
routes:
  - name: c
    match: { path: /api/c }
    ttl: 1s
    key: { identity: true }
)");
    ASSERT_EQ(rules.triggers.size(), 1u);
    EXPECT_EQ(rules.triggers[0].invalidate, std::vector<std::string>{"c"});
}

TEST(RulesLoaderTriggersTest, NoTriggersIsFine) {
    EXPECT_TRUE(load_ok(user_route("")).triggers.empty());
    EXPECT_TRUE(load_ok(with_triggers("")).triggers.empty());
    EXPECT_TRUE(load_ok(with_triggers("  []\n")).triggers.empty());
}

TEST(RulesLoaderTriggersTest, UnknownKeys) {
    ConfigError top = load_error(trigger("    scopes: {}\n"));
    EXPECT_EQ(top.key, "triggers[0].scopes");
    EXPECT_EQ(top.line, 23);
    EXPECT_EQ(top.column, 5);
    EXPECT_EQ(top.message, "unknown key");
    EXPECT_EQ(load_error(trigger("", "{ method: POST, path: /x, query: a }")).key, "triggers[0].match.query");
    EXPECT_EQ(load_error(trigger("    success: { status: 2xx, feild: ok }\n")).key, "triggers[0].success.feild");
    EXPECT_EQ(load_error(with_triggers("  - just a string\n")).key, "triggers[0]");
    EXPECT_EQ(load_error(with_triggers("  name: t\n")).key, "triggers");
}

TEST(RulesLoaderTriggersTest, RequiredKeys) {
    ConfigError name = load_error(with_triggers("  - match: { method: POST, path: /x }\n    invalidate: [orders]\n"));
    EXPECT_EQ(name.key, "triggers[0].name");
    EXPECT_EQ(name.line, 20);
    EXPECT_EQ(name.message, "required key missing");
    EXPECT_EQ(load_error(with_triggers("  - name: t\n    invalidate: [orders]\n")).key, "triggers[0].match.method");
    EXPECT_EQ(load_error(trigger("", "{ path: /x }")).key, "triggers[0].match.method");
    EXPECT_EQ(load_error(trigger("", "{ method: POST }")).key, "triggers[0].match.path");
    ConfigError invalidate = load_error(with_triggers("  - name: t\n    match: { method: POST, path: /x }\n"));
    EXPECT_EQ(invalidate.key, "triggers[0].invalidate");
    EXPECT_EQ(invalidate.line, 20);
}

TEST(RulesLoaderTriggersTest, Names) {
    for (const char* bad : {"Order", "order-placed", "\"\"", "\"a b\""}) {
        ConfigError e = load_error(with_triggers("  - name: " + std::string(bad) +
                                                 "\n    match: { method: POST, path: /x }\n    invalidate: [orders]\n"));
        EXPECT_EQ(e.key, "triggers[0].name") << bad;
        EXPECT_EQ(e.line, 20) << bad;
    }
    ConfigError twice = load_error(with_triggers(R"(  - name: t
    match: { method: POST, path: /a }
    invalidate: [orders]
  - name: t
    match: { method: POST, path: /b }
    invalidate: [orders]
)"));
    EXPECT_EQ(twice.key, "triggers[1].name");
    EXPECT_EQ(twice.line, 23);
    EXPECT_EQ(twice.message, "duplicate name, also used by triggers[0] (t)");
}

TEST(RulesLoaderTriggersTest, Methods) {
    for (const char* good : {"POST", "PUT", "PATCH", "DELETE"})
        EXPECT_EQ(load_ok(trigger("", std::string("{ method: ") + good + ", path: /x }")).triggers[0].method, good);
    for (const char* bad : {"GET", "HEAD", "post", "OPTIONS", "\"\""}) {
        ConfigError e = load_error(trigger("", std::string("{ method: ") + bad + ", path: /x }"));
        EXPECT_EQ(e.key, "triggers[0].match.method") << bad;
        EXPECT_EQ(e.line, 21) << bad;
        EXPECT_EQ(e.column, 22) << bad;
    }
}

TEST(RulesLoaderTriggersTest, Paths) {
    for (const char* good : {"/", "/api/order", "\"/api/order/{id}\"", "\"/{a}/x/{b_2}\"", "\"/api/{ID}\""})
        load_ok(trigger("", std::string("{ method: POST, path: ") + good + " }"));
    for (const char* bad : {"api/x", "/api/x?a=1", "/api/%41", "/api;v=1", "/api/*", "/api//x", "/api/x/",
                            "\"/api x\"", "/api/../x", "\"\"", "\"/api/{}\"", "\"/api/{id\"", "\"/api/x{id}\"",
                            "\"/api/{i-d}\"", "\"/api/{a}/{a}\"", "\"/api/{{a}}\"", "\"/api/}\""}) {
        ConfigError e = load_error(trigger("", "\n      method: POST\n      path: " + std::string(bad)));
        EXPECT_EQ(e.key, "triggers[0].match.path") << bad;
        EXPECT_EQ(e.line, 23) << bad;
        EXPECT_EQ(e.column, 13) << bad;
    }
    EXPECT_EQ(load_error(trigger("", "{ method: POST, path: \"/a/{id}/{id}\" }")).message,
              "parameter \"{id}\" appears twice");
    EXPECT_EQ(load_error(trigger("", "{ method: POST, path: \"/a/x{id}\" }")).message,
              "a segment is either literal or exactly {name}, got \"x{id}\"");
}

TEST(RulesLoaderTriggersTest, NoTwoTriggersOnOneMethodAndPath) {
    ConfigError e = load_error(with_triggers(R"(  - name: a
    match: { method: DELETE, path: "/api/order/{id}" }
    invalidate: [orders]
  - name: b
    match: { method: DELETE, path: "/api/order/{order}" }
    invalidate: [positions]
)"));
    EXPECT_EQ(e.key, "triggers[1].match.path");
    EXPECT_EQ(e.line, 24);
    EXPECT_EQ(e.message, "same method and path as triggers[0] (a)");
    // Another method on the same path is another write.
    EXPECT_EQ(load_ok(with_triggers(R"(  - name: a
    match: { method: DELETE, path: /api/order }
    invalidate: [orders]
  - name: b
    match: { method: POST, path: /api/order }
    invalidate: [orders]
)")).triggers.size(), 2u);
}

TEST(RulesLoaderTriggersTest, Success) {
    ConfigError status = load_error(trigger("    success: { status: 200 }\n"));
    EXPECT_EQ(status.key, "triggers[0].success.status");
    EXPECT_EQ(status.line, 23);
    EXPECT_EQ(status.column, 24);
    EXPECT_EQ(status.message, "expected 2xx or 3xx, got \"200\"");
    for (const char* bad : {"4xx", "5xx", "2XX", "\"\"", "[2xx]"})
        EXPECT_EQ(load_error(trigger("    success: { status: " + std::string(bad) + " }\n")).key,
                  "triggers[0].success.status")
            << bad;
    EXPECT_EQ(load_ok(trigger("    success: { status: 3xx }\n")).triggers[0].success_status_class, 3u);

    ConfigError equals = load_error(trigger("    success: { equals: true }\n"));
    EXPECT_EQ(equals.key, "triggers[0].success.equals");
    EXPECT_EQ(equals.message, "needs success.field (the JSON field to compare)");
    EXPECT_EQ(load_error(trigger("    success: { field: ok, equals: yes }\n")).key, "triggers[0].success.equals");
    EXPECT_EQ(load_error(trigger("    success: { field: ok, equals: \"true\" }\n")).key, "triggers[0].success.equals");
    EXPECT_EQ(load_error(trigger("    success: { field: \"\" }\n")).key, "triggers[0].success.field");
    EXPECT_EQ(load_error(trigger("    success: { field: [a] }\n")).key, "triggers[0].success.field");
    const TriggerRule t = load_ok(trigger("    success: { field: ok }\n")).triggers[0];
    EXPECT_EQ(t.success_field, "ok");
    EXPECT_TRUE(t.success_equals);
}

TEST(RulesLoaderTriggersTest, Invalidate) {
    ConfigError empty = load_error(trigger("", "{ method: POST, path: /x }", "[]"));
    EXPECT_EQ(empty.key, "triggers[0].invalidate");
    EXPECT_EQ(empty.line, 22);
    EXPECT_EQ(empty.message, "list at least one route whose entries this write makes stale");

    ConfigError unknown = load_error(trigger("", "{ method: POST, path: /x }", "[orders, balance]"));
    EXPECT_EQ(unknown.key, "triggers[0].invalidate[1]");
    EXPECT_EQ(unknown.line, 22);
    EXPECT_EQ(unknown.column, 26);
    EXPECT_EQ(unknown.message, "no route named \"balance\"");

    ConfigError shared = load_error(trigger("", "{ method: POST, path: /x }", "[orders, ticker]"));
    EXPECT_EQ(shared.key, "triggers[0].invalidate[1]");
    EXPECT_NE(shared.message.find("shared by every user"), std::string::npos) << shared.message;

    EXPECT_EQ(load_error(trigger("", "{ method: POST, path: /x }", "[orders, orders]")).message,
              "listed twice: \"orders\"");
    EXPECT_EQ(load_error(trigger("", "{ method: POST, path: /x }", "orders")).key, "triggers[0].invalidate");
}

TEST(RulesLoaderTriggersTest, ScopeSources) {
    ConfigError source = load_error(trigger("    scope: { exchange: header.exchange }\n"));
    EXPECT_EQ(source.key, "triggers[0].scope.exchange");
    EXPECT_EQ(source.line, 23);
    EXPECT_EQ(source.column, 24);
    EXPECT_EQ(source.message, "expected body.NAME, query.NAME or path.NAME, got \"header.exchange\"");
    for (const char* bad : {"exchange", "body.", "\"\"", ".exchange", "Body.exchange"})
        EXPECT_EQ(load_error(trigger("    scope: { exchange: " + std::string(bad) + " }\n")).key,
                  "triggers[0].scope.exchange")
            << bad;
    EXPECT_EQ(load_error(trigger("    scope: { exchange: [body.exchange] }\n")).key, "triggers[0].scope.exchange");
    EXPECT_EQ(load_error(trigger("    scope: { exchange: body.a.b }\n")).message,
              "only top-level fields of the JSON body can be named, got \"body.a.b\"");
    EXPECT_EQ(load_error(trigger("    scope: [exchange]\n")).key, "triggers[0].scope");
    ConfigError twice = load_error(trigger("    scope:\n      exchange: body.a\n      exchange: body.b\n"));
    EXPECT_EQ(twice.key, "triggers[0].scope.exchange");
    EXPECT_EQ(twice.line, 25);

    // query.X is any query parameter of the write; its name need not match the key.
    const TriggerRule q = load_ok(trigger("    scope: { exchange: query.ex }\n")).triggers[0];
    ASSERT_EQ(q.scope.size(), 1u);
    EXPECT_EQ(q.scope[0].source, ScopeField::Source::query);
    EXPECT_EQ(q.scope[0].name, "ex");
}

TEST(RulesLoaderTriggersTest, ScopePathMustNameAParameter) {
    load_ok(trigger("    scope: { exchange: path.ex }\n", "{ method: DELETE, path: \"/x/{ex}\" }"));
    ConfigError e = load_error(trigger("    scope: { exchange: path.id }\n", "{ method: DELETE, path: \"/x/{ex}\" }"));
    EXPECT_EQ(e.key, "triggers[0].scope.exchange");
    EXPECT_EQ(e.line, 23);
    EXPECT_EQ(e.message, "path.id names no {id} segment of \"/x/{ex}\"");
    EXPECT_EQ(load_error(trigger("    scope: { exchange: path.x }\n", "{ method: DELETE, path: /x }")).key,
              "triggers[0].scope.exchange");
}

TEST(RulesLoaderTriggersTest, ScopeKeysMustBeKeyParametersOfEveryTarget) {
    ConfigError unknown = load_error(trigger("    scope: { symbol: body.symbol }\n"));
    EXPECT_EQ(unknown.key, "triggers[0].scope.symbol");
    EXPECT_EQ(unknown.line, 23);
    EXPECT_EQ(unknown.column, 22);
    EXPECT_EQ(unknown.message, "scope key symbol is not a key parameter of route positions");

    ConfigError one = load_error(trigger("    scope: { exchange: body.exchange }\n", "{ method: POST, path: /x }",
                                         "[positions, config]"));
    EXPECT_EQ(one.key, "triggers[0].scope.exchange");
    EXPECT_EQ(one.message, "scope key exchange is not a key parameter of route config");

    // A scope may give fewer keys than a route has (the route is then dropped whole for the user).
    load_ok(trigger("    scope: { exchange: body.exchange }\n", "{ method: POST, path: /x }", "[positions, orders]"));
}

TEST(RulesLoaderTriggersTest, MaxBodyBytes) {
    EXPECT_EQ(load_ok(trigger("    max_body_bytes: 512\n")).triggers[0].max_body_bytes, 512u);
    ConfigError zero = load_error(trigger("    max_body_bytes: 0\n"));
    EXPECT_EQ(zero.key, "triggers[0].max_body_bytes");
    EXPECT_EQ(zero.line, 23);
    EXPECT_EQ(zero.message, "must be >= 1");
    EXPECT_EQ(load_error(trigger("    max_body_bytes: lots\n")).key, "triggers[0].max_body_bytes");
}

TEST(RulesLoaderTriggersTest, OutputUntouchedOnTriggerError) {
    TempRules file(trigger("", "{ method: GET, path: /x }"));
    RuleSet rules;
    ASSERT_TRUE(load_rules(file.path(), rules).has_value());
    EXPECT_TRUE(rules.triggers.empty());
    EXPECT_TRUE(rules.routes.empty());
}

// ------------------------------------------------------------------ principal

using cacheproxy::rules::PrincipalRule;

TEST(RulesLoaderPrincipalTest, AbsentMeansNone) {
    EXPECT_EQ(load_ok(user_route("")).principal.source, PrincipalRule::Source::none);
}

TEST(RulesLoaderPrincipalTest, LearnFromAField) {
    const auto rules = load_ok("principal: { learn: { field: uid }, max_credentials: 50, max_per_principal: 4 }\n" +
                               user_route(""));
    EXPECT_EQ(rules.principal.source, PrincipalRule::Source::response_field);
    EXPECT_EQ(rules.principal.field, "uid");
    EXPECT_EQ(rules.principal.max_credentials, 50u);
    EXPECT_EQ(rules.principal.max_per_principal, 4u);
}

TEST(RulesLoaderPrincipalTest, JwtReadsItsKeyFileNextToTheRules) {
    TempRules file("principal: { jwt: { claim: uid, alg: HS256, key_file: jwt.key } }\n" + user_route(""));
    std::ofstream(fs::path(file.path()).parent_path() / "jwt.key") << "s3cret\n";
    RuleSet rules;
    auto error = load_rules(file.path(), rules);
    ASSERT_FALSE(error.has_value()) << error->to_string();
    EXPECT_EQ(rules.principal.source, PrincipalRule::Source::jwt);
    EXPECT_EQ(rules.principal.claim, "uid");
    EXPECT_EQ(rules.principal.alg, PrincipalRule::Alg::hs256);
    EXPECT_EQ(rules.principal.key, "s3cret\n");
}

TEST(RulesLoaderPrincipalTest, AJwtKeyThatCannotVerifyIsRefusedAtLoad) {
    TempRules file("principal: { jwt: { alg: RS256, key_file: jwt.pem } }\n" + user_route(""));
    std::ofstream(fs::path(file.path()).parent_path() / "jwt.pem") << "not a pem";
    RuleSet rules;
    auto error = load_rules(file.path(), rules);
    ASSERT_TRUE(error.has_value());
    EXPECT_EQ(error->key, "principal.jwt");
    EXPECT_NE(error->message.find("not a PEM public key"), std::string::npos) << error->message;
    EXPECT_EQ(error->message.find("not a pem"), std::string::npos) << "the key's bytes in an error";
}

TEST(RulesLoaderPrincipalTest, ErrorsNameTheKey) {
    auto both = load_error("principal: { learn: {}, jwt: { key_file: k } }\n" + user_route(""));
    EXPECT_EQ(both.key, "principal.learn");
    EXPECT_EQ(both.line, 1);
    auto none_alg = load_error("principal: { jwt: { alg: none, key_file: k } }\n" + user_route(""));
    EXPECT_EQ(none_alg.key, "principal.jwt");
    EXPECT_NE(none_alg.message.find("HS256, RS256 or ES256"), std::string::npos) << none_alg.message;
    auto missing = load_error("principal: { jwt: { alg: HS256, key_file: /nonexistent/key } }\n" + user_route(""));
    EXPECT_NE(missing.message.find("cannot read key_file"), std::string::npos) << missing.message;
    EXPECT_EQ(missing.message.find("nonexistent") != std::string::npos, true);
    auto unknown = load_error("principal: { learn: { field: user_id, fieldz: 1 } }\n" + user_route(""));
    EXPECT_EQ(unknown.key, "principal.learn.fieldz");
}

TEST(RulesLoaderPrincipalTest, ALogoutTriggerNeedsNoRoutes) {
    const auto rules = load_ok(user_route("") +
                               "triggers:\n"
                               "  - name: out\n"
                               "    match: { method: POST, path: /logout }\n"
                               "    drop_credential: true\n");
    ASSERT_EQ(rules.triggers.size(), 1u);
    EXPECT_TRUE(rules.triggers[0].drop_credential);
    load_error(user_route("") +
               "triggers:\n"
               "  - name: out\n"
               "    match: { method: POST, path: /logout }\n");
}
