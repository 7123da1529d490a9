// The cache's principal scope (cache/cache_principal.cpp; ARCHITECTURE.md,
// invariant 6): a write through one credential makes every credential of the
// same principal miss; a fill in flight across such a write is not stored;
// the fill that maps a credential is stored and its older entries are not.

#include "cache/cache.hpp"

#include "cache/header_list.hpp"

#include <gtest/gtest.h>

namespace cacheproxy::cache {
namespace {

IdentityHasher::Key fixed_key() {
    IdentityHasher::Key k{};
    for (std::size_t i = 0; i < k.size(); ++i) k[i] = static_cast<std::uint8_t>(i * 5 + 1);
    return k;
}

rules::RouteRule route(std::string name) {
    rules::RouteRule r;
    r.name = std::move(name);
    r.path = "/api/" + r.name;
    r.ttl = std::chrono::seconds(60);
    r.key.identity = true;
    r.key.query = {"exchange"};
    return r;
}

rules::RuleSet principal_rules(bool enabled) {
    rules::RuleSet rules;
    rules.routes = {route("positions"), route("balance")};
    if (enabled) rules.principal.source = rules::PrincipalRule::Source::response_field;
    return rules;
}

class CachePrincipal : public ::testing::Test {
protected:
    explicit CachePrincipal(bool enabled = true) : rules(principal_rules(enabled)), cache(rules) {}

    CacheKey key(std::size_t route, std::string_view credential, std::string_view exchange = "bybit") {
        const auto& r = rules.routes[route];
        auto k = build_key(r, route, r.path + "?exchange=" + std::string(exchange), credential, hasher, HeaderList{});
        EXPECT_TRUE(k.has_value());
        return k.value_or(CacheKey{});
    }
    PrincipalHash principal(std::string_view name) { return hasher.hash(std::string("principal:") + std::string(name)); }

    /// A fill as cached_read does it: lookup, join, (learn), publish. `user`
    /// empty: the answer names nobody. `between` runs while it is in flight.
    Cache::Published fill(const CacheKey& k, std::string_view user, const std::function<void()>& between = {}) {
        const auto found = cache.lookup(k, rules.routes[k.route_index], now);
        auto f = cache.join(k, found.generation, now);
        EXPECT_TRUE(f.leader());
        const auto since = cache.write_seq();
        if (between) between();
        if (!user.empty()) f.generation = cache.learn(k, f.generation, since, principal(user), now).value_or(~0ULL);
        EntryParts parts;
        parts.head = "HTTP/1.1 200 OK\r\n";
        parts.body = "{}";
        parts.stored_at = now;
        parts.ttl = std::chrono::seconds(60);
        parts.generation = f.generation;
        return cache.publish(f, FillResult{CachedResponse::make(parts), FillResult::Outcome::stored, 200, ""}, now);
    }
    bool hit(const CacheKey& k) { return cache.lookup(k, rules.routes[k.route_index], now).entry != nullptr; }

    /// A write through `credential` on route 0's bybit entry, widened as watched_write does.
    bool write(std::string_view credential) {
        Cache::Invalidation plan;
        plan.identity = hasher.hash(credential);
        plan.exact.push_back(key(0, credential));
        const bool widened = cache.widen(plan, now);
        cache.invalidate(plan);
        return widened;
    }

