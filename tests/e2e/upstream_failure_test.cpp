/// When the origin fails: nothing listening, too slow, or an answer cut
/// short. The client always learns that it failed (502, 504, or a connection
/// closed before the announced end), never gets a silently short body.

#include "support/fake_upstream.hpp"
#include "support/fixtures.hpp"
#include "support/ports.hpp"
#include "support/raw_client.hpp"

#include <gtest/gtest.h>

#include <string>
#include <thread>

namespace cacheproxy::e2e {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
    return std::chrono::duration<double>(Clock::now() - t0).count();
}

class UpstreamFailure : public SimulatorTest {
protected:
    // The origin closes idle keep-alive connections after 0.5 s here, so that
    // a proxy reusing a pooled connection meets one the origin has closed.
    static void SetUpTestSuite() {
        Simulator::Options o;
        o.keepalive_timeout = 0.5;
        StartSharedSimulator(o);
    }
    static void TearDownTestSuite() { StopSharedSimulator(); }
};

/// No health checks (the harness turns one on explicitly): the scripted origins
/// must only see the test's request.
void no_health_check(ProxyConfig& c) { c.set("upstream.health.path", "\"\""); }

TEST_F(UpstreamFailure, OriginDownGives502WithinASecond) {
    // origin: a port nothing listens on. The active check is opt-in (off by
    // default); it is on here, set explicitly, so this covers a probe whose
    // connect is refused too. transparency_upstream_test.cpp covers it off.
    const std::uint16_t dead = free_port();
    Proxy proxy("http://127.0.0.1:" + std::to_string(dead),
                Proxy::with_config([](ProxyConfig& c) { c.set("upstream.health.path", "/health"); }));

    // client: GET /api/trading/ticker?symbol=BTCUSDT
    const auto t0 = Clock::now();
    Response r = http_request(proxy.port(), "GET", "/api/trading/ticker?symbol=BTCUSDT");
    const double took = seconds_since(t0);

    // client got: 502, fast
    EXPECT_EQ(r.status, 502u) << r.head_text();
    EXPECT_LT(took, 1.0) << "the 502 took " << took << " s";

    // and again on a second request (no state stuck after the first failure)
    const auto t1 = Clock::now();
    Response again = http_request(proxy.port(), "GET", "/echo/again");
    EXPECT_EQ(again.status, 502u) << again.head_text();
    EXPECT_LT(seconds_since(t1), 1.0);
}

TEST_F(UpstreamFailure, OriginSlowerThanResponseTimeoutGives504) {
    auto proxy = StartProxy(Proxy::with_config([](ProxyConfig& c) { c.set("upstream.response_timeout", "1s"); }));

    // client: GET /slow?s=3 (the origin answers after 3 s; the proxy waits 1 s)
    const auto t0 = Clock::now();
    Response r = http_request(proxy->port(), "GET", "/slow?s=3", {}, {}, std::chrono::seconds(6));
    const double took = seconds_since(t0);

    // client got: 504 after about a second
    EXPECT_EQ(r.status, 504u) << r.head_text();
    EXPECT_GE(took, 0.9) << "answered before the response timeout";
    EXPECT_LT(took, 2.5) << "the 504 took " << took << " s";
    // origin saw: the request
    EXPECT_EQ(sim().stats().route("other"), 1);

    // the proxy still serves the next request
    Response next = http_request(proxy->port(), "GET", "/echo/after-504");
    EXPECT_EQ(next.status, 200u) << next.head_text();
}

TEST_F(UpstreamFailure, OriginClosingAnIdleConnectionIsNotAnError) {
    auto proxy = StartProxy();

    // client: GET, then wait past the origin's 0.5 s keep-alive, then GET again
    Response first = http_request(proxy->port(), "GET", "/echo/idle/1");
    ASSERT_EQ(first.status, 200u) << first.head_text();
    std::this_thread::sleep_for(std::chrono::milliseconds(1200));
    Response second = http_request(proxy->port(), "GET", "/echo/idle/2");

    // client got: 200 both times; origin saw both
    EXPECT_EQ(second.status, 200u) << second.head_text();
    EXPECT_EQ(sim().stats().route("echo"), 2);
}

