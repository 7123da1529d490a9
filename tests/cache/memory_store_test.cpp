#include "cache/memory_store.hpp"

#include "cache/header_list.hpp"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace cacheproxy::cache {
namespace {

using std::chrono::seconds;

const TimePoint t0 = TimePoint{} + std::chrono::hours(1000);

IdentityHasher& hasher() {
    static IdentityHasher h(IdentityHasher::Key{42});
    return h;
}

rules::RouteRule route(std::string name, std::size_t max_entries, std::size_t max_bytes) {
    rules::RouteRule r;
    r.name = std::move(name);
    r.path = "/" + r.name;
    r.shared = true;
    r.key.query = {"k"};
    r.max_entries = max_entries;
    r.max_bytes = max_bytes;
    r.max_object_bytes = 1000;
    return r;
}

CacheKey key_of(const rules::RouteRule& r, std::size_t index, const std::string& k,
                std::optional<std::string_view> credential = std::nullopt) {
    return *build_key(r, index, "/x?k=" + k, credential, hasher(), HeaderList{});
}

EntryPtr make_entry(std::string_view body, TimePoint at = t0, seconds ttl = seconds(10), seconds swr = seconds(0),
                    seconds sie = seconds(0)) {
    return CachedResponse::make({.head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n",
                                 .body = body,
                                 .stored_at = at,
                                 .ttl = ttl,
                                 .stale_while_revalidate = swr,
                                 .stale_if_error = sie});
}

rules::RuleSet rules_of(std::vector<rules::RouteRule> routes) {
    rules::RuleSet rs;
    rs.routes = std::move(routes);
    return rs;
}

TEST(MemoryStoreTest, HitSharesTheSameEntry) {
    const auto r = route("ticker", 100, 1 << 20);
    MemoryStore store(rules_of({r}));
    const auto k = key_of(r, 0, "BTC");
    EXPECT_EQ(store.lookup(k, t0), nullptr);
    const auto e = make_entry("{\"last\":1}");
    store.insert(k, e, t0);
    const EntryPtr hit = store.lookup(k, t0 + seconds(1));
    ASSERT_NE(hit, nullptr);
    EXPECT_EQ(hit.get(), e.get());             // no copy: the same immutable object
    EXPECT_EQ(hit->body().data(), e->body().data());
    EXPECT_EQ(store.lookup(key_of(r, 0, "ETH"), t0), nullptr);
    const auto s = store.stats(0);
    EXPECT_EQ(s.entries, 1u);
    EXPECT_EQ(s.bytes, MemoryStore::charge_of(k, *e));
}

TEST(MemoryStoreTest, ChargeIsEntryBlockPlusNodeBlockPlusBucket) {
    const auto r = route("ticker", 100, 1 << 20);
    const auto k = key_of(r, 0, "BTC");
    const auto e = make_entry(std::string(500, 'x'));
    EXPECT_EQ(MemoryStore::charge_of(k, *e), e->charge() + MemoryStore::node_overhead(k.bytes.size()));
    // The key lives in the node's own block: the overhead is one chunk (rounded) plus a bucket slot.
    const std::size_t base = MemoryStore::node_overhead(0);
    EXPECT_LE(base, 64u + sizeof(void*));
    EXPECT_GE(MemoryStore::node_overhead(k.bytes.size()), base);
    EXPECT_LE(MemoryStore::node_overhead(k.bytes.size()), base + k.bytes.size() + 16);
    EXPECT_EQ((MemoryStore::node_overhead(k.bytes.size()) - sizeof(void*)) % 16, 0u);  // a malloc chunk
    // 100 bytes more key cost 100 bytes more, within the chunk rounding.
    EXPECT_LE(MemoryStore::node_overhead(k.bytes.size() + 100) - MemoryStore::node_overhead(k.bytes.size()), 112u);
}

TEST(MemoryStoreTest, StoredKeyBytesAndEntryRoundTrip) {
    const auto r = route("ticker", 100, 1 << 20);
    MemoryStore store(rules_of({r}));
    // Keys that differ only in their last byte, or in length, are different entries.
    const auto a = key_of(r, 0, "ab"), b = key_of(r, 0, "ac"), c = key_of(r, 0, "abc");
    store.insert(a, make_entry("A"), t0);
    store.insert(b, make_entry("B"), t0);
    store.insert(c, make_entry("C"), t0);
    EXPECT_EQ(store.lookup(a, t0)->body(), "A");
    EXPECT_EQ(store.lookup(b, t0)->body(), "B");
    EXPECT_EQ(store.lookup(c, t0)->body(), "C");
    EXPECT_EQ(store.stats(0).bytes, MemoryStore::charge_of(a, *make_entry("A")) +
                                        MemoryStore::charge_of(b, *make_entry("B")) +
                                        MemoryStore::charge_of(c, *make_entry("C")));
}

TEST(MemoryStoreTest, PerUserKeyMustEndWithItsIdentity) {
    auto per_user = route("balance", 100, 1 << 20);
    per_user.shared = false;
    per_user.key.identity = true;
    MemoryStore store(rules_of({per_user}));
    auto k = key_of(per_user, 0, "bybit", "Bearer alice");
    EXPECT_TRUE(ends_with_identity(k.bytes, k.identity));
    // erase_identity reads the identity from the key bytes: a key claiming
    // another identity than its bytes end with is refused, never stored unpurgeable.
    auto forged = k;
    forged.identity[0] ^= 1;
    store.insert(forged, make_entry("x"), t0);
    EXPECT_EQ(store.stats(0).entries, 0u);
    store.insert(k, make_entry("x"), t0);
    EXPECT_EQ(store.erase_identity(0, forged.identity), 0u);
    EXPECT_EQ(store.erase_identity(0, k.identity), 1u);
}

TEST(MemoryStoreTest, TtlExpiryDropsOnLookup) {
    const auto r = route("ticker", 100, 1 << 20);
    MemoryStore store(rules_of({r}));
    const auto k = key_of(r, 0, "BTC");
    store.insert(k, make_entry("x", t0, seconds(5)), t0);
    EXPECT_NE(store.lookup(k, t0 + seconds(5) - std::chrono::nanoseconds(1)), nullptr);
    EXPECT_EQ(store.lookup(k, t0 + seconds(5)), nullptr);
    const auto s = store.stats(0);
    EXPECT_EQ(s.entries, 0u);
    EXPECT_EQ(s.bytes, 0u);
    EXPECT_EQ(s.expired_reclaimed, 1u);
}

TEST(MemoryStoreTest, StaleWindowEntriesAreStillReturned) {
    const auto r = route("ticker", 100, 1 << 20);
    MemoryStore store(rules_of({r}));
    const auto k = key_of(r, 0, "BTC");
    store.insert(k, make_entry("x", t0, seconds(5), seconds(10), seconds(60)), t0);
    EXPECT_NE(store.lookup(k, t0 + seconds(12)), nullptr);  // stale_while_revalidate
    EXPECT_NE(store.lookup(k, t0 + seconds(64)), nullptr);  // stale_if_error
    EXPECT_EQ(store.lookup(k, t0 + seconds(65)), nullptr);  // past ttl + max(windows)
}

// ------------------------------------------------------------ reload (app/reload.cpp)

TEST(MemoryStoreTest, AddedRouteGetsTheNextSlotNeverAUsedOne) {
    const auto a = route("a", 100, 1 << 20);
    const auto b = route("b", 100, 1 << 20);
    MemoryStore store(rules_of({a, b}));
    EXPECT_EQ(store.add_route(route("c", 100, 1 << 20)), 2u);
    store.retire_route(0);
    EXPECT_EQ(store.add_route(route("a", 100, 1 << 20)), 3u);  // slot 0 stays retired
    const auto k = key_of(a, 3, "x");
    store.insert(k, make_entry("x"), t0);
    EXPECT_NE(store.lookup(k, t0), nullptr);
    EXPECT_EQ(store.stats(3).entries, 1u);
}

TEST(MemoryStoreTest, RetiredRouteFindsAndStoresNothing) {
    const auto r = route("ticker", 100, 1 << 20);
    MemoryStore store(rules_of({r, route("other", 100, 1 << 20)}));
    const auto k = key_of(r, 0, "BTC");
    const auto other = key_of(r, 1, "BTC");
    store.insert(k, make_entry("x"), t0);
    store.insert(other, make_entry("y"), t0);
    EXPECT_EQ(store.retire_route(0), 1u);
    EXPECT_EQ(store.lookup(k, t0), nullptr);
    store.insert(k, make_entry("x"), t0);  // a fill that started on the old rules
    EXPECT_EQ(store.stats(0).entries, 0u);
    EXPECT_NE(store.lookup(other, t0), nullptr);  // the other routes keep theirs
}

TEST(MemoryStoreTest, RetunedRouteKeepsEntriesForItsLongerWindows) {
    auto r = route("ticker", 100, 1 << 20);
    r.ttl = seconds(5);
    MemoryStore store(rules_of({r}));
    const auto k = key_of(r, 0, "BTC");
    store.insert(k, make_entry("x", t0, seconds(5)), t0);
    r.ttl = seconds(60);
    store.retune_route(0, r);
    EXPECT_NE(store.lookup(k, t0 + seconds(30)), nullptr);  // within the new TTL
    EXPECT_EQ(store.lookup(k, t0 + seconds(60)), nullptr);  // past it
    EXPECT_EQ(store.stats(0).expired_reclaimed, 1u);
}

TEST(MemoryStoreTest, UnknownSlotIsNoRoute) {
    MemoryStore store(rules_of({route("a", 100, 1 << 20)}));
    const auto k = key_of(route("a", 100, 1 << 20), 7, "x");
    store.insert(k, make_entry("x"), t0);
    EXPECT_EQ(store.lookup(k, t0), nullptr);
    EXPECT_EQ(store.stats(7).entries, 0u);
    EXPECT_EQ(store.retire_route(MemoryStore::kMaxRoutes + 5), 0u);
}

TEST(MemoryStoreTest, AlreadyUselessEntryIsNotStored) {
    const auto r = route("ticker", 100, 1 << 20);
    MemoryStore store(rules_of({r}));
    const auto k = key_of(r, 0, "BTC");
    store.insert(k, make_entry("x", t0, seconds(5)), t0 + seconds(5));
    EXPECT_EQ(store.stats(0).entries, 0u);
    store.insert(k, nullptr, t0);
    EXPECT_EQ(store.stats(0).entries, 0u);
}

TEST(MemoryStoreTest, LruByEntries) {
    const auto r = route("ticker", 3, 1 << 20);
    MemoryStore store(rules_of({r}));
    ASSERT_EQ(store.shard_count(0), 1u);
    const auto a = key_of(r, 0, "a"), b = key_of(r, 0, "b"), c = key_of(r, 0, "c"), d = key_of(r, 0, "d");
    store.insert(a, make_entry("a"), t0);
    store.insert(b, make_entry("b"), t0);
    store.insert(c, make_entry("c"), t0);
    ASSERT_NE(store.lookup(a, t0), nullptr);  // a is now most recent; b is the LRU
    store.insert(d, make_entry("d"), t0);
    EXPECT_NE(store.lookup(a, t0), nullptr);
    EXPECT_EQ(store.lookup(b, t0), nullptr);
    EXPECT_NE(store.lookup(c, t0), nullptr);
    EXPECT_NE(store.lookup(d, t0), nullptr);
    const auto s = store.stats(0);
    EXPECT_EQ(s.entries, 3u);
    EXPECT_EQ(s.evictions, 1u);
}

TEST(MemoryStoreTest, LruByBytes) {
    const auto probe_rule = route("ticker", 100, 1 << 20);
    const auto probe_key = key_of(probe_rule, 0, "a");
    const std::size_t one = MemoryStore::charge_of(probe_key, *make_entry(std::string(200, 'x')));
    auto r = route("ticker", 100, 3 * one + one / 2);  // room for three 200-byte bodies
    r.max_object_bytes = 1000;
    MemoryStore store(rules_of({r}));
    ASSERT_EQ(store.shard_count(0), 1u);
    const auto a = key_of(r, 0, "a"), b = key_of(r, 0, "b"), c = key_of(r, 0, "c"), d = key_of(r, 0, "d");
    store.insert(a, make_entry(std::string(200, 'a')), t0);
    store.insert(b, make_entry(std::string(200, 'b')), t0);
    store.insert(c, make_entry(std::string(200, 'c')), t0);
    EXPECT_EQ(store.stats(0).entries, 3u);
    EXPECT_EQ(store.stats(0).bytes, 3 * one);
    ASSERT_NE(store.lookup(a, t0), nullptr);
    store.insert(d, make_entry(std::string(200, 'd')), t0);  // b (LRU) goes
    EXPECT_EQ(store.lookup(b, t0), nullptr);
    EXPECT_NE(store.lookup(a, t0), nullptr);
    EXPECT_LE(store.stats(0).bytes, r.max_bytes);

    // A bigger entry pushes out as many as it needs, least recently used first.
    const auto big = key_of(r, 0, "big");
    store.insert(big, make_entry(std::string(700, 'B')), t0);
    EXPECT_NE(store.lookup(big, t0), nullptr);
    EXPECT_LE(store.stats(0).bytes, r.max_bytes);
    EXPECT_EQ(store.lookup(c, t0), nullptr);
    EXPECT_EQ(store.lookup(d, t0), nullptr);
    EXPECT_NE(store.lookup(a, t0), nullptr);
    EXPECT_EQ(store.stats(0).evictions, 3u);
}

TEST(MemoryStoreTest, EntryLargerThanBudgetIsNotStored) {
    // A budget that holds the small entry with room to spare, but not the big one.
    const auto probe = route("ticker", 100, 1 << 20);
    const auto small = make_entry("s");
    const std::size_t budget = MemoryStore::charge_of(key_of(probe, 0, "small"), *small) + 200;
    const auto r = route("ticker", 100, budget);
    MemoryStore store(rules_of({r}));
    const auto k = key_of(r, 0, "a");
    store.insert(key_of(r, 0, "small"), small, t0);
    store.insert(k, make_entry(std::string(budget, 'x')), t0);
    EXPECT_EQ(store.lookup(k, t0), nullptr);
    EXPECT_NE(store.lookup(key_of(r, 0, "small"), t0), nullptr);  // nothing evicted for it
}

TEST(MemoryStoreTest, ReplaceKeepsOneEntryAndReaccounts) {
    const auto r = route("ticker", 100, 1 << 20);
    MemoryStore store(rules_of({r}));
    const auto k = key_of(r, 0, "a");
    const auto e1 = make_entry("short");
    const auto e2 = make_entry(std::string(500, 'x'), t0 + seconds(1));
    store.insert(k, e1, t0);
    store.insert(k, e2, t0 + seconds(1));
    EXPECT_EQ(store.lookup(k, t0 + seconds(1)).get(), e2.get());
    const auto s = store.stats(0);
    EXPECT_EQ(s.entries, 1u);
    EXPECT_EQ(s.bytes, MemoryStore::charge_of(k, *e2));
    EXPECT_EQ(e1->use_count(), 1u);  // the store let go of the old entry
}

TEST(MemoryStoreTest, OlderFillNeverReplacesNewerEntry) {
    const auto r = route("ticker", 100, 1 << 20);
    MemoryStore store(rules_of({r}));
    const auto k = key_of(r, 0, "a");
    const auto newer = make_entry("newer", t0 + seconds(2));
    store.insert(k, newer, t0 + seconds(2));
    store.insert(k, make_entry("older", t0 + seconds(1)), t0 + seconds(2));
    EXPECT_EQ(store.lookup(k, t0 + seconds(2)).get(), newer.get());
    EXPECT_EQ(store.stats(0).entries, 1u);
    EXPECT_EQ(store.stats(0).bytes, MemoryStore::charge_of(k, *newer));
}

TEST(MemoryStoreTest, ExpiredReclaimedOnInsertWithoutLookup) {
    const auto r = route("ticker", 100, 1 << 20);
    MemoryStore store(rules_of({r}));
    for (int i = 0; i < 5; ++i) store.insert(key_of(r, 0, "old" + std::to_string(i)), make_entry("o", t0, seconds(1)), t0);
    EXPECT_EQ(store.stats(0).entries, 5u);
    const TimePoint later = t0 + seconds(2);
    store.insert(key_of(r, 0, "new1"), make_entry("n", later), later);
    auto s = store.stats(0);
    EXPECT_EQ(s.expired_reclaimed, 2u);  // bounded work per insert: at most two
    EXPECT_EQ(s.entries, 4u);
    EXPECT_EQ(s.evictions, 0u);
    store.insert(key_of(r, 0, "new2"), make_entry("n", later), later);
    store.insert(key_of(r, 0, "new3"), make_entry("n", later), later);
    s = store.stats(0);
    EXPECT_EQ(s.expired_reclaimed, 5u);
    EXPECT_EQ(s.entries, 3u);
}

TEST(MemoryStoreTest, EraseVariants) {
    auto per_user = route("balance", 100, 1 << 20);
    per_user.shared = false;
    per_user.key.identity = true;
    const auto shared = route("ticker", 100, 1 << 20);
    MemoryStore store(rules_of({per_user, shared}));
    const auto alice1 = key_of(per_user, 0, "bybit", "Bearer alice");
    const auto alice2 = key_of(per_user, 0, "okx", "Bearer alice");
    const auto bob = key_of(per_user, 0, "bybit", "Bearer bob");
    const auto tick = key_of(shared, 1, "BTC");
    for (const auto* k : {&alice1, &alice2, &bob, &tick}) store.insert(*k, make_entry("x"), t0);

    EXPECT_EQ(store.erase_identity(0, alice1.identity), 2u);
    EXPECT_EQ(store.lookup(alice1, t0), nullptr);
    EXPECT_EQ(store.lookup(alice2, t0), nullptr);
    EXPECT_NE(store.lookup(bob, t0), nullptr);

    EXPECT_TRUE(store.erase(bob));
    EXPECT_FALSE(store.erase(bob));
    EXPECT_EQ(store.stats(0).entries, 0u);
    EXPECT_EQ(store.stats(0).bytes, 0u);

    store.insert(bob, make_entry("x"), t0);
    EXPECT_EQ(store.erase_route(1), 1u);
    EXPECT_EQ(store.lookup(tick, t0), nullptr);
    EXPECT_NE(store.lookup(bob, t0), nullptr);
    store.insert(tick, make_entry("x"), t0);
    EXPECT_EQ(store.clear(), 2u);
    EXPECT_EQ(store.stats(0).entries + store.stats(1).entries, 0u);
}

TEST(MemoryStoreTest, RoutesAreSeparatePartitions) {
    const auto a = route("a", 100, 1 << 20);
    const auto b = route("b", 1, 1 << 20);
    MemoryStore store(rules_of({a, b}));
    store.insert(key_of(a, 0, "1"), make_entry("x"), t0);
    store.insert(key_of(b, 1, "1"), make_entry("x"), t0);
    store.insert(key_of(b, 1, "2"), make_entry("x"), t0);  // evicts within b only
    EXPECT_EQ(store.stats(0).entries, 1u);
    EXPECT_EQ(store.stats(1).entries, 1u);
    EXPECT_EQ(store.stats(1).evictions, 1u);
    // Unknown route: ignored.
    auto k = key_of(a, 0, "1");
    k.route_index = 7;
    store.insert(k, make_entry("x"), t0);
    EXPECT_EQ(store.lookup(k, t0), nullptr);
    EXPECT_EQ(store.stats(7).entries, 0u);
}

TEST(MemoryStoreTest, ShardCountFollowsBounds) {
    rules::RouteRule r;  // defaults: 1000 entries, 64 MiB, 1 MiB objects
    EXPECT_EQ(MemoryStore::shards_for(r), 8u);
    r.max_entries = 500;
    EXPECT_EQ(MemoryStore::shards_for(r), 4u);
    r.max_entries = 100000;
    EXPECT_EQ(MemoryStore::shards_for(r), 16u);
    r.max_bytes = 8 * 1024 * 1024;
    EXPECT_EQ(MemoryStore::shards_for(r), 2u);
    r.max_entries = 10;
    EXPECT_EQ(MemoryStore::shards_for(r), 1u);
}

TEST(MemoryStoreTest, ShardedRouteNeverExceedsItsBounds) {
    auto r = route("ticker", 1000, 400 * 1000);
    r.max_object_bytes = 1000;
    MemoryStore store(rules_of({r}));
    EXPECT_GT(store.shard_count(0), 1u);
    for (int i = 0; i < 5000; ++i) store.insert(key_of(r, 0, std::to_string(i)), make_entry(std::string(100 + i % 300, 'x')), t0);
    const auto s = store.stats(0);
    EXPECT_LE(s.entries, r.max_entries);
    EXPECT_LE(s.bytes, r.max_bytes);
    EXPECT_GT(s.entries, 0u);
    EXPECT_EQ(s.entries + s.evictions, 5000u);
}

TEST(MemoryStoreTest, ConcurrentReadersAndWriters) {
    auto r = route("ticker", 1000, 1 << 24);
    MemoryStore store(rules_of({r}));
    std::vector<CacheKey> keys;
    for (int i = 0; i < 200; ++i) keys.push_back(key_of(r, 0, std::to_string(i)));
    std::vector<std::thread> threads;
    std::atomic<std::size_t> hits{0};
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < 5000; ++i) {
                const auto& k = keys[(i * 7 + t) % keys.size()];
                if (i % 5 == t % 5) store.insert(k, make_entry("v"), t0);
                if (store.lookup(k, t0)) hits.fetch_add(1);
                if (i % 97 == 0) store.erase(k);
            }
        });
    }
    for (auto& th : threads) th.join();
    EXPECT_GT(hits.load(), 0u);
    const auto s = store.stats(0);
    EXPECT_LE(s.entries, 200u);
}

}  // namespace
}  // namespace cacheproxy::cache