    IdentityHasher hasher{fixed_key()};
    rules::RuleSet rules;
    Cache cache;
    TimePoint now = TimePoint{} + std::chrono::hours(1);
};

TEST_F(CachePrincipal, AWriteThroughOneTokenMakesTheOtherTokensOfItsUserMiss) {
    const auto a = key(0, "tok-a"), b = key(0, "tok-b"), c = key(0, "tok-c"), b_balance = key(1, "tok-b");
    EXPECT_EQ(fill(a, "u1"), Cache::Published::stored);
    EXPECT_EQ(fill(b, "u1"), Cache::Published::stored);
    EXPECT_EQ(fill(b_balance, "u1"), Cache::Published::stored);
    EXPECT_EQ(fill(c, "u2"), Cache::Published::stored);
    ASSERT_TRUE(hit(a) && hit(b) && hit(c) && hit(b_balance));

    EXPECT_TRUE(write("tok-a"));
    EXPECT_FALSE(hit(a));
    EXPECT_FALSE(hit(b)) << "another token of the same user still sees the entry from before the write";
    EXPECT_TRUE(hit(b_balance)) << "outside the write's routes";
    EXPECT_TRUE(hit(c)) << "another user";
    EXPECT_EQ(cache.principal_stats().widened_writes, 1u);
}

TEST_F(CachePrincipal, AFillInFlightAcrossAWriteOfItsUserIsNotStored) {
    const auto b = key(0, "tok-b");
    EXPECT_EQ(fill(key(0, "tok-a"), "u1"), Cache::Published::stored);
    EXPECT_EQ(fill(b, "u1"), Cache::Published::stored);
    cache.invalidate({hasher.hash("tok-b"), {b}, {}, {}});  // B's entry gone; B stays mapped
    EXPECT_EQ(fill(b, "u1", [&] { write("tok-a"); }), Cache::Published::invalidated_in_flight);
    EXPECT_FALSE(hit(b));
}

TEST_F(CachePrincipal, TheFillThatMapsATokenIsStoredAndItsEarlierEntriesAreNot) {
    const auto b = key(0, "tok-b"), b_balance = key(1, "tok-b");
    EXPECT_EQ(fill(b_balance, ""), Cache::Published::stored);  // names nobody: B unmapped
    EXPECT_EQ(cache.principal_stats().credentials, 0u);
    EXPECT_EQ(fill(b, "u1"), Cache::Published::stored);
    EXPECT_TRUE(hit(b)) << "the mapping answer itself is served";
    EXPECT_FALSE(hit(b_balance)) << "fetched before B was known to be u1: it may have missed a write of u1";
    EXPECT_EQ(cache.principal_stats().learned, 1u);
}

TEST_F(CachePrincipal, TheFillThatMapsATokenAfterAWriteOfItsUserStartedIsNotStored) {
    EXPECT_EQ(fill(key(0, "tok-a"), "u1"), Cache::Published::stored);
    const auto b = key(0, "tok-b");
    EXPECT_EQ(fill(b, "u1", [&] { write("tok-a"); }), Cache::Published::invalidated_in_flight);
    EXPECT_FALSE(hit(b));
    EXPECT_EQ(fill(b, "u1"), Cache::Published::stored) << "the next fill, after the write, is";
    EXPECT_TRUE(hit(b));
}

TEST_F(CachePrincipal, AWriterWhosePrincipalIsUnknownInvalidatesOnlyItself) {
    const auto b = key(0, "tok-b");
    EXPECT_EQ(fill(b, "u1"), Cache::Published::stored);
    EXPECT_FALSE(write("tok-x"));
    EXPECT_TRUE(hit(b));
    EXPECT_EQ(cache.principal_stats().unknown_writer_writes, 1u);
}

TEST_F(CachePrincipal, AReassignedTokenLosesItsEntriesAndItsOldUser) {
    const auto b = key(0, "tok-b"), b_balance = key(1, "tok-b");
    EXPECT_EQ(fill(b, "u1"), Cache::Published::stored);
    EXPECT_EQ(fill(b_balance, "u1"), Cache::Published::stored);
    EXPECT_EQ(fill(key(0, "tok-a"), "u1"), Cache::Published::stored);
    EXPECT_EQ(fill(b, "u2"), Cache::Published::stored);  // the app now says u2
    EXPECT_FALSE(hit(b_balance)) << "fetched as u1";
    EXPECT_TRUE(hit(b));
    EXPECT_EQ(cache.principal_stats().remapped, 1u);
    write("tok-a");  // u1's write no longer reaches B
    EXPECT_TRUE(hit(b));
}

TEST_F(CachePrincipal, ARefusedTokenLosesEveryEntryAndItsMapping) {
    const auto b = key(0, "tok-b"), b_balance = key(1, "tok-b"), a = key(0, "tok-a");
    EXPECT_EQ(fill(b, "u1"), Cache::Published::stored);
    EXPECT_EQ(fill(b_balance, "u1"), Cache::Published::stored);
    EXPECT_EQ(fill(a, "u1"), Cache::Published::stored);
    EXPECT_EQ(cache.drop_refused(hasher.hash("tok-b")), 2u);
    EXPECT_FALSE(hit(b));
    EXPECT_FALSE(hit(b_balance));
    EXPECT_TRUE(hit(a));
    EXPECT_EQ(cache.refused_credentials(), 1u);
    EXPECT_EQ(cache.principal_stats().credentials, 1u);
}

class CachePrincipalOff : public CachePrincipal {
protected:
    CachePrincipalOff() : CachePrincipal(false) {}
};

TEST_F(CachePrincipalOff, NothingWidensAndLearningChangesNothing) {
    const auto a = key(0, "tok-a"), b = key(0, "tok-b");
    EXPECT_EQ(fill(a, "u1"), Cache::Published::stored);
    EXPECT_EQ(fill(b, "u1"), Cache::Published::stored);
    EXPECT_FALSE(write("tok-a"));
    EXPECT_FALSE(hit(a));
    EXPECT_TRUE(hit(b));
    EXPECT_FALSE(cache.principals_enabled());
    EXPECT_EQ(cache.write_seq(), 0u);
}

}  // namespace
}  // namespace cacheproxy::cache
