#include "invalidation/trigger_matcher.hpp"

#include <gtest/gtest.h>

namespace cacheproxy::invalidation {
namespace {

rules::TriggerRule trigger(std::string name, std::string method, std::string path) {
    rules::TriggerRule t;
    t.name = std::move(name);
    t.method = std::move(method);
    t.path = std::move(path);
    t.invalidate = {"orders"};
    return t;
}

rules::RuleSet legacy_rules() {
    rules::RuleSet r;
    r.triggers = {trigger("order_placed", "POST", "/api/trading/order"),
                  trigger("position_closed", "POST", "/api/trading/close"),
                  trigger("order_cancelled", "DELETE", "/api/trading/order/{id}"),
                  trigger("config_changed", "PUT", "/api/trading/config"),
                  trigger("two_params", "PATCH", "/api/{a}/x/{b}")};
    return r;
}

class TriggerMatcherTest : public ::testing::Test {
protected:
    std::string name_of(std::string_view method, std::string_view target) {
        const rules::TriggerRule* t = matcher.match(method, target);
        return t ? t->name : "";
    }
    TriggerMatcher matcher{legacy_rules()};
};

TEST_F(TriggerMatcherTest, ExactPaths) {
    EXPECT_EQ(name_of("POST", "/api/trading/order"), "order_placed");
    EXPECT_EQ(name_of("POST", "/api/trading/close"), "position_closed");
    EXPECT_EQ(name_of("PUT", "/api/trading/config"), "config_changed");
    EXPECT_EQ(name_of("POST", "/api/trading/order?x=1&y=2"), "order_placed");  // the query is ignored
}

TEST_F(TriggerMatcherTest, MethodMustMatchExactly) {
    EXPECT_EQ(name_of("GET", "/api/trading/order"), "");
    EXPECT_EQ(name_of("PUT", "/api/trading/order"), "");
    EXPECT_EQ(name_of("post", "/api/trading/order"), "");
    EXPECT_EQ(name_of("POST", "/api/trading/config"), "");
    EXPECT_EQ(name_of("DELETE", "/api/trading/order"), "");
}

TEST_F(TriggerMatcherTest, NoPrefixSuffixOrNormalization) {
    for (const char* target : {"/api/trading/order/", "/api/trading/orders", "/api/trading/orde", "/api/trading",
                               "/api/trading/order/x", "//api/trading/order", "/api/trading/%6Frder",
                               "/api/trading/order;x", "/API/trading/order", "http://h/api/trading/order",
                               "api/trading/order", "", "*"})
        EXPECT_EQ(name_of("POST", target), "") << target;
}

TEST_F(TriggerMatcherTest, ParameterTakesOneNonEmptySegment) {
    std::vector<PathParam> params;
    const rules::TriggerRule* t = matcher.match("DELETE", "/api/trading/order/o-123?exchange=bybit", &params);
    ASSERT_NE(t, nullptr);
    EXPECT_EQ(t->name, "order_cancelled");
    ASSERT_EQ(params.size(), 1u);
    EXPECT_EQ(params[0].first, "id");
    EXPECT_EQ(params[0].second, "o-123");

    // Raw bytes: never decoded.
    ASSERT_NE(matcher.match("DELETE", "/api/trading/order/o%2F1", &params), nullptr);
    EXPECT_EQ(params[0].second, "o%2F1");

    for (const char* target : {"/api/trading/order/", "/api/trading/order", "/api/trading/order/a/b",
                               "/api/trading/order//", "/api/trading/order/a/"})
        EXPECT_EQ(name_of("DELETE", target), "") << target;
}

TEST_F(TriggerMatcherTest, SeveralParameters) {
    std::vector<PathParam> params;
    ASSERT_NE(matcher.match("PATCH", "/api/1/x/2", &params), nullptr);
    ASSERT_EQ(params.size(), 2u);
    EXPECT_EQ(params[0], (PathParam{"a", "1"}));
    EXPECT_EQ(params[1], (PathParam{"b", "2"}));
    EXPECT_EQ(name_of("PATCH", "/api/1/y/2"), "");
    EXPECT_EQ(name_of("PATCH", "/api/1/x"), "");
}

TEST_F(TriggerMatcherTest, ParamsClearedWhenNothingMatches) {
    std::vector<PathParam> params{{"stale", "value"}};
    EXPECT_EQ(matcher.match("DELETE", "/api/trading/order/1/2", &params), nullptr);
    EXPECT_TRUE(params.empty());
    EXPECT_NE(matcher.match("POST", "/api/trading/order", &params), nullptr);
    EXPECT_TRUE(params.empty());
}

TEST_F(TriggerMatcherTest, FirstMatchWinsAndRootPath) {
    rules::RuleSet r;
    r.triggers = {trigger("literal", "POST", "/a/b"), trigger("param", "POST", "/a/{x}"), trigger("root", "POST", "/")};
    TriggerMatcher m(r);
    EXPECT_EQ(m.match("POST", "/a/b")->name, "literal");
    EXPECT_EQ(m.match("POST", "/a/c")->name, "param");
    EXPECT_EQ(m.match("POST", "/")->name, "root");
    EXPECT_EQ(m.match("POST", "/?q=1")->name, "root");
    EXPECT_EQ(m.match("POST", "/a"), nullptr);
    EXPECT_EQ(m.triggers().size(), 3u);
}

TEST(TriggerMatcherEmptyTest, NoTriggersMatchNothing) {
    TriggerMatcher m{rules::RuleSet{}};
    EXPECT_EQ(m.match("POST", "/api/trading/order"), nullptr);
}

}  // namespace
}  // namespace cacheproxy::invalidation

namespace cacheproxy::invalidation {

TEST(NormalizeWriteTarget, DecodesCollapsesAndTrims) {
    EXPECT_EQ(normalize_write_target("/api/trading/order"), "/api/trading/order");
    EXPECT_EQ(normalize_write_target("/api/trading/%6Frder"), "/api/trading/order");
    EXPECT_EQ(normalize_write_target("//api//trading/order/"), "/api/trading/order");
    EXPECT_EQ(normalize_write_target("/api/trading/order/o-1?exchange=by%62it"), "/api/trading/order/o-1?exchange=by%62it");
    EXPECT_EQ(normalize_write_target("/"), "/");
    // An encoded '?' in the path stays encoded: the query is the one after the real '?'.
    EXPECT_EQ(normalize_write_target("/api/trading/order/1%3Fexchange=x?exchange=bybit"),
              "/api/trading/order/1%3Fexchange=x?exchange=bybit");
    EXPECT_EQ(normalize_write_target("/a%"), "/a%");  // a malformed escape is kept as it is
}

}  // namespace cacheproxy::invalidation