/// The client's view of an answer the origin cut short: it must not look
/// like a complete 2xx with a short body.
void expect_visible_failure(RawClient& c, std::size_t announced) {
    ReadResult rr = c.read_responses(1);
    if (!rr.responses.empty()) {
        // A complete message: only an error status is acceptable (nothing had
        // been sent yet), never the origin's 200 with a short body.
        const Response& r = rr.responses.front();
        EXPECT_EQ(r.status, 502u) << "a complete answer with a short body was relayed as success:\n"
                                  << r.head_text();
        return;
    }
    // Otherwise the connection must end (not hang) before the announced end.
    EXPECT_TRUE(rr.closed) << "the proxy neither finished nor closed the response: " << rr.error;
    EXPECT_FALSE(rr.timed_out) << "the proxy kept the client waiting";
    if (rr.incomplete) {
        EXPECT_LT(rr.incomplete->body.size(), announced) << rr.incomplete->head_text();
    }
}

TEST_F(UpstreamFailure, BodyCutShortOfContentLengthIsNeverSilentlyShort) {
    // origin: announces 100000 bytes, sends 1000, pauses, closes
    FakeUpstream origin({{"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                          "Content-Length: 100000\r\n\r\n" +
                          sim_bytes(1000)}},
                        std::chrono::milliseconds(200));
    Proxy proxy(origin.url(), Proxy::with_config(no_health_check));

    // client: GET /cut/length
    RawClient c(proxy.port());
    ASSERT_TRUE(c.connected()) << c.last_error();
    ASSERT_TRUE(c.send(build_request("GET", "/cut/length"))) << c.last_error();

    // client got: a 502, or a connection closed before byte 100000
    expect_visible_failure(c, 100000);
    EXPECT_GE(origin.request_count(), 1u);
}

TEST_F(UpstreamFailure, ChunkedBodyCutShortIsNeverSilentlyShort) {
    // origin: chunked, two chunks, a pause, a third, then closes without the last chunk
    FakeUpstream origin({{"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
                          "400\r\n" +
                          std::string(0x400, 'a') + "\r\n400\r\n" + std::string(0x400, 'b') + "\r\n"},
                         {"400\r\n" + std::string(0x400, 'c') + "\r\n", std::chrono::milliseconds(100)}},
                        std::chrono::milliseconds(200));
    Proxy proxy(origin.url(), Proxy::with_config(no_health_check));

    // client: GET /cut/chunked
    RawClient c(proxy.port());
    ASSERT_TRUE(c.connected()) << c.last_error();
    ASSERT_TRUE(c.send(build_request("GET", "/cut/chunked"))) << c.last_error();

    // client got: a 502, or a connection closed without the final chunk
    ReadResult rr = c.read_responses(1);
    if (!rr.responses.empty()) {
        EXPECT_EQ(rr.responses[0].status, 502u) << "a cut-short chunked body was relayed as complete:\n"
                                                << rr.responses[0].head_text();
    } else {
        EXPECT_TRUE(rr.closed) << rr.error;
        EXPECT_FALSE(rr.timed_out) << "the proxy kept the client waiting";
        EXPECT_EQ(c.received().find("\r\n0\r\n\r\n"), std::string::npos) << "a final chunk was sent";
    }
    EXPECT_GE(origin.request_count(), 1u);
}

TEST_F(UpstreamFailure, HeaderCutShortGives502) {
    // origin: half a status line and a field, then closes
    FakeUpstream origin({{"HTTP/1.1 200 OK\r\nContent-Type: text/pl"}}, std::chrono::milliseconds(100));
    Proxy proxy(origin.url(), Proxy::with_config(no_health_check));

    // client: GET /cut/header
    const auto t0 = Clock::now();
    Response r = http_request(proxy.port(), "GET", "/cut/header");

    // client got: 502 (nothing had been sent yet)
    EXPECT_EQ(r.status, 502u) << r.head_text();
    EXPECT_LT(seconds_since(t0), 3.0);
    EXPECT_GE(origin.request_count(), 1u);
}

TEST_F(UpstreamFailure, OriginResetMidBodyIsNeverSilentlyShort) {
    // origin: announces 50000 bytes, sends 2000, then resets the connection
    FakeUpstream origin({{"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                          "Content-Length: 50000\r\n\r\n" +
                          sim_bytes(2000)}},
                        std::chrono::milliseconds(200), /*reset=*/true);
    Proxy proxy(origin.url(), Proxy::with_config(no_health_check));

    RawClient c(proxy.port());
    ASSERT_TRUE(c.connected()) << c.last_error();
    ASSERT_TRUE(c.send(build_request("GET", "/cut/reset"))) << c.last_error();
    expect_visible_failure(c, 50000);
}

}  // namespace
}  // namespace cacheproxy::e2e
