/// Write-driven invalidation: the proxy with cached positions / balance / orders
/// (60 s TTLs, so only an invalidation can turn a hit into a miss) and the
/// order triggers, in front of the legacy simulator. Each test says what the
/// client wrote, what it read back afterwards (X-Cache, and whether the body
/// shows the write), and what the origin saw. Plus the admin listener's purge
/// and the credential never reaching the log.

#include "support/cache_helpers.hpp"
#include "support/fixtures.hpp"
#include "support/invalidation_helpers.hpp"
#include "support/raw_client.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <initializer_list>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace cacheproxy::e2e {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

class Invalidation : public SimulatorTest {
protected:
    static void SetUpTestSuite() { StartSharedSimulator(); }  // latency 0 unless a test sets it
    static void TearDownTestSuite() { StopSharedSimulator(); }

    long long origin(const std::string& route) { return sim().stats().route(route); }

    /// The origin saw `n` requests on each listed route.
    void expect_origin_saw(std::initializer_list<std::pair<std::string, long long>> counts) {
        auto s = sim().stats();
        for (const auto& [route, n] : counts) EXPECT_EQ(s.route(route), n) << route << "\n" << s.json;
    }

    /// user1's ETHUSDT position on bybit/demo as the origin has it, asked of
    /// the origin directly (not through the proxy; the read counts in its stats).
    void read_seed_position(double& eth) {
        Response seed = sim().direct("GET", positions_target(), bearer(1));
        ASSERT_EQ(seed.status, 200u) << describe(seed);
        eth = position_size(seed, "ETHUSDT");
        ASSERT_GE(eth, 0) << seed.body;
    }

    /// Client A on `reader`: user1 GET positions into `slow` (cold: it is the
    /// fill; the origin snapshots at arrival and answers after its latency).
    /// Returns 0.3 s after `t0`, once that read has reached the origin.
    void start_slow_fill(const Proxy& proxy, Clock::time_point t0, long long origin_reads, Timed& slow,
                         std::jthread& reader) {
        reader = std::jthread([&proxy, &slow] {
            slow = timed_request(proxy.port(), "GET", positions_target(), bearer(1));
        });
        sleep_until_offset(t0, milliseconds(300));
        ASSERT_EQ(origin("positions"), origin_reads + 1)
            << "the slow read has not reached the origin yet: no race to test";
    }
};

Response get(const Proxy& proxy, const std::string& target, int user) {
    return http_request(proxy.port(), "GET", target, bearer(user));
}

/// GET `target` as `user` twice: a MISS that fills, then a HIT with the same
/// body (the entry is there before the write). Returns the filling response.
Response fill(const Proxy& proxy, const std::string& target, int user) {
    SCOPED_TRACE("fill " + target + " as user" + std::to_string(user));
    Response first = get(proxy, target, user);
    EXPECT_EQ(first.status, 200u) << describe(first);
    EXPECT_TRUE(CacheIs(first, "MISS"));
    EXPECT_EQ(user_id_of(first), sim_user_id(user)) << first.body;
    Response second = get(proxy, target, user);
    EXPECT_TRUE(CacheIs(second, "HIT"));
    EXPECT_EQ(second.body, first.body);
    return first;
}

/// `target` as `user` is still the entry `filled` (a HIT, same body).
void expect_still_hit(const Proxy& proxy, const std::string& target, int user, const Response& filled) {
    SCOPED_TRACE("still cached: " + target + " as user" + std::to_string(user));
    Response r = get(proxy, target, user);
    EXPECT_EQ(r.status, 200u) << describe(r);
    EXPECT_TRUE(CacheIs(r, "HIT"));
    EXPECT_EQ(r.body, filled.body);
}

/// `target` as `user` was dropped: a MISS with a new fetch. Returns it.
Response expect_dropped(const Proxy& proxy, const std::string& target, int user, const Response& filled) {
    SCOPED_TRACE("dropped: " + target + " as user" + std::to_string(user));
    Response r = get(proxy, target, user);
    EXPECT_EQ(r.status, 200u) << describe(r);
    EXPECT_TRUE(CacheIs(r, "MISS"));
    EXPECT_GT(seq_of(r), seq_of(filled)) << "old: " << filled.body << "\nnew: " << r.body;
    EXPECT_EQ(user_id_of(r), sim_user_id(user)) << r.body;
    return r;
}

