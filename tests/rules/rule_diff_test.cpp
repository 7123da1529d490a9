#include "rules/rule_diff.hpp"

#include "support/rule_builders.hpp"

#include <gtest/gtest.h>

namespace cacheproxy::rules {
namespace {

using std::chrono::seconds;

RouteRule ticker_rule() {
    RouteRule r;
    r.name = "ticker";
    r.path = "/api/trading/ticker";
    r.shared = true;
    r.key.query = {"symbol"};
    r.ttl = seconds(5);
    return r;
}

RuleSet two_routes() {
    RuleSet rs;
    auto balance = test_rules::balance_rule();
    balance.ttl = seconds(15);
    rs.routes = {balance, ticker_rule()};
    TriggerRule order;
    order.name = "order";
    order.path = "/api/trading/order";
    order.invalidate = {"balance"};
    rs.triggers = {order};
    return rs;
}

// ------------------------------------------------------------ fingerprint

TEST(RuleDiff, FingerprintIgnoresTheTunables) {
    const auto id = IdentitySource{};
    auto a = ticker_rule();
    auto b = a;
    b.ttl = seconds(60);
    b.stale_while_revalidate = seconds(10);
    b.stale_if_error = seconds(30);
    b.refresh_ahead = seconds(1);
    b.allow_client_no_cache = true;
    EXPECT_EQ(route_fingerprint(a, id), route_fingerprint(b, id));
}

TEST(RuleDiff, FingerprintChangesWithWhatDecidesTheKeyOrWhatIsStored) {
    const auto id = IdentitySource{};
    const auto base = route_fingerprint(ticker_rule(), id);
    std::vector<std::pair<const char*, void (*)(RouteRule&)>> changes = {
        {"name", [](RouteRule& r) { r.name = "ticker2"; }},
        {"method", [](RouteRule& r) { r.method = "HEAD"; }},
        {"path", [](RouteRule& r) { r.path = "/other"; }},
        {"shared", [](RouteRule& r) { r.shared = false; }},
        {"key.identity", [](RouteRule& r) { r.key.identity = true; }},
        {"key.query added", [](RouteRule& r) { r.key.query.push_back("interval"); }},
        {"key.query order", [](RouteRule& r) { r.key.query = {"a", "b"}; }},
        {"key.headers", [](RouteRule& r) { r.key.headers = {"accept-language"}; }},
        {"key.origin", [](RouteRule& r) { r.key.origin = false; }},
        {"statuses", [](RouteRule& r) { r.statuses = {200, 404}; }},
        {"max_object_bytes", [](RouteRule& r) { r.max_object_bytes = 1; }},
        {"max_entries", [](RouteRule& r) { r.max_entries = 1; }},
        {"max_bytes", [](RouteRule& r) { r.max_bytes = 1; }},
    };
    for (const auto& [what, change] : changes) {
        auto r = ticker_rule();
        change(r);
        EXPECT_NE(route_fingerprint(r, id), base) << what;
    }
    auto ab = ticker_rule(), ba = ticker_rule();
    ab.key.query = {"a", "b"};
    ba.key.query = {"b", "a"};
    EXPECT_NE(route_fingerprint(ab, id), route_fingerprint(ba, id));
    // Fields are length-prefixed: moving a character between two fields shows.
    auto one = ticker_rule(), other = ticker_rule();
    one.key.query = {"ab", "c"};
    other.key.query = {"a", "bc"};
    EXPECT_NE(route_fingerprint(one, id), route_fingerprint(other, id));
}

TEST(RuleDiff, FingerprintChangesWithTheIdentitySource) {
    IdentitySource cookie{IdentitySource::Kind::cookie, "session"};
    const auto r = test_rules::balance_rule();
    EXPECT_NE(route_fingerprint(r, IdentitySource{}), route_fingerprint(r, cookie));
}

// ------------------------------------------------------------ diff

TEST(RuleDiff, SameRulesAreAllKept) {
    const auto d = diff_rules(two_routes(), two_routes());
    ASSERT_EQ(d.routes.size(), 2u);
    EXPECT_EQ(d.routes[0], RouteChange::kept);
    EXPECT_EQ(d.routes[1], RouteChange::kept);
    EXPECT_EQ(d.old_index, (std::vector<std::size_t>{0, 1}));
    EXPECT_TRUE(d.removed.empty());
    EXPECT_EQ(d.summary(), "2 kept, 0 retuned, 0 rekeyed, 0 added, 0 removed");
}

TEST(RuleDiff, ATtlChangeIsRetunedTheOthersKept) {
    auto next = two_routes();
    next.routes[1].ttl = seconds(30);
    const auto d = diff_rules(two_routes(), next);
    EXPECT_EQ(d.routes[0], RouteChange::kept);
    EXPECT_EQ(d.routes[1], RouteChange::retuned);
    EXPECT_EQ(d.count(RouteChange::retuned), 1u);
}

TEST(RuleDiff, AKeyChangeIsRekeyed) {
    auto next = two_routes();
    next.routes[0].key.query = {"exchange"};
    const auto d = diff_rules(two_routes(), next);
    EXPECT_EQ(d.routes[0], RouteChange::rekeyed);
    EXPECT_EQ(d.old_index[0], 0u);
    EXPECT_EQ(d.routes[1], RouteChange::kept);
}

TEST(RuleDiff, RoutesAreMatchedByIdentityNotByIndex) {
    auto next = two_routes();
    std::swap(next.routes[0], next.routes[1]);
    const auto d = diff_rules(two_routes(), next);
    EXPECT_EQ(d.routes[0], RouteChange::kept);
    EXPECT_EQ(d.old_index[0], 1u);
    EXPECT_EQ(d.routes[1], RouteChange::kept);
    EXPECT_EQ(d.old_index[1], 0u);
}

TEST(RuleDiff, AddedAndRemoved) {
    auto next = two_routes();
    next.routes.erase(next.routes.begin());  // balance gone
    auto extra = ticker_rule();
    extra.name = "candles";
    next.routes.push_back(extra);
    const auto d = diff_rules(two_routes(), next);
    ASSERT_EQ(d.routes.size(), 2u);
    EXPECT_EQ(d.routes[0], RouteChange::kept);
    EXPECT_EQ(d.routes[1], RouteChange::added);
    EXPECT_EQ(d.old_index[1], RuleDiff::npos);
    EXPECT_EQ(d.removed, (std::vector<std::size_t>{0}));
    EXPECT_EQ(d.summary(), "1 kept, 0 retuned, 0 rekeyed, 1 added, 1 removed");
}

// ------------------------------------------------------------ refusals

TEST(RuleDiff, TunablesKeysAndTriggerContentsCanBeApplied) {
    auto next = two_routes();
    next.routes[0].ttl = seconds(1);
    next.routes[1].key.query = {"symbol", "interval"};
    next.triggers[0].invalidate = {"balance", "ticker"};
    next.coalesce_timeout = seconds(5);
    EXPECT_EQ(reload_refusal(two_routes(), next, diff_rules(two_routes(), next)), std::nullopt);
}

TEST(RuleDiff, RefusalsNameTheKey) {
    const auto refusal = [](void (*change)(RuleSet&)) {
        auto next = two_routes();
        change(next);
        return reload_refusal(two_routes(), next, diff_rules(two_routes(), next)).value_or("");
    };
    EXPECT_EQ(refusal([](RuleSet& r) { r.identity.name = "X-User"; }).rfind("identity:", 0), 0u);
    EXPECT_EQ(refusal([](RuleSet& r) { r.max_waiters = 1; }).rfind("coalesce.max_waiters:", 0), 0u);
    EXPECT_EQ(refusal([](RuleSet& r) { r.max_unshared = 1; }).rfind("coalesce.max_unshared:", 0), 0u);
    EXPECT_EQ(refusal([](RuleSet& r) { r.coalesce_error_hold = seconds(9); }).rfind("coalesce.error_hold:", 0), 0u);
}

TEST(RuleDiff, AddingRemovingRenamingAndReorderingRoutesAndTriggersIsApplied) {
    const auto refusal = [](void (*change)(RuleSet&)) {
        auto next = two_routes();
        change(next);
        return reload_refusal(two_routes(), next, diff_rules(two_routes(), next));
    };
    EXPECT_EQ(refusal([](RuleSet& r) { r.routes.pop_back(); }), std::nullopt);
    EXPECT_EQ(refusal([](RuleSet& r) { r.routes.push_back(r.routes[1]), r.routes[2].name = "x"; }), std::nullopt);
    EXPECT_EQ(refusal([](RuleSet& r) { std::swap(r.routes[0], r.routes[1]); }), std::nullopt);
    EXPECT_EQ(refusal([](RuleSet& r) { r.triggers.clear(); }), std::nullopt);
    EXPECT_EQ(refusal([](RuleSet& r) { r.triggers.push_back(r.triggers[0]), r.triggers[1].name = "t2"; }),
              std::nullopt);
}

TEST(RuleDiff, ARenameIsARemovalAndAnAddition) {
    auto next = two_routes();
    next.routes[1].name = "quotes";
    const auto d = diff_rules(two_routes(), next);
    EXPECT_EQ(d.routes[0], RouteChange::kept);
    EXPECT_EQ(d.routes[1], RouteChange::added);
    EXPECT_EQ(d.old_index[1], RuleDiff::npos);
    EXPECT_EQ(d.removed, (std::vector<std::size_t>{1}));
}

TEST(RuleDiff, AReorderKeepsEveryRouteByName) {
    auto next = two_routes();
    std::swap(next.routes[0], next.routes[1]);
    const auto d = diff_rules(two_routes(), next);
    EXPECT_EQ(d.routes, (std::vector<RouteChange>{RouteChange::kept, RouteChange::kept}));
    EXPECT_EQ(d.old_index, (std::vector<std::size_t>{1, 0}));
    EXPECT_TRUE(d.removed.empty());
}

}  // namespace
}  // namespace cacheproxy::rules
