/// Issue 11, item 9: policy gaps nginx closes. Look-alike framing fields
/// with underscores are not forwarded; Content-Length is forwarded in its
/// canonical form; at the connection cap a new client gets a 503 rather than
/// a bare close; on SIGTERM, connections already made are answered, not reset.

#include "support/cache_helpers.hpp"
#include "support/fixtures.hpp"
#include "support/json_lite.hpp"
#include "support/raw_client.hpp"
#include "support/scripted_origin.hpp"

#include <gtest/gtest.h>

#include <csignal>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <signal.h>

namespace cacheproxy::e2e {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

void no_health_check(ProxyConfig& c) { c.set("upstream.health.path", "\"\""); }

/// The fields of `req` that, with '_' read as '-', are named `name` (lower case).
std::vector<std::pair<std::string, std::string>> fields_like(const ScriptedOrigin::Request& req,
                                                             const std::string& name) {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& [k, v] : req.headers)
        if (dash_lower(k) == name) out.emplace_back(k, v);
    return out;
}

// ------------------------------------------------------------------ look-alikes

TEST(HardeningPolicy, UnderscoreLookAlikeFramingFieldsNeverReachTheOrigin) {
    ScriptedOrigin origin(own_answers());
    Proxy proxy(origin.url(), Proxy::with_config(no_health_check));

    // client: GET /echo/u with Transfer_Encoding: chunked and Content_Length: 5 (no body)
    Response get = http_request(proxy.port(), "GET", "/echo/u",
                                {{"Transfer_Encoding", "chunked"}, {"Content_Length", "5"}}, {}, seconds(3));
    // client got: 200, its own answer
    EXPECT_EQ(get.status, 200u) << get.head_text();
    EXPECT_EQ(get.body, own_body("GET", "/echo/u"));

    // client: POST /echo/u, Content-Length: 5 + "hello", with both look-alikes too
    Response post = http_request(proxy.port(), "POST", "/echo/u",
                                 {{"Content-Length", "5"}, {"Transfer_Encoding", "chunked"}, {"Content_Length", "7"}},
                                 "hello", seconds(3));
    EXPECT_EQ(post.status, 200u) << post.head_text();
    EXPECT_EQ(post.body, own_body("POST", "/echo/u"));

    // origin saw: no field that reads as content-length / transfer-encoding with '_' as '-',
    // apart from the POST's one real Content-Length: 5, and the POST's 5 bytes
    const auto seen = origin.requests();
    ASSERT_EQ(seen.size(), 2u);
    const auto& g = seen[0];
    EXPECT_TRUE(fields_like(g, "transfer-encoding").empty()) << "GET:\n" << g.headers_text();
    EXPECT_TRUE(fields_like(g, "content-length").empty()) << "GET:\n" << g.headers_text();
    const auto& p = seen[1];
    EXPECT_TRUE(fields_like(p, "transfer-encoding").empty()) << "POST:\n" << p.headers_text();
    const auto lengths = fields_like(p, "content-length");
    ASSERT_EQ(lengths.size(), 1u) << "POST:\n" << p.headers_text();
    EXPECT_TRUE(iequals(lengths[0].first, "Content-Length")) << "POST:\n" << p.headers_text();
    EXPECT_EQ(lengths[0].second, "5");
    EXPECT_EQ(p.body, "hello");
}

TEST(HardeningPolicy, ContentLengthIsForwardedInCanonicalForm) {
    ScriptedOrigin origin(own_answers());
    Proxy proxy(origin.url(), Proxy::with_config(no_health_check));

    // client: POST /echo/cl with Content-Length: 010 and a 10-byte body
    RawClient c(proxy.port(), seconds(3));
    ASSERT_TRUE(c.connected()) << c.last_error();
    ASSERT_TRUE(c.send("POST /echo/cl HTTP/1.1\r\nHost: localhost\r\nContent-Length: 010\r\n\r\n0123456789"));
    Response r = c.read_response();
    // client got: 200
    EXPECT_EQ(r.status, 200u) << r.head_text();

    // origin saw: exactly one Content-Length, "10", and the 10 bytes
    const auto seen = origin.requests();
    ASSERT_EQ(seen.size(), 1u);
    EXPECT_EQ(seen[0].header_values("Content-Length"), std::vector<std::string>{"10"}) << seen[0].headers_text();
    EXPECT_EQ(seen[0].body, "0123456789");
    const auto bytes = origin.connection_bytes();
    ASSERT_FALSE(bytes.empty());
    EXPECT_EQ(bytes[0].find("Content-Length: 010"), std::string::npos) << bytes[0];
}

// ------------------------------------------------------------------ connection cap

