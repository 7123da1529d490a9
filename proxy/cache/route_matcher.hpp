#pragma once
/// Which cache rule, if any, a request falls under. Exact, byte-for-byte:
/// the path is never decoded or normalized, so the cache-deception forms
/// (/balance/x.css, /balance;x.css, /balance%2Fx.css, //api/.../balance,
/// an absolute-form target) match no rule and pass through uncached.

#include "rules/route_rule.hpp"

#include <cstddef>
#include <string_view>
#include <vector>

namespace cacheproxy::cache {

/// Matches (method, request-target) against the rules' routes.
class RouteMatcher {
public:
    /// Returned by index_of for a rule that is not one of this matcher's.
    static constexpr std::size_t npos = static_cast<std::size_t>(-1);

    /// Copies the routes of `rules`; indices follow the rules' order (as in MemoryStore).
    explicit RouteMatcher(const rules::RuleSet& rules);

    /// The first route whose path equals the path part of `target` (before the
    /// first '?') byte for byte and whose method matches (GET rules also take
    /// HEAD; method names are case-sensitive); null when none.
    const rules::RouteRule* match(std::string_view method, std::string_view target) const;

    /// The index of `rule` in routes(), or npos.
    std::size_t index_of(const rules::RouteRule* rule) const;

    /// The routes, in rule order.
    const std::vector<rules::RouteRule>& routes() const { return routes_; }

private:
    std::vector<rules::RouteRule> routes_;
};

}  // namespace cacheproxy::cache
