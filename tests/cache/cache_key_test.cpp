#include "cache/cache_key.hpp"

#include "cache/header_list.hpp"
#include "cache/query_string.hpp"

#include "support/rule_builders.hpp"

#include <gtest/gtest.h>

namespace cacheproxy::cache {
namespace {

IdentityHasher::Key test_key() {
    IdentityHasher::Key k{};
    for (std::size_t i = 0; i < k.size(); ++i) k[i] = static_cast<std::uint8_t>(i * 7 + 1);
    return k;
}

using test_rules::balance_rule;

rules::RouteRule ticker_rule() {
    rules::RouteRule r;
    r.name = "ticker";
    r.path = "/api/trading/ticker";
    r.shared = true;
    r.key.query = {"symbol"};
    return r;
}

class CacheKeyTest : public ::testing::Test {
protected:
    std::optional<CacheKey> key(const rules::RouteRule& rule, std::string_view target,
                                std::optional<std::string_view> credential, const HeaderList& headers = {}) {
        return build_key(rule, 0, target, credential, hasher, headers);
    }
    IdentityHasher hasher{test_key()};
};

TEST_F(CacheKeyTest, ParamOrderOnTheWireDoesNotMatter) {
    const auto a = key(balance_rule(), "/api/trading/balance?exchange=bybit&account_type=demo", "Bearer alice");
    const auto b = key(balance_rule(), "/api/trading/balance?account_type=demo&exchange=bybit", "Bearer alice");
    ASSERT_TRUE(a && b);
    EXPECT_EQ(*a, *b);
    EXPECT_EQ(a->hash, b->hash);
    EXPECT_EQ(a->hash, key_hash(a->bytes));
}

TEST_F(CacheKeyTest, AKeyRebuiltInPlaceIsTheKeyBuiltAfresh) {
    // A connection's key is rebuilt per request (build_key_into): nothing of
    // the previous request's key may stay, whatever route it was on.
    CacheKey reused;
    ASSERT_TRUE(build_key_into(reused, balance_rule(), 3, "/api/trading/balance?exchange=bybit&account_type=demo",
                               "Bearer alice", hasher, HeaderList{}));
    EXPECT_FALSE(build_key_into(reused, balance_rule(), 3, "/api/trading/balance?exchange=a&exchange=b",
                                "Bearer alice", hasher, HeaderList{}));
    ASSERT_TRUE(build_key_into(reused, ticker_rule(), 0, "/t?symbol=%42TC", std::nullopt, hasher, HeaderList{}));
    const auto fresh = key(ticker_rule(), "/t?symbol=%42TC", std::nullopt);
    ASSERT_TRUE(fresh);
    EXPECT_EQ(reused.bytes, fresh->bytes);
    EXPECT_EQ(reused.hash, fresh->hash);
    EXPECT_EQ(reused.route_index, 0u);
    EXPECT_FALSE(reused.has_identity);
    EXPECT_EQ(reused.identity, IdentityHash{});
    EXPECT_FALSE(reused.canonical_values);
    ASSERT_TRUE(build_key_into(reused, ticker_rule(), 0, "/t?symbol=BTC", std::nullopt, hasher, HeaderList{}));
    EXPECT_TRUE(reused.canonical_values);
}

TEST_F(CacheKeyTest, ParamsNotNamedByTheRuleAreIgnored) {
    const auto a = key(ticker_rule(), "/api/trading/ticker?a=1&symbol=BTCUSDT", std::nullopt);
    const auto b = key(ticker_rule(), "/api/trading/ticker?symbol=BTCUSDT&a=1", std::nullopt);
    const auto c = key(ticker_rule(), "/api/trading/ticker?symbol=BTCUSDT&utm=x&b=2", std::nullopt);
    ASSERT_TRUE(a && b && c);
    EXPECT_EQ(*a, *b);
    EXPECT_EQ(*a, *c);
}

TEST_F(CacheKeyTest, ChosenValuesAreComparedAsRawBytes) {
    const auto a = key(ticker_rule(), "/t?symbol=BTCUSDT", std::nullopt);
    const auto b = key(ticker_rule(), "/t?symbol=ETHUSDT", std::nullopt);
    const auto c = key(ticker_rule(), "/t?symbol=%42TCUSDT", std::nullopt);
    const auto d = key(ticker_rule(), "/t?symbol=btcusdt", std::nullopt);
    ASSERT_TRUE(a && b && c && d);
    EXPECT_NE(*a, *b);
    EXPECT_NE(*a, *c);  // another spelling is another entry (never a wrong one)
    EXPECT_NE(*a, *d);
}

TEST_F(CacheKeyTest, AbsentEmptyAndPresentAreDistinct) {
    const auto absent = key(ticker_rule(), "/t", std::nullopt);
    const auto empty = key(ticker_rule(), "/t?symbol=", std::nullopt);
    const auto present = key(ticker_rule(), "/t?symbol=X", std::nullopt);
    ASSERT_TRUE(absent && empty && present);
    EXPECT_NE(*absent, *empty);
    EXPECT_NE(*empty, *present);
    EXPECT_NE(*absent, *present);
}

TEST_F(CacheKeyTest, LengthPrefixKeepsKeysInjective) {
    rules::RouteRule r = ticker_rule();
    r.key.query = {"a", "b"};
    const auto x = key(r, "/t?a=1&b=2", std::nullopt);
    const auto y = key(r, "/t?a=1b%3D2", std::nullopt);  // no 'b': a's value must not spill into b's slot
    const auto z = key(r, "/t?a=1%21b&b=2", std::nullopt);
    ASSERT_TRUE(x && y && z);
    EXPECT_NE(*x, *y);
    EXPECT_NE(*x, *z);
}

TEST_F(CacheKeyTest, DuplicatedChosenParamIsNotCacheable) {
    EXPECT_FALSE(key(ticker_rule(), "/t?symbol=A&symbol=A", std::nullopt));
    EXPECT_FALSE(key(ticker_rule(), "/t?symbol=A&symbol=B", std::nullopt));
    EXPECT_FALSE(key(ticker_rule(), "/t?symbol=A&symbol", std::nullopt));
    EXPECT_FALSE(key(ticker_rule(), "/t?symbol=A&%73ymbol=B", std::nullopt));  // decoded name collides
    EXPECT_FALSE(key(ticker_rule(), "/t?symbol=A&sym%62ol=B", std::nullopt));
    EXPECT_FALSE(key(ticker_rule(), "/t?symbol=A&x=1;symbol=B", std::nullopt));  // ';' splitters see two
    EXPECT_FALSE(key(ticker_rule(), "/t?x=1;symbol=B", std::nullopt));           // parsers disagree
    // A duplicated param the rule does not name is harmless.
    EXPECT_TRUE(key(ticker_rule(), "/t?symbol=A&x=1&x=2", std::nullopt));
}

TEST_F(CacheKeyTest, MalformedPercentEncodingInChosenParamIsNotCacheable) {
    EXPECT_FALSE(key(ticker_rule(), "/t?symbol=BTC%", std::nullopt));
    EXPECT_FALSE(key(ticker_rule(), "/t?symbol=BTC%2", std::nullopt));
    EXPECT_FALSE(key(ticker_rule(), "/t?symbol=BTC%zz", std::nullopt));
    EXPECT_TRUE(key(ticker_rule(), "/t?symbol=BTC%2F", std::nullopt));
    EXPECT_TRUE(key(ticker_rule(), "/t?symbol=BTC&other=%zz", std::nullopt));  // not a chosen param
}

TEST_F(CacheKeyTest, CanonicalValuesFlagsEscapesAndPlus) {
    const auto plain = key(balance_rule(), "/b?exchange=bybit&account_type=demo_1.x~y", "Bearer a");
    ASSERT_TRUE(plain);
    EXPECT_TRUE(plain->canonical_values);
    for (const char* t : {"/b?exchange=by%62it&account_type=demo", "/b?exchange=bybit&account_type=de+mo",
                          "/b?exchange=bybit&account_type=a%20b"}) {
        const auto k = key(balance_rule(), t, "Bearer a");
        ASSERT_TRUE(k) << t;
        EXPECT_FALSE(k->canonical_values) << t;
    }
    // Parameters the rule does not key on do not matter.
    const auto other = key(balance_rule(), "/b?exchange=bybit&account_type=demo&x=%41+b", "Bearer a");
    ASSERT_TRUE(other);
    EXPECT_TRUE(other->canonical_values);
}

TEST_F(CacheKeyTest, FragmentIsNotCacheable) { EXPECT_FALSE(key(ticker_rule(), "/t?symbol=A#x", std::nullopt)); }

TEST_F(CacheKeyTest, TwoUsersGetDifferentKeysSameUserSameKey) {
    const char* t = "/api/trading/balance?exchange=bybit&account_type=demo";
    const auto alice1 = key(balance_rule(), t, "Bearer alice");
    const auto alice2 = key(balance_rule(), t, "Bearer alice");
    const auto bob = key(balance_rule(), t, "Bearer bob");
    ASSERT_TRUE(alice1 && alice2 && bob);
    EXPECT_EQ(*alice1, *alice2);
    EXPECT_NE(*alice1, *bob);
    EXPECT_TRUE(alice1->has_identity);
    EXPECT_EQ(alice1->identity, hasher.hash("Bearer alice"));
    EXPECT_NE(alice1->identity, bob->identity);
}

TEST_F(CacheKeyTest, PerUserKeyEndsWithItsIdentity) {
    const char* t = "/api/trading/balance?exchange=bybit&account_type=demo";
    const auto alice = key(balance_rule(), t, "Bearer alice");
    const auto bob = key(balance_rule(), t, "Bearer bob");
    ASSERT_TRUE(alice && bob);
    EXPECT_TRUE(ends_with_identity(alice->bytes, alice->identity));
    EXPECT_FALSE(ends_with_identity(alice->bytes, bob->identity));
    EXPECT_FALSE(ends_with_identity(alice->bytes.substr(alice->bytes.size() - 16), alice->identity));  // no 'I'
    const auto shared = key(ticker_rule(), "/t?symbol=BTC", std::nullopt);
    ASSERT_TRUE(shared);
    EXPECT_FALSE(ends_with_identity(shared->bytes, IdentityHash{}));
}

TEST_F(CacheKeyTest, PerUserRouteWithoutIdentityIsNotCacheable) {
    const char* t = "/api/trading/balance?exchange=bybit&account_type=demo";
    EXPECT_FALSE(key(balance_rule(), t, std::nullopt));
    EXPECT_FALSE(key(balance_rule(), t, std::string_view{}));
}

TEST_F(CacheKeyTest, RouteNeitherSharedNorKeyedIsTreatedAsPerUser) {
    rules::RouteRule r = ticker_rule();
    r.shared = false;
    r.key.identity = false;
    EXPECT_TRUE(per_user(r));
    EXPECT_FALSE(key(r, "/t?symbol=A", std::nullopt));
    EXPECT_NE(*key(r, "/t?symbol=A", "Bearer a"), *key(r, "/t?symbol=A", "Bearer b"));
}

TEST_F(CacheKeyTest, SharedRouteIgnoresIdentity) {
    const auto a = key(ticker_rule(), "/t?symbol=BTCUSDT", "Bearer alice");
    const auto b = key(ticker_rule(), "/t?symbol=BTCUSDT", "Bearer bob");
    const auto none = key(ticker_rule(), "/t?symbol=BTCUSDT", std::nullopt);
    ASSERT_TRUE(a && b && none);
    EXPECT_EQ(*a, *b);
    EXPECT_EQ(*a, *none);
    EXPECT_FALSE(a->has_identity);
}

TEST_F(CacheKeyTest, CredentialBytesNeverInKeyBytes) {
    const std::string token = "Bearer eyJhbGciOiJIUzI1NiJ9.c2VjcmV0LXVzZXItOTk5MDAx.sig";
    const auto k = key(balance_rule(), "/api/trading/balance?exchange=bybit&account_type=demo", token);
    ASSERT_TRUE(k);
    EXPECT_EQ(k->bytes.find(token), std::string::npos);
    EXPECT_EQ(k->bytes.find("eyJhbGciOiJIUzI1NiJ9"), std::string::npos);
    EXPECT_EQ(k->bytes.find("Bearer"), std::string::npos);

    // Even when a rule lists the credential-bearing header as a key header...
    rules::RouteRule r = balance_rule();
    r.key.headers = {"authorization", "cookie"};
    const HeaderList h{{"Authorization", token}, {"Cookie", "session=s3cr3t-cookie"}};
    const auto k2 = build_key(r, 0, "/api/trading/balance", token, hasher, h);
    ASSERT_TRUE(k2);
    EXPECT_EQ(k2->bytes.find("eyJhbGciOiJIUzI1NiJ9"), std::string::npos);
    EXPECT_EQ(k2->bytes.find("s3cr3t-cookie"), std::string::npos);

    // ...or the credential travels in a chosen query parameter.
    rules::RouteRule q = balance_rule();
    q.key.query = {"exchange", "token"};
    const auto k3 = key(q, "/api/trading/balance?exchange=bybit&token=qs-s3cr3t-123", "qs-s3cr3t-123");
    ASSERT_TRUE(k3);
    EXPECT_EQ(k3->bytes.find("qs-s3cr3t-123"), std::string::npos);
}

TEST_F(CacheKeyTest, ChosenHeadersAreKeyed) {
    rules::RouteRule r = ticker_rule();
    r.key.headers = {"accept-language"};
    const auto en = build_key(r, 0, "/t?symbol=A", std::nullopt, hasher, HeaderList{{"Accept-Language", "en"}});
    const auto de = build_key(r, 0, "/t?symbol=A", std::nullopt, hasher, HeaderList{{"accept-language", "de"}});
    const auto en2 = build_key(r, 0, "/t?symbol=A", std::nullopt, hasher, HeaderList{{"ACCEPT-LANGUAGE", "en"}});
    const auto none = build_key(r, 0, "/t?symbol=A", std::nullopt, hasher, HeaderList{});
    ASSERT_TRUE(en && de && en2 && none);
    EXPECT_NE(*en, *de);
    EXPECT_EQ(*en, *en2);
    EXPECT_NE(*en, *none);
    EXPECT_FALSE(build_key(r, 0, "/t?symbol=A", std::nullopt, hasher,
                           HeaderList{{"Accept-Language", "en"}, {"Accept-Language", "de"}}));
}

TEST_F(CacheKeyTest, RoutesNeverShareKeys) {
    rules::RouteRule a = ticker_rule();
    rules::RouteRule b = ticker_rule();
    b.name = "ticker2";
    const auto ka = build_key(a, 0, "/t?symbol=A", std::nullopt, hasher, HeaderList{});
    const auto kb = build_key(b, 1, "/t?symbol=A", std::nullopt, hasher, HeaderList{});
    ASSERT_TRUE(ka && kb);
    EXPECT_NE(ka->bytes, kb->bytes);
    EXPECT_EQ(kb->route_index, 1u);
    EXPECT_EQ(ka->bytes.substr(0, 7), std::string("ticker\0", 7));
}

TEST(CacheQueryStringTest, FindParam) {
    auto p = find_param("a=1&b=2&a=3", "a");
    EXPECT_EQ(p.count, 2u);
    EXPECT_EQ(p.raw_value, "1");
    p = find_param("a=1&b=x%20y", "b");
    EXPECT_EQ(p.count, 1u);
    EXPECT_EQ(p.raw_value, "x%20y");
    EXPECT_TRUE(p.has_equals);
    p = find_param("a&&b=", "a");
    EXPECT_EQ(p.count, 1u);
    EXPECT_FALSE(p.has_equals);
    EXPECT_EQ(find_param("", "a").count, 0u);
    EXPECT_EQ(find_param("a+b=1", "a b").count, 1u);
    EXPECT_EQ(find_param("%61=1", "a").count, 1u);
    EXPECT_EQ(find_param("%6=1", "a").count, 0u);
    EXPECT_TRUE(find_param("a=1;b=2", "b").ambiguous);
    EXPECT_FALSE(find_param("a=1;b=2", "a").ambiguous);
    // Separators at the ends, empty segments, a name that is a prefix of another.
    p = find_param("&&ab=0&a=1&", "a");
    EXPECT_EQ(p.count, 1u);
    EXPECT_EQ(p.raw_value, "1");
    EXPECT_EQ(find_param("ab=1&b=2", "a").count, 0u);
    EXPECT_EQ(find_param("a", "a").count, 1u);
    EXPECT_EQ(find_param("=1&a=", "a").raw_value, "");
    EXPECT_EQ(find_param("a=1;a=2", "a").count, 1u);      // the '&' split sees one "a"...
    EXPECT_TRUE(find_param("a=1;a=2", "a").ambiguous);    // ...the ';' split two: do not cache
    EXPECT_EQ(find_param("x=1;%61=2&a=3", "a").count, 1u);
    EXPECT_TRUE(find_param("x=1;%61=2&a=3", "a").ambiguous);
    EXPECT_TRUE(decoded_name_equals("a%5Fb", "a_b"));
    EXPECT_FALSE(decoded_name_equals("ab", "abc"));
    EXPECT_FALSE(decoded_name_equals("a%5", "a%"));
    EXPECT_TRUE(decoded_name_equals("a%5", "a%5"));       // a malformed escape is kept literally
    EXPECT_EQ(path_of("/p?q"), "/p");
    EXPECT_EQ(query_of("/p?q?r"), "q?r");
    EXPECT_EQ(query_of("/p"), "");
}

}  // namespace
}  // namespace cacheproxy::cache
