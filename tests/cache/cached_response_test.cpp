#include "cache/cached_response.hpp"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

namespace cacheproxy::cache {
namespace {

using std::chrono::seconds;

const TimePoint t0 = TimePoint{} + std::chrono::hours(1000);

EntryParts full_parts() {
    EntryParts p;
    p.status = 203;
    p.head = "HTTP/1.1 203 Non-Authoritative Information\r\nContent-Type: application/json\r\n";
    p.body = "{\"price\":42}";
    p.gzip_body = std::string_view("\x1f\x8b\x08\0gz", 6);  // bytes, NUL included
    p.etag = "\"v1\"";
    p.weak_etag = "W/\"v1\"";
    p.stored_at = t0;
    p.ttl = seconds(15);
    p.stale_while_revalidate = seconds(5);
    p.stale_if_error = seconds(60);
    p.generation = 7;
    return p;
}

TEST(CachedResponseTest, RoundTripsEveryField) {
    std::string body = "{\"price\":42}";
    EntryParts parts = full_parts();
    parts.body = body;
    const EntryPtr e = CachedResponse::make(parts);
    ASSERT_NE(e, nullptr);
    body.assign(body.size(), 'X');  // the entry holds its own copy

    EXPECT_EQ(e->status(), 203u);
    EXPECT_EQ(e->head(), parts.head);
    EXPECT_EQ(e->body(), "{\"price\":42}");
    EXPECT_EQ(e->gzip_body(), std::string_view("\x1f\x8b\x08\0gz", 6));
    EXPECT_EQ(e->etag(), "\"v1\"");
    EXPECT_EQ(e->weak_etag(), "W/\"v1\"");
    EXPECT_EQ(e->stored_at(), t0);
    EXPECT_EQ(e->ttl(), seconds(15));
    EXPECT_EQ(e->stale_while_revalidate(), seconds(5));
    EXPECT_EQ(e->stale_if_error(), seconds(60));
    EXPECT_EQ(e->generation(), 7u);
    EXPECT_EQ(e->drop_at(), t0 + seconds(75));
}

TEST(CachedResponseTest, PartsAreOneContiguousBlock) {
    const EntryPtr e = CachedResponse::make(full_parts());
    ASSERT_NE(e, nullptr);
    // Back to back behind the fixed fields, in this order: no other heap block.
    EXPECT_EQ(e->head().data(), reinterpret_cast<const char*>(e.get() + 1));
    EXPECT_EQ(e->body().data(), e->head().data() + e->head().size());
    EXPECT_EQ(e->gzip_body().data(), e->body().data() + e->body().size());
    EXPECT_EQ(e->etag().data(), e->gzip_body().data() + e->gzip_body().size());
    EXPECT_EQ(e->weak_etag().data(), e->etag().data() + e->etag().size());
}

TEST(CachedResponseTest, ChargeIsTheOneMallocChunk) {
    const auto parts = full_parts();
    const EntryPtr e = CachedResponse::make(parts);
    ASSERT_NE(e, nullptr);
    const std::size_t bytes =
        parts.head.size() + parts.body.size() + parts.gzip_body.size() + parts.etag.size() + parts.weak_etag.size();
    EXPECT_EQ(e->charge(), malloc_chunk(sizeof(CachedResponse) + bytes));
    EXPECT_LE(sizeof(CachedResponse), 72u);  // the fixed fields stay small

    // A bigger body costs exactly its bytes, rounded to the chunk.
    auto more = parts;
    const std::string big(1000, 'b');
    more.body = big;
    const EntryPtr f = CachedResponse::make(more);
    ASSERT_NE(f, nullptr);
    EXPECT_EQ(f->charge(), malloc_chunk(sizeof(CachedResponse) + bytes - parts.body.size() + big.size()));
}

TEST(CachedResponseTest, EmptyGzipBodyAndEtags) {
    const EntryPtr e = CachedResponse::make({.head = "HTTP/1.1 200 OK\r\n", .body = "plain", .stored_at = t0});
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(e->status(), 200u);
    EXPECT_EQ(e->body(), "plain");
    EXPECT_TRUE(e->gzip_body().empty());
    EXPECT_TRUE(e->etag().empty());
    EXPECT_TRUE(e->weak_etag().empty());
    EXPECT_EQ(e->charge(), malloc_chunk(sizeof(CachedResponse) + 17 + 5));
    EXPECT_EQ(e->drop_at(), t0);  // no ttl, no stale windows

    const EntryPtr empty = CachedResponse::make({});
    ASSERT_NE(empty, nullptr);
    EXPECT_TRUE(empty->head().empty());
    EXPECT_TRUE(empty->body().empty());
    EXPECT_EQ(empty->charge(), malloc_chunk(sizeof(CachedResponse)));
}

TEST(CachedResponseTest, CopiesShareOneEntry) {
    const EntryPtr a = CachedResponse::make(full_parts());
    ASSERT_NE(a, nullptr);
    EXPECT_EQ(a->use_count(), 1u);
    {
        EntryPtr b = a;
        const EntryPtr c = b;
        EXPECT_EQ(b.get(), a.get());
        EXPECT_EQ(c->body().data(), a->body().data());  // the same bytes, not a copy
        EXPECT_EQ(a->use_count(), 3u);
        const EntryPtr d = std::move(b);
        EXPECT_EQ(b, nullptr);
        EXPECT_EQ(a->use_count(), 3u);
    }
    EXPECT_EQ(a->use_count(), 1u);
}

TEST(CachedResponseTest, SharedAcrossThreads) {
    const EntryPtr e = CachedResponse::make(full_parts());
    ASSERT_NE(e, nullptr);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([e] {
            for (int i = 0; i < 10000; ++i) {
                EntryPtr copy = e;
                ASSERT_EQ(copy->body(), "{\"price\":42}");
            }
        });
    }
    for (auto& th : threads) th.join();
    EXPECT_EQ(e->use_count(), 1u);
}

}  // namespace
}  // namespace cacheproxy::cache
