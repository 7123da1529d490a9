/// Issue 11, defects 6 and 7: a burst of identical requests on a cached route
/// costs one upstream call whatever the upstream answers, and every client of
/// one fill sees the same result.
///  - 500, 503, 401, 404 and a close-delimited 200: one call, the same answer for all;
///  - a 5xx is held for coalesce.error_hold: a new request within it gets the
///    same answer without an upstream call, one after it goes upstream again;
///  - an answer that may not be shared (Set-Cookie) or is too large to store:
///    the waiters go upstream at most coalesce.max_unshared (+ the leader) at once;
///  - a timeout: one call, a 504 for all;
///  - a gzip body that does not decode: a 502 for all, never a 200.
///
/// The route is the shared ticker (the fill carries no credential); the
/// origin is a ScriptedOrigin that answers after a pause so that the burst
/// all joins one fill.

#include "support/cache_helpers.hpp"
#include "support/fixtures.hpp"
#include "support/raw_client.hpp"
#include "support/scripted_origin.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace cacheproxy::e2e {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Request = ScriptedOrigin::Request;
using Reply = ScriptedOrigin::Reply;

constexpr int kBurst = 20;
const std::string kTickerPath = "/api/trading/ticker";
const std::string kTicker = kTickerPath + "?symbol=BTCUSDT";

void no_health_check(ProxyConfig& c) { c.set("upstream.health.path", "\"\""); }

/// The shared ticker route, with extra route lines, under `coalesce`.
std::string ticker_rules(const std::string& coalesce = "{ timeout: 20s, max_waiters: 10000 }",
                         const std::string& extra = "") {
    return rules_yaml("  - name: ticker\n"
                      "    match: { method: GET, path: /api/trading/ticker }\n"
                      "    ttl: 30s\n"
                      "    shared: true\n"
                      "    key: { query: [symbol] }\n" +
                          extra,
                      coalesce);
}

/// `n` identical GETs of `target`.
std::vector<RequestSpec> burst(int n, const std::string& target = kTicker) {
    return std::vector<RequestSpec>(static_cast<std::size_t>(n), RequestSpec{"GET", target, {}});
}

// ------------------------------------------------------------------ one call, one answer for all

struct Answer {
    const char* name;
    unsigned status;
    std::string body;
    bool close_delimited = false;  ///< no Content-Length, Connection: close, then close
};

std::ostream& operator<<(std::ostream& os, const Answer& a) { return os << a.name; }

class HardeningCoalesce : public ::testing::TestWithParam<Answer> {};

TEST_P(HardeningCoalesce, BurstCostsOneUpstreamCallAndEveryClientGetsTheSameAnswer) {
    const Answer a = GetParam();
    // origin: after 500 ms, the answer under test
    ScriptedOrigin origin([a](const Request&, Reply& reply) {
        reply.pause(milliseconds(500));
        if (a.close_delimited) {
            reply.write(raw_response(a.status, a.body,
                                     {{"Content-Type", "application/json"}, {"Connection", "close"}}, false));
            reply.close();
        } else {
            reply.write(raw_response(a.status, a.body, {{"Content-Type", "application/json"}}));
        }
    });
    Proxy proxy(origin.url(), with_rules(ticker_rules(), no_health_check));

    // clients: 20 identical GETs of the ticker at once
    BatchResult b = concurrent_requests(proxy.port(), burst(kBurst), seconds(10));
    ASSERT_EQ(b.connect_failures, 0u);

    // client got: every one the origin's status and body
    for (std::size_t i = 0; i < b.responses.size(); ++i) {
        SCOPED_TRACE("client " + std::to_string(i));
        EXPECT_EQ(b.responses[i].status, a.status) << describe(b.responses[i]);
        EXPECT_EQ(b.responses[i].body, a.body);
    }
    // origin saw: exactly one request
    std::this_thread::sleep_for(milliseconds(100));
    EXPECT_EQ(origin.count(kTickerPath), 1u) << "a burst of " << kBurst << " cost " << origin.count(kTickerPath)
                                             << " upstream calls";
}

INSTANTIATE_TEST_SUITE_P(
    Answers, HardeningCoalesce,
    ::testing::Values(Answer{"InternalError500", 500, R"({"detail":"exchange error"})"},
                      Answer{"Unavailable503", 503, R"({"detail":"maintenance"})"},
                      Answer{"Unauthorized401", 401, R"({"detail":"Not authenticated"})"},
                      Answer{"NotFound404", 404, R"({"detail":"Not Found"})"},
                      Answer{"CloseDelimited200", 200, R"({"symbol":"BTCUSDT","last":64000.5})", true}),
    [](const ::testing::TestParamInfo<Answer>& info) { return info.param.name; });