/// The contract's order: user1's market Buy of 1 ETHUSDT on bybit/demo.
std::string eth_buy() { return OrderBody{}.json(); }

// --------------------------------------------------------------- order placed

TEST_F(Invalidation, SuccessfulOrderDropsTheWritersEntriesInItsScopeBeforeItIsAnswered) {
    auto proxy = StartProxy(with_rules(invalidation_rules()));

    // client: user1 fills positions, balance, orders on bybit/demo, positions on bybit/real;
    //         user2 fills positions on bybit/demo
    Response pos = fill(*proxy, positions_target(), 1);
    Response bal = fill(*proxy, balance_target(), 1);
    Response ord = fill(*proxy, orders_target(), 1);
    Response pos_real = fill(*proxy, positions_target("bybit", "real"), 1);
    Response pos_u2 = fill(*proxy, positions_target(), 2);
    ASSERT_FALSE(HasFailure());
    const double eth_before = position_size(pos, "ETHUSDT");
    ASSERT_GE(eth_before, 0) << pos.body;

    // client: user1 places a market Buy of 1 ETHUSDT on bybit/demo
    Response order = place_order(proxy->port(), bearer(1), eth_buy());
    // client got: the origin's success, not a cache answer
    ASSERT_EQ(order.status, 200u) << describe(order);
    EXPECT_EQ(success_of(order), 1) << order.body;
    EXPECT_TRUE(CacheIs(order, "NONE"));

    // client: user1 reads positions bybit/demo right away: a MISS showing the new position
    Response pos_after = expect_dropped(*proxy, positions_target(), 1, pos);
    EXPECT_NEAR(position_size(pos_after, "ETHUSDT"), eth_before + 1, 1e-6) << pos_after.body;
    // balance bybit/demo: a MISS, with the order's cost taken from `available`
    Response bal_after = expect_dropped(*proxy, balance_target(), 1, bal);
    EXPECT_LT(available_of(bal_after), available_of(bal)) << "before: " << bal.body << "\nafter: " << bal_after.body;
    // orders bybit/demo: a MISS
    expect_dropped(*proxy, orders_target(), 1, ord);

    // client: the entries outside the write's scope are untouched
    expect_still_hit(*proxy, positions_target("bybit", "real"), 1, pos_real);  // same user, other account
    expect_still_hit(*proxy, positions_target(), 2, pos_u2);                   // other user, same scope

    // client: the new positions entry is served from now on
    Response again = get(*proxy, positions_target(), 1);
    EXPECT_TRUE(CacheIs(again, "HIT"));
    EXPECT_EQ(again.body, pos_after.body);

    // origin saw: the order once; 3 + 1 positions, 1 + 1 balance, 1 + 1 orders
    expect_origin_saw({{"order", 1}, {"positions", 4}, {"balance", 2}, {"orders", 2}});
}

TEST_F(Invalidation, RejectedOrderDropsNothing) {
    auto proxy = StartProxy(with_rules(invalidation_rules()));

    // client: user1 fills positions, balance and orders on bybit/demo
    Response pos = fill(*proxy, positions_target(), 1);
    Response bal = fill(*proxy, balance_target(), 1);
    Response ord = fill(*proxy, orders_target(), 1);
    ASSERT_FALSE(HasFailure());

    // client: user1 places an order of qty 0 in that scope
    OrderBody body;
    body.qty = "0";
    Response order = place_order(proxy->port(), bearer(1), body.json());
    // client got: the origin's 200 {"success": false, ...}
    ASSERT_EQ(order.status, 200u) << describe(order);
    EXPECT_EQ(success_of(order), 0) << order.body;

    // client: every entry is still served from the cache
    expect_still_hit(*proxy, positions_target(), 1, pos);
    expect_still_hit(*proxy, balance_target(), 1, bal);
    expect_still_hit(*proxy, orders_target(), 1, ord);

    // origin saw: the order, and only the first read of each route
    expect_origin_saw({{"order", 1}, {"positions", 1}, {"balance", 1}, {"orders", 1}});
}