TEST(HardeningPolicy, AtTheConnectionCapANewClientGets503ThenClose) {
    ScriptedOrigin origin(own_answers());
    Proxy proxy(origin.url(), Proxy::with_config([](ProxyConfig& c) {
                    no_health_check(c);
                    c.set("limits.max_client_connections", "2");
                }));

    // The harness's readiness probe (a connect, then a close) is a client
    // connection too until the worker that accepted it reads its end: wait
    // for it, or it may count against the cap when idle2 reaches another worker.
    ASSERT_TRUE(wait_until(
        [&] {
            const auto stats = parse_json(http_request(proxy.admin_port(), "GET", "/stats").body);
            return stats && (*stats)["totals"]["client_connections"].as_int() == 0;
        },
        seconds(5)))
        << "the readiness probe's connection stayed open";

    // clients: two idle connections, accepted by the proxy
    RawClient idle1(proxy.port(), seconds(3)), idle2(proxy.port(), seconds(3));
    ASSERT_TRUE(idle1.connected()) << idle1.last_error();
    ASSERT_TRUE(idle2.connected()) << idle2.last_error();
    std::this_thread::sleep_for(milliseconds(300));

    // client: a third connection (it sends nothing)
    RawClient third(proxy.port(), seconds(3));
    ASSERT_TRUE(third.connected()) << third.last_error();
    // client got: an HTTP 503, then the connection closes
    Response r = third.read_response();
    EXPECT_EQ(r.status, 503u) << "at the cap: " << r.head_text() << " (received: " << third.received().substr(0, 200)
                              << ")";
    EXPECT_TRUE(third.wait_closed(seconds(2))) << "the refused connection was left open";

    // the connections under the cap are still served
    Response ok = idle1.request("GET", "/echo/under-cap");
    EXPECT_EQ(ok.status, 200u) << ok.head_text();
    EXPECT_EQ(ok.body, own_body("GET", "/echo/under-cap"));
}

// ------------------------------------------------------------------ draining

/// One round: a proxy with `threads` workers is stopped, `connections`
/// connections each send a complete GET, then SIGTERM and SIGCONT. Every one
/// must be answered, then the proxy exits 0.
void drain_round(ScriptedOrigin& origin, int round, int threads = 1, int connections = 5) {
    Proxy proxy(origin.url(), Proxy::with_config([threads](ProxyConfig& c) {
                    no_health_check(c);
                    c.set("threads", std::to_string(threads));
                    c.set("limits.drain_timeout", "10s");
                }));
    const pid_t pid = proxy.process().pid();

    // the proxy is stopped: connections wait in the kernel's accept queue, unread
    ASSERT_EQ(::kill(pid, SIGSTOP), 0);
    std::vector<std::unique_ptr<RawClient>> clients;
    for (int i = 0; i < connections; ++i) {
        auto c = std::make_unique<RawClient>(proxy.port(), seconds(5));
        ASSERT_TRUE(c->connected()) << c->last_error();
        // client: a complete GET on each
        const std::string target = "/drain/" + std::to_string(round) + "/" + std::to_string(i);
        ASSERT_TRUE(c->send(build_request("GET", target))) << c->last_error();
        clients.push_back(std::move(c));
    }
    std::this_thread::sleep_for(milliseconds(100));
    // SIGTERM while stopped, then let it run
    ASSERT_EQ(::kill(pid, SIGTERM), 0);
    ASSERT_EQ(::kill(pid, SIGCONT), 0);

    // client got: every one a complete 200 with its own answer (Connection: close is fine), none reset
    for (int i = 0; i < connections; ++i) {
        SCOPED_TRACE("connection " + std::to_string(i));
        Response r = clients[static_cast<std::size_t>(i)]->read_response();
        EXPECT_EQ(r.status, 200u) << r.head_text();
        EXPECT_EQ(r.body, own_body("GET", "/drain/" + std::to_string(round) + "/" + std::to_string(i)));
    }

    // then the proxy exits 0
    auto code = proxy.wait_exit(seconds(10));
    ASSERT_TRUE(code.has_value()) << "the proxy did not exit within 10 s of SIGTERM";
    EXPECT_EQ(*code, 0);
}

TEST(HardeningPolicy, DrainingAnswersConnectionsThatWereMadeBeforeSigterm) {
    // Whether a connection still in the accept queue meets the closing
    // listener is a race inside the proxy: a few rounds make a proxy that
    // loses it fail nearly every run, not every other one.
    ScriptedOrigin origin(own_answers());
    for (int round = 0; round < 4; ++round) {
        SCOPED_TRACE("round " + std::to_string(round));
        drain_round(origin, round);
        if (::testing::Test::HasFailure()) break;
    }
}

TEST(HardeningPolicy, DrainingWithTwoWorkersAnswersTheBacklogOfEveryWorkersListener) {
    // Two workers: two SO_REUSEPORT listeners, the kernel spreads the
    // connections between their backlogs, and closing one resets what is
    // still in its own: each worker must accept its backlog before closing.
    ScriptedOrigin origin(own_answers());
    for (int round = 0; round < 4; ++round) {
        SCOPED_TRACE("round " + std::to_string(round));
        drain_round(origin, round, 2, 12);
        if (::testing::Test::HasFailure()) break;
    }
}

}  // namespace
}  // namespace cacheproxy::e2e
