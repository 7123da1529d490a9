/// Issue 13, the upstream side of "drop-in for the whole webapp", against a
/// ScriptedOrigin (a thread per connection, so "the app's event loop" is a
/// mutex the test's handlers share):
///  - long-lived responses (event streams) do not exhaust the upstream pool:
///    upstream.max_connections bounds connections in use (default 4096),
///    max_idle_connections those kept; the active cap still gives a 503;
///  - health from evidence: the active check is off unless a path is set; a
///    probe answered 404, or not answered in time because the app's loop is
///    blocked, never turns requests into 502s; a refused connect gives a 502
///    at once.

#include "support/cache_helpers.hpp"
#include "support/fixtures.hpp"
#include "support/ports.hpp"
#include "support/raw_client.hpp"
#include "support/scripted_origin.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace cacheproxy::e2e {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
using std::chrono::seconds;
using Request = ScriptedOrigin::Request;
using Reply = ScriptedOrigin::Reply;

/// The shipped defaults for the pool and the health check (the harness sets
/// max_connections: 50 and a /health probe; these tests are about the defaults).
void shipped_upstream_defaults(ProxyConfig& c) {
    c.erase("upstream.max_connections");
    c.erase("upstream.health");
}

/// Polls `done` every 20 ms for at most `max`.
template <class F>
bool eventually(F done, milliseconds max = seconds(10)) {
    const auto deadline = Clock::now() + max;
    while (!done()) {
        if (Clock::now() >= deadline) return false;
        std::this_thread::sleep_for(milliseconds(20));
    }
    return true;
}

/// /events: an event stream that sends one event and stays open until the
/// proxy closes it (/events?short: ends after 3 s); anything else: its own answer.
ScriptedOrigin::Handler streams_and_answers() {
    return [](const Request& req, Reply& reply) {
        if (req.path() != "/events") return own_answers()(req, reply);
        reply.write("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
                    "Transfer-Encoding: chunked\r\n\r\n"
                    "d\r\ndata: hello\n\n\r\n");
        if (reply.hang(req.target == "/events?short" ? seconds(3) : seconds(60))) return;
        reply.write("0\r\n\r\n");
    };
}

/// `n` clients, each with GET `target` sent.
std::vector<std::unique_ptr<RawClient>> open_streams(std::uint16_t port, int n, const std::string& target = "/events") {
    std::vector<std::unique_ptr<RawClient>> clients;
    for (int i = 0; i < n; ++i) {
        auto c = std::make_unique<RawClient>(port, seconds(5));
        EXPECT_TRUE(c->connected()) << c->last_error();
        EXPECT_TRUE(c->send(build_request("GET", target, {{"Accept", "text/event-stream"}}))) << c->last_error();
        clients.push_back(std::move(c));
    }
    return clients;
}

std::size_t count_in(const std::vector<std::string>& connections, const std::string& needle) {
    std::size_t n = 0;
    for (const auto& bytes : connections)
        for (auto at = bytes.find(needle); at != std::string::npos; at = bytes.find(needle, at + 1)) ++n;
    return n;
}

// ------------------------------------------------------------------ streams vs the pool

TEST(TransparencyUpstream, AnUnrelatedRequestIsAnsweredWhileSixtyStreamsAreOpen) {
    // 60 users with the terminal open: more streams than the old 50-connection
    // cap and than the 32 idle connections kept.
    constexpr int kStreams = 60;
    ScriptedOrigin origin(streams_and_answers());
    Proxy proxy(origin.url(), Proxy::with_config(shipped_upstream_defaults));

    auto streams = open_streams(proxy.port(), kStreams);
    ASSERT_TRUE(origin.wait_requests(kStreams, seconds(15)))
        << "only " << origin.request_count() << " of " << kStreams << " streams reached the origin";
    // Every stream holds its upstream connection now.
    ASSERT_EQ(origin.in_progress(), static_cast<std::size_t>(kStreams));

    // client: an unrelated GET; got: its own 200 (not a 503 after waiting for a connection)
    Response r = http_request(proxy.port(), "GET", "/page", {}, {}, seconds(10));
    EXPECT_EQ(r.status, 200u) << describe(r);
    EXPECT_EQ(r.body, own_body("GET", "/page"));
    // and the streams are all still open (the origin counts /page done just
    // after it has sent the answer: the count may still be 61 for a moment)
    EXPECT_TRUE(wait_until([&] { return origin.in_progress() == static_cast<std::size_t>(kStreams); }, seconds(2)))
        << origin.in_progress() << " requests in progress at the origin, " << kStreams << " streams";
    // a stream's client has its first event
    ReadResult first = [&] {
        streams.front()->set_timeout(milliseconds(500));
        return streams.front()->read_responses(1);
    }();
    ASSERT_TRUE(first.incomplete.has_value()) << first.error;
    EXPECT_EQ(first.incomplete->status, 200u);
    EXPECT_NE(streams.front()->received().find("data: hello"), std::string::npos);
}