TEST_F(Invalidation, MissingScopeFieldWidensToAllOfTheWritersEntries) {
    auto proxy = StartProxy(with_rules(invalidation_rules()));

    // client: user1 fills positions, balance, orders on bybit/demo and bybit/real; user2 on bybit/demo
    Response pos_demo = fill(*proxy, positions_target("bybit", "demo"), 1);
    Response pos_real = fill(*proxy, positions_target("bybit", "real"), 1);
    Response bal_demo = fill(*proxy, balance_target("bybit", "demo"), 1);
    Response bal_real = fill(*proxy, balance_target("bybit", "real"), 1);
    Response ord_demo = fill(*proxy, orders_target("bybit", "demo"), 1);
    Response ord_real = fill(*proxy, orders_target("bybit", "real"), 1);
    Response pos_u2 = fill(*proxy, positions_target(), 2);
    Response bal_u2 = fill(*proxy, balance_target(), 2);
    Response ord_u2 = fill(*proxy, orders_target(), 2);
    ASSERT_FALSE(HasFailure());
    const double eth_before = position_size(pos_demo, "ETHUSDT");

    // client: user1 places an order without account_type (the origin takes demo)
    OrderBody body;
    body.account_type.reset();
    Response order = place_order(proxy->port(), bearer(1), body.json());
    ASSERT_EQ(order.status, 200u) << describe(order);
    ASSERT_EQ(success_of(order), 1) << order.body;

    // client: every entry of user1's in positions, balance and orders is a MISS, demo and real
    Response pos_after = expect_dropped(*proxy, positions_target("bybit", "demo"), 1, pos_demo);
    EXPECT_NEAR(position_size(pos_after, "ETHUSDT"), eth_before + 1, 1e-6) << pos_after.body;
    expect_dropped(*proxy, positions_target("bybit", "real"), 1, pos_real);
    expect_dropped(*proxy, balance_target("bybit", "demo"), 1, bal_demo);
    expect_dropped(*proxy, balance_target("bybit", "real"), 1, bal_real);
    expect_dropped(*proxy, orders_target("bybit", "demo"), 1, ord_demo);
    expect_dropped(*proxy, orders_target("bybit", "real"), 1, ord_real);

    // client: user2's entries are untouched
    expect_still_hit(*proxy, positions_target(), 2, pos_u2);
    expect_still_hit(*proxy, balance_target(), 2, bal_u2);
    expect_still_hit(*proxy, orders_target(), 2, ord_u2);

    // origin saw: 3 + 2 positions, 3 + 2 balance, 3 + 2 orders
    expect_origin_saw({{"positions", 5}, {"balance", 5}, {"orders", 5}});
}

TEST_F(Invalidation, NonJsonOrderIsRefusedByTheOriginAndDropsNothing) {
    auto proxy = StartProxy(with_rules(invalidation_rules()));

    // client: user1 fills positions and balance on bybit/demo
    Response pos = fill(*proxy, positions_target(), 1);
    Response bal = fill(*proxy, balance_target(), 1);
    ASSERT_FALSE(HasFailure());

    // client: user1 posts an order whose body is not JSON
    Response order = place_order(proxy->port(), bearer(1), "exchange=bybit&account_type=demo&symbol=ETHUSDT&qty=1");
    // client got: the origin's 422 (a failed write)
    EXPECT_EQ(order.status, 422u) << describe(order);

    // client: both entries are still served from the cache
    expect_still_hit(*proxy, positions_target(), 1, pos);
    expect_still_hit(*proxy, balance_target(), 1, bal);

    // origin saw: the order once, one read of each
    expect_origin_saw({{"order", 1}, {"positions", 1}, {"balance", 1}});
}

// --------------------------------------------------------------- read-your-writes