// ------------------------------------------------------------------ 5xx hold

TEST(HardeningCoalesceHold, A5xxIsHeldForErrorHoldThenAskedAgain) {
    const std::string body = R"({"detail":"exchange error"})";
    // origin: every request, after 500 ms, a 500
    ScriptedOrigin origin([&body](const Request&, Reply& reply) {
        reply.pause(milliseconds(500));
        reply.write(raw_response(500, body, {{"Content-Type", "application/json"}}));
    });
    Proxy proxy(origin.url(),
                with_rules(ticker_rules("{ timeout: 20s, max_waiters: 10000, error_hold: 2s }"), no_health_check));

    // clients: a burst of 20 -> one upstream call, a 500 for all
    BatchResult b = concurrent_requests(proxy.port(), burst(kBurst), seconds(10));
    const auto answered = Clock::now();
    for (const auto& r : b.responses) EXPECT_EQ(r.status, 500u) << describe(r);
    EXPECT_EQ(origin.count(kTickerPath), 1u);

    // client: a new request within the hold -> the same 500, the origin not asked
    Response held = http_request(proxy.port(), "GET", kTicker, {}, {}, seconds(5));
    EXPECT_EQ(held.status, 500u) << describe(held);
    EXPECT_EQ(held.body, body);
    EXPECT_EQ(origin.count(kTickerPath), 1u) << "a request within error_hold went upstream";

    // client: after the hold (2 s + 0.5 s) -> the origin is asked again
    sleep_until_offset(answered, milliseconds(2500));
    Response again = http_request(proxy.port(), "GET", kTicker, {}, {}, seconds(5));
    EXPECT_EQ(again.status, 500u) << describe(again);
    EXPECT_EQ(origin.count(kTickerPath), 2u) << "after error_hold the origin was not asked again";
}

// ------------------------------------------------------------------ answers that cannot be shared

TEST(HardeningCoalesceUnshared, SetCookieAnswersGoUpstreamAFewAtATime) {
    // origin: after 300 ms, a 200 with a Set-Cookie of its own per request
    std::atomic<int> next_sid{0};
    ScriptedOrigin origin([&next_sid](const Request&, Reply& reply) {
        reply.pause(milliseconds(300));
        const int sid = next_sid++;
        reply.done();  // answered: the proxy may send the next one once it has this
        reply.write(raw_response(200, R"({"symbol":"BTCUSDT","last":64000.5})",
                                 {{"Content-Type", "application/json"}, {"Set-Cookie", "sid=" + std::to_string(sid)}}));
    });
    Proxy proxy(origin.url(), with_rules(ticker_rules("{ timeout: 30s, max_waiters: 10000, max_unshared: 2 }"),
                                         no_health_check));

    // clients: a burst of 20
    BatchResult b = concurrent_requests(proxy.port(), burst(kBurst), seconds(20));
    ASSERT_EQ(b.connect_failures, 0u);

    // client got: 200 each, each with a cookie nobody else got
    std::set<std::string> cookies;
    for (std::size_t i = 0; i < b.responses.size(); ++i) {
        SCOPED_TRACE("client " + std::to_string(i));
        EXPECT_EQ(b.responses[i].status, 200u) << describe(b.responses[i]);
        const auto cookie = b.responses[i].header("Set-Cookie");
        ASSERT_TRUE(cookie) << describe(b.responses[i]);
        EXPECT_TRUE(cookies.insert(*cookie).second) << "two clients got the same Set-Cookie: " << *cookie;
    }
    // origin saw: 20 requests (one per client), never more than max_unshared + 1 at once
    EXPECT_EQ(origin.count(kTickerPath), static_cast<std::size_t>(kBurst));
    EXPECT_LE(origin.max_concurrency(), 3u) << "the waiters went upstream all at once";
}

