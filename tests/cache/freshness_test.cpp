#include "cache/freshness.hpp"

#include <gtest/gtest.h>

namespace cacheproxy::cache {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

/// A fake clock: an arbitrary origin plus explicit offsets.
const TimePoint t0 = TimePoint{} + std::chrono::hours(1000);

EntryPtr entry(milliseconds ttl, milliseconds swr = {}, milliseconds sie = {}) {
    return CachedResponse::make({.stored_at = t0, .ttl = ttl, .stale_while_revalidate = swr, .stale_if_error = sie});
}

/// The rule `e` was stored under (its TTL and windows), with `refresh_ahead`.
rules::RouteRule as_stored(const CachedResponse& e, milliseconds refresh_ahead = {}) {
    rules::RouteRule r;
    r.ttl = e.ttl();
    r.stale_while_revalidate = e.stale_while_revalidate();
    r.stale_if_error = e.stale_if_error();
    r.refresh_ahead = refresh_ahead;
    return r;
}

TEST(FreshnessTest, FreshUntilTtlThenExpired) {
    const auto e = entry(seconds(15));
    EXPECT_EQ(classify(*e, as_stored(*e), t0), Freshness::fresh);
    EXPECT_EQ(classify(*e, as_stored(*e), t0 + seconds(15) - std::chrono::nanoseconds(1)), Freshness::fresh);
    EXPECT_EQ(classify(*e, as_stored(*e), t0 + seconds(15)), Freshness::expired);  // half-open
    EXPECT_EQ(classify(*e, as_stored(*e), t0 + seconds(3600)), Freshness::expired);
}

TEST(FreshnessTest, ClockBeforeStoredAtCountsAsAgeZero) {
    const auto e = entry(seconds(1));
    EXPECT_EQ(classify(*e, as_stored(*e), t0 - seconds(5)), Freshness::fresh);
    EXPECT_EQ(age_seconds(t0, t0 - seconds(5)), 0u);
}

TEST(FreshnessTest, RefreshAheadBoundaries) {
    const auto e = entry(seconds(10));
    const milliseconds ahead(2000);
    EXPECT_EQ(classify(*e, as_stored(*e, ahead), t0 + milliseconds(8000)), Freshness::fresh);  // remaining == 2 s: not < 2 s
    EXPECT_EQ(classify(*e, as_stored(*e, ahead), t0 + milliseconds(8001)), Freshness::fresh_refresh_ahead);
    EXPECT_EQ(classify(*e, as_stored(*e, ahead), t0 + milliseconds(9999)), Freshness::fresh_refresh_ahead);
    EXPECT_EQ(classify(*e, as_stored(*e, ahead), t0 + milliseconds(10000)), Freshness::expired);
    // Through the rule (its TTL is the entry's, as at fill time).
    rules::RouteRule r;
    r.ttl = seconds(10);
    r.refresh_ahead = ahead;
    EXPECT_EQ(classify(*e, r, t0 + milliseconds(9000)), Freshness::fresh_refresh_ahead);
    r.refresh_ahead = milliseconds(0);
    EXPECT_EQ(classify(*e, r, t0 + milliseconds(9000)), Freshness::fresh);
}

TEST(FreshnessTest, ThroughTheRuleItsCurrentWindowsApply) {
    // A reload changed the route's TTL and windows: the kept entry follows the rule.
    const auto e = entry(seconds(60));
    rules::RouteRule r;
    r.ttl = seconds(5);
    EXPECT_EQ(classify(*e, r, t0 + seconds(4)), Freshness::fresh);
    EXPECT_EQ(classify(*e, r, t0 + seconds(5)), Freshness::expired);
    r.stale_while_revalidate = seconds(10);
    EXPECT_EQ(classify(*e, r, t0 + seconds(6)), Freshness::stale_revalidate);
    EXPECT_EQ(remaining_ttl(*e, r, t0 + seconds(2)), seconds(3));
    EXPECT_EQ(remaining_ttl(*e, as_stored(*e), t0 + seconds(2)), seconds(58));  // under the rule it was stored with
    r.ttl = seconds(120);
    EXPECT_EQ(classify(*e, r, t0 + seconds(90)), Freshness::fresh);
}

TEST(FreshnessTest, StaleWhileRevalidateThenStaleIfError) {
    const auto e = entry(seconds(10), seconds(5), seconds(30));
    EXPECT_EQ(classify(*e, as_stored(*e), t0 + milliseconds(9999)), Freshness::fresh);
    EXPECT_EQ(classify(*e, as_stored(*e), t0 + seconds(10)), Freshness::stale_revalidate);
    EXPECT_EQ(classify(*e, as_stored(*e), t0 + milliseconds(14999)), Freshness::stale_revalidate);
    EXPECT_EQ(classify(*e, as_stored(*e), t0 + seconds(15)), Freshness::stale_if_error_only);
    EXPECT_EQ(classify(*e, as_stored(*e), t0 + milliseconds(39999)), Freshness::stale_if_error_only);
    EXPECT_EQ(classify(*e, as_stored(*e), t0 + seconds(40)), Freshness::expired);
    EXPECT_EQ(e->drop_at(), t0 + seconds(40));
}

TEST(FreshnessTest, StaleIfErrorShorterThanRevalidate) {
    const auto e = entry(seconds(10), seconds(20), seconds(5));
    EXPECT_EQ(classify(*e, as_stored(*e), t0 + seconds(12)), Freshness::stale_revalidate);
    EXPECT_EQ(classify(*e, as_stored(*e), t0 + seconds(29)), Freshness::stale_revalidate);
    EXPECT_EQ(classify(*e, as_stored(*e), t0 + seconds(30)), Freshness::expired);
    EXPECT_EQ(e->drop_at(), t0 + seconds(30));
}

TEST(FreshnessTest, OnlyStaleIfError) {
    const auto e = entry(seconds(5), milliseconds(0), seconds(60));
    EXPECT_EQ(classify(*e, as_stored(*e), t0 + seconds(5)), Freshness::stale_if_error_only);
    EXPECT_EQ(classify(*e, as_stored(*e), t0 + seconds(64)), Freshness::stale_if_error_only);
    EXPECT_EQ(classify(*e, as_stored(*e), t0 + seconds(65)), Freshness::expired);
}

TEST(FreshnessTest, ZeroTtlIsNeverFresh) {
    const auto e = entry(milliseconds(0), seconds(1));
    EXPECT_EQ(classify(*e, as_stored(*e), t0), Freshness::stale_revalidate);
}

TEST(FreshnessTest, AgeAndRemaining) {
    const auto e = entry(seconds(15));
    EXPECT_EQ(age_seconds(t0, t0), 0u);
    EXPECT_EQ(age_seconds(t0, t0 + milliseconds(1999)), 1u);
    EXPECT_EQ(age_seconds(t0, t0 + seconds(20)), 20u);
    EXPECT_EQ(remaining_ttl(*e, as_stored(*e), t0), seconds(15));
    EXPECT_EQ(remaining_ttl(*e, as_stored(*e), t0 + milliseconds(14500)), milliseconds(500));
    EXPECT_EQ(remaining_ttl(*e, as_stored(*e), t0 + seconds(15) - std::chrono::microseconds(1)), milliseconds(1));  // never 0 while fresh
    EXPECT_EQ(remaining_ttl(*e, as_stored(*e), t0 + seconds(15)), milliseconds(0));
    EXPECT_EQ(remaining_ttl(*e, as_stored(*e), t0 + seconds(99)), milliseconds(0));
}

TEST(FreshnessTest, Names) {
    EXPECT_STREQ(to_string(Freshness::fresh_refresh_ahead), "fresh_refresh_ahead");
    EXPECT_STREQ(to_string(Freshness::stale_if_error_only), "stale_if_error_only");
}

}  // namespace
}  // namespace cacheproxy::cache