TEST_F(Invalidation, ReadAfterTheOrderNeverGetsTheFillThatWasInFlightDuringIt) {
    // The seed's ETHUSDT position, asked of the origin directly (not through the proxy).
    double eth_before = 0;
    ASSERT_NO_FATAL_FAILURE(read_seed_position(eth_before));
    const long long origin_reads = origin("positions");  // that direct read counts

    // origin: positions take 2 s (snapshot at arrival), orders are immediate
    sim().set_latency(R"({"default":0.0,"positions":2.0})");
    auto proxy = StartProxy(with_rules(invalidation_rules()));

    // client A: user1 GET positions (cold: it is the fill; the origin snapshots now, answers in 2 s)
    const auto t0 = Clock::now();
    Timed slow;
    std::jthread slow_reader;
    ASSERT_NO_FATAL_FAILURE(start_slow_fill(*proxy, t0, origin_reads, slow, slow_reader));

    // client B: 0.3 s later, user1 places a Buy of 1 ETHUSDT and waits for the answer
    Response order = place_order(proxy->port(), bearer(1), eth_buy());
    ASSERT_EQ(order.status, 200u) << describe(order);
    ASSERT_EQ(success_of(order), 1) << order.body;
    EXPECT_LT(seconds_since(t0), 1.5) << "the order should not wait for the slow read";

    // client B: at once, GET positions again: a new fetch that shows the order,
    //           not the slow fill (nor its result)
    Response after = http_request(proxy->port(), "GET", positions_target(), bearer(1), {}, seconds(5));
    ASSERT_EQ(after.status, 200u) << describe(after);
    EXPECT_NEAR(position_size(after, "ETHUSDT"), eth_before + 1, 1e-6) << after.body;
    EXPECT_TRUE(CacheIs(after, "MISS"));

    // client A got: its answer (it may be the old snapshot)
    slow_reader.join();
    ASSERT_EQ(slow.response.status, 200u) << describe(slow.response);
    EXPECT_EQ(user_id_of(slow.response), sim_user_id(1));
    EXPECT_NE(seq_of(after), seq_of(slow.response)) << "the read after the order joined the slow fill:\n"
                                                    << after.body;

    // client: every later read shows the order (the slow fill was not stored)
    for (int i = 0; i < 3; ++i) {
        SCOPED_TRACE("read " + std::to_string(i + 1) + " after the slow fill landed");
        Response r = http_request(proxy->port(), "GET", positions_target(), bearer(1), {}, seconds(5));
        ASSERT_EQ(r.status, 200u) << describe(r);
        EXPECT_NEAR(position_size(r, "ETHUSDT"), eth_before + 1, 1e-6) << describe(r);
        EXPECT_NE(seq_of(r), seq_of(slow.response)) << "the slow fill's result is served:\n" << describe(r);
    }

    // origin saw: the order once, and at least the two fetches
    EXPECT_EQ(origin("order"), 1);
    EXPECT_GE(origin("positions"), origin_reads + 2);
}

TEST_F(Invalidation, FillFromBeforeTheOrderIsNotStoredEvenWhenItLandsLast) {
    // origin: positions take 2 s for the first read only (the latency drops to 0
    // once it has arrived), so the fill from before the order lands after the
    // fill from after it: were it stored, it would replace the good entry.
    double eth_before = 0;
    ASSERT_NO_FATAL_FAILURE(read_seed_position(eth_before));
    const long long origin_reads = origin("positions");
    sim().set_latency(R"({"default":0.0,"positions":2.0})");
    auto proxy = StartProxy(with_rules(invalidation_rules()));

    // client A: user1 GET positions (cold: the fill; snapshot now, answer in 2 s)
    const auto t0 = Clock::now();
    Timed slow;
    std::jthread slow_reader;
    ASSERT_NO_FATAL_FAILURE(start_slow_fill(*proxy, t0, origin_reads, slow, slow_reader));
    sim().set_latency(R"({"default":0.0,"positions":0.0})");

    // client B: user1 places the order, then reads positions: a quick new fetch showing it
    Response order = place_order(proxy->port(), bearer(1), eth_buy());
    ASSERT_EQ(order.status, 200u) << describe(order);
    ASSERT_EQ(success_of(order), 1) << order.body;
    Response after = http_request(proxy->port(), "GET", positions_target(), bearer(1), {}, seconds(5));
    ASSERT_EQ(after.status, 200u) << describe(after);
    EXPECT_TRUE(CacheIs(after, "MISS"));
    EXPECT_NEAR(position_size(after, "ETHUSDT"), eth_before + 1, 1e-6) << after.body;
    EXPECT_LT(seconds_since(t0), 1.5) << "the read after the order waited for the slow fill";

    // client A: its answer comes last, with the snapshot from before the order
    slow_reader.join();
    ASSERT_EQ(slow.response.status, 200u) << describe(slow.response);
    EXPECT_NEAR(position_size(slow.response, "ETHUSDT"), eth_before, 1e-6) << slow.response.body;

    // client: every later read still shows the order: the late fill was not stored
    for (int i = 0; i < 3; ++i) {
        SCOPED_TRACE("read " + std::to_string(i + 1) + " after the slow fill landed");
        Response r = http_request(proxy->port(), "GET", positions_target(), bearer(1), {}, seconds(5));
        ASSERT_EQ(r.status, 200u) << describe(r);
        EXPECT_NEAR(position_size(r, "ETHUSDT"), eth_before + 1, 1e-6) << describe(r);
        EXPECT_NE(r.body, slow.response.body) << "the slow fill's result is served";
    }
    EXPECT_EQ(origin("order"), 1);
}

