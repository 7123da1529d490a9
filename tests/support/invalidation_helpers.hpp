#pragma once
/// Helpers for the write-driven invalidation end-to-end tests
/// (tests/e2e/invalidation_test.cpp): a rules file with the per-user read
/// routes and the order triggers, the simulator's write requests, what its
/// positions / orders / balance bodies say, and the admin listener's purge.

#include "support/cache_helpers.hpp"
#include "support/fixtures.hpp"
#include "support/raw_client.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace cacheproxy::e2e {

// ------------------------------------------------------------------ rules

/// The two triggers of the contract under test: order_placed (POST
/// /api/trading/order: success = 2xx and "success": true; positions, balance,
/// orders; scope from the body) and order_cancelled (DELETE
/// /api/trading/order/{id}: 2xx; orders, balance; scope from the query).
std::string order_triggers();

/// A whole rules file: positions, balance and orders with `ttl` (long, so only
/// an invalidation can make a miss), then `triggers:` with `triggers_yaml`.
std::string invalidation_rules(const std::string& ttl = "60s", const std::string& triggers_yaml = order_triggers());

// ------------------------------------------------------------------ targets and bodies

/// "/api/trading/positions?exchange=E&account_type=A"
std::string positions_target(const std::string& exchange = "bybit", const std::string& account_type = "demo");
/// "/api/trading/orders?exchange=E&account_type=A"
std::string orders_target(const std::string& exchange = "bybit", const std::string& account_type = "demo");

/// An order body. Fields whose value is nullopt are left out; string fields are
/// quoted, `qty` and `price` written as given (JSON numbers).
struct OrderBody {
    std::optional<std::string> exchange = "bybit";
    std::optional<std::string> account_type = "demo";
    std::optional<std::string> symbol = "ETHUSDT";
    std::optional<std::string> side = "Buy";
    std::optional<std::string> qty = "1";
    std::optional<std::string> type = "market";
    std::optional<std::string> price;
    std::string json() const;
};

/// POST /api/trading/order with `auth` (+ Content-Type: application/json) and `body`.
Response place_order(std::uint16_t port, const Headers& auth, const std::string& body,
                     std::chrono::milliseconds timeout = std::chrono::seconds(5));

/// The write's "success" field: 1 true, 0 false, -1 absent / not JSON.
int success_of(const Response& r);
/// The write's "order_id", or "".
std::string order_id_of(const Response& r);

/// Total size of the positions on `symbol` with `side` ("LONG"/"SHORT") in a
/// positions body; 0 if there is none; -1 if the body is not a positions answer.
double position_size(const Response& r, const std::string& symbol, const std::string& side = "LONG");
/// Whether an orders body lists `order_id`.
bool lists_order(const Response& r, const std::string& order_id);
/// A balance body's "available", or NaN.
double available_of(const Response& r);

// ------------------------------------------------------------------ admin

/// POST `target` on the admin listener (an empty body), read with a 5 s bound.
Response admin_post(std::uint16_t admin_port, const std::string& target, const Headers& headers = {});
/// A purge answer's "dropped", or -1.
long long dropped_of(const Response& r);

}  // namespace cacheproxy::e2e
