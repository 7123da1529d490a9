#pragma once
/// Rules shared by the unit tests (tests/cache, tests/invalidation). Header
/// only: unit_tests compiles no tests/support sources.

#include "rules/route_rule.hpp"

namespace cacheproxy::test_rules {

/// The balance route: GET /api/trading/balance, one entry per user +
/// exchange + account_type.
inline rules::RouteRule balance_rule() {
    rules::RouteRule r;
    r.name = "balance";
    r.path = "/api/trading/balance";
    r.key.identity = true;
    r.key.query = {"exchange", "account_type"};
    return r;
}

}  // namespace cacheproxy::test_rules
