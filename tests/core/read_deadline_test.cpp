#include "core/read_deadline.hpp"

#include <gtest/gtest.h>

namespace cacheproxy::app {
namespace {

using namespace std::chrono_literals;

TEST(ReadDeadline, ExpiresOnceWhenItsTimeHasComeAndSaysItFired) {
    const SteadyClock::time_point t0{};  // a made-up clock: the sweep's `now` is all it reads
    ReadDeadline d;
    EXPECT_FALSE(d.expired(t0 + 1000h)) << "nothing armed: never expires";
    d.arm(t0 + 10s);
    EXPECT_FALSE(d.expired(t0 + 9999ms));
    EXPECT_FALSE(d.fired);
    EXPECT_TRUE(d.expired(t0 + 10s));
    EXPECT_TRUE(d.fired);
    EXPECT_FALSE(d.expired(t0 + 11s)) << "once: the sweep cancels the read a single time";
    EXPECT_TRUE(d.fired) << "stays fired until the next arm";
    d.arm(t0 + 20s);
    EXPECT_FALSE(d.fired);
    d.disarm();
    EXPECT_FALSE(d.expired(t0 + 30s)) << "disarmed: the read ended in time";
    EXPECT_FALSE(d.fired);
}

TEST(ReadDeadline, TheTickIsAnEighthOfTheShortestTimeoutWithinBounds) {
    EXPECT_EQ(tick_for(10s, 60s), 250ms) << "the defaults: at most 250 ms late";
    EXPECT_EQ(tick_for(60s, 800ms), 100ms);
    EXPECT_EQ(tick_for(400ms, 60s), 50ms);
    EXPECT_EQ(tick_for(1ms, 1ms), 5ms) << "never busier than every 5 ms";
    EXPECT_EQ(tick_for(24h, 24h), 250ms);
}

}  // namespace
}  // namespace cacheproxy::app
