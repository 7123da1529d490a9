#include "stats/worker_stats.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

namespace cacheproxy::stats {
namespace {

using namespace std::chrono_literals;

TEST(WorkerStatsTest, StatusClassesAndCacheLabels) {
    EXPECT_EQ(status_class(0), 0u);
    EXPECT_EQ(status_class(99), 0u);
    EXPECT_EQ(status_class(100), 1u);
    EXPECT_EQ(status_class(204), 2u);
    EXPECT_EQ(status_class(304), 3u);
    EXPECT_EQ(status_class(499), 4u);
    EXPECT_EQ(status_class(504), 5u);
    EXPECT_EQ(status_class(600), 0u);
    EXPECT_EQ(status_class_name(2), "2xx");
    EXPECT_EQ(status_class_name(0), "other");

    EXPECT_EQ(cache_label("HIT"), CacheLabel::hit);
    EXPECT_EQ(cache_label("MISS"), CacheLabel::miss);
    EXPECT_EQ(cache_label("STALE"), CacheLabel::stale);
    EXPECT_EQ(cache_label("BYPASS"), CacheLabel::bypass);
    EXPECT_EQ(cache_label("-"), CacheLabel::none);
    EXPECT_EQ(cache_label(""), CacheLabel::none);
    EXPECT_EQ(cache_label_name(static_cast<std::size_t>(CacheLabel::stale)), "STALE");
}

TEST(WorkerStatsTest, BucketsAreALogScaleFrom50usTo60s) {
    EXPECT_EQ(bucket_of(0), 0u);
    EXPECT_EQ(bucket_of(50), 0u);     // le 50us
    EXPECT_EQ(bucket_of(51), 1u);     // le 100us
    EXPECT_EQ(bucket_of(1'000), 4u);  // le 1ms
    EXPECT_EQ(bucket_of(60'000'000), kBucketBoundsUs.size() - 1);
    EXPECT_EQ(bucket_of(60'000'001), kBucketBoundsUs.size());  // +Inf
    for (std::size_t i = 1; i < kBucketBoundsUs.size(); ++i) EXPECT_LT(kBucketBoundsUs[i - 1], kBucketBoundsUs[i]);
}

TEST(WorkerStatsTest, LayoutSlotsArePassthroughRoutesThenTriggers) {
    const std::string balance = "balance", ticker = "ticker", order = "order_placed";
    const Layout layout({balance, ticker}, {order});
    ASSERT_EQ(layout.size(), 4u);
    EXPECT_EQ(layout[0].kind, SlotKind::passthrough);
    EXPECT_EQ(layout[0].label, "passthrough");
    EXPECT_EQ(layout[1].label, "balance");
    EXPECT_EQ(layout[2].label, "ticker");
    EXPECT_EQ(layout[3].kind, SlotKind::trigger);
    EXPECT_EQ(layout.route_slot(1), 2u);
    EXPECT_EQ(layout.trigger_slot(0), 3u);

    EXPECT_EQ(layout.slot_for(balance), 1u);            // by address
    EXPECT_EQ(layout.slot_for(std::string("ticker")), 2u);  // by content
    EXPECT_EQ(layout.slot_for(order), 3u);
    EXPECT_EQ(layout.slot_for("-"), 0u);
    EXPECT_EQ(layout.slot_for(""), 0u);
    EXPECT_EQ(layout.slot_for("unknown"), 0u);
}

TEST(WorkerStatsTest, ARouteAndATriggerWithOneNameStayApartAndGetUniqueLabels) {
    const std::string route_name = "config", trigger_name = "config", passthrough = "passthrough";
    const Layout layout({route_name, passthrough}, {trigger_name});
    EXPECT_EQ(layout[1].label, "config");
    EXPECT_EQ(layout[2].label, "passthrough_2");  // the pass-through slot owns "passthrough"
    EXPECT_EQ(layout[3].label, "config_2");
    EXPECT_EQ(layout.slot_for(route_name), 1u);     // the session hands the rule's own string
    EXPECT_EQ(layout.slot_for(trigger_name), 3u);
}

TEST(WorkerStatsTest, TooManyRulesShareAnOtherSlot) {
    std::vector<std::string> names;
    for (std::size_t i = 0; i < kMaxSlots + 5; ++i) names.push_back("r" + std::to_string(i));
    std::vector<std::string_view> views(names.begin(), names.end());
    const Layout layout(views, {});
    ASSERT_EQ(layout.size(), kMaxSlots);
    EXPECT_EQ(layout[kMaxSlots - 1].label, "other");
    EXPECT_EQ(layout.slot_for(names[0]), 1u);
    EXPECT_EQ(layout.slot_for(names.back()), kMaxSlots - 1);
    EXPECT_EQ(layout.route_slot(names.size() - 1), kMaxSlots - 1);
    EXPECT_EQ(layout.slot_for("-"), 0u);
}

TEST(WorkerStatsTest, RecordCountsPerSlotStatusAndLabelAndMergesWorkers) {
    const std::string balance = "balance";
    const Layout layout({balance}, {});
    WorkerStats a(layout), b(layout);
    a.record(balance, 200, "HIT", 80us);
    a.record(balance, 200, "HIT", 90us);
    b.record(balance, 200, "MISS", 3ms);
    b.record("-", 502, "-", 1ms);
    b.record("-", 504, "-", 2s);

    const std::vector<const WorkerStats*> workers{&a, &b};
    const auto merged = merge(layout, workers);
    ASSERT_EQ(merged.size(), 2u);
    const SlotTotals& route = merged[1];
    EXPECT_EQ(route.total(), 3u);
    EXPECT_EQ(route.by_cache(CacheLabel::hit), 2u);
    EXPECT_EQ(route.by_cache(CacheLabel::miss), 1u);
    EXPECT_EQ(route.by_status(2), 3u);
    EXPECT_EQ(route.latency[2].count, 3u);
    EXPECT_EQ(route.latency[2].buckets[bucket_of(80)], 2u);
    EXPECT_EQ(route.latency[2].sum_us, 80u + 90u + 3000u);
    const SlotTotals& pass = merged[0];
    EXPECT_EQ(pass.by_status(5), 2u);
    EXPECT_EQ(pass.by_cache(CacheLabel::none), 2u);
    EXPECT_EQ(a.gateway_timeouts() + b.gateway_timeouts(), 1u);
}

TEST(WorkerStatsTest, QuantilesInterpolateInsideTheirBucket) {
    Histogram h;
    EXPECT_EQ(h.quantile_ms(0.5), 0.0);
    // 100 requests between 1 ms and 2 ms (bucket le=2000us).
    h.buckets[bucket_of(1500)] = 100;
    h.count = 100;
    h.sum_us = 150'000;
    EXPECT_NEAR(h.quantile_ms(0.5), 1.5, 1e-9);
    EXPECT_NEAR(h.quantile_ms(0.9), 1.9, 1e-9);
    EXPECT_NEAR(h.quantile_ms(1.0), 2.0, 1e-9);
    EXPECT_NEAR(h.mean_ms(), 1.5, 1e-9);
    // One slow outlier in +Inf: p99 still answers (the last finite bound), p50 unchanged.
    h.buckets[kBuckets - 1] = 2;
    h.count = 102;
    EXPECT_LT(h.quantile_ms(0.5), 2.0);
    EXPECT_EQ(h.quantile_ms(0.999), 60'000.0);
}

TEST(WorkerStatsTest, AReaderMergingWhileTheOwnerCountsSeesMonotonicExactTotals) {
    const std::string balance = "balance";
    const Layout layout({balance}, {});
    WorkerStats w(layout);
    constexpr std::uint64_t kRequests = 200'000;
    std::atomic<bool> done{false};
    std::thread owner([&] {
        for (std::uint64_t i = 0; i < kRequests; ++i) w.record(1, 200, CacheLabel::hit, 100us);
        done = true;
    });
    std::uint64_t last = 0;
    const std::vector<const WorkerStats*> workers{&w};
    while (!done) {
        const auto now = merge(layout, workers)[1].total();
        EXPECT_GE(now, last);  // never goes back, never torn
        last = now;
    }
    owner.join();
    const auto final_totals = merge(layout, workers);
    EXPECT_EQ(final_totals[1].total(), kRequests);
    EXPECT_EQ(final_totals[1].latency[2].count, kRequests);
    EXPECT_EQ(final_totals[1].latency[2].sum_us, kRequests * 100);
}

}  // namespace
}  // namespace cacheproxy::stats