TEST_F(Invalidation, OrderWhoseAnswerTimesOutStillInvalidates) {
    // origin: the order takes 3 s, the proxy waits 1 s for an answer
    sim().set_latency(R"({"default":0.0,"order":3.0})");
    auto proxy = StartProxy(with_rules(invalidation_rules(), [](ProxyConfig& c) {
        c.set("upstream.response_timeout", "1s");
    }));

    // client: user1 fills positions and balance on bybit/demo; user2 positions
    Response pos = fill(*proxy, positions_target(), 1);
    Response bal = fill(*proxy, balance_target(), 1);
    Response pos_u2 = fill(*proxy, positions_target(), 2);
    ASSERT_FALSE(HasFailure());
    const double eth_before = position_size(pos, "ETHUSDT");

    // client: user1 places the order
    const auto t_order = Clock::now();
    Response order = place_order(proxy->port(), bearer(1), eth_buy());
    const double order_seconds = seconds_since(t_order);
    // client got: 504 after about the response timeout (the outcome is unknown)
    EXPECT_EQ(order.status, 504u) << describe(order);
    EXPECT_LT(order_seconds, 2.9) << "the proxy waited for the origin's answer";

    // client: the scope's entries were dropped all the same; user2's were not
    expect_dropped(*proxy, positions_target(), 1, pos);
    expect_dropped(*proxy, balance_target(), 1, bal);
    expect_still_hit(*proxy, positions_target(), 2, pos_u2);

    // origin: the order lands after its 3 s (wait for it, so no later test sees it land)
    EXPECT_TRUE(wait_until(
        [&] {
            Response r = sim().direct("GET", positions_target(), bearer(1));
            return std::fabs(position_size(r, "ETHUSDT") - (eth_before + 1)) < 1e-6;
        },
        seconds(5), milliseconds(100)))
        << "the origin never applied the order";
    EXPECT_EQ(origin("order"), 1);
}

// --------------------------------------------------------------- order cancelled

