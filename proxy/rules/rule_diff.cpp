#include "rules/rule_diff.hpp"

#include <sstream>

namespace cacheproxy::rules {

namespace {

/// Appends a length-prefixed field: no two different field lists give the same text.
void field(std::string& out, std::string_view name, std::string_view value) {
    out.append(name).append("=").append(std::to_string(value.size())).append(":").append(value).append(";");
}

void list_field(std::string& out, std::string_view name, const std::vector<std::string>& values) {
    std::string joined;
    for (const auto& v : values) field(joined, "", v);
    field(out, name, joined);
}

const char* kind_name(IdentitySource::Kind kind) {
    switch (kind) {
        case IdentitySource::Kind::header: return "header";
        case IdentitySource::Kind::cookie: return "cookie";
        case IdentitySource::Kind::query: return "query";
    }
    return "?";
}

bool same_tunables(const RouteRule& a, const RouteRule& b) {
    return a.ttl == b.ttl && a.stale_while_revalidate == b.stale_while_revalidate &&
           a.stale_if_error == b.stale_if_error && a.refresh_ahead == b.refresh_ahead &&
           a.allow_client_no_cache == b.allow_client_no_cache;
}

std::size_t index_of(const std::vector<RouteRule>& routes, const std::string& name) {
    for (std::size_t i = 0; i < routes.size(); ++i)
        if (routes[i].name == name) return i;
    return RuleDiff::npos;
}

}  // namespace

std::string route_fingerprint(const RouteRule& r, const IdentitySource& identity) {
    std::string out;
    field(out, "name", r.name);
    field(out, "method", r.method);
    field(out, "path", r.path);
    field(out, "shared", r.shared ? "1" : "0");
    field(out, "key.identity", r.key.identity ? "1" : "0");
    list_field(out, "key.query", r.key.query);
    list_field(out, "key.headers", r.key.headers);
    field(out, "key.origin", r.key.origin ? "1" : "0");
    field(out, "identity", std::string(kind_name(identity.kind)) + ":" + identity.name);
    std::string statuses;
    for (const unsigned s : r.statuses) statuses.append(std::to_string(s)).append(",");
    field(out, "statuses", statuses);
    field(out, "max_object_bytes", std::to_string(r.max_object_bytes));
    field(out, "max_entries", std::to_string(r.max_entries));
    field(out, "max_bytes", std::to_string(r.max_bytes));
    return out;
}

const char* to_string(RouteChange change) {
    switch (change) {
        case RouteChange::kept: return "kept";
        case RouteChange::retuned: return "retuned";
        case RouteChange::rekeyed: return "rekeyed";
        case RouteChange::added: return "added";
    }
    return "?";
}

std::size_t RuleDiff::count(RouteChange change) const {
    std::size_t n = 0;
    for (const auto c : routes) n += c == change ? 1 : 0;
    return n;
}

std::string RuleDiff::summary() const {
    std::ostringstream s;
    s << count(RouteChange::kept) << " kept, " << count(RouteChange::retuned) << " retuned, "
      << count(RouteChange::rekeyed) << " rekeyed, " << count(RouteChange::added) << " added, " << removed.size()
      << " removed";
    return s.str();
}

RuleDiff diff_rules(const RuleSet& running, const RuleSet& next) {
    RuleDiff d;
    for (const auto& route : next.routes) {
        const auto old = index_of(running.routes, route.name);
        d.old_index.push_back(old);
        if (old == RuleDiff::npos) {
            d.routes.push_back(RouteChange::added);
            continue;
        }
        const auto& was = running.routes[old];
        if (route_fingerprint(was, running.identity) != route_fingerprint(route, next.identity))
            d.routes.push_back(RouteChange::rekeyed);
        else
            d.routes.push_back(same_tunables(was, route) ? RouteChange::kept : RouteChange::retuned);
    }
    for (std::size_t i = 0; i < running.routes.size(); ++i)
        if (index_of(next.routes, running.routes[i].name) == RuleDiff::npos) d.removed.push_back(i);
    return d;
}

std::optional<std::string> reload_refusal(const RuleSet& running, const RuleSet& next, const RuleDiff& diff) {
    if (running.identity.kind != next.identity.kind || running.identity.name != next.identity.name)
        return std::string("identity: changing where the user comes from needs a restart");
    if (running.max_waiters != next.max_waiters) return std::string("coalesce.max_waiters: needs a restart");
    if (running.max_unshared != next.max_unshared) return std::string("coalesce.max_unshared: needs a restart");
    if (running.coalesce_error_hold != next.coalesce_error_hold)
        return std::string("coalesce.error_hold: needs a restart");
    const auto &a = running.principal, &b = next.principal;
    if (a.source != b.source || a.field != b.field || a.claim != b.claim || a.alg != b.alg || a.key != b.key ||
        a.max_credentials != b.max_credentials || a.max_per_principal != b.max_per_principal)
        return std::string("principal: changed: needs a restart");
    (void)diff;  // every kept, retuned, rekeyed, added or removed route can be applied (app/reload.cpp)
    return std::nullopt;
}

}  // namespace cacheproxy::rules
