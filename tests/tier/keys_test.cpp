#include "tier/keys.hpp"

#include "tier/bus_message.hpp"

#include <gtest/gtest.h>

namespace cacheproxy::tier {
namespace {

cache::CacheKey per_user_key(const cache::IdentityHasher& h, std::string_view token) {
    cache::CacheKey k;
    k.identity = h.hash(token);
    k.has_identity = true;
    k.bytes = "positions";
    k.bytes.push_back('\0');
    k.bytes += 'I';
    k.bytes.append(reinterpret_cast<const char*>(k.identity.data()), k.identity.size());
    return k;
}

TEST(TierKeys, PerUserKeysShareTheIdentityTagAndHoldNoCredential) {
    cache::IdentityHasher h(cache::IdentityHasher::Key{1, 2, 3});
    const auto key = per_user_key(h, "Bearer secret-token-1");
    const auto k = keys_for(key, "positions", false);
    const std::string tag = "{" + cache::IdentityHasher::hex(key.identity) + "}";
    for (const auto* name : {&k.entry, &k.lease, &k.generation}) {
        EXPECT_NE(name->find(tag), std::string::npos) << *name;
        EXPECT_EQ(name->find("secret"), std::string::npos) << *name;
        EXPECT_EQ(name->find('\0'), std::string::npos) << *name;
    }
    EXPECT_EQ(k.generation, generation_key(key.identity, "positions"));
    EXPECT_NE(k.entry, k.lease);
}

TEST(TierKeys, SharedKeysHaveNoGenerationAndDifferByKeyBytes) {
    cache::CacheKey a, b;
    a.bytes = "ticker|x";
    b.bytes = "ticker|y";
    const auto ka = keys_for(a, "ticker", true), kb = keys_for(b, "ticker", true);
    EXPECT_TRUE(ka.generation.empty());
    EXPECT_NE(ka.entry, kb.entry);
    EXPECT_EQ(ka.entry.substr(0, ka.entry.find('}')), ka.lease.substr(0, ka.lease.find('}')));  // one slot
}

TEST(TierKeys, TheFingerprintFollowsTheKeyOnly) {
    cache::IdentityHasher a(cache::IdentityHasher::Key{7}), b(cache::IdentityHasher::Key{7}), c(cache::IdentityHasher::Key{8});
    EXPECT_EQ(key_fingerprint(a), key_fingerprint(b));
    EXPECT_NE(key_fingerprint(a), key_fingerprint(c));
    EXPECT_NE(epoch_of("run-a"), epoch_of("run-b"));
}

TEST(BusMessage, RoundTripsAndRefusesGarbage) {
    BusMessage m{.origin = "0123456789abcdef",
                 .published_us = 1'800'000'000'000'000,
                 .drop_credential = true,
                 .generations_unacknowledged = true,
                 .identity = cache::IdentityHash{9, 8, 7},
                 .principal = cache::IdentityHash{1, 1},
                 .routes = {"balance", "positions"}};
    const auto back = decode(encode(m));
    ASSERT_TRUE(back);
    EXPECT_EQ(back->origin, m.origin);
    EXPECT_EQ(back->published_us, m.published_us);
    EXPECT_TRUE(back->drop_credential);
    EXPECT_TRUE(back->generations_unacknowledged);
    EXPECT_EQ(back->identity, m.identity);
    EXPECT_EQ(back->routes, m.routes);
    EXPECT_EQ(back->principal, m.principal);
    m.drop_credential = m.generations_unacknowledged = false;
    m.principal.reset();
    m.routes.clear();
    const auto plain = decode(encode(m));
    ASSERT_TRUE(plain);
    EXPECT_FALSE(plain->drop_credential);
    EXPECT_TRUE(plain->routes.empty());
    EXPECT_FALSE(plain->principal);
    for (const char* bad : {"", "v2\na\n1\n-\n00000000000000000000000000000000", "v1\na\nx\n-\n00000000000000000000000000000000",
                            "v1\na\n1\nq-\n00000000000000000000000000000000", "v1\na\n1\n-\nzz", "v1\na\n1\n-\n00000000000000000000000000000000\n-\n", "v1\na\n1\n-\n00000000000000000000000000000000\nxyz"})
        EXPECT_FALSE(decode(bad)) << bad;
}

}  // namespace
}  // namespace cacheproxy::tier
