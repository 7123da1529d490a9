// The credential -> principal map's bounds and bookkeeping (cache/principal_map.hpp).

#include "cache/principal_map.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace cacheproxy::cache {
namespace {

IdentityHash id(std::uint32_t n, std::uint8_t tag = 0) {
    IdentityHash h{};
    for (int i = 0; i < 4; ++i) h[i] = static_cast<std::uint8_t>(n >> (8 * i));
    h[15] = tag;
    return h;
}
IdentityHash cred(std::uint32_t n) { return id(n, 1); }
PrincipalHash user(std::uint32_t n) { return id(n, 2); }

struct Dropped {
    std::vector<IdentityHash> ids;
    PrincipalMap::OnDrop fn() {
        return [this](const IdentityHash& h) { ids.push_back(h); };
    }
};

const TimePoint t0 = TimePoint{} + std::chrono::hours(1);

TEST(PrincipalMap, HoldsAtMostMaxCredentialsAndDropsTheLeastRecentlyUsed) {
    Dropped dropped;
    PrincipalMap map({.max_credentials = 3, .max_per_principal = 10, .idle = std::chrono::minutes(1)}, dropped.fn());
    for (std::uint32_t i = 0; i < 3; ++i) map.learn(cred(i), user(i), 0, t0 + std::chrono::seconds(i));
    map.learn(cred(0), user(0), 0, t0 + std::chrono::seconds(5));  // 0 used again: 1 is now the oldest
    const auto learned = map.learn(cred(9), user(9), 0, t0 + std::chrono::seconds(6));
    ASSERT_EQ(learned.dropped.size(), 1u);
    EXPECT_EQ(learned.dropped[0], cred(1));
    EXPECT_EQ(dropped.ids, learned.dropped) << "on_drop sees every credential that leaves for room";
    const auto s = map.stats();
    EXPECT_EQ(s.credentials, 3u);
    EXPECT_EQ(s.evicted, 1u);
    EXPECT_EQ(s.learned, 4u);
}

TEST(PrincipalMap, HoldsAtMostMaxPerPrincipal) {
    Dropped dropped;
    PrincipalMap map({.max_credentials = 100, .max_per_principal = 2, .idle = std::chrono::minutes(1)}, dropped.fn());
    map.learn(cred(1), user(7), 0, t0);
    map.learn(cred(2), user(7), 0, t0 + std::chrono::seconds(1));
    const auto learned = map.learn(cred(3), user(7), 0, t0 + std::chrono::seconds(2));
    ASSERT_EQ(learned.dropped.size(), 1u);
    EXPECT_EQ(learned.dropped[0], cred(1));
    std::vector<IdentityHash> others;
    ASSERT_TRUE(map.note_write(cred(3), t0, others));
    EXPECT_EQ(others, std::vector<IdentityHash>{cred(2)});
    EXPECT_EQ(map.stats().principals, 1u);
}

TEST(PrincipalMap, AMappingExpiresWithTheEntriesItServes) {
    Dropped dropped;
    PrincipalMap map({.max_credentials = 100, .max_per_principal = 10, .idle = std::chrono::seconds(30)}, dropped.fn());
    map.learn(cred(1), user(1), 0, t0);
    map.learn(cred(2), user(1), 0, t0 + std::chrono::seconds(20));
    const auto gone = map.expire(t0 + std::chrono::seconds(31));
    EXPECT_EQ(gone, std::vector<IdentityHash>{cred(1)});
    EXPECT_EQ(dropped.ids, gone);
    EXPECT_EQ(map.stats().expired, 1u);
    EXPECT_EQ(map.stats().credentials, 1u);
}

TEST(PrincipalMap, AWriteListsThePrincipalsOtherCredentialsAndStampsIt) {
    PrincipalMap map({}, nullptr);
    map.learn(cred(1), user(1), 0, t0);
    map.learn(cred(2), user(1), 0, t0);
    map.learn(cred(3), user(2), 0, t0);
    const auto before = map.write_seq();
    std::vector<IdentityHash> others;
    ASSERT_TRUE(map.note_write(cred(1), t0, others));
    EXPECT_EQ(others, std::vector<IdentityHash>{cred(2)});
    EXPECT_GT(map.write_seq(), before);
    // A credential of user 1 learned from an answer fetched before that write: it may predate it.
    EXPECT_TRUE(map.learn(cred(4), user(1), before, t0).wrote_since);
    EXPECT_FALSE(map.learn(cred(5), user(1), map.write_seq(), t0).wrote_since);
    EXPECT_FALSE(map.learn(cred(6), user(2), before, t0).wrote_since) << "another user's write";
    std::vector<IdentityHash> none;
    EXPECT_FALSE(map.note_write(cred(99), t0, none));
    EXPECT_TRUE(none.empty());
    EXPECT_EQ(map.stats().unknown_writer_writes, 1u);
}

TEST(PrincipalMap, AForgottenPrincipalsLastWriteStillCounts) {
    // User 1's only credential leaves after a write; a new credential of user 1
    // learned from an answer fetched before that write must still see it.
    PrincipalMap map({.max_credentials = 100, .max_per_principal = 10, .idle = std::chrono::minutes(1)}, nullptr);
    map.learn(cred(1), user(1), 0, t0);
    const auto before = map.write_seq();
    std::vector<IdentityHash> others;
    map.note_write(cred(1), t0, others);
    EXPECT_TRUE(map.forget(cred(1)));
    EXPECT_EQ(map.stats().principals, 0u);
    EXPECT_TRUE(map.learn(cred(2), user(1), before, t0).wrote_since);
}

TEST(PrincipalMap, ARemapMovesTheCredential) {
    PrincipalMap map({}, nullptr);
    map.learn(cred(1), user(1), 0, t0);
    map.learn(cred(2), user(1), 0, t0);
    EXPECT_EQ(map.learn(cred(1), user(1), 0, t0).kind, PrincipalMap::Learned::Kind::same);
    EXPECT_EQ(map.learn(cred(1), user(2), 0, t0).kind, PrincipalMap::Learned::Kind::remapped);
    std::vector<IdentityHash> others;
    map.note_write(cred(2), t0, others);
    EXPECT_TRUE(others.empty()) << "cred 1 is user 2's now";
    EXPECT_EQ(map.stats().remapped, 1u);
}

TEST(PrincipalMap, MemoryPerCredentialIsSmall) {
    EXPECT_GT(PrincipalMap::bytes_per_credential(), 2 * sizeof(IdentityHash));
    EXPECT_LT(PrincipalMap::bytes_per_credential(), 512u);
}

TEST(PrincipalMap, ConcurrentLearnsWritesAndForgetsStayWithinBounds) {
    std::atomic<int> drops{0};
    PrincipalMap map({.max_credentials = 64, .max_per_principal = 8, .idle = std::chrono::minutes(1)},
                     [&](const IdentityHash&) { drops.fetch_add(1); });
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&map, t] {
            std::vector<IdentityHash> others;
            for (std::uint32_t i = 0; i < 2000; ++i) {
                const auto c = cred(static_cast<std::uint32_t>(t) * 100000 + i % 300);
                map.learn(c, user(i % 17), map.write_seq(), t0);
                if (i % 7 == 0) map.note_write(c, t0, others);
                if (i % 13 == 0) map.forget(c);
                others.clear();
            }
        });
    for (auto& th : threads) th.join();
    const auto s = map.stats();
    EXPECT_LE(s.credentials, 64u);
    EXPECT_GT(drops.load(), 0);
}

}  // namespace
}  // namespace cacheproxy::cache
