/// Know the user behind the token (issue 17): the proxy with the principal
/// learned from user_id, positions / balance / orders cached for 60 s, in
/// front of the simulator, where tokens "user1" and "phone-1" are both user
/// 999001. An order through one token is seen at once through the other; a
/// fill in flight across the order is never served after it; a token the app
/// refuses (401) stops being served; a logout drops the token's every entry.

#include "support/cache_helpers.hpp"
#include "support/fixtures.hpp"
#include "support/invalidation_helpers.hpp"
#include "support/json_lite.hpp"
#include "support/jwt_helpers.hpp"
#include "support/raw_client.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

namespace cacheproxy::e2e {
namespace {

using std::chrono::milliseconds;

const Headers token_a = {{"Authorization", "Bearer user1"}};    // the desktop
const Headers token_b = {{"Authorization", "Bearer phone-1"}};  // the phone: the same user 999001

std::string logout_trigger() {
    return "  - name: logged_out\n"
           "    match: { method: POST, path: /api/auth/logout }\n"
           "    drop_credential: true\n";
}

std::string principal_rules() {
    return "principal: { learn: { field: user_id } }\n" + invalidation_rules("60s", order_triggers() + logout_trigger());
}

class Principal : public SimulatorTest {
protected:
    static void SetUpTestSuite() { StartSharedSimulator(); }
    static void TearDownTestSuite() { StopSharedSimulator(); }

