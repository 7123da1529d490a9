#include "cache/route_matcher.hpp"

#include <gtest/gtest.h>

namespace cacheproxy::cache {
namespace {

rules::RuleSet trading_rules() {
    rules::RuleSet rs;
    rules::RouteRule balance;
    balance.name = "balance";
    balance.path = "/api/trading/balance";
    balance.key.identity = true;
    balance.key.query = {"exchange", "account_type"};
    rules::RouteRule ticker;
    ticker.name = "ticker";
    ticker.path = "/api/trading/ticker";
    ticker.shared = true;
    ticker.key.query = {"symbol"};
    rules::RouteRule order;
    order.name = "order-post";
    order.method = "POST";
    order.path = "/api/trading/order";
    rs.routes = {balance, ticker, order};
    return rs;
}

TEST(RouteMatcherTest, ExactPathMatches) {
    const RouteMatcher m(trading_rules());
    const auto* r = m.match("GET", "/api/trading/balance?exchange=bybit&account_type=demo");
    ASSERT_NE(r, nullptr);
    EXPECT_EQ(r->name, "balance");
    EXPECT_EQ(m.index_of(r), 0u);
    EXPECT_EQ(m.match("GET", "/api/trading/balance"), r);
    EXPECT_EQ(m.match("GET", "/api/trading/balance?"), r);
    EXPECT_EQ(m.index_of(m.match("GET", "/api/trading/ticker?symbol=BTCUSDT")), 1u);
}

TEST(RouteMatcherTest, HeadMatchesGetRule) {
    const RouteMatcher m(trading_rules());
    EXPECT_EQ(m.match("HEAD", "/api/trading/balance"), m.match("GET", "/api/trading/balance"));
    EXPECT_NE(m.match("HEAD", "/api/trading/balance"), nullptr);
}

TEST(RouteMatcherTest, OtherMethodsDoNotMatchGetRule) {
    const RouteMatcher m(trading_rules());
    EXPECT_EQ(m.match("POST", "/api/trading/balance"), nullptr);
    EXPECT_EQ(m.match("PUT", "/api/trading/balance"), nullptr);
    EXPECT_EQ(m.match("get", "/api/trading/balance"), nullptr);  // methods are case-sensitive
    EXPECT_EQ(m.match("OPTIONS", "/api/trading/balance"), nullptr);
}

TEST(RouteMatcherTest, NonGetRuleMatchesItsMethodOnly) {
    const RouteMatcher m(trading_rules());
    EXPECT_NE(m.match("POST", "/api/trading/order"), nullptr);
    EXPECT_EQ(m.match("HEAD", "/api/trading/order"), nullptr);
    EXPECT_EQ(m.match("GET", "/api/trading/order"), nullptr);
}

TEST(RouteMatcherTest, CacheDeceptionFormsDoNotMatch) {
    const RouteMatcher m(trading_rules());
    for (const char* target : {
             "/api/trading/balance/x.css",
             "/api/trading/balance/x.css?exchange=bybit",
             "/api/trading/balance;x.css",
             "/api/trading/balance%2Fx.css",
             "/api/trading/balance%2fx.css",
             "//api/trading/balance",
             "/api//trading/balance",
             "/api/trading/./balance",
             "/api/trading/x/../balance",
             "/api/trading/balance/",
             "/api/trading/balance.css",
             "/api/trading/balance%3Fexchange=bybit",
             "/API/trading/balance",
             "/api/trading/%62alance",
             "/api/trading/balance%00",
             "/api/trading/balance#x",
             "api/trading/balance",
             "http://example.com/api/trading/balance",
             "/api/trading/balance\t",
             "",
             "*",
         }) {
        EXPECT_EQ(m.match("GET", target), nullptr) << target;
    }
}

TEST(RouteMatcherTest, UnknownPathsPassThrough) {
    const RouteMatcher m(trading_rules());
    EXPECT_EQ(m.match("GET", "/health"), nullptr);
    EXPECT_EQ(m.match("GET", "/"), nullptr);
    EXPECT_EQ(m.match("GET", "/api/trading"), nullptr);
}

TEST(RouteMatcherTest, IndexOfForeignRuleIsNpos) {
    const RouteMatcher m(trading_rules());
    const rules::RouteRule other;
    EXPECT_EQ(m.index_of(&other), RouteMatcher::npos);
    EXPECT_EQ(m.index_of(nullptr), RouteMatcher::npos);
}

TEST(RouteMatcherTest, OwnsItsCopyOfTheRules) {
    auto rs = std::make_unique<rules::RuleSet>(trading_rules());
    const RouteMatcher m(*rs);
    rs.reset();
    ASSERT_NE(m.match("GET", "/api/trading/ticker"), nullptr);
    EXPECT_EQ(m.routes().size(), 3u);
}

}  // namespace
}  // namespace cacheproxy::cache
