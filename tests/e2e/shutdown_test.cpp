/// SIGTERM: the proxy stops accepting, lets in-flight requests finish, then
/// exits 0.

#include "support/fixtures.hpp"
#include "support/ports.hpp"
#include "support/raw_client.hpp"

#include <gtest/gtest.h>

#include <string>
#include <thread>

namespace cacheproxy::e2e {
namespace {

using Clock = std::chrono::steady_clock;

class Shutdown : public SimulatorTest {
protected:
    static void SetUpTestSuite() { StartSharedSimulator(); }
    static void TearDownTestSuite() { StopSharedSimulator(); }

    /// Waits until the origin has received `n` requests on `route` (5 s at most).
    bool origin_saw(const std::string& route, long long n) {
        const auto deadline = Clock::now() + std::chrono::seconds(5);
        while (Clock::now() < deadline) {
            if (sim().stats().route(route) >= n) return true;
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        return false;
    }
};

TEST_F(Shutdown, SigtermDuringASlowRequestLetsItFinishThenExitsZero) {
    auto proxy = StartProxy();

    // client: GET /slow?s=2
    RawClient c(proxy->port(), std::chrono::seconds(10));
    ASSERT_TRUE(c.connected()) << c.last_error();
    ASSERT_TRUE(c.send(build_request("GET", "/slow?s=2"))) << c.last_error();
    ASSERT_TRUE(origin_saw("other", 1)) << "the slow request never reached the origin";

    // SIGTERM while the origin is still sleeping
    const auto t0 = Clock::now();
    proxy->terminate();

    // client got: the origin's 200 all the same
    Response r = c.read_response();
    EXPECT_EQ(r.status, 200u) << r.head_text();
    EXPECT_NE(r.body.find("\"slept\""), std::string::npos) << r.body;

    // then the proxy exits 0
    auto code = proxy->wait_exit(std::chrono::seconds(10));
    ASSERT_TRUE(code.has_value()) << "still running "
                                  << std::chrono::duration<double>(Clock::now() - t0).count()
                                  << " s after SIGTERM";
    EXPECT_EQ(*code, 0);
}

TEST_F(Shutdown, SigtermWhenIdleExitsZeroPromptly) {
    auto proxy = StartProxy();
    Response warm = http_request(proxy->port(), "GET", "/echo/warm");
    ASSERT_EQ(warm.status, 200u) << warm.head_text();

    proxy->terminate();
    auto code = proxy->wait_exit(std::chrono::seconds(5));
    ASSERT_TRUE(code.has_value()) << "an idle proxy did not exit within 5 s of SIGTERM";
    EXPECT_EQ(*code, 0);
    EXPECT_FALSE(port_accepts(proxy->port())) << "the listen port still accepts after exit";
}

TEST_F(Shutdown, SigtermWithAnIdleKeepAliveClientExitsPromptly) {
    auto proxy = StartProxy();  // limits.drain_timeout: 30s

    // client: one request, then keeps its connection open, idle
    RawClient c(proxy->port());
    ASSERT_TRUE(c.connected()) << c.last_error();
    Response r = c.request("GET", "/echo/idle-client");
    ASSERT_EQ(r.status, 200u) << r.head_text();

    // SIGTERM: nothing is in flight, so there is nothing to wait for
    proxy->terminate();
    auto code = proxy->wait_exit(std::chrono::seconds(5));
    ASSERT_TRUE(code.has_value()) << "an idle keep-alive connection held the proxy past 5 s after SIGTERM";
    EXPECT_EQ(*code, 0);
    EXPECT_TRUE(c.wait_closed(std::chrono::seconds(1))) << "the idle client connection was not closed";
}

}  // namespace
}  // namespace cacheproxy::e2e