TEST_F(Invalidation, CancelDropsOrdersAndBalanceButNotPositions) {
    auto proxy = StartProxy(with_rules(invalidation_rules()));

    // client: user1 places a limit order on bybit/demo
    OrderBody limit;
    limit.symbol = "BTCUSDT";
    limit.qty = "0.01";
    limit.type = "limit";
    limit.price = "90000";
    Response placed = place_order(proxy->port(), bearer(1), limit.json());
    ASSERT_EQ(placed.status, 200u) << describe(placed);
    ASSERT_EQ(success_of(placed), 1) << placed.body;
    const std::string id = order_id_of(placed);
    ASSERT_FALSE(id.empty()) << placed.body;

    // client: user1 fills orders (listing it), balance, positions on bybit/demo, orders on bybit/real;
    //         user2 fills orders and balance on bybit/demo
    Response ord = fill(*proxy, orders_target(), 1);
    EXPECT_TRUE(lists_order(ord, id)) << ord.body;
    Response bal = fill(*proxy, balance_target(), 1);
    Response pos = fill(*proxy, positions_target(), 1);
    Response ord_real = fill(*proxy, orders_target("bybit", "real"), 1);
    Response ord_u2 = fill(*proxy, orders_target(), 2);
    Response bal_u2 = fill(*proxy, balance_target(), 2);
    ASSERT_FALSE(HasFailure());

    // client: user1 cancels it
    Response cancel = http_request(proxy->port(), "DELETE",
                                   "/api/trading/order/" + id + "?exchange=bybit&account_type=demo", bearer(1));
    ASSERT_EQ(cancel.status, 200u) << describe(cancel);
    EXPECT_EQ(success_of(cancel), 1) << cancel.body;

    // client: orders and balance on bybit/demo are MISSes: the order is gone, its margin back
    Response ord_after = expect_dropped(*proxy, orders_target(), 1, ord);
    EXPECT_FALSE(lists_order(ord_after, id)) << ord_after.body;
    Response bal_after = expect_dropped(*proxy, balance_target(), 1, bal);
    EXPECT_GT(available_of(bal_after), available_of(bal)) << "before: " << bal.body << "\nafter: " << bal_after.body;

    // client: positions (not in the trigger), the other account and the other user are HITs
    expect_still_hit(*proxy, positions_target(), 1, pos);
    expect_still_hit(*proxy, orders_target("bybit", "real"), 1, ord_real);
    expect_still_hit(*proxy, orders_target(), 2, ord_u2);
    expect_still_hit(*proxy, balance_target(), 2, bal_u2);

    // origin saw: one cancel; positions only once
    expect_origin_saw({{"cancel", 1}, {"positions", 1}});
}

// --------------------------------------------------------------- purge (admin listener)

void admin_token(ProxyConfig& c) { c.set("admin.token", "\"t0ps3cret\""); }
const Headers admin_auth{{"Authorization", "Bearer t0ps3cret"}};

/// What a purge must do to an entry.
enum class Purged { dropped, kept };

/// An entry a purge test fills first, and what the purge must do to it.
struct PurgeCase {
    std::string target;
    int user;
    Purged expect;
};

/// Fills every entry (in order), POSTs `purge_target` on the admin listener with
/// `headers` (admin got: 200 {"dropped": N}, N the entries marked dropped), then
/// reads every entry again: a MISS with a new fetch if dropped, else a HIT.
void expect_purge(const Proxy& proxy, const std::string& purge_target, const Headers& headers,
                  const std::vector<PurgeCase>& entries) {
    std::vector<Response> filled;
    for (const PurgeCase& e : entries) filled.push_back(fill(proxy, e.target, e.user));
    ASSERT_FALSE(::testing::Test::HasFailure());

    Response purge = admin_post(proxy.admin_port(), purge_target, headers);
    ASSERT_EQ(purge.status, 200u) << describe(purge);
    const auto to_drop =
        std::count_if(entries.begin(), entries.end(), [](const PurgeCase& e) { return e.expect == Purged::dropped; });
    EXPECT_EQ(dropped_of(purge), to_drop) << purge.body;

    for (std::size_t i = 0; i < entries.size(); ++i) {
        if (entries[i].expect == Purged::dropped)
            expect_dropped(proxy, entries[i].target, entries[i].user, filled[i]);
        else
            expect_still_hit(proxy, entries[i].target, entries[i].user, filled[i]);
    }
}

TEST_F(Invalidation, PurgeOfARouteDropsEveryEntryOfIt) {
    auto proxy = StartProxy(with_rules(invalidation_rules(), admin_token));

    // client: positions for user1 demo, user1 real, user2 demo; balance for user1
    // admin: POST /purge?route=positions with the admin token
    // client: every positions entry is a MISS; balance is untouched
    expect_purge(*proxy, "/purge?route=positions", admin_auth,
                 {{positions_target("bybit", "demo"), 1, Purged::dropped},
                  {positions_target("bybit", "real"), 1, Purged::dropped},
                  {positions_target(), 2, Purged::dropped},
                  {balance_target(), 1, Purged::kept}});
}

TEST_F(Invalidation, PurgeWithACredentialDropsOnlyThatUsersEntries) {
    auto proxy = StartProxy(with_rules(invalidation_rules(), admin_token));

    // client: balance for user1 demo + real and user2 demo; positions for user1
    // admin: POST /purge?route=balance for the credential "Bearer user1"
    // client: user1's balance entries are MISSes; user2's balance and user1's positions are HITs
    Headers h = admin_auth;
    h.emplace_back("X-Purge-Credential", "Bearer user1");
    expect_purge(*proxy, "/purge?route=balance", h,
                 {{balance_target("bybit", "demo"), 1, Purged::dropped},
                  {balance_target("bybit", "real"), 1, Purged::dropped},
                  {balance_target(), 2, Purged::kept},
                  {positions_target(), 1, Purged::kept}});
}

