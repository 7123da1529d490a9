/// Caching scenarios: the proxy with a rules file in front of the legacy
/// simulator. Each test writes its own rules (short TTLs), then says what the
/// client sent, what it got back (status, body, X-Cache / Age / Cache-Status)
/// and what the origin saw (the simulator's per-route counters, and `seq`,
/// which grows on every read the origin answers, so two fetches differ).

#include "support/cache_helpers.hpp"
#include "support/fixtures.hpp"
#include "support/raw_client.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <thread>

namespace cacheproxy::e2e {
namespace {

using std::chrono::milliseconds;

class Cache : public SimulatorTest {
protected:
    static void SetUpTestSuite() { StartSharedSimulator(); }  // latency 0 unless a test sets it
    static void TearDownTestSuite() { StopSharedSimulator(); }

    long long balance_count() { return sim().stats().route("balance"); }

    /// user1 fills the balance entry (1 s TTL) into `fill`; then, from 1.3 s
    /// on (past the TTL), the origin fails every balance request with a 500.
    void fill_then_fail_past_ttl(const Proxy& proxy, Response& fill) {
        const auto t0 = Clock::now();
        fill = http_request(proxy.port(), "GET", balance_target(), bearer(1));
        ASSERT_EQ(fill.status, 200u) << describe(fill);
        sleep_until_offset(t0, milliseconds(1300));
        sim().fail("balance", "500", 0);
    }

