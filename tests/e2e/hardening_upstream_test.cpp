/// Issue 11, defects 2-5 and the gunzip bomb of 8: a hostile or broken
/// origin, played by ScriptedOrigin, and clients that hold connections.
///  - a pooled upstream connection with stray bytes on it is never reused;
///  - slow request bodies cannot pin every upstream connection;
///  - a response whose Connection names its framing is a 502, and the client
///    connection stays in step;
///  - HEAD, 204 and 304 answers carry no body, the proxy's own errors included;
///  - an upstream's gzip decoded for a client is bounded as a whole.

#include "support/cache_helpers.hpp"
#include "support/fixtures.hpp"
#include "support/ports.hpp"
#include "support/raw_client.hpp"
#include "support/scripted_origin.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cctype>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace cacheproxy::e2e {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Request = ScriptedOrigin::Request;
using Reply = ScriptedOrigin::Reply;

void no_health_check(ProxyConfig& c) { c.set("upstream.health.path", "\"\""); }

/// One worker, one upstream connection: the pooled connection is the one reused.
void single_connection(ProxyConfig& c) {
    no_health_check(c);
    c.set("threads", "1");
    c.set("upstream.max_connections", "1");
}

const Headers kText{{"Content-Type", "text/plain"}};

/// The ticker route, shared, 30 s.
std::string ticker_rules(const std::string& extra = "") {
    return rules_yaml("  - name: ticker\n"
                      "    match: { method: GET, path: /api/trading/ticker }\n"
                      "    ttl: 30s\n"
                      "    shared: true\n"
                      "    key: { query: [symbol] }\n" +
                      extra);
}

