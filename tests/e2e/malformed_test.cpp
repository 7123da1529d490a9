/// Malformed and ambiguous requests: the proxy answers them itself (400, 431
/// or 413), closes where the contract says so, and the origin never sees them.
/// Request smuggling lives in these corners: each case is one raw request.

#include "support/fixtures.hpp"
#include "support/raw_client.hpp"

#include <gtest/gtest.h>

#include <string>
#include <thread>

namespace cacheproxy::e2e {
namespace {

class Malformed : public SimulatorTest {
protected:
    static void SetUpTestSuite() { StartSharedSimulator(); }
    static void TearDownTestSuite() { StopSharedSimulator(); }

    /// Requests that reached the origin, the proxy's own health checks aside.
    long long origin_requests() { return sim().stats().non_health_total(); }
};

struct BadRequest {
    const char* name;
    std::string raw;
};

std::ostream& operator<<(std::ostream& os, const BadRequest& b) { return os << b.name; }

const std::string kHost = "Host: localhost\r\n";
const std::string kChunkedBody = "5\r\nhello\r\n0\r\n\r\n";

std::vector<BadRequest> bad_requests() {
    return {
        {"TeChunkedTwiceInOneLine",
         "POST /echo/m HTTP/1.1\r\n" + kHost + "Transfer-Encoding: chunked, chunked\r\n\r\n" + kChunkedBody},
        {"TeXchunked", "POST /echo/m HTTP/1.1\r\n" + kHost + "Transfer-Encoding: xchunked\r\n\r\n" + kChunkedBody},
        {"TeGzipAlone", "POST /echo/m HTTP/1.1\r\n" + kHost + "Transfer-Encoding: gzip\r\n\r\nhello"},
        {"TeChunkedOnTwoLines",
         "POST /echo/m HTTP/1.1\r\n" + kHost + "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n" +
             kChunkedBody},
        {"TeOnHttp10", "POST /echo/m HTTP/1.0\r\n" + kHost + "Transfer-Encoding: chunked\r\n\r\n" + kChunkedBody},
        {"TeThenContentLength",
         "POST /echo/m HTTP/1.1\r\n" + kHost + "Transfer-Encoding: chunked\r\nContent-Length: 15\r\n\r\n" +
             kChunkedBody},
        {"ContentLengthThenTe",
         "POST /echo/m HTTP/1.1\r\n" + kHost + "Content-Length: 15\r\nTransfer-Encoding: chunked\r\n\r\n" +
             kChunkedBody},
        {"ContentLengthList", "POST /echo/m HTTP/1.1\r\n" + kHost + "Content-Length: 5, 5\r\n\r\nhello"},
        {"ContentLengthOnTwoLines",
         "POST /echo/m HTTP/1.1\r\n" + kHost + "Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello"},
        {"ChunkExtensionTooLong",
         "POST /echo/m HTTP/1.1\r\n" + kHost + "Transfer-Encoding: chunked\r\n\r\n5;ext=" + std::string(300, 'x') +
             "\r\nhello\r\n0\r\n\r\n"},
        {"ChunkedTrailers",
         "POST /echo/m HTTP/1.1\r\n" + kHost + "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n"
                                               "X-Trailer: sneaky\r\n\r\n"},
        {"ObsFoldSpace", "GET /echo/m HTTP/1.1\r\n" + kHost + "X-Folded: first\r\n second\r\n\r\n"},
        {"ObsFoldTab", "GET /echo/m HTTP/1.1\r\n" + kHost + "X-Folded: first\r\n\tsecond\r\n\r\n"},
        {"MissingHost", "GET /echo/m HTTP/1.1\r\nX-Other: 1\r\n\r\n"},
        {"TwoHostLines", "GET /echo/m HTTP/1.1\r\nHost: localhost\r\nHost: evil.example\r\n\r\n"},
        {"FragmentInTarget", "GET /echo/m#frag HTTP/1.1\r\n" + kHost + "\r\n"},
        {"NonAsciiByteInTarget", "GET /echo/caf\xE9 HTTP/1.1\r\n" + kHost + "\r\n"},
        {"ConnectionNamesHost", "GET /echo/m HTTP/1.1\r\n" + kHost + "Connection: Host\r\n\r\n"},
        {"ConnectionNamesContentLength",
         "POST /echo/m HTTP/1.1\r\n" + kHost + "Content-Length: 5\r\nConnection: Content-Length\r\n\r\nhello"},
        {"ConnectionNamesAuthorization",
         "GET /echo/m HTTP/1.1\r\n" + kHost + "Authorization: Bearer user1\r\nConnection: Authorization\r\n\r\n"},
    };
}

class MalformedRequest : public Malformed, public ::testing::WithParamInterface<BadRequest> {};

TEST_P(MalformedRequest, Gets400AndCloseAndNeverReachesTheOrigin) {
    auto proxy = StartProxy();
    const BadRequest& bad = GetParam();

    // client: the raw request
    RawClient c(proxy->port());
    ASSERT_TRUE(c.connected()) << c.last_error();
    ASSERT_TRUE(c.send(bad.raw)) << c.last_error();

    // client got: 400, then the connection closes
    Response r = c.read_response();
    EXPECT_EQ(r.status, 400u) << r.head_text() << "\n" << r.body.substr(0, 300);
    std::string extra;
    EXPECT_TRUE(c.wait_closed(std::chrono::seconds(2), &extra)) << "the proxy kept the connection open";
    EXPECT_TRUE(extra.empty()) << "more bytes after the 400: " << extra.substr(0, 300);

    // origin saw: nothing
    EXPECT_EQ(origin_requests(), 0) << sim().stats().json;
}

INSTANTIATE_TEST_SUITE_P(Cases, MalformedRequest, ::testing::ValuesIn(bad_requests()),
                         [](const ::testing::TestParamInfo<BadRequest>& info) { return info.param.name; });

// --------------------------------------------------------------- size limits

TEST_F(Malformed, HeaderSectionOverLimitGets431) {
    auto proxy = StartProxy();  // limits.max_header_bytes: 16KiB

    // control: a 12 kB field fits and reaches the origin
    Response ok = http_request(proxy->port(), "GET", "/echo/big-ok", {{"X-Big", std::string(12000, 'a')}});
    ASSERT_EQ(ok.status, 200u) << ok.head_text();
    auto seen = parse_echo(ok.body);
    ASSERT_TRUE(seen) << ok.body;
    EXPECT_EQ(seen->header("X-Big").value_or("").size(), 12000u);
    sim().reset();

    // client: one 20 kB field -> 431, the origin sees nothing
    Response big = http_request(proxy->port(), "GET", "/echo/big", {{"X-Big", std::string(20000, 'a')}});
    EXPECT_EQ(big.status, 431u) << big.head_text() << "\n" << big.body.substr(0, 300);

    // client: 600 small fields, 24 kB in all -> 431, the origin sees nothing
    Headers many;
    for (int i = 0; i < 600; ++i) many.emplace_back("X-Field-" + std::to_string(i), std::string(25, 'b'));
    Response lots = http_request(proxy->port(), "GET", "/echo/many", many);
    EXPECT_EQ(lots.status, 431u) << lots.head_text() << "\n" << lots.body.substr(0, 300);

    EXPECT_EQ(origin_requests(), 0) << sim().stats().json;
}

TEST_F(Malformed, DeclaredBodyOverLimitGets413) {
    // A pass-through body has no limit by default (it streams, as direct): set one.
    auto proxy = StartProxy(Proxy::Options{.configure = [](ProxyConfig& c) {
        c.set("limits.max_pass_through_body_bytes", "1MiB");
    }});

    // client: a head announcing 1.5 MiB (the body is not sent: the length alone is too big)
    RawClient c(proxy->port());
    ASSERT_TRUE(c.connected()) << c.last_error();
    ASSERT_TRUE(c.send("POST /echo_raw HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain\r\n"
                       "Content-Length: 1572864\r\n\r\n"))
        << c.last_error();

    // client got: 413; origin saw: nothing
    Response r = c.read_response();
    EXPECT_EQ(r.status, 413u) << r.head_text() << "\n" << r.body.substr(0, 300);
    EXPECT_EQ(origin_requests(), 0) << sim().stats().json;

    // control: a 1000000-byte body fits and is echoed whole
    const std::string fits(1000000, 'z');
    Response ok = http_request(proxy->port(), "POST", "/echo_raw", {{"Content-Type", "text/plain"}}, fits);
    EXPECT_EQ(ok.status, 200u) << "a body under the limit was refused: " << ok.head_text();
    EXPECT_EQ(ok.body.size(), fits.size());
}

TEST_F(Malformed, ChunkedBodyOverLimitGets413) {
    auto proxy = StartProxy(Proxy::Options{.configure = [](ProxyConfig& c) {
        c.set("limits.max_pass_through_body_bytes", "1MiB");
    }});

    // client: a chunked body, 64 KiB per chunk, up to 1.5 MiB, stopping as soon as the proxy answers
    RawClient c(proxy->port());
    ASSERT_TRUE(c.connected()) << c.last_error();
    ASSERT_TRUE(c.send("POST /echo_raw HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain\r\n"
                       "Transfer-Encoding: chunked\r\n\r\n"))
        << c.last_error();
    const std::string chunk = "10000\r\n" + std::string(0x10000, 'q') + "\r\n";
    for (int i = 0; i < 24; ++i) {
        // an answer already waiting? stop sending so that it is not lost to a reset
        if (c.readable(std::chrono::milliseconds(0))) break;
        if (!c.send(chunk)) break;  // the proxy may stop reading or close once it has answered
    }
    if (!c.readable(std::chrono::milliseconds(0))) c.send("0\r\n\r\n");
    c.send("0\r\n\r\n");

    // client got: 413
    Response r = c.read_response();
    EXPECT_EQ(r.status, 413u) << r.head_text() << "\n" << r.body.substr(0, 300);
}

// ------------------------------------------ header and idle timeouts (the worker's deadline sweep)

/// header_timeout and idle_timeout short, to be seen at work.
Proxy::Options short_timeouts() {
    return Proxy::with_config([](ProxyConfig& c) {
        c.set("limits.header_timeout", "600ms");
        c.set("limits.idle_timeout", "600ms");
    });
}

TEST_F(Malformed, AHeaderDribbledPastHeaderTimeoutGets408AndNeverReachesTheOrigin) {
    auto proxy = StartProxy(short_timeouts());
    RawClient c(proxy->port(), std::chrono::seconds(5));
    ASSERT_TRUE(c.connected()) << c.last_error();
    const auto t0 = std::chrono::steady_clock::now();
    // client: a field every 100 ms, never the blank line (slowloris), for at most 4 s
    ASSERT_TRUE(c.send("GET /echo/slow HTTP/1.1\r\nHost: localhost\r\n")) << c.last_error();
    for (int i = 0; i < 40 && !c.readable(std::chrono::milliseconds(100)); ++i)
        if (!c.send("X-Slow-" + std::to_string(i) + ": 1\r\n")) break;
    Response r = c.read_response();
    const auto waited = std::chrono::steady_clock::now() - t0;
    EXPECT_EQ(r.status, 408u) << r.head_text() << " " << r.error;
    EXPECT_GE(waited, std::chrono::milliseconds(600)) << "answered before header_timeout had passed";
    EXPECT_TRUE(c.wait_closed(std::chrono::seconds(3))) << "the connection stayed open after the 408";
    EXPECT_EQ(origin_requests(), 0) << sim().stats().json;
}

TEST_F(Malformed, AnIdleConnectionIsClosedAfterIdleTimeoutWithoutAnAnswer) {
    auto proxy = StartProxy(short_timeouts());
    // client: connects, sends nothing -> closed after idle_timeout, no bytes sent to it
    RawClient silent(proxy->port(), std::chrono::seconds(5));
    ASSERT_TRUE(silent.connected()) << silent.last_error();
    std::string extra;
    EXPECT_TRUE(silent.wait_closed(std::chrono::seconds(4), &extra)) << "a silent connection stayed open";
    EXPECT_EQ(extra, "") << "a connection that sent nothing got an answer";

    // client: a keep-alive request, answered; within idle_timeout a second one is answered too; then
    // silence -> closed
    RawClient c(proxy->port(), std::chrono::seconds(5));
    ASSERT_TRUE(c.connected()) << c.last_error();
    EXPECT_EQ(c.request("GET", "/echo/first").status, 200u);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    EXPECT_EQ(c.request("GET", "/echo/second").status, 200u) << "closed before idle_timeout";
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_TRUE(c.wait_closed(std::chrono::seconds(4))) << "an idle keep-alive connection stayed open";
    EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(500)) << "closed before idle_timeout";
}

}  // namespace
}  // namespace cacheproxy::e2e
