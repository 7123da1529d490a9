#include "cache/generations.hpp"

#include "cache/header_list.hpp"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace cacheproxy::cache {
namespace {

cache::IdentityHasher::Key fixed_key() {
    cache::IdentityHasher::Key k{};
    for (std::size_t i = 0; i < k.size(); ++i) k[i] = static_cast<std::uint8_t>(i * 3 + 11);
    return k;
}

rules::RouteRule route(std::string name, std::vector<std::string> query = {"exchange", "account_type"}) {
    rules::RouteRule r;
    r.name = std::move(name);
    r.path = "/api/" + r.name;
    r.key.identity = true;
    r.key.query = std::move(query);
    return r;
}

class GenerationsTest : public ::testing::Test {
protected:
    cache::CacheKey key(std::size_t route_index, std::string_view query, std::string_view credential) {
        const rules::RouteRule& r = routes[route_index];
        auto k = cache::build_key(r, route_index, r.path + "?" + std::string(query), credential, hasher,
                                  cache::HeaderList{});
        EXPECT_TRUE(k.has_value());
        return k.value_or(cache::CacheKey{});
    }
    cache::IdentityHasher hasher{fixed_key()};
    std::vector<rules::RouteRule> routes{route("balance"), route("positions")};
};

TEST_F(GenerationsTest, AWriteSpelledInAnotherCaseReachesTheRead) {
    Generations g;
    const auto read = key(0, "exchange=Bybit&account_type=demo", "Bearer alice");
    const auto write = key(0, "exchange=bybit&account_type=demo", "Bearer alice");
    const auto before = g.current(read);
    g.bump_exact(write);
    EXPECT_NE(g.current(read), before);  // case-folded slot: wider, never narrower
}

TEST_F(GenerationsTest, SlotsRoundUpToAPowerOfTwo) {
    EXPECT_EQ(Generations(1000).slots(), 1024u);
    EXPECT_EQ(Generations(1).slots(), 1u);
    EXPECT_EQ(Generations(0).slots(), 1u);
    EXPECT_EQ(Generations().slots(), 65536u);
}

TEST_F(GenerationsTest, BumpExactChangesOnlyThatKey) {
    Generations g;
    const auto mine = key(0, "exchange=bybit&account_type=demo", "Bearer alice");
    const auto other = key(0, "exchange=bybit&account_type=real", "Bearer alice");
    const auto before_mine = g.current(mine);
    const auto before_other = g.current(other);
    g.bump_exact(mine);
    EXPECT_NE(g.current(mine), before_mine);
    // With 65536 slots these two keys land apart (a collision would only cost a refetch).
    EXPECT_EQ(g.current(other), before_other);

    // The same key built again from another spelling of the request sees the bump.
    EXPECT_EQ(g.current(key(0, "account_type=demo&exchange=bybit", "Bearer alice")), g.current(mine));

    const auto after = g.current(mine);
    g.bump_exact(mine);
    EXPECT_NE(g.current(mine), after);
}

TEST_F(GenerationsTest, BumpUserChangesEveryKeyOfThatUserInThatRoute) {
    Generations g;
    const std::vector<cache::CacheKey> alice_balance = {key(0, "exchange=bybit&account_type=demo", "Bearer alice"),
                                                        key(0, "exchange=okx&account_type=real", "Bearer alice"),
                                                        key(0, "exchange=x", "Bearer alice")};
    const auto bob_balance = key(0, "exchange=bybit&account_type=demo", "Bearer bob");
    const auto alice_positions = key(1, "exchange=bybit&account_type=demo", "Bearer alice");

    std::vector<std::uint64_t> before;
    for (const auto& k : alice_balance) before.push_back(g.current(k));
    const auto bob_before = g.current(bob_balance);
    const auto positions_before = g.current(alice_positions);

    g.bump_user(0, alice_balance[0].identity);
    for (std::size_t i = 0; i < alice_balance.size(); ++i) EXPECT_NE(g.current(alice_balance[i]), before[i]) << i;
    EXPECT_EQ(g.current(bob_balance), bob_before);            // another user
    EXPECT_EQ(g.current(alice_positions), positions_before);  // another route
}

TEST_F(GenerationsTest, EitherTableMovesTheSum) {
    Generations g(1);  // every scope shares one slot per table: wider, never stale
    const auto a = key(0, "exchange=bybit&account_type=demo", "Bearer alice");
    const auto b = key(1, "exchange=okx&account_type=real", "Bearer bob");
    std::uint64_t last = g.current(a);
    g.bump_exact(b);
    EXPECT_GT(g.current(a), last);
    last = g.current(a);
    g.bump_user(1, b.identity);
    EXPECT_GT(g.current(a), last);
}

TEST_F(GenerationsTest, ConcurrentBumpsAreAllCounted) {
    Generations g(16);
    const auto k = key(0, "exchange=bybit&account_type=demo", "Bearer alice");
    const auto start = g.current(k);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&] {
            for (int i = 0; i < 1000; ++i) {
                g.bump_exact(k);
                g.bump_user(0, k.identity);
            }
        });
    for (auto& t : threads) t.join();
    EXPECT_EQ(g.current(k), start + 8000);
}

}  // namespace
}  // namespace cacheproxy::cache