std::string lower_copy(std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

/// `s` with CR and LF shown, cut to `n` bytes, for messages.
std::string visible(std::string_view s, std::size_t n = 300) {
    std::string out;
    for (char c : s.substr(0, n)) {
        if (c == '\r') out += "\\r";
        else if (c == '\n') out += "\\n\n";
        else out += c;
    }
    return out;
}

// ------------------------------------------------------------------ 2. stray bytes on a pooled connection

TEST(HardeningUpstream, UnsolicitedResponseOnAPooledConnectionIsNeverServedToTheNextClient) {
    // origin: GET /first gets its answer, then 30 ms later an unsolicited
    // complete second response ("SMUGGLED") on the same connection; anything
    // else gets its own answer.
    ScriptedOrigin origin([](const Request& req, Reply& reply) {
        if (req.path() == "/first") {
            reply.write(raw_response(200, "first", kText));
            reply.pause(milliseconds(30));
            reply.write(raw_response(200, "SMUGGLED", kText));
            return;
        }
        own_answers()(req, reply);
    });
    Proxy proxy(origin.url(), with_rules(ticker_rules(), single_connection));

    // client: GET /first; 200 ms later, on a new connection, GET /other (pass-through)
    Response first = http_request(proxy.port(), "GET", "/first", {}, {}, seconds(3));
    ASSERT_EQ(first.status, 200u) << first.head_text();
    EXPECT_EQ(first.body, "first");
    std::this_thread::sleep_for(milliseconds(200));
    Response other = http_request(proxy.port(), "GET", "/other", {}, {}, seconds(3));
    // client got: its own answer, never the unsolicited one
    EXPECT_EQ(other.status, 200u) << other.head_text();
    EXPECT_EQ(other.body, own_body("GET", "/other")) << "the next client got the stray response";

    // again, with a cache miss as the next request
    Response first2 = http_request(proxy.port(), "GET", "/first", {}, {}, seconds(3));
    ASSERT_EQ(first2.status, 200u) << first2.head_text();
    std::this_thread::sleep_for(milliseconds(200));
    const std::string ticker = "/api/trading/ticker?symbol=BTCUSDT";
    Response miss = http_request(proxy.port(), "GET", ticker, {}, {}, seconds(3));
    EXPECT_EQ(miss.status, 200u) << describe(miss);
    EXPECT_EQ(miss.body, own_body("GET", ticker)) << "the cache fill took the stray response";
    // and what was stored is the same answer
    Response hit = http_request(proxy.port(), "GET", ticker, {}, {}, seconds(3));
    EXPECT_EQ(hit.body, own_body("GET", ticker)) << describe(hit);

    // origin saw: each request (the stray bytes were never taken for an answer)
    EXPECT_EQ(origin.count("/other"), 1u);
    EXPECT_EQ(origin.count("/api/trading/ticker"), 1u);
}

TEST(HardeningUpstream, HeadAnsweredWithABodyInALaterWriteDoesNotBreakTheNextRequest) {
    // origin: HEAD /h gets a header with Content-Length: 5, then 30 ms later, in
    // a separate write, 5 body bytes (wrong for a HEAD); the rest, their own answers.
    ScriptedOrigin origin([](const Request& req, Reply& reply) {
        if (req.method == "HEAD") {
            reply.write("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\n");
            reply.pause(milliseconds(30));
            reply.write("hello");
            return;
        }
        own_answers()(req, reply);
    });
    Proxy proxy(origin.url(), Proxy::with_config(single_connection));

    // client: HEAD /h
    {
        RawClient c(proxy.port(), seconds(3));
        ASSERT_TRUE(c.connected()) << c.last_error();
        Response head = c.request("HEAD", "/h");
        ASSERT_EQ(head.status, 200u) << head.head_text();
    }
    // client: 200 ms later, a new connection, an innocent GET
    std::this_thread::sleep_for(milliseconds(200));
    Response next = http_request(proxy.port(), "GET", "/next", {}, {}, seconds(3));

    // client got: 200 with its own body, not a 502
    EXPECT_EQ(next.status, 200u) << next.head_text() << "\n" << next.body.substr(0, 200);
    EXPECT_EQ(next.body, own_body("GET", "/next"));
}

// ------------------------------------------------------------------ 3. slow uploads

TEST(HardeningUpstream, SlowUploadsCannotPinTheUpstreamConnections) {
    ScriptedOrigin origin(own_answers());
    Proxy proxy(origin.url(), with_rules(ticker_rules(), [](ProxyConfig& c) {
                    no_health_check(c);
                    c.set("threads", "1");
                    c.set("upstream.max_connections", "4");
                }));

    // clients: 8 POST /echo/up with Content-Length: 100, the body trickled one byte every 300 ms
    constexpr int kUploads = 8;
    const std::string body(100, 'u');
    std::vector<std::unique_ptr<RawClient>> uploads;
    for (int i = 0; i < kUploads; ++i) {
        auto c = std::make_unique<RawClient>(proxy.port(), seconds(5));
        ASSERT_TRUE(c->connected()) << c->last_error();
        ASSERT_TRUE(c->send("POST /echo/up HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain\r\n"
                            "Content-Length: 100\r\n\r\n"))
            << c->last_error();
        uploads.push_back(std::move(c));
    }
    std::atomic<int> sent_bytes{0};
    std::atomic<bool> stop{false};
    std::thread trickle([&] {
        for (int step = 0; step < 10 && !stop; ++step) {  // about 3 s
            std::this_thread::sleep_for(milliseconds(300));
            for (auto& c : uploads) c->send(std::string_view(body).substr(static_cast<std::size_t>(step), 1));
            sent_bytes = step + 1;
        }
    });

    // meanwhile (0.6 s in): a pass-through GET and a cache-miss GET, each within 3 s
    std::this_thread::sleep_for(milliseconds(600));
    Response pass, miss;
    std::thread t1([&] { pass = http_request(proxy.port(), "GET", "/pass", {}, {}, seconds(3)); });
    std::thread t2([&] { miss = http_request(proxy.port(), "GET", "/api/trading/ticker?symbol=BTCUSDT", {}, {}, seconds(3)); });
    t1.join();
    t2.join();
    const std::size_t uploads_seen = origin.count("/echo/up");
    stop = true;
    trickle.join();

    // client got: 200 for both (not 503 because uploads hold every connection)
    EXPECT_EQ(pass.status, 200u) << describe(pass);
    EXPECT_EQ(pass.body, own_body("GET", "/pass"));
    EXPECT_EQ(miss.status, 200u) << describe(miss);
    EXPECT_EQ(miss.body, own_body("GET", "/api/trading/ticker?symbol=BTCUSDT"));
    // origin saw: none of the unfinished uploads (a body under limits.request_buffer_bytes
    // is read whole before an upstream connection is taken)
    EXPECT_EQ(uploads_seen, 0u) << "the proxy took upstream connections for bodies it had not read";

    // client: upload 0 sends the rest at once: it goes through whole
    ASSERT_TRUE(uploads[0]->send(std::string_view(body).substr(static_cast<std::size_t>(sent_bytes.load()))))
        << uploads[0]->last_error();
    Response done = uploads[0]->read_response();
    EXPECT_EQ(done.status, 200u) << describe(done);
    EXPECT_EQ(done.body, own_body("POST", "/echo/up"));
    bool found = false;
    for (const auto& r : origin.requests())
        if (r.path() == "/echo/up" && r.complete) {
            found = true;
            EXPECT_EQ(r.body, body);
        }
    EXPECT_TRUE(found) << "the completed upload never reached the origin";
}

// ------------------------------------------------------------------ 4. response Connection naming framing

struct FramingCase {
    const char* name;
    std::string response;
};

std::ostream& operator<<(std::ostream& os, const FramingCase& c) { return os << c.name; }

class HardeningResponseFraming : public ::testing::TestWithParam<FramingCase> {};

TEST_P(HardeningResponseFraming, ResponseWhoseConnectionNamesItsFramingIs502AndTheConnectionStaysInStep) {
    const std::string bad = GetParam().response;
    ScriptedOrigin origin([bad](const Request& req, Reply& reply) {
        if (req.path() == "/a") {
            reply.write(bad);
            return;
        }
        own_answers()(req, reply);
    });
    Proxy proxy(origin.url(), Proxy::with_config(no_health_check));

    // client: GET /a and GET /b pipelined on one connection
    RawClient c(proxy.port(), seconds(3));
    ASSERT_TRUE(c.connected()) << c.last_error();
    ASSERT_TRUE(c.send(build_request("GET", "/a") + build_request("GET", "/b"))) << c.last_error();
    ReadResult rr = c.read_responses(2);

    // client got: 502 for /a
    ASSERT_FALSE(rr.responses.empty()) << "no complete first answer (" << rr.error << ")"
                                       << (rr.incomplete ? "; an unterminated one: " + rr.incomplete->head_text() : "")
                                       << "\nreceived:\n" << visible(c.received(), 600);
    EXPECT_EQ(rr.responses[0].status, 502u) << rr.responses[0].head_text();
    // then either a complete, correct answer to /b, or the connection closed: never a merged message
    if (rr.responses.size() == 2) {
        EXPECT_EQ(rr.responses[1].status, 200u) << rr.responses[1].head_text();
        EXPECT_EQ(rr.responses[1].body, own_body("GET", "/b"));
    } else {
        EXPECT_TRUE(rr.closed) << "neither an answer to /b nor a close: " << rr.error;
        EXPECT_FALSE(rr.incomplete) << "a partial message after the 502: " << rr.incomplete->head_text();
    }
    EXPECT_EQ(rr.responses[0].body.find("hello"), std::string::npos) << "the framed body leaked into the 502";
}

INSTANTIATE_TEST_SUITE_P(
    Cases, HardeningResponseFraming,
    ::testing::Values(FramingCase{"ConnectionNamesContentLength",
                                  "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n"
                                  "Connection: Content-Length\r\n\r\nhello"},
                      FramingCase{"ConnectionNamesTransferEncoding",
                                  "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n"
                                  "Connection: Transfer-Encoding\r\n\r\n5\r\nhello\r\n0\r\n\r\n"}),
    [](const ::testing::TestParamInfo<FramingCase>& info) { return info.param.name; });

// ------------------------------------------------------------------ 5. no body on HEAD, 204, 304

/// Reads the answers to two pipelined requests and checks that the bytes right
/// after the first answer's header section are the start of the second.
void expect_first_answer_bodiless(RawClient& c, bool first_is_head, unsigned first_status, unsigned second_status,
                                  const std::optional<std::string>& second_body) {
    ReadResult rr = c.read_responses(2, {first_is_head, false});
    const std::string& bytes = c.received();
    const std::size_t end = bytes.find("\r\n\r\n");
    ASSERT_NE(end, std::string::npos) << "no answer at all: " << rr.error;
    EXPECT_EQ(bytes.substr(0, 12), "HTTP/1.1 " + std::to_string(first_status)) << visible(bytes);
    EXPECT_EQ(bytes.substr(end + 4, 9), "HTTP/1.1 ")
        << "after the first answer's header section comes something other than the next response:\n"
        << visible(bytes.substr(end + 4), 400);
    ASSERT_EQ(rr.responses.size(), 2u) << rr.error << "\nreceived:\n" << visible(bytes, 800);
    EXPECT_EQ(rr.responses[0].status, first_status) << rr.responses[0].head_text();
    EXPECT_EQ(rr.responses[1].status, second_status) << rr.responses[1].head_text();
    if (second_body) {
        EXPECT_EQ(rr.responses[1].body, *second_body);
    }
}

TEST(HardeningNoBody, ProxysOwn502ToAHeadCarriesNoBody) {
    // origin: a port nothing listens on
    Proxy proxy("http://127.0.0.1:" + std::to_string(free_port()), Proxy::Options{});

    // client: HEAD /a then GET /b, pipelined on one keep-alive connection
    RawClient c(proxy.port(), seconds(3));
    ASSERT_TRUE(c.connected()) << c.last_error();
    ASSERT_TRUE(c.send(build_request("HEAD", "/a") + build_request("GET", "/b"))) << c.last_error();

    // client got: a 502 header section for the HEAD, then at once the GET's 502
    expect_first_answer_bodiless(c, true, 502, 502, std::nullopt);
}

TEST(HardeningNoBody, ProxysOwn502ToAHeadOnACachedRouteCarriesNoBody) {
    // origin: a port nothing listens on; the ticker is a cached route
    Proxy proxy("http://127.0.0.1:" + std::to_string(free_port()), with_rules(ticker_rules()));

    // client: HEAD ticker then GET /b, pipelined
    RawClient c(proxy.port(), seconds(3));
    ASSERT_TRUE(c.connected()) << c.last_error();
    ASSERT_TRUE(c.send(build_request("HEAD", "/api/trading/ticker?symbol=BTCUSDT") + build_request("GET", "/b")))
        << c.last_error();

    // client got: the HEAD's 502 header section, then the GET's 502
    expect_first_answer_bodiless(c, true, 502, 502, std::nullopt);
}

TEST(HardeningNoBody, ProxysOwn504ToAHeadCarriesNoBody) {
    // origin: never answers a HEAD; answers anything else at once
    ScriptedOrigin origin([](const Request& req, Reply& reply) {
        if (req.method == "HEAD") {
            reply.hang(seconds(10));
            reply.close();
            return;
        }
        own_answers()(req, reply);
    });
    Proxy proxy(origin.url(), Proxy::with_config([](ProxyConfig& c) {
                    no_health_check(c);
                    c.set("upstream.response_timeout", "1s");
                }));

    // client: HEAD /slow then GET /b, pipelined
    RawClient c(proxy.port(), seconds(5));
    ASSERT_TRUE(c.connected()) << c.last_error();
    ASSERT_TRUE(c.send(build_request("HEAD", "/slow") + build_request("GET", "/b"))) << c.last_error();

    // client got: the HEAD's 504 header section, then the GET's own 200
    expect_first_answer_bodiless(c, true, 504, 200, own_body("GET", "/b"));
}

TEST(HardeningNoBody, Relayed204And304NeverCarryTheBodyTheOriginWronglySent) {
    // origin: /nc gets a 204 and /nm a 304 (Content-Length: 5), each with 5 body
    // bytes in the same write; anything else, its own answer
    ScriptedOrigin origin([](const Request& req, Reply& reply) {
        if (req.path() == "/nc") {
            reply.write("HTTP/1.1 204 No Content\r\nX-Origin: 1\r\n\r\nhello");
            return;
        }
        if (req.path() == "/nm") {
            reply.write("HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\nContent-Length: 5\r\n\r\nhello");
            return;
        }
        own_answers()(req, reply);
    });
    Proxy proxy(origin.url(), Proxy::with_config(no_health_check));

    {
        SCOPED_TRACE("204");
        // client: GET /nc then GET /b, pipelined
        RawClient c(proxy.port(), seconds(3));
        ASSERT_TRUE(c.connected()) << c.last_error();
        ASSERT_TRUE(c.send(build_request("GET", "/nc") + build_request("GET", "/b"))) << c.last_error();
        // client got: the 204 with no body, then /b's own answer
        expect_first_answer_bodiless(c, false, 204, 200, own_body("GET", "/b"));
    }
    {
        SCOPED_TRACE("304");
        // client: a conditional GET /nm then GET /b2, pipelined
        RawClient c(proxy.port(), seconds(3));
        ASSERT_TRUE(c.connected()) << c.last_error();
        ASSERT_TRUE(c.send(build_request("GET", "/nm", {{"If-None-Match", "\"v1\""}}) + build_request("GET", "/b2")))
            << c.last_error();
        // client got: the 304 with no body, then /b2's own answer
        expect_first_answer_bodiless(c, false, 304, 200, own_body("GET", "/b2"));
    }
}

// ------------------------------------------------------------------ 8c. gunzip bomb on pass-through

/// What a bounded raw read of one answer saw.
struct RawRead {
    std::string head;             ///< up to and including the blank line ("" if none)
    std::uint64_t body_bytes = 0; ///< wire bytes after the head
    std::string tail;             ///< the last bytes received (up to 16)
    bool closed = false;          ///< the proxy closed (EOF or reset)
    bool capped = false;          ///< we stopped reading at `cap` bytes
    bool timed_out = false;
};

/// Sends `request` on a fresh connection and reads the answer raw, keeping
/// only the head and the last bytes, until close, `cap` bytes, `idle` without
/// a byte, or `total` in all.
RawRead bounded_read(std::uint16_t port, const std::string& request, std::uint64_t cap, milliseconds idle,
                     milliseconds total) {
    RawRead out;
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::send(fd, request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size())) {
        if (fd >= 0) ::close(fd);
        out.timed_out = true;
        return out;
    }
    const auto deadline = std::chrono::steady_clock::now() + total;
    std::string pending;  // bytes until the head is complete
    bool head_done = false;
    char buf[65536];
    for (;;) {
        if (std::chrono::steady_clock::now() >= deadline) {
            out.timed_out = true;
            break;
        }
        pollfd p{fd, POLLIN, 0};
        int r = ::poll(&p, 1, static_cast<int>(idle.count()));
        if (r == 0) {
            out.timed_out = true;
            break;
        }
        if (r < 0) continue;
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) {
            out.closed = true;
            break;
        }
        std::string_view got(buf, static_cast<std::size_t>(n));
        if (!head_done) {
            pending.append(got);
            const auto e = pending.find("\r\n\r\n");
            if (e == std::string::npos) continue;
            head_done = true;
            out.head = pending.substr(0, e + 4);
            got = std::string_view(pending).substr(e + 4);
        }
        out.body_bytes += got.size();
        out.tail.append(got.substr(got.size() > 16 ? got.size() - 16 : 0));
        if (out.tail.size() > 16) out.tail.erase(0, out.tail.size() - 16);
        if (out.body_bytes > cap) {
            out.capped = true;
            break;
        }
    }
    ::close(fd);
    return out;
}

