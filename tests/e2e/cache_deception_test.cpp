/// Web cache deception: targets that a lax matcher (or the origin's router)
/// might take for the cached balance route, but that are not it byte for byte.
/// Each must be forwarded as a pass-through (no X-Cache, or BYPASS), never be
/// answered from the balance entry, and never create an entry of its own.
///
/// Scenario per target: user1 fills the real balance entry; the target is
/// requested as user1 and (twice) as user2; the real entry is still user1's
/// HIT, and user2's first real request is a MISS (nothing was stored for it).

#include "support/cache_helpers.hpp"
#include "support/fixtures.hpp"
#include "support/raw_client.hpp"

#include <gtest/gtest.h>

#include <string>

namespace cacheproxy::e2e {
namespace {

class CacheDeception : public SimulatorTest, public ::testing::WithParamInterface<const char*> {
protected:
    static void SetUpTestSuite() { StartSharedSimulator(); }
    static void TearDownTestSuite() { StopSharedSimulator(); }
};

const std::string kQuery = "?exchange=bybit&account_type=demo";

std::string balance_rules() {
    return rules_yaml(per_user_route("balance", "/api/trading/balance", "30s"));
}

/// A deception answer is acceptable if it is a pass-through and is not user1's entry.
void expect_not_from_cache(const Response& r, const Response& fill, const std::string& who) {
    SCOPED_TRACE(who);
    ASSERT_NE(r.status, 0u) << "no answer: " << r.error;
    const std::string xc = x_cache(r);
    EXPECT_TRUE(xc == "<none>" || xc == "BYPASS")
        << "the target was treated as a cached route (X-Cache: " << xc << ")\n" << describe(r);
    // and the rest of the cache headers agree: BYPASS's Cache-Status, or none at all
    EXPECT_TRUE(CacheIs(r, xc == "BYPASS" ? "BYPASS" : "NONE"));
    EXPECT_NE(r.body, fill.body) << "user1's cached balance was served\n" << describe(r);
    EXPECT_NE(seq_of(r), seq_of(fill)) << describe(r);
    EXPECT_NE(user_id_of(r), sim_user_id(1)) << "user1's balance was served\n" << describe(r);
    // the simulator knows none of these paths: 404 (or a redirect for the trailing slash)
    EXPECT_NE(r.status, 200u) << describe(r);
}

TEST_P(CacheDeception, TargetIsNotAnsweredFromOrStoredInTheBalanceEntry) {
    const std::string target = std::string(GetParam()) + kQuery;
    auto proxy = StartProxy(with_rules(balance_rules()));

    // client: user1 fills the real balance entry (and it is served from cache)
    Response fill = http_request(proxy->port(), "GET", "/api/trading/balance" + kQuery, bearer(1));
    ASSERT_EQ(fill.status, 200u) << describe(fill);
    ASSERT_EQ(user_id_of(fill), sim_user_id(1)) << fill.body;
    Response hit = http_request(proxy->port(), "GET", "/api/trading/balance" + kQuery, bearer(1));
    ASSERT_TRUE(CacheIs(hit, "HIT")) << "precondition: the real entry must be cached";
    ASSERT_EQ(sim().stats().route("balance"), 1);

    // client: the deception target as user1, then twice as user2
    Response as_user1 = http_request(proxy->port(), "GET", target, bearer(1));
    Response as_user2 = http_request(proxy->port(), "GET", target, bearer(2));
    Response as_user2_again = http_request(proxy->port(), "GET", target, bearer(2));

    // client got: the origin's own answer each time, never the balance entry
    expect_not_from_cache(as_user1, fill, "user1");
    expect_not_from_cache(as_user2, fill, "user2");
    expect_not_from_cache(as_user2_again, fill, "user2, again");

    // origin saw: all three deception requests (forwarded, none answered or stored by the proxy)
    SimStats s = sim().stats();
    EXPECT_EQ(s.route("other"), 3) << s.json;
    EXPECT_EQ(s.route("balance"), 1) << s.json;

    // client: the real route: user1's entry is still there and still user1's
    Response real1 = http_request(proxy->port(), "GET", "/api/trading/balance" + kQuery, bearer(1));
    EXPECT_TRUE(CacheIs(real1, "HIT"));
    EXPECT_EQ(real1.body, fill.body);

    // client: user2's first real request finds no entry (the deception requests added none)
    Response real2 = http_request(proxy->port(), "GET", "/api/trading/balance" + kQuery, bearer(2));
    EXPECT_EQ(real2.status, 200u) << describe(real2);
    EXPECT_TRUE(CacheIs(real2, "MISS"));
    EXPECT_EQ(user_id_of(real2), sim_user_id(2)) << real2.body;
    EXPECT_EQ(sim().stats().route("balance"), 2) << sim().stats().json;
}

class NonCanonicalKeyValues : public SimulatorTest {
protected:
    static void SetUpTestSuite() { StartSharedSimulator(); }
    static void TearDownTestSuite() { StopSharedSimulator(); }
};

TEST_F(NonCanonicalKeyValues, PerUserReadSpelledOtherwiseIsForwardedNeverStored) {
    // `by%62it` is `bybit` to the upstream, but an order's invalidation scope
    // names `bybit`: an entry under the other spelling could outlive the order.
    auto proxy = StartProxy(with_rules(balance_rules()));
    for (const char* q : {"?exchange=by%62it&account_type=demo", "?exchange=bybit&account_type=de+mo"}) {
        SCOPED_TRACE(q);
        const int before = sim().stats().route("balance");
        Response a = http_request(proxy->port(), "GET", std::string("/api/trading/balance") + q, bearer(1));
        Response b = http_request(proxy->port(), "GET", std::string("/api/trading/balance") + q, bearer(1));
        ASSERT_EQ(a.status, 200u) << describe(a);
        EXPECT_TRUE(CacheIs(a, "BYPASS")) << describe(a);
        EXPECT_TRUE(CacheIs(b, "BYPASS")) << describe(b);
        EXPECT_EQ(sim().stats().route("balance"), before + 2) << "both reached the upstream";
    }
    // The canonical spelling is cached as usual.
    Response c1 = http_request(proxy->port(), "GET", "/api/trading/balance" + kQuery, bearer(1));
    Response c2 = http_request(proxy->port(), "GET", "/api/trading/balance" + kQuery, bearer(1));
    EXPECT_TRUE(CacheIs(c1, "MISS")) << describe(c1);
    EXPECT_TRUE(CacheIs(c2, "HIT")) << describe(c2);
}

std::string param_name(const ::testing::TestParamInfo<const char*>& info) {
    static const char* const names[] = {"SlashDotCss", "SemicolonCss", "EncodedSlashCss", "DoubleLeadingSlash",
                                        "TrailingSlash", "UpperCasePrefix", "DotCssSuffix"};
    return names[info.index];
}

INSTANTIATE_TEST_SUITE_P(Paths, CacheDeception,
                         ::testing::Values("/api/trading/balance/x.css",   //
                                           "/api/trading/balance;x.css",   //
                                           "/api/trading/balance%2Fx.css", //
                                           "//api/trading/balance",        //
                                           "/api/trading/balance/",        //
                                           "/API/trading/balance",         //
                                           "/api/trading/balance.css"),
                         param_name);

}  // namespace
}  // namespace cacheproxy::e2e
