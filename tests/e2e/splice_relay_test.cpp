/// With limits.splice_from_bytes set, large pass-through bodies go socket to
/// socket by splice(2) (net/splice.hpp, issue 13's bodies): against a ScriptedOrigin,
///  - a download and an upload arrive byte for byte, and both connections
///    stay usable afterwards (nothing past the body was read; the low-water
///    mark is back to one byte, so a small next request is not held up);
///  - a sender that pauses mid-body is relayed as it sends, not when more comes;
///  - a download cut short closes the client's connection; a stalled upload
///    gets a 408 and the origin never gets a complete request.

#include "support/cache_helpers.hpp"
#include "support/fixtures.hpp"
#include "support/raw_client.hpp"
#include "support/scripted_origin.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <gtest/gtest.h>

#include <poll.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <thread>

namespace cacheproxy::e2e {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Request = ScriptedOrigin::Request;
using Reply = ScriptedOrigin::Reply;

constexpr std::size_t kBig = 3 * 1024 * 1024 + 17;
/// The last piece a pausing sender sends before it waits.
constexpr std::size_t kTail = 10 * 1024;

/// Splicing on (limits.splice_from_bytes; off by default), no health probe.
void splicing_on(ProxyConfig& c) {
    c.set("upstream.health.path", "''");
    c.set("limits.splice_from_bytes", "256KiB");
}

/// Polls `done` every 10 ms for at most `max`.
bool eventually(const std::function<bool()>& done, milliseconds max = seconds(10)) {
    return wait_until(done, max, milliseconds(10));
}

TEST(SpliceRelay, ADownloadArrivesWholeAndBothConnectionsAreReused) {
    const std::string big = binary_body(kBig);
    ScriptedOrigin origin([&](const Request& req, Reply& reply) {
        if (req.path() == "/big") return void(reply.write(raw_response(200, big, {{"Content-Type", "application/octet-stream"}})));
        own_answers()(req, reply);
    });
    Proxy proxy(origin.url(), Proxy::with_config(splicing_on));
    RawClient client(proxy.port(), seconds(10));
    ASSERT_TRUE(client.connected()) << client.last_error();

    // client: GET /big, GET /big, GET /small on one connection; got: each whole, in order
    for (int i = 0; i < 2; ++i) {
        Response r = client.request("GET", "/big");
        ASSERT_EQ(r.status, 200u) << describe(r);
        ASSERT_EQ(r.body.size(), big.size());
        EXPECT_TRUE(r.body == big) << "download " << i << " differs";
    }
    Response small = client.request("GET", "/small");
    EXPECT_EQ(small.status, 200u) << describe(small);
    EXPECT_EQ(small.body, own_body("GET", "/small"));
    // origin saw: the three requests on one pooled connection
    EXPECT_EQ(origin.request_count(), 3u);
    EXPECT_EQ(origin.connection_count(), 1u);
}

TEST(SpliceRelay, AnUploadArrivesWholeAndTheClientConnectionStaysOpen) {
    const std::string big = binary_body(kBig, 2);
    ScriptedOrigin origin(own_answers());
    Proxy proxy(origin.url(), Proxy::with_config(splicing_on));
    RawClient client(proxy.port(), seconds(10));

    // client: POST /upload (3 MiB), then GET /after on the same connection
    Response r = client.request("POST", "/upload", {{"Content-Type", "application/octet-stream"}}, big);
    ASSERT_EQ(r.status, 200u) << describe(r);
    EXPECT_EQ(r.body, own_body("POST", "/upload"));
    Response after = client.request("GET", "/after");
    EXPECT_EQ(after.status, 200u) << describe(after);
    EXPECT_EQ(after.body, own_body("GET", "/after"));
    // origin saw: the whole body, byte for byte, and both requests on one connection
    const auto seen = origin.requests();
    ASSERT_EQ(seen.size(), 2u);
    EXPECT_TRUE(seen[0].complete);
    EXPECT_EQ(seen[0].body.size(), big.size());
    EXPECT_TRUE(seen[0].body == big) << "the upload differs";
    EXPECT_EQ(origin.connection_count(), 1u);
}

TEST(SpliceRelay, ADownloadThatPausesMidwayReachesTheClientAsItComes) {
    // The origin sends the head and 600 KiB, then waits until the client has
    // them before it sends the rest: a relay that waited for more first would
    // never finish.
    const std::string big = binary_body(kBig, 3);
    constexpr std::size_t first = 600 * 1024;
    std::atomic<std::size_t> client_has{0};
    std::atomic<bool> origin_waited_ok{false};
    ScriptedOrigin origin([&](const Request&, Reply& reply) {
        const std::string all = raw_response(200, big, {{"Content-Type", "application/octet-stream"}});
        const std::size_t head = all.size() - big.size();
        // The last 10 KiB on their own, once the proxy has taken the rest and
        // waits again: less than any low-water mark it may wait with.
        if (!reply.write(std::string_view(all).substr(0, head + first - kTail))) return;
        reply.pause(milliseconds(100));
        if (!reply.write(std::string_view(all).substr(head + first - kTail, kTail))) return;
        origin_waited_ok = eventually([&] { return client_has.load() >= first; });
        reply.write(std::string_view(all).substr(head + first));
    });
    Proxy proxy(origin.url(), Proxy::with_config(splicing_on));
    // client: reads as bytes come (a plain socket, 15 s at most), telling the origin how far it is
    boost::asio::io_context io;
    boost::asio::ip::tcp::socket sock(io);
    sock.connect({boost::asio::ip::address_v4::loopback(), proxy.port()});
    boost::asio::write(sock, boost::asio::buffer(build_request("GET", "/paused")));
    std::string got;
    std::size_t body_at = std::string::npos;
    const auto deadline = std::chrono::steady_clock::now() + seconds(15);
    char buf[64 * 1024];
    while (std::chrono::steady_clock::now() < deadline &&
           (body_at == std::string::npos || got.size() < body_at + big.size())) {
        pollfd p{sock.native_handle(), POLLIN, 0};
        if (::poll(&p, 1, 100) <= 0) continue;
        boost::system::error_code ec;
        const std::size_t n = sock.read_some(boost::asio::buffer(buf), ec);
        if (ec) break;
        got.append(buf, n);
        if (body_at == std::string::npos)
            if (const auto at = got.find("\r\n\r\n"); at != std::string::npos) body_at = at + 4;
        if (body_at != std::string::npos) client_has = got.size() - body_at;
    }
    EXPECT_TRUE(origin_waited_ok) << "the first 600 KiB did not reach the client before the rest was sent";
    ASSERT_NE(body_at, std::string::npos) << "no response head";
    EXPECT_EQ(got.compare(0, 15, "HTTP/1.1 200 OK"), 0) << got.substr(0, 200);
    EXPECT_TRUE(got.compare(body_at, std::string::npos, big) == 0)
        << "the body differs (" << got.size() - body_at << " of " << big.size() << " bytes)";
}

TEST(SpliceRelay, AnUploadThatPausesMidwayReachesTheOriginAsItComes) {
    const std::string big = binary_body(kBig, 4);
    constexpr std::size_t first = 600 * 1024;
    ScriptedOrigin origin(own_answers());
    Proxy proxy(origin.url(), Proxy::with_config(splicing_on));
    RawClient client(proxy.port(), seconds(15));
    const std::string request = build_request("POST", "/paused-upload", {{"Content-Type", "application/octet-stream"}}, big);
    const std::size_t head = request.size() - big.size();

    // client: the head and 600 KiB, the last 10 KiB on their own (as in the
    // download above); then waits until the origin has them
    ASSERT_TRUE(client.send(std::string_view(request).substr(0, head + first - kTail)));
    std::this_thread::sleep_for(milliseconds(100));
    ASSERT_TRUE(client.send(std::string_view(request).substr(head + first - kTail, kTail)));
    EXPECT_TRUE(eventually([&] { return origin.bytes_received() >= first; }))
        << "the origin has " << origin.bytes_received() << " bytes; the proxy held the rest back";
    ASSERT_TRUE(client.send(std::string_view(request).substr(head + first)));
    Response r = client.read_response();
    ASSERT_EQ(r.status, 200u) << describe(r);
    const auto seen = origin.requests();
    ASSERT_EQ(seen.size(), 1u);
    EXPECT_TRUE(seen[0].body == big);
}

TEST(SpliceRelay, ADownloadCutShortClosesTheClientConnection) {
    const std::string big = binary_body(kBig, 5);
    ScriptedOrigin origin([&](const Request& req, Reply& reply) {
        if (req.path() != "/cut") return own_answers()(req, reply);
        const std::string all = raw_response(200, big, {{"Content-Type", "application/octet-stream"}});
        reply.write(std::string_view(all).substr(0, all.size() - big.size() / 2));  // half the body
        reply.close();
    });
    Proxy proxy(origin.url(), Proxy::with_config(splicing_on));
    RawClient client(proxy.port(), seconds(10));
    ASSERT_TRUE(client.send(build_request("GET", "/cut")));
    // client got: the head and part of the body, then the connection closed (never a whole response)
    ReadResult got = client.read_until_close();
    EXPECT_TRUE(got.responses.empty()) << "a cut body was answered as complete";
    EXPECT_TRUE(got.closed) << got.error;
    // the proxy goes on serving
    Response next = http_request(proxy.port(), "GET", "/next");
    EXPECT_EQ(next.status, 200u) << describe(next);
}

TEST(SpliceRelay, AStalledUploadGets408AndTheOriginNeverACompleteRequest) {
    const std::string big = binary_body(kBig, 6);
    ScriptedOrigin origin(own_answers());
    Proxy proxy(origin.url(), Proxy::with_config([](ProxyConfig& c) {
                    splicing_on(c);
                    c.set("limits.body_timeout", "1s");
                }));
    RawClient client(proxy.port(), seconds(10));
    const std::string request = build_request("POST", "/stalled", {{"Content-Type", "application/octet-stream"}}, big);
    // client: the head and 1 MiB of the 3 MiB body, then nothing
    ASSERT_TRUE(client.send(std::string_view(request).substr(0, request.size() - big.size() + 1024 * 1024)));
    Response r = client.read_response();
    EXPECT_EQ(r.status, 408u) << describe(r);
    // origin saw: the request begin, never complete, and answered nothing
    ASSERT_TRUE(eventually([&] { return origin.request_count() == 1; }));
    const auto seen = origin.requests();
    ASSERT_EQ(seen.size(), 1u);
    EXPECT_FALSE(seen[0].complete);
}

}  // namespace
}  // namespace cacheproxy::e2e
