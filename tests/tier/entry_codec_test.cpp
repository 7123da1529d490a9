#include "tier/entry_codec.hpp"

#include <gtest/gtest.h>

#include <climits>
#include <cstdint>
#include <cstring>
#include <string>

namespace cacheproxy::tier {
namespace {

using std::chrono::seconds;
const cache::TimePoint t0 = cache::TimePoint{} + std::chrono::hours(1000);
const auto wall0 = std::chrono::system_clock::time_point(std::chrono::seconds(1'800'000'000));

cache::CacheKey key_of(std::string bytes, bool identity = true) {
    cache::CacheKey k;
    k.bytes = std::move(bytes);
    k.has_identity = identity;
    return k;
}

cache::EntryPtr entry_at(cache::TimePoint stored) {
    cache::EntryParts p;
    p.status = 200;
    p.head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n";
    p.body = "{\"positions\":[1,2]}";
    p.gzip_body = std::string_view("\x1f\x8b\x08\0gz", 6);
    p.etag = "\"e1\"";
    p.weak_etag = "W/\"e1\"";
    p.stored_at = stored;
    p.ttl = seconds(15);
    p.stale_if_error = seconds(60);
    p.generation = 3;
    return cache::CachedResponse::make(p);
}

TEST(EntryCodec, RoundTripsEveryPartOntoTheReadersClock) {
    const auto key = key_of(std::string("positions\0Ixxxxxxxxxxxxxxxx", 27));
    const auto e = entry_at(t0 - seconds(4));  // 4 s old when stored to L2
    const auto v = encode_entry(*e, key, "123", 0xabc, wall0, t0);
    // Read 2 s later on another instance whose steady clock is elsewhere.
    const cache::TimePoint other_now = cache::TimePoint{} + std::chrono::hours(5);
    cache::EntryPtr out;
    ASSERT_EQ(decode_entry(v, key, "123", 0xabc, 77, wall0 + seconds(2), other_now, out), Decoded::ok);
    EXPECT_EQ(out->status(), 200u);
    EXPECT_EQ(out->head(), e->head());
    EXPECT_EQ(out->body(), e->body());
    EXPECT_EQ(out->gzip_body(), e->gzip_body());
    EXPECT_EQ(out->etag(), e->etag());
    EXPECT_EQ(out->weak_etag(), e->weak_etag());
    EXPECT_EQ(out->generation(), 77u);  // this instance's generation, not the writer's
    EXPECT_EQ(out->ttl(), seconds(15));
    EXPECT_EQ(out->stale_if_error(), seconds(60));
    EXPECT_EQ(other_now - out->stored_at(), seconds(6));  // the same age
}

TEST(EntryCodec, TheScriptsSeeTheGenerationAndFreshnessFirst) {
    const auto e = entry_at(t0);
    const auto v = encode_entry(*e, key_of("k"), "42", 1, wall0, t0);
    const auto fresh_ms = std::chrono::duration_cast<std::chrono::milliseconds>((wall0 + seconds(15)).time_since_epoch());
    EXPECT_EQ(v.substr(0, v.find('\n', 3) + 1), "42\n" + std::to_string(fresh_ms.count()) + "\n");
}

TEST(EntryCodec, RefusesAnotherKeyGenerationOrEpoch) {
    const auto key = key_of("balance|Iaaaa");
    const auto v = encode_entry(*entry_at(t0), key, "9", 5, wall0, t0);
    cache::EntryPtr out;
    EXPECT_EQ(decode_entry(v, key_of("balance|Ibbbb"), "9", 5, 0, wall0, t0, out), Decoded::key_mismatch);
    EXPECT_EQ(decode_entry(v, key, "10", 5, 0, wall0, t0, out), Decoded::generation_mismatch);
    EXPECT_EQ(decode_entry(v, key, "9", 6, 0, wall0, t0, out), Decoded::epoch_mismatch);
    EXPECT_EQ(out, nullptr);
}

TEST(EntryCodec, RefusesAValuePastItsLifetime) {
    const auto key = key_of("k");
    const auto v = encode_entry(*entry_at(t0), key, "1", 1, wall0, t0);
    cache::EntryPtr out;
    EXPECT_EQ(decode_entry(v, key, "1", 1, 0, wall0 + seconds(74), t0, out), Decoded::ok);       // within stale-if-error
    EXPECT_EQ(decode_entry(v, key, "1", 1, 0, wall0 + seconds(76), t0, out), Decoded::expired);  // 15 + 60 s later
}

TEST(EntryCodec, RefusesEveryTruncationAndGarbage) {
    const auto key = key_of("k");
    const auto v = encode_entry(*entry_at(t0), key, "1", 1, wall0, t0);
    cache::EntryPtr out;
    for (std::size_t n = 0; n < v.size(); ++n)
        EXPECT_NE(decode_entry(v.substr(0, n), key, "1", 1, 0, wall0, t0, out), Decoded::ok) << n;
    EXPECT_NE(decode_entry(v + "x", key, "1", 1, 0, wall0, t0, out), Decoded::ok);
    EXPECT_EQ(decode_entry("1\n0\nnot an entry at all, long enough to be read as a header maybe", key, "1", 1, 0,
                           wall0, t0, out),
              Decoded::malformed);
}

TEST(EntryCodec, RefusesAStoreTimeTheClockCannotHold) {
    // Found by fuzz_shared_tier: a stored_at of ~2^63 ms overflowed the conversion to the clock.
    const auto key = key_of("k");
    auto v = encode_entry(*entry_at(t0), key, "1", 1, wall0, t0);
    const auto header = v.find("CPE1");
    ASSERT_NE(header, std::string::npos);
    const std::int64_t huge = INT64_MAX - 5;
    std::memcpy(v.data() + header + 4 + 2 + 2 + 8, &huge, sizeof huge);
    cache::EntryPtr out;
    EXPECT_EQ(decode_entry(v, key, "1", 1, 0, wall0, t0, out), Decoded::malformed);
    const std::int64_t negative = -1;
    std::memcpy(v.data() + header + 4 + 2 + 2 + 8, &negative, sizeof negative);
    EXPECT_EQ(decode_entry(v, key, "1", 1, 0, wall0, t0, out), Decoded::malformed);
}

TEST(EntryCodec, RedisKeepsItForWhatIsLeftOfItsLife) {
    const auto e = entry_at(t0 - seconds(5));
    EXPECT_EQ(value_px(*e, t0), 70'000);  // 15 s + 60 s - 5 s
    EXPECT_EQ(value_px(*e, t0 + seconds(100)), 1);
}

}  // namespace
}  // namespace cacheproxy::tier
