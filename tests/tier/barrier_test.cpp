#include "tier/barrier.hpp"

#include <gtest/gtest.h>

namespace cacheproxy::tier {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
const Clock::time_point t0 = Clock::time_point{} + std::chrono::hours(1);

TEST(BarrierBatcher, AReadArrivingWhileAPingIsInFlightWaitsForTheNext) {
    BarrierBatcher<int> b;
    EXPECT_TRUE(b.add(1, t0));                    // sends PING #1
    EXPECT_FALSE(b.add(2, t0 + milliseconds(1)));  // #1 may predate read 2: waits for #2
    EXPECT_FALSE(b.add(3, t0 + milliseconds(2)));
    bool next = false;
    auto done = b.on_pong(t0 + milliseconds(3), next);
    EXPECT_EQ(done, std::vector<int>{1});
    EXPECT_TRUE(next);  // #2 goes out now, for 2 and 3
    EXPECT_FALSE(b.add(4, t0 + milliseconds(4)));
    done = b.on_pong(t0 + milliseconds(5), next);
    EXPECT_EQ(done, (std::vector<int>{2, 3}));
    EXPECT_TRUE(next);
    done = b.on_pong(t0 + milliseconds(6), next);
    EXPECT_EQ(done, std::vector<int>{4});
    EXPECT_FALSE(next);
    EXPECT_FALSE(b.in_flight());
}

TEST(BarrierBatcher, AFailureFailsEveryWaiterAndForgetsFreshness) {
    BarrierBatcher<int> b;
    b.add(1, t0);
    bool next = false;
    b.on_pong(t0 + milliseconds(1), next);
    EXPECT_TRUE(b.fresh(t0 + milliseconds(4), milliseconds(5)));
    b.add(2, t0 + milliseconds(2));
    b.add(3, t0 + milliseconds(2));  // queued: 2 is in flight
    const auto failed = b.on_failure();
    EXPECT_EQ(failed.size(), 2u);
    EXPECT_FALSE(b.fresh(t0 + milliseconds(3), milliseconds(5)));
    EXPECT_TRUE(b.add(4, t0 + milliseconds(3)));  // a new PING: none in flight
}

TEST(BarrierBatcher, TheLagBoundCountsFromWhenThePingWasSent) {
    BarrierBatcher<int> b;
    EXPECT_FALSE(b.fresh(t0, milliseconds(5)));  // nothing completed yet
    ASSERT_TRUE(b.start_background(t0));
    EXPECT_FALSE(b.start_background(t0 + milliseconds(1)));  // one in flight at a time
    bool next = false;
    b.on_pong(t0 + milliseconds(3), next);  // answered 3 ms after it was sent
    EXPECT_TRUE(b.fresh(t0 + milliseconds(5), milliseconds(5)));
    EXPECT_FALSE(b.fresh(t0 + milliseconds(6), milliseconds(5)));  // sent more than H before
    EXPECT_FALSE(b.fresh(t0 + milliseconds(1), milliseconds(0)));  // H = 0: strict, never fresh
}

}  // namespace
}  // namespace cacheproxy::tier
