/// Pass-through scenarios: the proxy with no rules in front of the legacy
/// simulator. Each test says what the client sent, what it got back, and
/// what the origin (the simulator's counters and /echo) saw.

#include "support/fake_upstream.hpp"
#include "support/fixtures.hpp"
#include "support/json_lite.hpp"
#include "support/raw_client.hpp"

#include <gtest/gtest.h>

#include <cctype>
#include <cstdio>
#include <set>
#include <string>

namespace cacheproxy::e2e {
namespace {

class Passthrough : public SimulatorTest {
protected:
    static void SetUpTestSuite() { StartSharedSimulator(); }
    static void TearDownTestSuite() { StopSharedSimulator(); }
};

std::string lower(std::string s) {
    for (auto& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    return s;
}

// --------------------------------------------------------------- bodies

TEST_F(Passthrough, GetLargeBinaryBodyIsByteFaithful) {
    auto proxy = StartProxy();

    // client: GET /bytes?n=300000
    Response r = http_request(proxy->port(), "GET", "/bytes?n=300000");

    // client got: 200, exactly the 300000 deterministic bytes
    ASSERT_EQ(r.status, 200u) << r.head_text();
    ASSERT_EQ(r.body.size(), 300000u) << r.head_text();
    EXPECT_EQ(first_sim_bytes_mismatch(r.body), std::string::npos) << "first differing byte";
    EXPECT_EQ(r.header("Content-Type"), "application/octet-stream") << r.head_text();
    // origin saw: exactly one request
    EXPECT_EQ(sim().stats().route("other"), 1);
}

TEST_F(Passthrough, PostLargeBodyIsEchoedByteForByte) {
    auto proxy = StartProxy();
    const std::string body = binary_body(200 * 1000);

    // client: POST /echo_raw with 200 kB of arbitrary bytes
    Response r = http_request(proxy->port(), "POST", "/echo_raw",
                              {{"Content-Type", "application/x-test-binary"}}, body);

    // client got: the same 200 kB back, with the content-type the origin chose
    ASSERT_EQ(r.status, 200u) << r.head_text();
    ASSERT_EQ(r.body.size(), body.size());
    EXPECT_TRUE(r.body == body) << "body differs; sha256 sent " << sha256_hex(body) << " got "
                                << sha256_hex(r.body);
    EXPECT_EQ(r.header("Content-Type"), "application/x-test-binary");
    // origin saw: one echo request
    EXPECT_EQ(sim().stats().route("echo"), 1);
}

TEST_F(Passthrough, PostBodyReachesOriginIntact) {
    auto proxy = StartProxy();
    const std::string body = binary_body(50 * 1000 + 7);

    // client: POST /echo/upload with a 50007-byte body
    Response r = http_request(proxy->port(), "POST", "/echo/upload", {{"Content-Type", "application/octet-stream"}},
                              body);

    // origin saw: POST /echo/upload, 50007 bytes with the same SHA-256
    ASSERT_EQ(r.status, 200u) << r.head_text();
    std::string err;
    auto seen = parse_echo(r.body, &err);
    ASSERT_TRUE(seen) << err;
    EXPECT_EQ(seen->method, "POST");
    EXPECT_EQ(seen->path, "/echo/upload");
    EXPECT_EQ(seen->body_len, static_cast<long long>(body.size()));
    EXPECT_EQ(seen->body_sha256, sha256_hex(body));
}

TEST_F(Passthrough, ChunkedRequestBodyIsForwarded) {
    auto proxy = StartProxy();
    const std::string big = binary_body(70000);
    char size_hex[32];
    std::snprintf(size_hex, sizeof size_hex, "%zx", big.size());

    // client: a raw chunked POST /echo_raw: four chunks, one with a short extension
    RawClient c(proxy->port());
    ASSERT_TRUE(c.connected()) << c.last_error();
    std::string req =
        "POST /echo_raw HTTP/1.1\r\n"
        "Host: localhost\r\n"
        "Content-Type: application/octet-stream\r\n"
        "Transfer-Encoding: chunked\r\n"
        "\r\n"
        "7\r\nHello, \r\n"
        "8;note=short\r\nchunked \r\n"
        "5\r\nworld\r\n" +
        std::string(size_hex) + "\r\n" + big + "\r\n" +
        "0\r\n\r\n";
    ASSERT_TRUE(c.send(req)) << c.last_error();

    // client got: the de-chunked body, byte for byte
    Response r = c.read_response();
    ASSERT_EQ(r.status, 200u) << r.head_text();
    const std::string expected = "Hello, chunked world" + big;
    EXPECT_EQ(r.body.size(), expected.size());
    EXPECT_TRUE(r.body == expected) << "body differs";
    EXPECT_EQ(sim().stats().route("echo"), 1);
}

TEST_F(Passthrough, ChunkedResponseIsRelayed) {
    auto proxy = StartProxy();

    // client: GET /stream (origin answers chunked, 15 chunks with 10 ms pauses)
    Response r = http_request(proxy->port(), "GET", "/stream?n=100000&chunk=7000&delay=0.01");

    // client got: all 100000 bytes, in order
    ASSERT_EQ(r.status, 200u) << r.head_text();
    ASSERT_EQ(r.body.size(), 100000u) << r.head_text();
    EXPECT_EQ(first_sim_bytes_mismatch(r.body), std::string::npos);
    EXPECT_EQ(sim().stats().route("other"), 1);
}

// --------------------------------------------------------------- connections

TEST_F(Passthrough, KeepAliveReusesConnections) {
    auto proxy = StartProxy();

    // two clients, ten requests each, alternating, each on its one connection
    RawClient a(proxy->port()), b(proxy->port());
    ASSERT_TRUE(a.connected()) << a.last_error();
    ASSERT_TRUE(b.connected()) << b.last_error();
    for (int i = 0; i < 10; ++i) {
        for (RawClient* c : {&a, &b}) {
            const std::string path = "/echo/ka/" + std::to_string(c == &a ? 0 : 1) + "/" + std::to_string(i);
            Response r = c->request("GET", path);
            ASSERT_EQ(r.status, 200u) << "request " << path << ": " << r.head_text();
            EXPECT_TRUE(r.keep_alive) << "the proxy asked to close after " << path << "\n" << r.head_text();
            auto seen = parse_echo(r.body);
            ASSERT_TRUE(seen) << r.body;
            EXPECT_EQ(seen->path, path);
        }
    }

    // origin saw: the 20 requests over fewer than 20 connections
    SimStats s = sim().stats();
    EXPECT_EQ(s.route("echo"), 20) << s.json;
    EXPECT_LT(s.connections, 20) << "no upstream connection was reused: " << s.json;
}

TEST_F(Passthrough, PipelinedRequestsAreAnsweredInOrder) {
    auto proxy = StartProxy();

    // client: three GETs in one write
    RawClient c(proxy->port());
    ASSERT_TRUE(c.connected()) << c.last_error();
    ASSERT_TRUE(c.send(build_request("GET", "/echo/pipe/1") + build_request("GET", "/echo/pipe/2") +
                       build_request("GET", "/echo/pipe/3")))
        << c.last_error();

    // client got: three answers, in request order
    ReadResult rr = c.read_responses(3);
    ASSERT_EQ(rr.responses.size(), 3u) << "got " << rr.responses.size() << " responses; " << rr.error;
    for (int i = 0; i < 3; ++i) {
        const Response& r = rr.responses[static_cast<std::size_t>(i)];
        ASSERT_EQ(r.status, 200u) << r.head_text();
        auto seen = parse_echo(r.body);
        ASSERT_TRUE(seen) << r.body;
        EXPECT_EQ(seen->path, "/echo/pipe/" + std::to_string(i + 1)) << "answer " << i + 1 << " out of order";
    }
    // origin saw: all three
    EXPECT_EQ(sim().stats().route("echo"), 3);
}

TEST_F(Passthrough, PipelinedPostBodyIsFramedExactly) {
    auto proxy = StartProxy();

    // client: GET, POST with an 11-byte body, GET, in one write
    RawClient c(proxy->port());
    ASSERT_TRUE(c.connected()) << c.last_error();
    const std::string batch = build_request("GET", "/echo/pipe/1") +
                              build_request("POST", "/echo_raw", {{"Content-Type", "text/plain"}}, "second-body") +
                              build_request("GET", "/echo/pipe/3");
    ASSERT_TRUE(c.send(batch)) << c.last_error();

    // client got: three answers in order; the body ended exactly where its length said
    ReadResult rr = c.read_responses(3);
    ASSERT_EQ(rr.responses.size(), 3u) << "got " << rr.responses.size() << " responses; " << rr.error;
    ASSERT_EQ(rr.responses[0].status, 200u) << rr.responses[0].head_text();
    ASSERT_EQ(rr.responses[1].status, 200u) << rr.responses[1].head_text();
    ASSERT_EQ(rr.responses[2].status, 200u) << rr.responses[2].head_text();
    auto first = parse_echo(rr.responses[0].body);
    auto third = parse_echo(rr.responses[2].body);
    ASSERT_TRUE(first && third);
    EXPECT_EQ(first->path, "/echo/pipe/1");
    EXPECT_EQ(rr.responses[1].body, "second-body");
    EXPECT_EQ(third->path, "/echo/pipe/3");
    EXPECT_EQ(third->method, "GET");
    // origin saw: all three
    EXPECT_EQ(sim().stats().route("echo"), 3);
}

TEST_F(Passthrough, HeadAnswerHasNoBodyAndTheConnectionStaysInStep) {
    auto proxy = StartProxy();
    RawClient c(proxy->port());
    ASSERT_TRUE(c.connected()) << c.last_error();

    // client: HEAD /echo/head-check, then GET /echo/after-head on the same connection
    Response head = c.request("HEAD", "/echo/head-check");
    ASSERT_EQ(head.status, 200u) << head.head_text();
    EXPECT_NE(head.header("Content-Length").value_or("0"), "0")
        << "the origin's length of the GET body should be relayed\n" << head.head_text();
    Response next = c.request("GET", "/echo/after-head");

    // client got: the GET's own answer (no stray body bytes after the HEAD answer)
    ASSERT_EQ(next.status, 200u) << next.head_text() << "\nreceived so far:\n" << c.received().substr(0, 600);
    auto seen = parse_echo(next.body);
    ASSERT_TRUE(seen) << next.body;
    EXPECT_EQ(seen->path, "/echo/after-head");
    EXPECT_EQ(seen->method, "GET");
    // origin saw: the HEAD as a HEAD, and the GET
    EXPECT_EQ(sim().stats().route("echo"), 2);
}

// --------------------------------------------------------------- headers and targets

TEST_F(Passthrough, HopByHopRequestHeadersAreStrippedAndForwardingHeadersSet) {
    auto proxy = StartProxy();

    // client: hop-by-hop fields of every kind, a forged X-Forwarded-For, its own Host
    Response r = http_request(proxy->port(), "GET", "/echo/hop",
                              {{"Host", "example.test:1234"},
                               {"Connection", "keep-alive, X-Hop-Secret"},
                               {"X-Hop-Secret", "must-not-pass"},
                               {"Keep-Alive", "timeout=5, max=100"},
                               {"TE", "trailers"},
                               {"Trailer", "X-Checksum"},
                               {"Upgrade", "h2c"},
                               {"Proxy-Authorization", "Basic Zm9vOmJhcg=="},
                               {"Proxy-Connection", "keep-alive"},
                               {"X-Forwarded-For", "6.6.6.6"},
                               {"Authorization", "Bearer user7"},
                               {"Cookie", "session=abc"},
                               {"X-End-To-End", "kept"}});
    ASSERT_EQ(r.status, 200u) << r.head_text();
    std::string err;
    auto seen = parse_echo(r.body, &err);
    ASSERT_TRUE(seen) << err;
    const std::string all = seen->headers_text();

    // origin saw: no hop-by-hop field, nor the one Connection named
    for (const char* gone : {"X-Hop-Secret", "Keep-Alive", "TE", "Trailer", "Upgrade", "Proxy-Authorization",
                             "Proxy-Connection"})
        EXPECT_TRUE(seen->values(gone).empty()) << gone << " reached the origin:\n" << all;
    for (const auto& v : seen->values("Connection"))
        EXPECT_EQ(lower(v).find("hop-secret"), std::string::npos) << "Connection: " << v << " reached the origin";
    // origin saw: the end-to-end fields untouched, Host as the client sent it
    EXPECT_EQ(seen->values("Host"), std::vector<std::string>{"example.test:1234"}) << all;
    EXPECT_EQ(seen->values("Authorization"), std::vector<std::string>{"Bearer user7"}) << all;
    EXPECT_EQ(seen->values("Cookie"), std::vector<std::string>{"session=abc"}) << all;
    EXPECT_EQ(seen->values("X-End-To-End"), std::vector<std::string>{"kept"}) << all;
    // origin saw: X-Forwarded-For = the real peer (the forged one overwritten), proto and Via added
    EXPECT_EQ(seen->values("X-Forwarded-For"), std::vector<std::string>{"127.0.0.1"}) << all;
    EXPECT_EQ(seen->values("X-Forwarded-Proto"), std::vector<std::string>{"http"}) << all;
    EXPECT_EQ(seen->values("Via"), std::vector<std::string>{"1.1 cacheproxy"}) << all;
}

TEST_F(Passthrough, HopByHopResponseHeadersAreStripped) {
    // origin: a scripted answer full of hop-by-hop fields
    FakeUpstream origin({{"HTTP/1.1 200 OK\r\n"
                          "Content-Type: text/plain\r\n"
                          "Content-Length: 5\r\n"
                          "Connection: X-Hop-Resp\r\n"
                          "X-Hop-Resp: must-not-pass\r\n"
                          "Keep-Alive: timeout=7, max=77\r\n"
                          "Proxy-Authenticate: Basic realm=\"origin\"\r\n"
                          "Trailer: X-Checksum\r\n"
                          "Upgrade: h2c\r\n"
                          "X-End-To-End: kept\r\n"
                          "\r\n"
                          "hello"}});
    Proxy proxy(origin.url(), Proxy::with_config([](ProxyConfig& c) { c.set("upstream.health.path", "\"\""); }));

    // client: GET /resp-hop
    Response r = http_request(proxy.port(), "GET", "/resp-hop");

    // client got: the body and the end-to-end fields, none of the hop-by-hop ones
    ASSERT_EQ(r.status, 200u) << r.head_text();
    EXPECT_EQ(r.body, "hello");
    EXPECT_EQ(r.header("X-End-To-End"), "kept") << r.head_text();
    EXPECT_EQ(r.header("Content-Type"), "text/plain") << r.head_text();
    for (const char* gone : {"X-Hop-Resp", "Proxy-Authenticate", "Trailer", "Upgrade"})
        EXPECT_FALSE(r.has_header(gone)) << gone << " reached the client:\n" << r.head_text();
    EXPECT_NE(r.header("Keep-Alive"), "timeout=7, max=77") << "the origin's Keep-Alive reached the client";
    for (const auto& v : r.header_values("Connection"))
        EXPECT_TRUE(iequals(v, "keep-alive") || iequals(v, "close"))
            << "Connection: " << v << " reached the client";
    EXPECT_EQ(origin.request_count(), 1u);
}

TEST_F(Passthrough, EndToEndResponseHeadersMatchTheOrigin) {
    auto proxy = StartProxy();

    // the same GET, once straight to the origin and once through the proxy
    Response direct = sim().direct("GET", "/bytes?n=10");
    Response proxied = http_request(proxy->port(), "GET", "/bytes?n=10");
    ASSERT_EQ(direct.status, 200u) << direct.head_text();
    ASSERT_EQ(proxied.status, 200u) << proxied.head_text();

    // client got: every end-to-end field the origin sent, with the same value
    static const std::set<std::string> skip{"date", "connection", "keep-alive", "transfer-encoding",
                                            "content-length"};
    for (const auto& [name, value] : direct.headers) {
        if (skip.count(lower(name))) continue;
        EXPECT_EQ(proxied.header_values(name), std::vector<std::string>{value})
            << name << " not relayed as sent\norigin:\n" << direct.head_text() << "\nproxy:\n" << proxied.head_text();
    }
    EXPECT_TRUE(proxied.has_header("Date")) << proxied.head_text();
    EXPECT_EQ(proxied.body, direct.body);
}

TEST_F(Passthrough, Http10RequestWithoutHostGetsTheUpstreamsAuthority) {
    auto proxy = StartProxy();
    // client: an HTTP/1.0 request with no Host (legal in 1.0)
    RawClient c(proxy->port());
    ASSERT_TRUE(c.connected()) << c.last_error();
    ASSERT_TRUE(c.send("GET /echo/old HTTP/1.0\r\n\r\n")) << c.last_error();
    // client got: the origin's answer, not its 400 for a Host-less HTTP/1.1 request
    Response r = c.read_response();
    ASSERT_EQ(r.status, 200u) << r.head_text() << r.body;
    // origin saw: a Host naming itself
    auto seen = parse_echo(r.body);
    ASSERT_TRUE(seen) << r.body;
    EXPECT_EQ(seen->header("host").value_or("").rfind("127.0.0.1:", 0), 0u) << seen->headers_text();
}

TEST_F(Passthrough, MethodAndTargetAreForwardedVerbatim) {
    auto proxy = StartProxy();
    struct Case {
        const char* method;
        const char* target;
        const char* path;
        const char* raw_query;
    };
    const Case cases[] = {
        {"GET", "/echo/q?b=2&a=1&a=%20x&empty=&flag", "/echo/q", "b=2&a=1&a=%20x&empty=&flag"},
        {"PUT", "/echo/items/42?v=1", "/echo/items/42", "v=1"},
        {"DELETE", "/echo/items/42", "/echo/items/42", ""},
        {"PATCH", "/echo/items/42", "/echo/items/42", ""},
        {"OPTIONS", "/echo/opts", "/echo/opts", ""},
        {"GET", "/echo/enc%2Fslash%20space?x=%E2%82%AC", "/echo/enc/slash space", "x=%E2%82%AC"},
    };
    RawClient c(proxy->port());
    ASSERT_TRUE(c.connected()) << c.last_error();
    for (const auto& k : cases) {
        // client: METHOD TARGET
        Response r = c.request(k.method, k.target);
        ASSERT_EQ(r.status, 200u) << k.method << " " << k.target << ": " << r.head_text();
        // origin saw: the same method, path and raw query string
        auto seen = parse_echo(r.body);
        ASSERT_TRUE(seen) << r.body;
        EXPECT_EQ(seen->method, k.method) << k.target;
        EXPECT_EQ(seen->path, k.path) << k.target;
        EXPECT_EQ(seen->raw_query, k.raw_query) << k.target;
        std::string target = k.target;
        EXPECT_EQ(seen->raw_path, target.substr(0, target.find('?'))) << k.target;
    }
    EXPECT_EQ(sim().stats().route("echo"), static_cast<long long>(std::size(cases)));
}

TEST_F(Passthrough, OriginStatusesAreRelayed) {
    auto proxy = StartProxy();
    RawClient c(proxy->port());
    ASSERT_TRUE(c.connected()) << c.last_error();
    const std::string target = "/api/trading/balance?exchange=bybit&account_type=demo";

    // client 1: no Authorization -> the origin's 401 and its WWW-Authenticate
    Response anon = c.request("GET", target);
    EXPECT_EQ(anon.status, 401u) << anon.head_text();
    EXPECT_EQ(anon.header("WWW-Authenticate"), "Bearer") << anon.head_text();

    // client 2: Bearer user1 -> 200 with user_id 999001
    Response user = c.request("GET", target, {{"Authorization", "Bearer user1"}});
    ASSERT_EQ(user.status, 200u) << user.head_text();
    auto doc = parse_json(user.body);
    ASSERT_TRUE(doc) << user.body;
    EXPECT_EQ((*doc)["user_id"].as_int(), 999001);

    // the origin fails the next balance call with a 500 -> the client gets that 500
    sim().fail("balance", "500", 1);
    Response failed = c.request("GET", target, {{"Authorization", "Bearer user1"}});
    EXPECT_EQ(failed.status, 500u) << failed.head_text();
    EXPECT_NE(failed.body.find("exchange error"), std::string::npos) << failed.body;

    // origin saw: the three balance requests
    EXPECT_EQ(sim().stats().route("balance"), 3);
}

TEST_F(Passthrough, ExpectContinueGets100ThenTheAnswer) {
    auto proxy = StartProxy();
    RawClient c(proxy->port());
    ASSERT_TRUE(c.connected()) << c.last_error();

    // client: the head only, with Expect: 100-continue
    ASSERT_TRUE(c.send("POST /echo_raw HTTP/1.1\r\n"
                       "Host: localhost\r\n"
                       "Content-Type: text/plain\r\n"
                       "Content-Length: 11\r\n"
                       "Expect: 100-continue\r\n"
                       "\r\n"))
        << c.last_error();

    // client got: HTTP/1.1 100 Continue before sending any body
    Response interim = c.read_response();
    ASSERT_EQ(interim.status, 100u) << interim.head_text();
    EXPECT_EQ(c.received().rfind("HTTP/1.1 100 Continue\r\n", 0), 0u) << c.received();

    // client: the body -> the final answer
    ASSERT_TRUE(c.send("hello world")) << c.last_error();
    Response r = c.read_response();
    ASSERT_EQ(r.status, 200u) << r.head_text();
    EXPECT_EQ(r.body, "hello world");
    EXPECT_EQ(sim().stats().route("echo"), 1);
}

// --------------------------------------------------------------- secrets

TEST_F(Passthrough, BearerTokenNeverAppearsInTheLog) {
    auto proxy = StartProxy();  // logging.level: debug, access_log: true

    // client: a request carrying a bearer token
    Response r = http_request(proxy->port(), "GET", "/echo/token-check?x=1",
                              {{"Authorization", "Bearer SECRET-TOKEN-xyz"}});
    ASSERT_EQ(r.status, 200u) << r.head_text();
    // origin saw: the token (it is end-to-end)
    auto seen = parse_echo(r.body);
    ASSERT_TRUE(seen) << r.body;
    EXPECT_EQ(seen->header("Authorization"), "Bearer SECRET-TOKEN-xyz");

    // stop the proxy so every log line is flushed
    proxy->terminate();
    EXPECT_EQ(proxy->wait_exit(std::chrono::seconds(10)), 0);

    // the log: mentions the request (so it is the right file), never the token
    const std::string log = proxy->log();
    EXPECT_NE(log.find("/echo/token-check"), std::string::npos)
        << "the access log does not mention the request; log:\n" << log.substr(0, 3000);
    EXPECT_EQ(log.find("SECRET-TOKEN-xyz"), std::string::npos)
        << "the bearer token is in the log:\n"
        << log.substr(log.find("SECRET-TOKEN-xyz") > 300 ? log.find("SECRET-TOKEN-xyz") - 300 : 0, 600);
}

}  // namespace
}  // namespace cacheproxy::e2e
