#include "cache/route_matcher.hpp"

#include "cache/query_string.hpp"

namespace cacheproxy::cache {

RouteMatcher::RouteMatcher(const rules::RuleSet& rules) : routes_(rules.routes) {}

const rules::RouteRule* RouteMatcher::match(std::string_view method, std::string_view target) const {
    const std::string_view path = path_of(target);
    // A handful of routes: a linear scan comparing sizes first beats hashing the path.
    for (const auto& rule : routes_) {
        if (rule.path.empty() || path != rule.path) continue;
        if (method == rule.method || (rule.method == "GET" && method == "HEAD")) return &rule;
    }
    return nullptr;
}

std::size_t RouteMatcher::index_of(const rules::RouteRule* rule) const {
    if (rule == nullptr || routes_.empty() || rule < routes_.data() || rule >= routes_.data() + routes_.size())
        return npos;
    return static_cast<std::size_t>(rule - routes_.data());
}

}  // namespace cacheproxy::cache
