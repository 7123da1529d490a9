#pragma once
/// Helpers for the caching end-to-end tests (tests/e2e/cache_test.cpp,
/// tests/e2e/cache_deception_test.cpp): rules files, the simulator's users,
/// the proxy's cache headers (X-Cache, Age, Cache-Status), the simulator's
/// JSON bodies, and many requests at once with a bound on every read.

#include "support/fixtures.hpp"
#include "support/json_lite.hpp"
#include "support/raw_client.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

namespace cacheproxy::e2e {

// ------------------------------------------------------------------ rules

/// A whole rules file: `identity: { header: Authorization }`, the given
/// coalesce line, then `routes:` followed by `routes_yaml` (already indented
/// list items, "  - name: ...").
std::string rules_yaml(const std::string& routes_yaml,
                       const std::string& coalesce = "{ timeout: 10s, max_waiters: 10000 }");

/// A per-user route `name` on GET `path` with `ttl`, keyed on the credential
/// plus exchange + account_type (an indented list item for rules_yaml()).
std::string per_user_route(const std::string& name, const std::string& path, const std::string& ttl = "60s");

/// Proxy options with `rules` as rules.yaml and an optional config change.
Proxy::Options with_rules(std::string rules, std::function<void(ProxyConfig&)> configure = {});

// ------------------------------------------------------------------ users

/// {"Authorization", "Bearer userN"}: the simulator's user 999000+N.
Headers bearer(int user);
/// `bearer(user)` plus `extra` fields.
Headers bearer(int user, const Headers& extra);
/// The simulator's user_id for token "userN".
constexpr long long sim_user_id(int user) { return 999000LL + user; }

/// "/api/trading/balance?exchange=E&account_type=A"
std::string balance_target(const std::string& exchange = "bybit", const std::string& account_type = "demo");

// ------------------------------------------------------------------ bodies

/// The body as JSON, or nullopt.
std::optional<Json> body_json(const Response& r);
/// The body's "seq", or -1 if it has none.
long long seq_of(const Response& r);
/// The body's "user_id", or -1 if it has none.
long long user_id_of(const Response& r);

/// `s` without its leading and trailing spaces and tabs.
std::string trim_ows(std::string_view s);

/// The response head and the first `max_body` bytes of its body, for messages.
std::string describe(const Response& r, std::size_t max_body = 300);

// ------------------------------------------------------------------ cache headers

/// Checks the proxy's cache headers on `r`:
///  - "HIT" / "MISS" / "STALE" / "BYPASS": exactly one X-Cache with that value,
///    a Cache-Status starting with "cacheproxy;" holding `hit` + `ttl=N` (HIT),
///    `fwd=miss`, `fwd=stale` or `fwd=bypass`; an Age of whole seconds on HIT and STALE.
///  - "NONE": no X-Cache and no cacheproxy Cache-Status (a pass-through).
/// Use as EXPECT_TRUE(CacheIs(r, "HIT")).
::testing::AssertionResult CacheIs(const Response& r, std::string_view expected);

/// The X-Cache value, or "<none>".
std::string x_cache(const Response& r);

/// The Age header as a number, or -1 if absent or not a number.
long long age_of(const Response& r);

// ------------------------------------------------------------------ time

using Clock = std::chrono::steady_clock;

/// Seconds from `t0` until now.
double seconds_since(Clock::time_point t0);

/// A response and how long it took (connect to last byte).
struct Timed {
    Response response;
    double seconds = 0;
};

/// http_request() with its duration.
Timed timed_request(std::uint16_t port, std::string_view method, std::string_view target, const Headers& headers = {},
                    std::chrono::milliseconds timeout = std::chrono::seconds(5));

/// Polls `pred` every `interval` until it holds or `timeout` passes; its last result.
bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout,
                std::chrono::milliseconds interval = std::chrono::milliseconds(20));

/// Sleeps until `t0 + offset` (returns at once if that has passed).
void sleep_until_offset(Clock::time_point t0, std::chrono::milliseconds offset);

// ------------------------------------------------------------------ concurrency

/// One request of a batch.
struct RequestSpec {
    std::string method = "GET";
    std::string target;
    Headers headers;
};

/// What a batch of concurrent requests got back.
struct BatchResult {
    std::vector<Response> responses;  ///< in the order of the specs
    std::size_t connect_failures = 0; ///< clients that could not connect
    double seconds = 0;               ///< from the release of the requests to the last answer
};

/// Opens one connection per spec (a thread each), then releases every
/// request at the same moment and reads each answer with `timeout`.
/// Never hangs longer than about connect + timeout.
BatchResult concurrent_requests(std::uint16_t port, const std::vector<RequestSpec>& specs,
                                std::chrono::milliseconds timeout = std::chrono::seconds(5));

}  // namespace cacheproxy::e2e