    Response get(const Proxy& proxy, const std::string& target, const Headers& token) {
        return http_request(proxy.port(), "GET", target, token);
    }
    /// MISS then HIT through `token`; the filling response.
    Response fill(const Proxy& proxy, const std::string& target, const Headers& token) {
        SCOPED_TRACE("fill " + target + " as " + token[0].second);
        Response first = get(proxy, target, token);
        EXPECT_EQ(first.status, 200u) << describe(first);
        EXPECT_TRUE(CacheIs(first, "MISS"));
        Response second = get(proxy, target, token);
        EXPECT_TRUE(CacheIs(second, "HIT"));
        return first;
    }
    /// Token B's positions read, slowed to 1 s at the origin, with an order
    /// through token A landing 0.3 s into it; then B reads again (no latency)
    /// and must see the order. `origin_reads`: positions reads before B's.
    void order_during_slow_fill_of_b(const Proxy& proxy, long long origin_reads) {
        sim().set_latency(R"({"positions":1.0})");
        const auto t0 = Clock::now();
        Timed slow;
        std::jthread reader([&] { slow = timed_request(proxy.port(), "GET", positions_target(), token_b); });
        sleep_until_offset(t0, milliseconds(300));
        ASSERT_EQ(sim().stats().route("positions"), origin_reads + 1)
            << "B's fill has not reached the origin yet: no race to test";
        Response order = place_order(proxy.port(), token_a, OrderBody{}.json());
        ASSERT_EQ(success_of(order), 1) << describe(order);
        reader.join();
        const double before = position_size(slow.response, "ETHUSDT");
        ASSERT_GE(before, 0) << slow.response.body;

        sim().set_latency(R"({"positions":0.0})");
        Response after = get(proxy, positions_target(), token_b);
        EXPECT_TRUE(CacheIs(after, "MISS")) << "the fill from before the order was stored and served after it";
        EXPECT_NEAR(position_size(after, "ETHUSDT"), before + 1, 1e-9) << after.body;
    }
    Json stats(const Proxy& proxy) {
        Response r = http_request(proxy.admin_port(), "GET", "/stats");
        EXPECT_EQ(r.status, 200u);
        auto json = parse_json(r.body);
        EXPECT_TRUE(json.has_value()) << r.body;
        EXPECT_EQ(r.body.find("999001"), std::string::npos) << "a principal in /stats";
        EXPECT_EQ(r.body.find("phone-1"), std::string::npos) << "a credential in /stats";
        EXPECT_EQ(r.body.find("user1"), std::string::npos) << "a credential in /stats";
        return json.value_or(Json{});
    }
};

TEST_F(Principal, AnOrderThroughOneTokenIsSeenAtOnceThroughTheOtherTokenOfTheSameUser) {
    auto proxy = StartProxy(with_rules(principal_rules()));
    Response b_before = fill(*proxy, positions_target(), token_b);
    ASSERT_EQ(user_id_of(b_before), sim_user_id(1)) << "the simulator's mapping: both tokens are one user";
    fill(*proxy, positions_target(), token_a);
    Response other_user = fill(*proxy, positions_target(), bearer(2));
    const double eth = position_size(b_before, "ETHUSDT");
    ASSERT_GE(eth, 0) << b_before.body;

    Response order = place_order(proxy->port(), token_a, OrderBody{}.json());
    ASSERT_EQ(success_of(order), 1) << describe(order);

    Response b_after = get(*proxy, positions_target(), token_b);
    EXPECT_TRUE(CacheIs(b_after, "MISS")) << "token B still served the entry from before token A's order";
    EXPECT_NEAR(position_size(b_after, "ETHUSDT"), eth + 1, 1e-9) << b_after.body;
    EXPECT_TRUE(CacheIs(get(*proxy, positions_target(), bearer(2)), "HIT")) << "another user's entry";

    const Json s = stats(*proxy);
    EXPECT_EQ(s["principals"]["size"].as_int(), 3);
    EXPECT_EQ(s["principals"]["principals"].as_int(), 2);
    EXPECT_GE(s["principals"]["widened_writes"].as_int(), 1);
}

TEST_F(Principal, AFillForTheOtherTokenStartedBeforeTheOrderIsNeverServedAfterIt) {
    auto proxy = StartProxy(with_rules(principal_rules()));
    // B is known (its balance answer named the user); A too.
    fill(*proxy, balance_target(), token_b);
    fill(*proxy, positions_target(), token_a);
    order_during_slow_fill_of_b(*proxy, 1);
}

TEST_F(Principal, TheFillThatFirstNamesTheUserIsNotStoredIfAnOrderLandedMeanwhile) {
    auto proxy = StartProxy(with_rules(principal_rules()));
    fill(*proxy, positions_target(), token_a);
    order_during_slow_fill_of_b(*proxy, 1);  // B's very first request: nobody knows B is 999001 yet
}

TEST_F(Principal, ATokenTheAppRefusesIsNotServedFromTheCacheAnyMore) {
    auto proxy = StartProxy(with_rules(principal_rules()));
    fill(*proxy, positions_target(), token_b);
    fill(*proxy, balance_target(), token_b);
    fill(*proxy, positions_target(), token_a);
    Response revoke = sim().direct("POST", "/__sim/revoke", {{"Content-Type", "application/json"}},
                                   R"({"token":"phone-1"})");
    ASSERT_EQ(revoke.status, 200u) << describe(revoke);

    // Any forwarded request with B that the app refuses: here a cached route's fill.
    Response refused = get(*proxy, orders_target(), token_b);
    EXPECT_EQ(refused.status, 401u) << describe(refused);
    Response positions = get(*proxy, positions_target(), token_b);
    EXPECT_TRUE(CacheIs(positions, "MISS")) << "the refused token still got its old HIT";
    EXPECT_EQ(positions.status, 401u);
    EXPECT_TRUE(CacheIs(get(*proxy, balance_target(), token_b), "MISS"));
    EXPECT_TRUE(CacheIs(get(*proxy, positions_target(), token_a), "HIT")) << "the user's other token is not refused";
    EXPECT_GE(stats(*proxy)["principals"]["refused_credentials"].as_int(), 1);
}

TEST_F(Principal, ARefusalOfAPassedThroughRequestDropsTheTokenToo) {
    auto proxy = StartProxy(with_rules(principal_rules()));
    fill(*proxy, positions_target(), token_b);
    sim().direct("POST", "/__sim/revoke", {{"Content-Type", "application/json"}}, R"({"token":"phone-1"})");
    // POST /api/trading/close is no trigger here: it passes through.
    Response close = http_request(proxy->port(), "POST", "/api/trading/close",
                                  {{"Authorization", "Bearer phone-1"}, {"Content-Type", "application/json"}},
                                  R"({"exchange":"bybit","account_type":"demo","symbol":"ETHUSDT"})");
    EXPECT_EQ(close.status, 401u) << describe(close);
    EXPECT_TRUE(CacheIs(get(*proxy, positions_target(), token_b), "MISS"));
}

TEST_F(Principal, ALogoutDropsEveryRoutesEntriesOfThatTokenOnly) {
    auto proxy = StartProxy(with_rules(principal_rules()));
    for (const auto& target : {positions_target(), balance_target(), orders_target()}) {
        fill(*proxy, target, token_b);
        fill(*proxy, target, token_a);
    }
    Response out = http_request(proxy->port(), "POST", "/api/auth/logout", token_b);
    ASSERT_EQ(out.status, 200u) << describe(out);
    for (const auto& target : {positions_target(), balance_target(), orders_target()}) {
        EXPECT_TRUE(CacheIs(get(*proxy, target, token_b), "MISS")) << target;
        EXPECT_TRUE(CacheIs(get(*proxy, target, token_a), "HIT")) << target << ": the other token did not log out";
    }
    const Json s = stats(*proxy);
    EXPECT_EQ(s["principals"]["logouts"].as_int(), 1);
}

TEST_F(Principal, WithoutThePrincipalSectionAnOrderReachesOnlyItsOwnToken) {
    auto proxy = StartProxy(with_rules(invalidation_rules()));
    fill(*proxy, positions_target(), token_b);
    fill(*proxy, positions_target(), token_a);
    ASSERT_EQ(success_of(place_order(proxy->port(), token_a, OrderBody{}.json())), 1);
    EXPECT_TRUE(CacheIs(get(*proxy, positions_target(), token_a), "MISS"));
    EXPECT_TRUE(CacheIs(get(*proxy, positions_target(), token_b), "HIT")) << "today's behaviour";
}

TEST_F(Principal, AVerifiedJwtSubjectWidensAnOrderToTheUsersOtherTokensAndAForgedOneToNone) {
    // The secret in a file beside nothing else; the tokens are signed here.
    const auto dir = std::filesystem::temp_directory_path() / ("cacheproxy-jwt-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    const auto key_file = (dir / "jwt.key").string();
    std::ofstream(key_file) << "e2e-secret\n";
    const auto exp = std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch()).count() + 600;
    auto token = [&](std::string_view secret, std::string_view jti) {
        const std::string claims = R"({"sub":"alice","jti":")" + std::string(jti) + R"(","exp":)" + std::to_string(exp) + "}";
        return Headers{{"Authorization", "Bearer " + test_jwt::hs256(secret, claims)}};
    };
    const Headers jwt_a = token("e2e-secret", "a"), jwt_b = token("e2e-secret", "b"), forged = token("guess", "c");
    auto proxy = StartProxy(with_rules("principal: { jwt: { claim: sub, alg: HS256, key_file: " + key_file + " } }\n" +
                                       invalidation_rules()));
    fill(*proxy, positions_target(), jwt_a);
    fill(*proxy, positions_target(), jwt_b);
    fill(*proxy, positions_target(), forged);
    ASSERT_EQ(success_of(place_order(proxy->port(), jwt_a, OrderBody{}.json())), 1);
    EXPECT_TRUE(CacheIs(get(*proxy, positions_target(), jwt_a), "MISS"));
    EXPECT_TRUE(CacheIs(get(*proxy, positions_target(), jwt_b), "MISS")) << "the same verified subject";
    EXPECT_TRUE(CacheIs(get(*proxy, positions_target(), forged), "HIT")) << "a bad signature names nobody";
    const Json s = stats(*proxy);
    EXPECT_EQ(s["principals"]["size"].as_int(), 2);
    std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace cacheproxy::e2e