TEST_F(Invalidation, PurgeAllDropsEverything) {
    auto proxy = StartProxy(with_rules(invalidation_rules(), admin_token));

    // admin: POST /purge?all=1: every entry of every route and user is a MISS
    expect_purge(*proxy, "/purge?all=1", admin_auth,
                 {{positions_target(), 1, Purged::dropped},
                  {balance_target(), 1, Purged::dropped},
                  {orders_target(), 1, Purged::dropped},
                  {positions_target(), 2, Purged::dropped}});
}

/// On `proxy`, user1 fills positions; then a purge
/// of everything with each of `attempts` (the admin request's headers) is
/// refused with `status`, and the entry is still served afterwards.
void expect_purge_refused(std::unique_ptr<Proxy> proxy, std::initializer_list<Headers> attempts, unsigned status) {
    Response p1 = fill(*proxy, positions_target(), 1);
    ASSERT_FALSE(::testing::Test::HasFailure());

    for (const Headers& h : attempts) {
        SCOPED_TRACE(h.empty() ? std::string("no Authorization") : h.front().second);
        Response r = admin_post(proxy->admin_port(), "/purge?all=1", h);
        // admin got: `status`
        EXPECT_EQ(r.status, status) << describe(r);
    }
    // client: the entry is still served
    expect_still_hit(*proxy, positions_target(), 1, p1);
}

TEST_F(Invalidation, PurgeWithoutTheRightTokenIsRefusedAndDropsNothing) {
    // admin: no token, a wrong token, a prefix of the token: 401
    expect_purge_refused(StartProxy(with_rules(invalidation_rules(), admin_token)),
                         {Headers{}, Headers{{"Authorization", "Bearer wrong"}},
                          Headers{{"Authorization", "Bearer t0ps3cre"}}},
                         401u);
}

TEST_F(Invalidation, PurgeWithNoAdminTokenConfiguredIsForbidden) {
    // admin.token: "": purging is off, so every purge is 403, the right token's or none
    expect_purge_refused(StartProxy(with_rules(invalidation_rules())),
                         {Headers{}, Headers{{"Authorization", "Bearer "}},
                          Headers{{"Authorization", "Bearer t0ps3cret"}}},
                         403u);
}

// --------------------------------------------------------------- the log

TEST_F(Invalidation, TheWritersCredentialNeverReachesTheLog) {
    auto proxy = StartProxy(with_rules(invalidation_rules()));  // debug log + access log
    const Headers secret{{"Authorization", "Bearer SeCrEt-xyz-42"}};

    // client: a fill, an order (it invalidates), a read after it, a rejected order
    Response fill1 = http_request(proxy->port(), "GET", positions_target(), secret);
    ASSERT_EQ(fill1.status, 200u) << describe(fill1);
    Response order = place_order(proxy->port(), secret, eth_buy());
    ASSERT_EQ(order.status, 200u) << describe(order);
    EXPECT_EQ(success_of(order), 1) << order.body;
    Response after = http_request(proxy->port(), "GET", positions_target(), secret);
    EXPECT_TRUE(CacheIs(after, "MISS"));
    OrderBody rejected;
    rejected.qty = "0";
    Response bad = place_order(proxy->port(), secret, rejected.json());
    EXPECT_EQ(bad.status, 200u) << describe(bad);

    // the proxy stops; its whole log is on disk
    proxy->terminate();
    EXPECT_TRUE(proxy->wait_exit(seconds(5)).has_value()) << "the proxy did not exit on SIGTERM";
    const std::string log = proxy->log();

    // the log has the requests (the access log works) but never the token
    EXPECT_NE(log.find("/api/trading/order"), std::string::npos) << log;
    std::string lower = log;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    EXPECT_EQ(lower.find("secret-xyz"), std::string::npos) << log;
}

}  // namespace
}  // namespace cacheproxy::e2e