    /// The origin recovers: user1's next request is a new fetch (a MISS, newer
    /// than `old`), and the origin has then seen `balance_requests` in all.
    void expect_refetched_after_recovery(const Proxy& proxy, const Response& old, long long balance_requests) {
        sim().fail("balance", "none", 0);
        Response fresh = http_request(proxy.port(), "GET", balance_target(), bearer(1));
        EXPECT_EQ(fresh.status, 200u) << describe(fresh);
        EXPECT_TRUE(CacheIs(fresh, "MISS"));
        EXPECT_GT(seq_of(fresh), seq_of(old)) << fresh.body;
        EXPECT_EQ(balance_count(), balance_requests) << sim().stats().json;
    }
};

/// The balance route, per user + exchange + account_type, with `ttl` and any
/// extra route fields (each a full line, indented by four spaces).
std::string balance_route(const std::string& ttl, const std::string& extra = "") {
    return per_user_route("balance", "/api/trading/balance", ttl) + extra;
}

/// The ticker route: one entry per symbol for every user.
std::string ticker_route(const std::string& ttl) {
    return "  - name: ticker\n"
           "    match: { method: GET, path: /api/trading/ticker }\n"
           "    ttl: " +
           ttl +
           "\n"
           "    shared: true\n"
           "    key: { query: [symbol] }\n";
}

/// Room for 200 simultaneous upstream requests: these tests measure the
/// cache, not the connection pool's limit.
void wide_pool(ProxyConfig& c) { c.set("upstream.max_connections", "400"); }

// --------------------------------------------------------------- hit / miss

TEST_F(Cache, RepeatWithinTtlIsAHitAndTheOriginIsNotAsked) {
    auto proxy = StartProxy(with_rules(rules_yaml(balance_route("5s"))));

    // client: user1 GET balance (cold)
    Response first = http_request(proxy->port(), "GET", balance_target(), bearer(1));
    // client got: 200 MISS with user1's balance
    ASSERT_EQ(first.status, 200u) << describe(first);
    EXPECT_TRUE(CacheIs(first, "MISS"));
    EXPECT_EQ(user_id_of(first), sim_user_id(1)) << first.body;

    // client: the same again
    Response second = http_request(proxy->port(), "GET", balance_target(), bearer(1));
    // client got: a HIT with the very same body and content type, Age within the TTL
    ASSERT_EQ(second.status, 200u) << describe(second);
    EXPECT_TRUE(CacheIs(second, "HIT"));
    EXPECT_EQ(second.body, first.body);
    EXPECT_EQ(second.header("Content-Type"), first.header("Content-Type"));
    EXPECT_LE(age_of(second), 5) << describe(second);

    // origin saw: one balance request
    EXPECT_EQ(balance_count(), 1) << sim().stats().json;
}

TEST_F(Cache, LargeHitsToAClientThatReadsLateArriveWhole) {
    // A hit is first sent without suspending (as much as the socket takes);
    // an 8 MB body to a client that is not reading cannot fit, so the rest
    // goes out asynchronously. Two pipelined hits must both arrive intact.
    auto proxy = StartProxy(with_rules(rules_yaml(
        "  - name: bytes\n"
        "    match: { method: GET, path: /bytes }\n"
        "    ttl: 30s\n"
        "    shared: true\n"
        "    max_object_bytes: 16MiB\n"
        "    max_bytes: 64MiB\n"
        "    key: { query: [n] }\n")));
    const std::string target = "/bytes?n=8000000";
    Response fill = http_request(proxy->port(), "GET", target);
    ASSERT_EQ(fill.status, 200u) << describe(fill);
    ASSERT_TRUE(CacheIs(fill, "MISS")) << describe(fill);

    RawClient client(proxy->port(), 10s);
    ASSERT_TRUE(client.connected()) << client.last_error();
    ASSERT_TRUE(client.send(build_request("GET", target) + build_request("GET", target)));
    std::this_thread::sleep_for(milliseconds(300));  // the proxy's send buffer fills meanwhile
    ReadResult got = client.read_responses(2);
    ASSERT_EQ(got.responses.size(), 2u) << got.error;
    for (const Response& r : got.responses) {
        EXPECT_TRUE(CacheIs(r, "HIT")) << describe(r);
        ASSERT_EQ(r.body.size(), 8000000u);
        EXPECT_EQ(first_sim_bytes_mismatch(r.body), std::string::npos);
    }
    EXPECT_EQ(sim().stats().route("other"), 1) << "filled once";
}

TEST_F(Cache, AfterTtlTheEntryIsRefetched) {
    auto proxy = StartProxy(with_rules(rules_yaml(balance_route("1s"))));

    // client: user1 GET balance, and again at once
    const auto t0 = Clock::now();
    Response fill = http_request(proxy->port(), "GET", balance_target(), bearer(1));
    ASSERT_EQ(fill.status, 200u) << describe(fill);
    EXPECT_TRUE(CacheIs(fill, "MISS"));
    Response hit = http_request(proxy->port(), "GET", balance_target(), bearer(1));
    EXPECT_TRUE(CacheIs(hit, "HIT"));
    EXPECT_EQ(hit.body, fill.body);
    EXPECT_EQ(balance_count(), 1);

    // client: 1.3 s later (the 1 s TTL has passed)
    sleep_until_offset(t0, milliseconds(1300));
    Response after = http_request(proxy->port(), "GET", balance_target(), bearer(1));
    // client got: a MISS with a new fetch (higher seq); origin saw a second request
    ASSERT_EQ(after.status, 200u) << describe(after);
    EXPECT_TRUE(CacheIs(after, "MISS"));
    EXPECT_GT(seq_of(after), seq_of(fill)) << "old: " << fill.body << "\nnew: " << after.body;
    EXPECT_EQ(user_id_of(after), sim_user_id(1));
    EXPECT_EQ(balance_count(), 2) << sim().stats().json;

    // client: once more: the new entry is served
    Response again = http_request(proxy->port(), "GET", balance_target(), bearer(1));
    EXPECT_TRUE(CacheIs(again, "HIT"));
    EXPECT_EQ(again.body, after.body);
    EXPECT_EQ(balance_count(), 2);
}

TEST_F(Cache, TwoUsersNeverShareAnEntry) {
    auto proxy = StartProxy(with_rules(rules_yaml(balance_route("5s"))));

    // client: user1 fills the entry, then user2 asks for the same URL
    Response u1 = http_request(proxy->port(), "GET", balance_target(), bearer(1));
    ASSERT_EQ(u1.status, 200u) << describe(u1);
    Response u2 = http_request(proxy->port(), "GET", balance_target(), bearer(2));

    // client got: user2 its own balance from the origin (MISS), not user1's
    ASSERT_EQ(u2.status, 200u) << describe(u2);
    EXPECT_TRUE(CacheIs(u2, "MISS"));
    EXPECT_EQ(user_id_of(u2), sim_user_id(2)) << u2.body;
    EXPECT_NE(u2.body, u1.body);

    // client: both again: each gets its own entry back
    Response u1b = http_request(proxy->port(), "GET", balance_target(), bearer(1));
    Response u2b = http_request(proxy->port(), "GET", balance_target(), bearer(2));
    EXPECT_TRUE(CacheIs(u1b, "HIT"));
    EXPECT_TRUE(CacheIs(u2b, "HIT"));
    EXPECT_EQ(u1b.body, u1.body);
    EXPECT_EQ(u2b.body, u2.body);
    EXPECT_EQ(user_id_of(u1b), sim_user_id(1));
    EXPECT_EQ(user_id_of(u2b), sim_user_id(2));

    // origin saw: one request per user
    EXPECT_EQ(balance_count(), 2) << sim().stats().json;
}

TEST_F(Cache, KeyIgnoresParameterOrderAndUnnamedParameters) {
    auto proxy = StartProxy(with_rules(rules_yaml(balance_route("5s"))));

    // client: user1 fills exchange=bybit&account_type=demo
    Response fill = http_request(proxy->port(), "GET", "/api/trading/balance?exchange=bybit&account_type=demo",
                                 bearer(1));
    ASSERT_EQ(fill.status, 200u) << describe(fill);
    EXPECT_TRUE(CacheIs(fill, "MISS"));

    // client: the same parameters in the other order, and with parameters the key does not name
    for (const char* target : {"/api/trading/balance?account_type=demo&exchange=bybit",
                               "/api/trading/balance?exchange=bybit&account_type=demo&foo=bar",
                               "/api/trading/balance?_=1712345&account_type=demo&exchange=bybit"}) {
        SCOPED_TRACE(target);
        Response r = http_request(proxy->port(), "GET", target, bearer(1));
        // client got: the entry filled above
        EXPECT_TRUE(CacheIs(r, "HIT"));
        EXPECT_EQ(r.body, fill.body);
    }
    EXPECT_EQ(balance_count(), 1) << sim().stats().json;

    // client: another exchange, another account type: entries of their own
    Response other_exchange = http_request(proxy->port(), "GET", balance_target("binance", "demo"), bearer(1));
    Response other_account = http_request(proxy->port(), "GET", balance_target("bybit", "real"), bearer(1));
    EXPECT_TRUE(CacheIs(other_exchange, "MISS"));
    EXPECT_TRUE(CacheIs(other_account, "MISS"));
    auto j1 = body_json(other_exchange);
    auto j2 = body_json(other_account);
    ASSERT_TRUE(j1 && j2) << other_exchange.body << "\n" << other_account.body;
    EXPECT_EQ((*j1)["exchange"].as_string(), "binance");
    EXPECT_EQ((*j2)["account_type"].as_string(), "real");

    // origin saw: three distinct requests
    EXPECT_EQ(balance_count(), 3) << sim().stats().json;
}

// --------------------------------------------------------------- coalescing

TEST_F(Cache, ConcurrentIdenticalColdRequestsAreSentUpstreamOnce) {
    sim().set_latency(R"({"balance":0.5})");
    auto proxy = StartProxy(with_rules(rules_yaml(balance_route("5s")), wide_pool));

    // client: 200 connections, the same user1 GET balance released at once (origin takes 0.5 s)
    const std::size_t n = 200;
    std::vector<RequestSpec> specs(n, RequestSpec{"GET", balance_target(), bearer(1)});
    BatchResult b = concurrent_requests(proxy->port(), specs);
    ASSERT_EQ(b.connect_failures, 0u);

    // client got: 200 x 200 OK, every one the same body (one fetch: one seq)
    std::size_t ok = 0;
    std::set<long long> seqs;
    for (std::size_t i = 0; i < n; ++i) {
        const Response& r = b.responses[i];
        if (r.status == 200) ++ok;
        seqs.insert(seq_of(r));
        if (r.status != 200 || r.body != b.responses[0].body) {
            ADD_FAILURE() << "response " << i << " differs from response 0:\n"
                          << describe(r) << "\nresponse 0:\n" << describe(b.responses[0]);
            break;
        }
        const std::string xc = x_cache(r);
        if (xc != "MISS" && xc != "HIT") {
            ADD_FAILURE() << "response " << i << " has X-Cache " << xc << "\n" << describe(r);
            break;
        }
    }
    EXPECT_EQ(ok, n);
    EXPECT_EQ(seqs.size(), 1u) << "distinct seq values: " << seqs.size();
    EXPECT_EQ(user_id_of(b.responses[0]), sim_user_id(1));

    // origin saw: exactly one balance request
    EXPECT_EQ(balance_count(), 1) << sim().stats().json;
    EXPECT_LT(b.seconds, 5.0);
}

TEST_F(Cache, ConcurrentColdRequestsOfDifferentUsersAreNotMerged) {
    sim().set_latency(R"({"balance":0.5})");
    auto proxy = StartProxy(with_rules(rules_yaml(balance_route("5s")), wide_pool));

    // client: users 1..200, the same URL, released at once
    const int n = 200;
    std::vector<RequestSpec> specs;
    for (int u = 1; u <= n; ++u) specs.push_back(RequestSpec{"GET", balance_target(), bearer(u)});
    BatchResult b = concurrent_requests(proxy->port(), specs);
    ASSERT_EQ(b.connect_failures, 0u);

    // client got: each user its own balance
    int wrong = 0;
    std::set<long long> seqs;
    for (int u = 1; u <= n; ++u) {
        const Response& r = b.responses[static_cast<std::size_t>(u - 1)];
        seqs.insert(seq_of(r));
        if (r.status != 200 || user_id_of(r) != sim_user_id(u)) {
            if (++wrong <= 3)
                ADD_FAILURE() << "user" << u << " got:\n" << describe(r);
        }
    }
    EXPECT_EQ(wrong, 0) << "responses not 200 with the user's own user_id";
    EXPECT_EQ(seqs.size(), static_cast<std::size_t>(n)) << "the users' answers should be distinct fetches";

    // origin saw: one request per user
    EXPECT_EQ(balance_count(), n) << sim().stats().json;
}

// --------------------------------------------------------------- bypass

TEST_F(Cache, RequestWithoutAuthorizationIsForwardedAndNeverServedFromCache) {
    auto proxy = StartProxy(with_rules(rules_yaml(balance_route("5s"))));

    // client: user1 fills the entry
    Response fill = http_request(proxy->port(), "GET", balance_target(), bearer(1));
    ASSERT_EQ(fill.status, 200u) << describe(fill);

    // client: the same URL twice without Authorization
    for (int i = 0; i < 2; ++i) {
        SCOPED_TRACE("anonymous request " + std::to_string(i + 1));
        Response anon = http_request(proxy->port(), "GET", balance_target());
        // client got: the origin's 401, marked BYPASS; never user1's cached balance
        EXPECT_EQ(anon.status, 401u) << describe(anon);
        EXPECT_TRUE(CacheIs(anon, "BYPASS"));
        EXPECT_NE(anon.body, fill.body);
        EXPECT_EQ(user_id_of(anon), -1) << anon.body;
    }

    // origin saw: the fill and both anonymous requests
    EXPECT_EQ(balance_count(), 3) << sim().stats().json;

    // and user1's entry is untouched
    Response again = http_request(proxy->port(), "GET", balance_target(), bearer(1));
    EXPECT_TRUE(CacheIs(again, "HIT"));
    EXPECT_EQ(again.body, fill.body);
    EXPECT_EQ(balance_count(), 3);
}

TEST_F(Cache, ConcurrentRequestsWithoutAuthorizationAreNotCoalesced) {
    // The simulator's 401 is immediate; to make anonymous requests overlap in
    // flight, every balance request fails with a 500 after 0.5 s instead.
    sim().set_latency(R"({"balance":0.5})");
    sim().fail("balance", "500", 0);
    auto proxy = StartProxy(with_rules(rules_yaml(balance_route("5s")), wide_pool));

    // client: 20 anonymous GET balance, released at once
    const std::size_t n = 20;
    std::vector<RequestSpec> specs(n, RequestSpec{"GET", balance_target(), {}});
    BatchResult b = concurrent_requests(proxy->port(), specs);
    ASSERT_EQ(b.connect_failures, 0u);

    // client got: every one the origin's 500, marked BYPASS
    for (std::size_t i = 0; i < n; ++i) {
        SCOPED_TRACE("response " + std::to_string(i));
        EXPECT_EQ(b.responses[i].status, 500u) << describe(b.responses[i]);
        EXPECT_TRUE(CacheIs(b.responses[i], "BYPASS"));
        if (HasFailure()) break;
    }
    // origin saw: each of them
    EXPECT_EQ(balance_count(), static_cast<long long>(n)) << sim().stats().json;
}

TEST_F(Cache, KeyParameterGivenTwiceIsBypassedAndNotStored) {
    auto proxy = StartProxy(with_rules(rules_yaml(balance_route("5s"))));

    // client: user1, exchange given twice, two times over; then account_type given twice
    const std::string dup_exchange = "/api/trading/balance?exchange=bybit&exchange=binance&account_type=demo";
    const std::string dup_account = "/api/trading/balance?exchange=bybit&account_type=demo&account_type=real";
    for (const std::string& target : {dup_exchange, dup_exchange, dup_account}) {
        SCOPED_TRACE(target);
        Response r = http_request(proxy->port(), "GET", target, bearer(1));
        // client got: the origin's answer, marked BYPASS
        EXPECT_EQ(r.status, 200u) << describe(r);
        EXPECT_TRUE(CacheIs(r, "BYPASS"));
    }
    // origin saw: all three
    EXPECT_EQ(balance_count(), 3) << sim().stats().json;

    // client: each single-valued reading of them: none was stored, so each is a MISS
    for (const std::string& target : {balance_target("bybit", "demo"), balance_target("binance", "demo"),
                                       balance_target("bybit", "real")}) {
        SCOPED_TRACE(target);
        Response r = http_request(proxy->port(), "GET", target, bearer(1));
        EXPECT_EQ(r.status, 200u) << describe(r);
        EXPECT_TRUE(CacheIs(r, "MISS"));
    }
    EXPECT_EQ(balance_count(), 6) << sim().stats().json;
}

TEST_F(Cache, ClientNoCacheDoesNotBustTheCache) {
    auto proxy = StartProxy(with_rules(rules_yaml(balance_route("5s"))));

    // client: user1 fills the entry
    Response fill = http_request(proxy->port(), "GET", balance_target(), bearer(1));
    ASSERT_EQ(fill.status, 200u) << describe(fill);

    // client: Cache-Control: no-cache, then Pragma: no-cache (the route does not allow either)
    for (const auto& h : Headers{{"Cache-Control", "no-cache"}, {"Pragma", "no-cache"}}) {
        SCOPED_TRACE(h.first + ": " + h.second);
        Response r = http_request(proxy->port(), "GET", balance_target(), bearer(1, {h}));
        // client got: the cached entry
        EXPECT_EQ(r.status, 200u) << describe(r);
        EXPECT_TRUE(CacheIs(r, "HIT"));
        EXPECT_EQ(r.body, fill.body);
    }
    // origin saw: only the fill
    EXPECT_EQ(balance_count(), 1) << sim().stats().json;
}

// --------------------------------------------------------------- origin errors

// These three send one request after another and look at what is stored, so
// they turn off coalesce.error_hold (which would answer a request within a
// second of a 5xx with that 5xx: tested in hardening_coalesce_test.cpp).
const std::string kNoErrorHold = "{ timeout: 10s, max_waiters: 10000, error_hold: 0s }";

TEST_F(Cache, StaleIfErrorServesTheOldBodyWhenTheOriginFails) {
    auto proxy =
        StartProxy(with_rules(rules_yaml(balance_route("1s", "    stale_if_error: 30s\n"), kNoErrorHold)));

    // client: user1 fills the entry; origin: from 1.3 s on (past the TTL), every balance request fails with 500
    Response fill;
    ASSERT_NO_FATAL_FAILURE(fill_then_fail_past_ttl(*proxy, fill));

    // client: the same request
    Response r = http_request(proxy->port(), "GET", balance_target(), bearer(1));
    // client got: 200 with the old body, marked STALE
    EXPECT_EQ(r.status, 200u) << describe(r);
    EXPECT_TRUE(CacheIs(r, "STALE"));
    EXPECT_EQ(r.body, fill.body);
    // origin saw: the fill and the failed refetch
    EXPECT_EQ(balance_count(), 2) << sim().stats().json;

    // origin recovers: the next request fetches a new answer
    expect_refetched_after_recovery(*proxy, fill, 3);
}

TEST_F(Cache, WithoutStaleIfErrorTheOriginErrorIsRelayedAndNotCached) {
    auto proxy = StartProxy(with_rules(rules_yaml(balance_route("1s"), kNoErrorHold)));

    // client: user1 fills the entry; origin: past the TTL, every balance request fails with 500
    Response fill;
    ASSERT_NO_FATAL_FAILURE(fill_then_fail_past_ttl(*proxy, fill));

    // client: the same request
    Response r = http_request(proxy->port(), "GET", balance_target(), bearer(1));
    // client got: the origin's 500, not the expired entry
    EXPECT_EQ(r.status, 500u) << describe(r);
    EXPECT_NE(r.body, fill.body);
    EXPECT_NE(x_cache(r), "HIT") << describe(r);
    EXPECT_NE(x_cache(r), "STALE") << describe(r);
    EXPECT_EQ(balance_count(), 2) << sim().stats().json;

    // origin recovers: the 500 was not stored, the next request is a MISS
    expect_refetched_after_recovery(*proxy, fill, 3);
}

TEST_F(Cache, AnOriginErrorIsNeverCached) {
    auto proxy =
        StartProxy(with_rules(rules_yaml(balance_route("5s", "    stale_if_error: 30s\n"), kNoErrorHold)));

    // origin: every balance request fails with 500
    sim().fail("balance", "500", 0);

    // client: user1 GET balance twice (cold)
    for (int i = 0; i < 2; ++i) {
        SCOPED_TRACE("request " + std::to_string(i + 1));
        Response r = http_request(proxy->port(), "GET", balance_target(), bearer(1));
        // client got: the 500 each time
        EXPECT_EQ(r.status, 500u) << describe(r);
        EXPECT_NE(x_cache(r), "HIT") << describe(r);
    }
    // origin saw: both
    EXPECT_EQ(balance_count(), 2) << sim().stats().json;

    // origin recovers: a MISS, then a HIT of the good answer
    sim().fail("balance", "none", 0);
    Response ok = http_request(proxy->port(), "GET", balance_target(), bearer(1));
    EXPECT_EQ(ok.status, 200u) << describe(ok);
    EXPECT_TRUE(CacheIs(ok, "MISS"));
    Response hit = http_request(proxy->port(), "GET", balance_target(), bearer(1));
    EXPECT_TRUE(CacheIs(hit, "HIT"));
    EXPECT_EQ(hit.body, ok.body);
    EXPECT_EQ(balance_count(), 3) << sim().stats().json;
}

// --------------------------------------------------------------- background refresh

TEST_F(Cache, StaleWhileRevalidateAnswersAtOnceAndRefreshesOnce) {
    auto proxy = StartProxy(with_rules(rules_yaml(balance_route("2s", "    stale_while_revalidate: 10s\n"))));

    // client: user1 fills the entry (origin answers at once)
    const auto t0 = Clock::now();
    Response fill = http_request(proxy->port(), "GET", balance_target(), bearer(1));
    ASSERT_EQ(fill.status, 200u) << describe(fill);

    // origin: from 2.3 s on (past the TTL, within SWR) it takes 1 s to answer
    sleep_until_offset(t0, milliseconds(2300));
    sim().set_latency(R"({"balance":1.0})");

    // client: the same request, twice in a row
    Timed a = timed_request(proxy->port(), "GET", balance_target(), bearer(1));
    Timed b = timed_request(proxy->port(), "GET", balance_target(), bearer(1));
    // client got: the old body at once, marked STALE, both times
    EXPECT_EQ(a.response.status, 200u) << describe(a.response);
    EXPECT_TRUE(CacheIs(a.response, "STALE"));
    EXPECT_EQ(a.response.body, fill.body);
    EXPECT_LT(a.seconds, 0.5) << "the client waited for the origin";
    EXPECT_TRUE(CacheIs(b.response, "STALE"));
    EXPECT_EQ(b.response.body, fill.body);
    EXPECT_LT(b.seconds, 0.5) << "the client waited for the origin";

    // origin saw: one background refresh
    EXPECT_TRUE(wait_until([&] { return balance_count() >= 2; }, milliseconds(1500)))
        << "no background refresh reached the origin: " << sim().stats().json;

    // client: after the refresh has landed (1 s origin latency), the same request
    std::this_thread::sleep_for(milliseconds(1300));
    Response c = http_request(proxy->port(), "GET", balance_target(), bearer(1));
    // client got: a HIT with the refreshed answer
    EXPECT_EQ(c.status, 200u) << describe(c);
    EXPECT_TRUE(CacheIs(c, "HIT"));
    EXPECT_GT(seq_of(c), seq_of(fill)) << c.body;
    EXPECT_EQ(user_id_of(c), sim_user_id(1));
    // origin saw: the fill and exactly one refresh
    EXPECT_EQ(balance_count(), 2) << sim().stats().json;
}

TEST_F(Cache, RefreshAheadRenewsAHotEntryBeforeItExpires) {
    auto proxy = StartProxy(with_rules(rules_yaml(balance_route("2s", "    refresh_ahead: 1s\n"))));

    // client: user1 fills the entry (origin answers at once)
    const auto t0 = Clock::now();
    Response fill = http_request(proxy->port(), "GET", balance_target(), bearer(1));
    ASSERT_EQ(fill.status, 200u) << describe(fill);
    sim().set_latency(R"({"balance":0.3})");  // from now on the origin takes 0.3 s

    // client: at 1.3 s (less than refresh_ahead left of the TTL)
    sleep_until_offset(t0, milliseconds(1300));
    Timed a = timed_request(proxy->port(), "GET", balance_target(), bearer(1));
    // client got: a HIT with the old body, at once
    EXPECT_EQ(a.response.status, 200u) << describe(a.response);
    EXPECT_TRUE(CacheIs(a.response, "HIT"));
    EXPECT_EQ(a.response.body, fill.body);
    EXPECT_LT(a.seconds, 0.25) << "the client waited for the origin";
    // origin saw: a background refresh
    EXPECT_TRUE(wait_until([&] { return balance_count() >= 2; }, milliseconds(600)))
        << "no refresh-ahead reached the origin: " << sim().stats().json;
    EXPECT_EQ(balance_count(), 2) << sim().stats().json;

    // client: at 2.15 s, past the original TTL
    sleep_until_offset(t0, milliseconds(2150));
    Timed b = timed_request(proxy->port(), "GET", balance_target(), bearer(1));
    // client got: still a HIT, now with the refreshed answer, at once
    EXPECT_EQ(b.response.status, 200u) << describe(b.response);
    EXPECT_TRUE(CacheIs(b.response, "HIT"));
    EXPECT_GT(seq_of(b.response), seq_of(fill)) << b.response.body;
    EXPECT_EQ(user_id_of(b.response), sim_user_id(1));
    EXPECT_LT(b.seconds, 0.25) << "the client waited for the origin";
    // origin saw: still only the fill and the one refresh (b was served from the cache)
    EXPECT_EQ(balance_count(), 2) << sim().stats().json;
}

// --------------------------------------------------------------- HEAD, shared, pass-through

TEST_F(Cache, HeadIsAnsweredFromTheGetEntry) {
    auto proxy = StartProxy(with_rules(rules_yaml(balance_route("5s"))));
    RawClient c(proxy->port());
    ASSERT_TRUE(c.connected()) << c.last_error();

    // client: user1 GET balance, then HEAD, then GET, on one connection
    Response fill = c.request("GET", balance_target(), bearer(1));
    ASSERT_EQ(fill.status, 200u) << describe(fill);
    ASSERT_TRUE(c.send(build_request("HEAD", balance_target(), bearer(1)))) << c.last_error();
    Response head = c.read_response(/*head=*/true);
    Response get = c.request("GET", balance_target(), bearer(1));

    // client got: the HEAD answered from the entry: 200 HIT, no body, the GET's length
    EXPECT_EQ(head.status, 200u) << describe(head);
    EXPECT_TRUE(CacheIs(head, "HIT"));
    EXPECT_TRUE(head.body.empty());
    EXPECT_EQ(head.header("Content-Length"), std::to_string(fill.body.size())) << describe(head);
    EXPECT_EQ(head.header("Content-Type"), fill.header("Content-Type"));
    // and the connection stayed in step: the next GET got its own whole answer
    EXPECT_EQ(get.status, 200u) << describe(get) << "\nreceived:\n" << c.received().substr(0, 1500);
    EXPECT_TRUE(CacheIs(get, "HIT"));
    EXPECT_EQ(get.body, fill.body);

    // origin saw: only the first GET
    EXPECT_EQ(balance_count(), 1) << sim().stats().json;
}

TEST_F(Cache, SharedRouteServesOneEntryToEveryUser) {
    auto proxy = StartProxy(with_rules(rules_yaml(ticker_route("5s"))));
    const std::string btc = "/api/trading/ticker?symbol=BTCUSDT";

    // client: user1 then user2 ask for the BTCUSDT ticker
    Response u1 = http_request(proxy->port(), "GET", btc, bearer(1));
    Response u2 = http_request(proxy->port(), "GET", btc, bearer(2));
    // client got: one fetch, served to both
    ASSERT_EQ(u1.status, 200u) << describe(u1);
    EXPECT_TRUE(CacheIs(u1, "MISS"));
    EXPECT_EQ(u2.status, 200u) << describe(u2);
    EXPECT_TRUE(CacheIs(u2, "HIT"));
    EXPECT_EQ(u2.body, u1.body);
    EXPECT_EQ(sim().stats().route("ticker"), 1) << sim().stats().json;

    // client: user2 asks for another symbol: an entry of its own
    Response eth = http_request(proxy->port(), "GET", "/api/trading/ticker?symbol=ETHUSDT", bearer(2));
    EXPECT_EQ(eth.status, 200u) << describe(eth);
    EXPECT_TRUE(CacheIs(eth, "MISS"));
    auto j = body_json(eth);
    ASSERT_TRUE(j) << eth.body;
    EXPECT_EQ((*j)["symbol"].as_string(), "ETHUSDT");
    EXPECT_EQ(sim().stats().route("ticker"), 2) << sim().stats().json;
}

TEST_F(Cache, UnmatchedRequestsPassThroughWithoutCacheHeaders) {
    auto proxy = StartProxy(with_rules(rules_yaml(balance_route("5s"))));

    // client: a legacy route with no rule (positions), twice
    for (int i = 0; i < 2; ++i) {
        Response r = http_request(proxy->port(), "GET", "/api/trading/positions?exchange=bybit&account_type=demo",
                                  bearer(1));
        EXPECT_EQ(r.status, 200u) << describe(r);
        EXPECT_TRUE(CacheIs(r, "NONE"));
    }
    // client: another method on the cached path, and a helper route
    Response post = http_request(proxy->port(), "POST", balance_target(), bearer(1, {{"Content-Type", "application/json"}}),
                                 "{}");
    EXPECT_EQ(post.status, 405u) << describe(post);
    EXPECT_TRUE(CacheIs(post, "NONE"));
    Response echo = http_request(proxy->port(), "GET", "/echo/plain", bearer(1));
    EXPECT_EQ(echo.status, 200u) << describe(echo);
    EXPECT_TRUE(CacheIs(echo, "NONE"));

    // origin saw: every one of them
    SimStats s = sim().stats();
    EXPECT_EQ(s.route("positions"), 2) << s.json;
    EXPECT_EQ(s.route("other"), 1) << s.json;
    EXPECT_EQ(s.route("echo"), 1) << s.json;
    EXPECT_EQ(s.route("balance"), 0) << s.json;
}

}  // namespace
}  // namespace cacheproxy::e2e