TEST(HardeningCoalesceUnshared, TooLargeAnswersGoUpstreamAFewAtATime) {
    const std::string big = sim_bytes(4096);
    // origin: after 300 ms, a 4 KiB answer (the route stores at most 1 KiB)
    ScriptedOrigin origin([&big](const Request&, Reply& reply) {
        reply.pause(milliseconds(300));
        reply.done();  // answered: the proxy may send the next one once it has this
        reply.write(raw_response(200, big, {{"Content-Type", "application/octet-stream"}}));
    });
    Proxy proxy(origin.url(), with_rules(ticker_rules("{ timeout: 30s, max_waiters: 10000, max_unshared: 2 }",
                                                      "    max_object_bytes: 1KiB\n"),
                                         no_health_check));

    // clients: a burst of 20
    BatchResult b = concurrent_requests(proxy.port(), burst(kBurst), seconds(20));
    ASSERT_EQ(b.connect_failures, 0u);

    // client got: 200 with the whole 4 KiB each
    for (std::size_t i = 0; i < b.responses.size(); ++i) {
        SCOPED_TRACE("client " + std::to_string(i));
        EXPECT_EQ(b.responses[i].status, 200u) << describe(b.responses[i], 100);
        EXPECT_EQ(b.responses[i].body.size(), big.size());
        EXPECT_TRUE(b.responses[i].body == big) << "the body differs";
    }
    // origin saw: never more than max_unshared + 1 requests at once
    EXPECT_LE(origin.max_concurrency(), 3u) << "the waiters went upstream all at once";
    EXPECT_GE(origin.count(kTickerPath), 1u);
}

// ------------------------------------------------------------------ timeout

TEST(HardeningCoalesceTimeout, BurstAgainstAnOriginThatNeverAnswersCostsOneCallAndAllGet504) {
    // origin: never answers (holds the connection until the proxy gives up)
    ScriptedOrigin origin([](const Request&, Reply& reply) {
        reply.hang(seconds(15));
        reply.close();
    });
    Proxy proxy(origin.url(), with_rules(ticker_rules(), [](ProxyConfig& c) {
                    no_health_check(c);
                    c.set("upstream.response_timeout", "1s");
                }));

    // clients: a burst of 20
    BatchResult b = concurrent_requests(proxy.port(), burst(kBurst), seconds(10));
    ASSERT_EQ(b.connect_failures, 0u);

    // client got: 504 each
    for (std::size_t i = 0; i < b.responses.size(); ++i) {
        SCOPED_TRACE("client " + std::to_string(i));
        EXPECT_EQ(b.responses[i].status, 504u) << describe(b.responses[i]);
    }
    // origin saw: one request
    std::this_thread::sleep_for(milliseconds(200));
    EXPECT_EQ(origin.count(kTickerPath), 1u);
}

// ------------------------------------------------------------------ 7. a gzip body that does not decode

/// About 3 kB of JSON for one symbol.
std::string ticker_json(const std::string& symbol) {
    std::string s = R"({"symbol":")" + symbol + R"(","book":[)";
    for (int i = 0; i < 80; ++i) {
        if (i) s += ",";
        s += R"({"price":)" + std::to_string(64000 + i) + R"(,"qty":)" + std::to_string(i % 7 + 1) + "}";
    }
    return s + "]}";
}

TEST(HardeningCoalesceGzip, TruncatedGzipFromTheOriginIs502ForEveryClientOfTheFill) {
    // origin: after 300 ms, Content-Encoding: gzip with the member's last 10
    // bytes cut off and Content-Length saying the cut size
    ScriptedOrigin origin([](const Request& req, Reply& reply) {
        reply.pause(milliseconds(300));
        const std::string symbol = req.target.substr(req.target.find('=') + 1);
        std::string gz = gzip_of(ticker_json(symbol));
        gz.resize(gz.size() - 10);
        reply.write(raw_response(200, gz, {{"Content-Type", "application/json"}, {"Content-Encoding", "gzip"}}));
    });
    Proxy proxy(origin.url(), with_rules(ticker_rules(), no_health_check));

    // client: one GET, no Accept-Encoding
    Response one = http_request(proxy.port(), "GET", kTicker, {}, {}, seconds(5));
    // client got: 502, not a 200 labelled gzip
    EXPECT_EQ(one.status, 502u) << describe(one, 80);

    // clients: 5 at once on another key, no Accept-Encoding
    BatchResult b = concurrent_requests(proxy.port(), burst(5, kTickerPath + "?symbol=ETHUSDT"), seconds(5));
    ASSERT_EQ(b.connect_failures, 0u);
    // client got: 502 each, none a 200
    for (std::size_t i = 0; i < b.responses.size(); ++i) {
        SCOPED_TRACE("client " + std::to_string(i));
        EXPECT_EQ(b.responses[i].status, 502u) << describe(b.responses[i], 80);
    }
}

}  // namespace
}  // namespace cacheproxy::e2e
