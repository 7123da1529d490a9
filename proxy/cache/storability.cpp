#include "cache/storability.hpp"

#include "cache/header_tokens.hpp"

#include <algorithm>

namespace cacheproxy::cache {

namespace {

/// Vary names a header the key holds: one of the rule's key headers, the
/// identity header of a per-user route, or Accept-Encoding (the proxy stores
/// the identity body and negotiates encodings itself).
bool vary_is_keyed(const rules::RouteRule& rule, const ResponseFacts& facts, std::string_view name) {
    if (iequals(name, "accept-encoding")) return true;
    if (!facts.identity_header.empty() && iequals(name, facts.identity_header)) return true;
    return std::any_of(rule.key.headers.begin(), rule.key.headers.end(),
                       [&](const std::string& h) { return iequals(h, name); });
}

/// The upstream says the answer depends on the caller's credentials.
bool depends_on_credentials(const ResponseFacts& facts, const HeaderView& headers) {
    if (has_directive(headers, "cache-control", "private")) return true;
    bool found = false;
    for_each_directive(headers, "vary", [&](const Directive& d) {
        found = iequals(d.name, "authorization") || iequals(d.name, "cookie") || d.name == "*" ||
                (!facts.identity_header.empty() && iequals(d.name, facts.identity_header));
        return !found;
    });
    return found;
}

}  // namespace

const char* to_string(NotStorable reason) {
    switch (reason) {
        case NotStorable::none: return "none";
        case NotStorable::status: return "status";
        case NotStorable::set_cookie: return "set_cookie";
        case NotStorable::no_store: return "no_store";
        case NotStorable::private_: return "private";
        case NotStorable::vary: return "vary";
        case NotStorable::range_request: return "range_request";
        case NotStorable::no_length: return "no_length";
        case NotStorable::incomplete: return "incomplete";
        case NotStorable::too_large: return "too_large";
        case NotStorable::authorization_shared: return "authorization_shared";
        case NotStorable::encoded: return "encoded";
        case NotStorable::bad_encoding: return "bad_encoding";
    }
    return "unknown";
}

NotStorable check_storable(const rules::RouteRule& rule, const ResponseFacts& facts,
                           const HeaderView& headers) {
    if (facts.request_was_range || facts.status == 206 || headers.count("content-range") > 0)
        return NotStorable::range_request;

    const bool listed = std::find(rule.statuses.begin(), rule.statuses.end(), facts.status) != rule.statuses.end();
    if (!listed || facts.status < 200 || facts.status >= 400 || facts.status == 304) return NotStorable::status;

    if (facts.request_was_head) return NotStorable::incomplete;
    if (!facts.length_known) return NotStorable::no_length;
    if (!facts.complete) return NotStorable::incomplete;
    if (facts.body_bytes > rule.max_object_bytes) return NotStorable::too_large;

    if (has_directive(headers, "cache-control", "no-store") || has_directive(headers, "cache-control", "no-cache"))
        return NotStorable::no_store;
    return check_shareable(rule, facts, headers);
}

NotStorable check_shareable(const rules::RouteRule& rule, const ResponseFacts& facts, const HeaderView& headers) {
    if (facts.request_was_range || facts.status == 206 || headers.count("content-range") > 0)
        return NotStorable::range_request;
    if (facts.request_was_head || !facts.complete) return NotStorable::incomplete;
    if (facts.body_bytes > rule.max_object_bytes) return NotStorable::too_large;
    if (rule.shared && facts.request_had_credentials && depends_on_credentials(facts, headers))
        return NotStorable::authorization_shared;
    if (has_directive(headers, "cache-control", "private")) return NotStorable::private_;
    if (headers.count("set-cookie") > 0 || headers.count("set-cookie2") > 0) return NotStorable::set_cookie;

    bool vary_ok = true;
    for_each_directive(headers, "vary", [&](const Directive& d) {
        vary_ok = d.name != "*" && vary_is_keyed(rule, facts, d.name);
        return vary_ok;
    });
    if (!vary_ok) return NotStorable::vary;

    bool identity_body = true;
    for_each_directive(headers, "content-encoding", [&](const Directive& d) {
        identity_body = iequals(d.name, "identity");
        return identity_body;
    });
    if (!identity_body) return NotStorable::encoded;

    return NotStorable::none;
}

bool client_bypasses(const rules::RouteRule& rule, const HeaderView& request_headers) {
    if (!rule.allow_client_no_cache) return false;  // clients cannot bust the cache unless the route allows it
    bool bypass = false;
    for_each_directive(request_headers, "cache-control", [&](const Directive& d) {
        bypass = iequals(d.name, "no-cache") || iequals(d.name, "no-store") ||
                 (iequals(d.name, "max-age") && d.argument == "0");
        return !bypass;
    });
    return bypass || has_directive(request_headers, "pragma", "no-cache");
}

}  // namespace cacheproxy::cache