TEST(TransparencyUpstream, TheActiveCapStillGives503WhenReallyHit) {
    ScriptedOrigin origin(streams_and_answers());
    Proxy proxy(origin.url(), Proxy::with_config([](ProxyConfig& c) {
                    shipped_upstream_defaults(c);
                    c.set("threads", "1");
                    c.set("upstream.max_connections", "2");
                }));
    auto streams = open_streams(proxy.port(), 1);
    auto ending = open_streams(proxy.port(), 1, "/events?short");
    ASSERT_TRUE(origin.wait_requests(2, seconds(10)));

    // client: a third request while both connections are in use; got: 503 after connect_timeout (1 s)
    Response r = http_request(proxy.port(), "GET", "/page", {}, {}, seconds(10));
    EXPECT_EQ(r.status, 503u) << describe(r);
    EXPECT_EQ(origin.count("/page"), 0u);

    // once a stream ends (after 3 s), requests get through again
    ReadResult ended = ending.front()->read_responses(1);
    ASSERT_EQ(ended.responses.size(), 1u) << ended.error;
    Response after = http_request(proxy.port(), "GET", "/page", {}, {}, seconds(10));
    EXPECT_EQ(after.status, 200u) << describe(after);
}

// ------------------------------------------------------------------ health from evidence

TEST(TransparencyUpstream, AnAppWithoutAHealthPathIsNeverProbedByDefault) {
    ScriptedOrigin origin(own_answers());
    Proxy proxy(origin.url(), Proxy::with_config([](ProxyConfig& c) {
                    shipped_upstream_defaults(c);
                    c.set("upstream.health.interval", "100ms");  // would probe ~10 times below, were it on
                }));
    // client: 10 GETs over about a second; got: 200 each
    for (int i = 0; i < 10; ++i) {
        const std::string target = "/app/" + std::to_string(i);
        Response r = http_request(proxy.port(), "GET", target, {}, {}, seconds(5));
        EXPECT_EQ(r.status, 200u) << describe(r);
        EXPECT_EQ(r.body, own_body("GET", target));
        std::this_thread::sleep_for(milliseconds(100));
    }
    // origin saw: the 10 requests and no probe at all
    EXPECT_EQ(origin.request_count(), 10u);
    EXPECT_EQ(count_in(origin.connection_bytes(), "/health"), 0u);
    // and the admin says ready
    EXPECT_EQ(http_request(proxy.admin_port(), "GET", "/readyz").status, 200u);
}

TEST(TransparencyUpstream, AProbeAnswered404NeverTurnsRequestsInto502) {
    // The app has no such path: its probe gets a 404 every time.
    ScriptedOrigin origin([](const Request& req, Reply& reply) {
        if (req.path() == "/no-health-here") return void(reply.write(raw_response(404, "{\"detail\":\"Not Found\"}")));
        own_answers()(req, reply);
    });
    Proxy proxy(origin.url(), Proxy::with_config([](ProxyConfig& c) {
                    shipped_upstream_defaults(c);
                    c.set("upstream.health.path", "/no-health-here");
                    c.set("upstream.health.interval", "100ms");
                    c.set("upstream.health.timeout", "500ms");
                }));
    ASSERT_TRUE(eventually([&] { return origin.count("/no-health-here") >= 3; })) << "the probe never ran";

    // client: 10 GETs; got: 200 each, never a 502
    for (int i = 0; i < 10; ++i) {
        const std::string target = "/app/" + std::to_string(i);
        Response r = http_request(proxy.port(), "GET", target, {}, {}, seconds(5));
        EXPECT_EQ(r.status, 200u) << describe(r);
    }
    EXPECT_EQ(origin.count("/app/9"), 1u);
    // the failing probe is reported (not ready), not acted on
    Response ready = http_request(proxy.admin_port(), "GET", "/readyz");
    EXPECT_EQ(ready.status, 503u) << describe(ready);
}

