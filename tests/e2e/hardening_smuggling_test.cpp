/// Issue 11, defect 1: request smuggling through Proxy-Connection (and
/// Connection) naming the fields that frame the request or say who sends it.
/// Hop-by-hop stripping used to erase every field Proxy-Connection named,
/// Content-Length included, after framing had been decided: the origin then
/// saw the body as a second request, whose answer went to the next user.
///
/// The contract: a Connection or Proxy-Connection token naming
/// Content-Length, Transfer-Encoding, Host, Authorization or Cookie is a 400
/// and a close, and nothing reaches the origin; a plain
/// `Proxy-Connection: keep-alive` is accepted and never forwarded.

#include "support/cache_helpers.hpp"
#include "support/fixtures.hpp"
#include "support/raw_client.hpp"
#include "support/scripted_origin.hpp"

#include <gtest/gtest.h>

#include <string>
#include <thread>

namespace cacheproxy::e2e {
namespace {

using std::chrono::milliseconds;

/// No health checks: the scripted origin sees only what the test causes.
void no_health_check(ProxyConfig& c) { c.set("upstream.health.path", "\"\""); }

/// The request hidden in the body: another user's positions.
const std::string kSmuggled =
    "GET /api/trading/positions?exchange=bybit&account_type=demo HTTP/1.1\r\n"
    "Host: localhost\r\n"
    "Authorization: Bearer user5\r\n"
    "\r\n";

/// POST /echo/s with `field` (a whole "Name: value" line) and the smuggled
/// request as its Content-Length body; Authorization and Cookie are there so
/// that naming them would strip something.
std::string smuggling_post(const std::string& field) {
    return "POST /echo/s HTTP/1.1\r\n"
           "Host: localhost\r\n"
           "Authorization: Bearer user1\r\n"
           "Cookie: session=attacker\r\n"
           "Content-Length: " +
           std::to_string(kSmuggled.size()) + "\r\n" + field + "\r\n\r\n" + kSmuggled;
}

struct NamingCase {
    const char* name;
    std::string field;
};

std::ostream& operator<<(std::ostream& os, const NamingCase& c) { return os << c.name; }

std::vector<NamingCase> naming_cases() {
    return {
        {"ProxyConnectionNamesContentLength", "Proxy-Connection: Content-Length"},
        {"ConnectionNamesContentLength", "Connection: Content-Length"},
        {"ProxyConnectionNamesTransferEncoding", "Proxy-Connection: Transfer-Encoding"},
        {"ProxyConnectionNamesHost", "Proxy-Connection: Host"},
        {"ProxyConnectionNamesAuthorization", "Proxy-Connection: Authorization"},
        {"ConnectionNamesCookie", "Connection: Cookie"},
        {"ProxyConnectionNamesCookie", "Proxy-Connection: Cookie"},
        {"ProxyConnectionNamesContentLengthAmongOthers", "Proxy-Connection: keep-alive, content-length"},
    };
}

class HardeningSmuggling : public ::testing::TestWithParam<NamingCase> {};

TEST_P(HardeningSmuggling, ConnectionTokenNamingFramingOrIdentityGets400AndCloseAndReachesNothing) {
    ScriptedOrigin origin(own_answers());
    Proxy proxy(origin.url(), Proxy::with_config([](ProxyConfig& c) {
                    no_health_check(c);
                    c.set("threads", "1");
                    c.set("upstream.max_connections", "1");
                }));

    // client: POST /echo/s, Content-Length N, the naming field, body = a whole GET of user5's positions
    RawClient c(proxy.port(), std::chrono::seconds(3));
    ASSERT_TRUE(c.connected()) << c.last_error();
    ASSERT_TRUE(c.send(smuggling_post(GetParam().field))) << c.last_error();

    // client got: 400, then the connection closes with nothing more
    Response r = c.read_response();
    EXPECT_EQ(r.status, 400u) << r.head_text() << "\n" << r.body.substr(0, 300);
    std::string extra;
    EXPECT_TRUE(c.wait_closed(std::chrono::seconds(2), &extra)) << "the proxy kept the connection open";
    EXPECT_TRUE(extra.empty()) << "more bytes after the 400: " << extra.substr(0, 300);

    // origin saw: nothing at all (not a connection, not a byte)
    std::this_thread::sleep_for(milliseconds(100));
    EXPECT_EQ(origin.bytes_received(), 0u) << "the origin received:\n"
                                           << (origin.connection_bytes().empty() ? std::string()
                                                                                 : origin.connection_bytes()[0]);
    EXPECT_EQ(origin.request_count(), 0u);
}

INSTANTIATE_TEST_SUITE_P(Cases, HardeningSmuggling, ::testing::ValuesIn(naming_cases()),
                         [](const ::testing::TestParamInfo<NamingCase>& info) { return info.param.name; });

TEST(HardeningSmugglingControl, ProxyConnectionKeepAliveIsAcceptedAndNeverForwarded) {
    ScriptedOrigin origin(own_answers());
    Proxy proxy(origin.url(), Proxy::with_config(no_health_check));

    // client: GET /echo/pc with Proxy-Connection: keep-alive, twice on one connection
    RawClient c(proxy.port(), std::chrono::seconds(3));
    ASSERT_TRUE(c.connected()) << c.last_error();
    for (int i = 0; i < 2; ++i) {
        SCOPED_TRACE("request " + std::to_string(i + 1));
        Response r = c.request("GET", "/echo/pc", {{"Proxy-Connection", "keep-alive"}});
        // client got: 200 with its own answer, the connection kept open
        EXPECT_EQ(r.status, 200u) << r.head_text();
        EXPECT_EQ(r.body, own_body("GET", "/echo/pc"));
    }

    // origin saw: both requests, neither with a Proxy-Connection field
    const auto seen = origin.requests();
    ASSERT_EQ(seen.size(), 2u);
    for (const auto& req : seen) {
        EXPECT_TRUE(req.header_values("Proxy-Connection").empty()) << req.headers_text();
        EXPECT_EQ(req.target, "/echo/pc");
    }
}

// ------------------------------------------------------------------ the cross-user leak

/// The issue's reproduction against the real simulator with the shipped
/// rules: an attacker's smuggling attempt, then users 2, 3, 4 read their
/// positions. Each must get (and have stored) their own.
class HardeningSmugglingCrossUser : public SimulatorTest {
protected:
    static void SetUpTestSuite() { StartSharedSimulator(); }
    static void TearDownTestSuite() { StopSharedSimulator(); }
};

TEST_F(HardeningSmugglingCrossUser, SmugglingAttemptNeverServesOneUsersPositionsToAnother) {
    const std::string rules = read_file(std::string(CACHEPROXY_SOURCE_DIR) + "/rules/trading.yaml");
    ASSERT_FALSE(rules.empty()) << "rules/trading.yaml not found";
    // One worker and one pooled upstream connection: every request meets the same connection.
    auto proxy = StartProxy(with_rules(rules, [](ProxyConfig& c) {
        no_health_check(c);
        c.set("threads", "1");
        c.set("upstream.max_connections", "1");
    }));
    const std::string target = "/api/trading/positions?exchange=bybit&account_type=demo";
    // The exchange takes 100 ms per positions read: a smuggled read's answer
    // arrives after the answer it rode behind, as it would in production.
    sim().set_latency(R"({"default":0.0,"positions":0.1})");

    // client (attacker, user1): POST /echo/s + Proxy-Connection: Content-Length, body = GET user5's positions
    {
        RawClient attacker(proxy->port(), std::chrono::seconds(3));
        ASSERT_TRUE(attacker.connected()) << attacker.last_error();
        ASSERT_TRUE(attacker.send(smuggling_post("Proxy-Connection: Content-Length"))) << attacker.last_error();
        // client got: 400
        Response r = attacker.read_response();
        EXPECT_EQ(r.status, 400u) << describe(r);
    }
    // Long enough for a smuggled answer to be sitting in the pooled connection,
    // short enough that the pool's old 500 ms liveness shortcut still applies.
    std::this_thread::sleep_for(milliseconds(200));

    // clients: users 2, 3, 4 in turn read their positions
    for (int user : {2, 3, 4}) {
        SCOPED_TRACE("user" + std::to_string(user));
        Response r = http_request(proxy->port(), "GET", target, bearer(user));
        // client got: 200 with its own positions (user_id = 999000 + N)
        ASSERT_EQ(r.status, 200u) << describe(r);
        EXPECT_EQ(user_id_of(r), sim_user_id(user)) << "user" << user << " got someone else's positions:\n"
                                                    << describe(r);
    }
    // clients: each again: the entry stored under their key is their own
    for (int user : {2, 3, 4}) {
        SCOPED_TRACE("again, user" + std::to_string(user));
        Response r = http_request(proxy->port(), "GET", target, bearer(user));
        ASSERT_EQ(r.status, 200u) << describe(r);
        EXPECT_TRUE(CacheIs(r, "HIT"));
        EXPECT_EQ(user_id_of(r), sim_user_id(user)) << "the entry under user" << user << "'s key is not theirs:\n"
                                                    << describe(r);
    }

    // origin saw: the three users' fills and nothing of the attacker's
    const SimStats s = sim().stats();
    EXPECT_EQ(s.route("positions"), 3) << s.json;
    EXPECT_EQ(s.route("echo"), 0) << s.json;
}

}  // namespace
}  // namespace cacheproxy::e2e