TEST(HardeningUpstream, GunzipBombOnPassThroughIsCutAtTheDecodedLimit) {
    // origin: Content-Encoding: gzip of 200 MiB of zeros (about 200 kB on the wire)
    const std::string bomb = gzip_of_zeros(200u * 1024 * 1024, 9);
    ASSERT_LT(bomb.size(), 1024u * 1024) << "the bomb is not small";
    ScriptedOrigin origin([&bomb](const Request& req, Reply& reply) {
        reply.write(raw_response(200, bomb,
                                 {{"Content-Type", "application/octet-stream"}, {"Content-Encoding", "gzip"}}));
    });
    Proxy proxy(origin.url(), Proxy::with_config([](ProxyConfig& c) {
                    no_health_check(c);
                    c.set("compression.max_decoded_bytes", "1MiB");
                }));

    // client: GET /bomb without Accept-Encoding (so the proxy decodes for it); read at most 3 MiB
    RawRead r = bounded_read(proxy.port(), build_request("GET", "/bomb"), 3u * 1024 * 1024, seconds(5), seconds(20));

    // client got: at most about 2 MiB, and an answer that is visibly incomplete
    // (or an error status instead of the 200)
    ASSERT_FALSE(r.head.empty()) << "no answer at all";
    EXPECT_FALSE(r.capped) << "more than 3 MiB of decoded zeros reached the client (the guard never triggered)";
    EXPECT_LE(r.body_bytes, 2u * 1024 * 1024 + 64 * 1024) << "the client received " << r.body_bytes << " bytes";
    const bool error_status = r.head.rfind("HTTP/1.1 5", 0) == 0;
    if (!error_status) {
        EXPECT_EQ(r.head.rfind("HTTP/1.1 200", 0), 0u) << visible(r.head);
        EXPECT_TRUE(r.closed) << "the proxy neither finished nor closed the connection";
        const bool chunked = lower_copy(r.head).find("transfer-encoding: chunked") != std::string::npos;
        if (chunked) {
            EXPECT_FALSE(r.tail.size() >= 5 && r.tail.substr(r.tail.size() - 5) == "0\r\n\r\n")
                << "the cut body ended with a terminating chunk: it looks complete";
        }
    }
}

}  // namespace
}  // namespace cacheproxy::e2e