TEST(TransparencyUpstream, AnEventLoopBlockedLongerThanTheProbeTimeoutStillAnswersEveryRequest) {
    // One handler blocks the app's single event loop for 3 s; the probe
    // (500 ms timeout) fails meanwhile; 8 concurrent requests just wait, as
    // they would without the proxy.
    std::mutex event_loop;
    ScriptedOrigin origin([&](const Request& req, Reply& reply) {
        std::lock_guard<std::mutex> running(event_loop);
        if (req.path() == "/block") reply.pause(seconds(3));
        own_answers()(req, reply);
    });
    Proxy proxy(origin.url(), Proxy::with_config([](ProxyConfig& c) {
                    shipped_upstream_defaults(c);
                    c.set("upstream.health.path", "/probe");
                    c.set("upstream.health.interval", "200ms");
                    c.set("upstream.health.timeout", "500ms");
                }));
    ASSERT_TRUE(eventually([&] { return origin.count("/probe") >= 1; })) << "the probe never ran";

    Response blocked;
    std::thread blocker([&] { blocked = http_request(proxy.port(), "GET", "/block", {}, {}, seconds(15)); });
    ASSERT_TRUE(eventually([&] { return origin.count("/block") == 1; }));
    // Once the probe has failed (500 ms into the block), the requests come:
    // a probe failure that marked the upstream down would 502 them at once.
    ASSERT_TRUE(eventually([&] { return proxy.log().find("failed its health check") != std::string::npos; },
                           milliseconds(2500)))
        << "the probe did not fail while the loop was blocked";
    constexpr int kConcurrent = 8;
    std::vector<Response> answers(kConcurrent);
    std::vector<std::thread> clients;
    for (int i = 0; i < kConcurrent; ++i)
        clients.emplace_back([&, i] {
            answers[i] = http_request(proxy.port(), "GET", "/work/" + std::to_string(i), {}, {}, seconds(15));
        });
    for (auto& t : clients) t.join();
    blocker.join();

    // clients got: every answer, none a 502
    EXPECT_EQ(blocked.status, 200u) << describe(blocked);
    for (int i = 0; i < kConcurrent; ++i) {
        EXPECT_EQ(answers[i].status, 200u) << i << ": " << describe(answers[i]);
        EXPECT_EQ(answers[i].body, own_body("GET", "/work/" + std::to_string(i)));
    }
}

TEST(TransparencyUpstream, ARefusedUpstreamGives502AtOnce) {
    // origin: a port nothing listens on; the shipped health settings (no
    // probe), and a connect timeout far past the client's own 5 s: a proxy
    // that waited for it (or for a retry, or a health verdict) would leave
    // the client without an answer, and a timeout would be a 504.
    const std::uint16_t dead = free_port();
    Proxy proxy("http://127.0.0.1:" + std::to_string(dead), Proxy::with_config([](ProxyConfig& c) {
                    shipped_upstream_defaults(c);
                    c.set("upstream.connect_timeout", "60s");
                }));
    for (int i = 0; i < 3; ++i) {
        Response r = http_request(proxy.port(), "GET", "/page", {}, {}, seconds(5));
        EXPECT_EQ(r.status, 502u) << describe(r);
    }
    EXPECT_EQ(http_request(proxy.admin_port(), "GET", "/readyz").status, 503u);
}

}  // namespace
}  // namespace cacheproxy::e2e
