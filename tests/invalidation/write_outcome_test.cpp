#include "invalidation/write_outcome.hpp"

#include "cache/cache_key.hpp"
#include "cache/header_list.hpp"
#include "invalidation/trigger_matcher.hpp"

#include "support/rule_builders.hpp"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace cacheproxy::invalidation {
namespace {

using rules::ScopeField;

/// A trigger on the order endpoint: `method` `path`, a success being 2xx with
/// "success": true; it drops `invalidate`, scoped by exchange + account_type
/// read from `scope_from` (the body or the query).
rules::TriggerRule order_trigger(const std::string& name, const std::string& method, const std::string& path,
                                 std::vector<std::string> invalidate, ScopeField::Source scope_from) {
    rules::TriggerRule t;
    t.name = name;
    t.method = method;
    t.path = path;
    t.success_field = "success";
    t.invalidate = std::move(invalidate);
    t.scope = {{"exchange", scope_from, "exchange"}, {"account_type", scope_from, "account_type"}};
    return t;
}

rules::TriggerRule order_placed() {
    return order_trigger("order_placed", "POST", "/api/trading/order", {"positions", "balance", "orders"},
                         ScopeField::Source::body);
}

rules::TriggerRule order_cancelled() {
    return order_trigger("order_cancelled", "DELETE", "/api/trading/order/{id}", {"orders", "balance"},
                         ScopeField::Source::query);
}

using test_rules::balance_rule;

using Params = std::vector<std::pair<std::string, std::string>>;

// ---- evaluate ----

TEST(EvaluateTest, SuccessFieldDecides) {
    const auto t = order_placed();
    EXPECT_EQ(evaluate(t, 200, R"({"success":true,"order_id":"o-1"})", true), WriteOutcome::success);
    EXPECT_EQ(evaluate(t, 201, R"( { "order_id": "o-1", "success" : true } )", true), WriteOutcome::success);
    EXPECT_EQ(evaluate(t, 200, R"({"success":false,"error":"insufficient margin"})", true), WriteOutcome::failure);
}

TEST(EvaluateTest, EqualsFalseInvertsTheField) {
    auto t = order_placed();
    t.success_field = "error";
    t.success_equals = false;
    EXPECT_EQ(evaluate(t, 200, R"({"error":false})", true), WriteOutcome::success);
    EXPECT_EQ(evaluate(t, 200, R"({"error":true})", true), WriteOutcome::failure);
}

TEST(EvaluateTest, WrongStatusClassIsAFailure) {
    const auto t = order_placed();
    EXPECT_EQ(evaluate(t, 400, R"({"success":true})", true), WriteOutcome::failure);
    EXPECT_EQ(evaluate(t, 404, "not found", true), WriteOutcome::failure);
    EXPECT_EQ(evaluate(t, 422, "", false), WriteOutcome::failure);
    // An upstream-sent 5xx: the app answered; transport failures are the caller's "unknown".
    EXPECT_EQ(evaluate(t, 500, R"({"success":true})", true), WriteOutcome::failure);
    EXPECT_EQ(evaluate(t, 502, "", true), WriteOutcome::failure);
    EXPECT_EQ(evaluate(t, 302, "", true), WriteOutcome::failure);
    EXPECT_EQ(evaluate(t, 199, "", true), WriteOutcome::failure);

    auto redirect = order_placed();
    redirect.success_status_class = 3;
    redirect.success_field.clear();
    EXPECT_EQ(evaluate(redirect, 303, "", true), WriteOutcome::success);
    EXPECT_EQ(evaluate(redirect, 200, "", true), WriteOutcome::failure);
}

TEST(EvaluateTest, UnreadableBodyIsUnknown) {
    const auto t = order_placed();
    EXPECT_EQ(evaluate(t, 200, "<html>ok</html>", true), WriteOutcome::unknown);
    EXPECT_EQ(evaluate(t, 200, "", true), WriteOutcome::unknown);
    EXPECT_EQ(evaluate(t, 200, R"({"success":true)", true), WriteOutcome::unknown);     // truncated
    EXPECT_EQ(evaluate(t, 200, R"({"success":true} x)", true), WriteOutcome::unknown);  // trailing garbage
    EXPECT_EQ(evaluate(t, 200, R"([{"success":true}])", true), WriteOutcome::unknown);  // not an object
    EXPECT_EQ(evaluate(t, 200, R"({"order_id":"o-1"})", true), WriteOutcome::unknown);  // field missing
    EXPECT_EQ(evaluate(t, 200, R"({"data":{"success":false}})", true), WriteOutcome::unknown);  // top level only
}

TEST(EvaluateTest, NonBooleanFieldIsUnknown) {
    const auto t = order_placed();
    for (const char* body : {R"({"success":"false"})", R"({"success":0})", R"({"success":null})", R"({"success":{}})"})
        EXPECT_EQ(evaluate(t, 200, body, true), WriteOutcome::unknown) << body;
}

TEST(EvaluateTest, IncompleteBodyIsUnknown) {
    auto t = order_placed();
    // Even a prefix that parses: the rest could have repeated the field.
    EXPECT_EQ(evaluate(t, 200, R"({"success":false})", false), WriteOutcome::unknown);
    t.max_body_bytes = 8;
    EXPECT_EQ(evaluate(t, 200, R"({"success":false})", true), WriteOutcome::unknown);
}

TEST(EvaluateTest, DuplicateFieldTakesTheLastLikePython) {
    EXPECT_EQ(evaluate(order_placed(), 200, R"({"success":true,"success":false})", true), WriteOutcome::failure);
    EXPECT_EQ(evaluate(order_placed(), 200, R"({"success":false,"success":true})", true), WriteOutcome::success);
}

TEST(EvaluateTest, NoFieldConfiguredStatusAlone) {
    auto t = order_placed();
    t.success_field.clear();
    EXPECT_EQ(evaluate(t, 200, "whatever", false), WriteOutcome::success);
    EXPECT_EQ(evaluate(t, 204, "", true), WriteOutcome::success);
    EXPECT_EQ(evaluate(t, 200, R"({"success":false})", true), WriteOutcome::success);
    EXPECT_EQ(evaluate(t, 409, "", true), WriteOutcome::failure);
}

TEST(EvaluateTest, WhichRulesReadTheRequestBody) {
    EXPECT_TRUE(needs_request_body(order_placed()));
    EXPECT_FALSE(needs_request_body(order_cancelled()));
    EXPECT_FALSE(needs_request_body(rules::TriggerRule{}));
}

// ---- extract_scope ----

TEST(ExtractScopeTest, FromTheBody) {
    const Scope s = extract_scope(order_placed(),
                                  R"({"exchange":"bybit","account_type":"demo","symbol":"BTCUSDT","qty":0.01})", true,
                                  "/api/trading/order", {});
    EXPECT_FALSE(s.widened);
    EXPECT_EQ(s.params, (Params{{"exchange", "bybit"}, {"account_type", "demo"}}));
}

TEST(ExtractScopeTest, BodyNumbersAndEscapes) {
    auto t = order_placed();
    t.scope = {{"a", ScopeField::Source::body, "i"}, {"b", ScopeField::Source::body, "d"},
               {"c", ScopeField::Source::body, "s"}, {"d", ScopeField::Source::body, "neg"},
               {"e", ScopeField::Source::body, "big"}};
    const Scope s = extract_scope(t, R"({"i":42,"d":0.5,"s":"by\u0062it \u00e9","neg":-7,"big":18446744073709551615})",
                                  true, "/x", {});
    ASSERT_FALSE(s.widened);
    EXPECT_EQ(s.params, (Params{{"a", "42"}, {"b", "0.5"}, {"c", "bybit \xc3\xa9"}, {"d", "-7"},
                                {"e", "18446744073709551615"}}));
}

TEST(ExtractScopeTest, MissingOrUnusableBodyFieldWidens) {
    const auto t = order_placed();
    for (const char* body : {R"({"exchange":"bybit"})",                          // account_type missing
                             R"({"exchange":"bybit","account_type":null})",     // not a string or number
                             R"({"exchange":"bybit","account_type":true})",
                             R"({"exchange":["bybit"],"account_type":"demo"})",
                             R"({"order":{"exchange":"bybit","account_type":"demo"}})",
                             "exchange=bybit&account_type=demo",  // a form, not JSON
                             R"(["bybit","demo"])", "", "{"}) {
        const Scope s = extract_scope(t, body, true, "/api/trading/order", {});
        EXPECT_TRUE(s.widened) << body;
        EXPECT_TRUE(s.params.empty()) << body;
    }
}

TEST(ExtractScopeTest, IncompleteOrOversizedBodyWidens) {
    auto t = order_placed();
    const std::string body = R"({"exchange":"bybit","account_type":"demo"})";
    EXPECT_TRUE(extract_scope(t, body, false, "/api/trading/order", {}).widened);
    t.max_body_bytes = body.size() - 1;
    EXPECT_TRUE(extract_scope(t, body, true, "/api/trading/order", {}).widened);
    t.max_body_bytes = body.size();
    EXPECT_FALSE(extract_scope(t, body, true, "/api/trading/order", {}).widened);
}

TEST(ExtractScopeTest, DuplicateBodyFieldTakesTheLastLikePython) {
    const Scope s = extract_scope(order_placed(), R"({"exchange":"a","account_type":"demo","exchange":"b"})", true,
                                  "/x", {});
    ASSERT_FALSE(s.widened);
    EXPECT_EQ(s.params[0].second, "b");
}

TEST(ExtractScopeTest, FromTheQuery) {
    const Scope s = extract_scope(order_cancelled(), "", true,
                                  "/api/trading/order/o-1?account_type=demo&exchange=bybit&x=1", {});
    EXPECT_FALSE(s.widened);
    EXPECT_EQ(s.params, (Params{{"exchange", "bybit"}, {"account_type", "demo"}}));

    // Decoded as the application reads it.
    const Scope decoded = extract_scope(order_cancelled(), "", true,
                                        "/api/trading/order/o-1?exchange=by%62it&account_type=a+b%2Bc", {});
    ASSERT_FALSE(decoded.widened);
    EXPECT_EQ(decoded.params, (Params{{"exchange", "bybit"}, {"account_type", "a b+c"}}));

    // A body is never read for a query scope.
    EXPECT_FALSE(extract_scope(order_cancelled(), "not json", false, "/x?exchange=e&account_type=a", {}).widened);
    // Present without '=' is the empty value, as for the upstream and the cache key.
    const Scope empty = extract_scope(order_cancelled(), "", true, "/x?exchange&account_type=", {});
    ASSERT_FALSE(empty.widened);
    EXPECT_EQ(empty.params, (Params{{"exchange", ""}, {"account_type", ""}}));
}

TEST(ExtractScopeTest, MissingDuplicateOrAmbiguousQueryWidens) {
    const auto t = order_cancelled();
    for (const char* target : {"/api/trading/order/o-1", "/api/trading/order/o-1?exchange=bybit",
                               "/api/trading/order/o-1?exchange=bybit&account_type=demo&exchange=okx",
                               "/api/trading/order/o-1?exchange=bybit&account_type=demo&account_type=demo",
                               "/api/trading/order/o-1?exchange=bybit&x=1;account_type=demo",
                               "/api/trading/order/o-1?exchange=bybit&account_type=de%zzmo",
                               "/api/trading/order/o-1?exchange=bybit&account_type=demo%"}) {
        const Scope s = extract_scope(t, "", true, target, {});
        EXPECT_TRUE(s.widened) << target;
        EXPECT_TRUE(s.params.empty()) << target;
    }
}

TEST(ExtractScopeTest, FromThePath) {
    auto t = order_cancelled();
    t.scope = {{"exchange", ScopeField::Source::path, "ex"}, {"account_type", ScopeField::Source::query, "account_type"}};
    t.path = "/api/{ex}/order/{id}";
    TriggerMatcher matcher([&] {
        rules::RuleSet r;
        r.triggers = {t};
        return r;
    }());
    std::vector<PathParam> params;
    const std::string target = "/api/by%62it/order/o-1?account_type=demo";
    ASSERT_NE(matcher.match("DELETE", target, &params), nullptr);
    const Scope s = extract_scope(t, "", true, target, params);
    ASSERT_FALSE(s.widened);
    EXPECT_EQ(s.params, (Params{{"exchange", "bybit"}, {"account_type", "demo"}}));

    // '+' is literal in a path.
    const std::vector<PathParam> plus{{"ex", "a+b"}};
    EXPECT_EQ(extract_scope(t, "", true, "/x?account_type=demo", plus).params[0].second, "a+b");
    // Missing or malformed path parameter: widen.
    EXPECT_TRUE(extract_scope(t, "", true, "/x?account_type=demo", {}).widened);
    const std::vector<PathParam> bad{{"ex", "by%6"}};
    EXPECT_TRUE(extract_scope(t, "", true, "/x?account_type=demo", bad).widened);
}

TEST(ExtractScopeTest, EmptyScopeIsNotWidened) {
    rules::TriggerRule t;
    t.success_field = "success";
    const Scope s = extract_scope(t, "not json", false, "/api/trading/config", {});
    EXPECT_FALSE(s.widened);
    EXPECT_TRUE(s.params.empty());
}

// ---- scope_target ----

cache::IdentityHasher::Key fixed_key() {
    cache::IdentityHasher::Key k{};
    for (std::size_t i = 0; i < k.size(); ++i) k[i] = static_cast<std::uint8_t>(i * 13 + 5);
    return k;
}

class ScopeTargetTest : public ::testing::Test {
protected:
    std::optional<cache::CacheKey> key(const rules::RouteRule& route, std::string_view target,
                                       std::string_view credential = "Bearer alice") {
        return cache::build_key(route, 2, target, credential, hasher, cache::HeaderList{});
    }
    cache::IdentityHasher hasher{fixed_key()};
};

TEST_F(ScopeTargetTest, RoundTripsToTheKeyOfARealRequest) {
    const Scope s = extract_scope(order_placed(), R"({"exchange":"bybit","account_type":"demo","symbol":"BTCUSDT"})",
                                  true, "/api/trading/order", {});
    const std::string target = scope_target(balance_rule(), s);
    EXPECT_EQ(target, "/api/trading/balance?exchange=bybit&account_type=demo");

    const auto synthetic = key(balance_rule(), target);
    const auto real = key(balance_rule(), "/api/trading/balance?account_type=demo&exchange=bybit");
    ASSERT_TRUE(synthetic && real);
    EXPECT_EQ(*synthetic, *real);
    EXPECT_EQ(synthetic->hash, real->hash);
    EXPECT_EQ(synthetic->identity, real->identity);

    // Another user, another account, another exchange: other keys.
    EXPECT_NE(*synthetic, *key(balance_rule(), target, "Bearer bob"));
    EXPECT_NE(*synthetic, *key(balance_rule(), "/api/trading/balance?account_type=real&exchange=bybit"));
    EXPECT_NE(*synthetic, *key(balance_rule(), "/api/trading/balance?account_type=demo&exchange=okx"));
}

TEST_F(ScopeTargetTest, ValuesArePercentEncoded) {
    const Scope s{false, {{"exchange", "by bit&x=1"}, {"account_type", "d\xc3\xa9mo/+%#?"}}};
    const std::string target = scope_target(balance_rule(), s);
    EXPECT_EQ(target, "/api/trading/balance?exchange=by%20bit%26x%3D1&account_type=d%C3%A9mo%2F%2B%25%23%3F");

    const auto synthetic = key(balance_rule(), target);
    const auto real = key(balance_rule(), "/api/trading/balance?account_type=d%C3%A9mo%2F%2B%25%23%3F&exchange=by%20bit%26x%3D1");
    ASSERT_TRUE(synthetic && real);
    EXPECT_EQ(*synthetic, *real);

    // A value read from a write's query spelled otherwise maps onto the canonical spelling.
    const Scope q = extract_scope(order_cancelled(), "", true, "/x?exchange=by+bit%26x%3d1&account_type=d%c3%a9mo%2F%2B%25%23%3F", {});
    ASSERT_FALSE(q.widened);
    EXPECT_EQ(scope_target(balance_rule(), q), target);
}

TEST_F(ScopeTargetTest, PercentEncodeKeepsOnlyUnreserved) {
    EXPECT_EQ(percent_encode("AZaz09-._~"), "AZaz09-._~");
    EXPECT_EQ(percent_encode(""), "");
    EXPECT_EQ(percent_encode(std::string("\0\x7f\xff", 3)), "%00%7F%FF");
    EXPECT_EQ(percent_encode(" !*'();:@&=+$,/?#[]"), "%20%21%2A%27%28%29%3B%3A%40%26%3D%2B%24%2C%2F%3F%23%5B%5D");
}

TEST_F(ScopeTargetTest, NoQueryKeyGivesThePath) {
    rules::RouteRule config;
    config.name = "config";
    config.path = "/api/trading/config";
    config.key.identity = true;
    const std::string target = scope_target(config, Scope{});
    EXPECT_EQ(target, "/api/trading/config");
    EXPECT_EQ(*key(config, target), *key(config, "/api/trading/config?anything=1"));
}

TEST_F(ScopeTargetTest, ExtraScopeParamsAreIgnored) {
    const Scope s{false, {{"symbol", "BTC"}, {"account_type", "demo"}, {"exchange", "bybit"}}};
    EXPECT_EQ(scope_target(balance_rule(), s), "/api/trading/balance?exchange=bybit&account_type=demo");
}

TEST_F(ScopeTargetTest, EmptyWhenTheScopeCannotNameOneKey) {
    EXPECT_EQ(scope_target(balance_rule(), Scope{true, {}}), "");
    EXPECT_EQ(scope_target(balance_rule(), Scope{false, {{"exchange", "bybit"}}}), "");  // account_type not given
    EXPECT_EQ(scope_target(balance_rule(), Scope{}), "");
    auto with_header = balance_rule();
    with_header.key.headers = {"x-tenant"};
    EXPECT_EQ(scope_target(with_header, Scope{false, {{"exchange", "bybit"}, {"account_type", "demo"}}}), "");
}

}  // namespace
}  // namespace cacheproxy::invalidation
