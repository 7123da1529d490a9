#pragma once
/// The pure decisions of a write that matched a trigger: did it succeed, and
/// which of the writer's entries it makes stale. No I/O; the session feeds the
/// bodies it read (up to the trigger's max_body_bytes) and acts on the answers.
///
/// Everything errs wide: an outcome that cannot be read counts as a success
/// (the write may have happened), and a scope that cannot be read exactly
/// becomes "all of the writer's entries in the target routes". A wider
/// invalidation costs a refetch; a narrower one serves stale data.

#include "invalidation/trigger_matcher.hpp"
#include "rules/route_rule.hpp"

#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cacheproxy::invalidation {

/// What a write's response says about the write.
enum class WriteOutcome {
    success,  ///< it happened: invalidate
    failure,  ///< the app refused it (wrong status class, or the success field says no): drop nothing
    unknown,  ///< cannot tell: invalidate as for success
};

/// True when `rule` takes a scope field from the request's JSON body.
bool needs_request_body(const rules::TriggerRule& rule);

/// The outcome of a write the upstream answered with `status` and `response_body`
/// (`body_complete` false when it was cut at max_body_bytes or the stream ended early).
/// Transport failures (timeout, reset before a status) are not for this function:
/// the caller treats them as unknown itself; a 5xx the upstream sent is a failure.
///   - the status class is not the rule's             -> failure
///   - no success field configured                     -> success
///   - body incomplete, over max_body_bytes, not JSON,
///     not an object, field missing, field not boolean -> unknown
///   - field is a boolean equal to success_equals      -> success, else failure
WriteOutcome evaluate(const rules::TriggerRule& rule, unsigned status, std::string_view response_body,
                      bool body_complete);

/// The part of the writer's entries a write makes stale.
struct Scope {
    /// All of the writer's entries in every target route (a field could not be read).
    bool widened = false;
    /// When not widened: (scope key, value) in rule order. Values are the
    /// application's view: decoded from the query or path (%XX, and '+' in a
    /// query), a JSON string's value, a JSON number's shortest decimal form.
    std::vector<std::pair<std::string, std::string>> params;
};

/// Reads each of `rule`'s scope fields from the request: its JSON body (a
/// top-level string or number), its query (exactly one occurrence, as the
/// cache keys do) or a path parameter from TriggerMatcher::match. Widens (params
/// empty) when any field is missing, of another JSON type, ambiguous (a query
/// parameter given twice, a malformed %-escape), or when the body is needed and
/// is incomplete, over max_body_bytes or not a JSON object. An empty scope gives
/// widened = false and no params (scope_target then decides per route).
Scope extract_scope(const rules::TriggerRule& rule, std::string_view request_body, bool body_complete,
                    std::string_view target, std::span<const PathParam> path_params);

/// The request-target of `route` whose cache key is this scope's entry for the
/// writer: route.path, then "?" and each of the route's key parameters as
/// name=value in the route's key order, percent-encoded (RFC 3986 unreserved
/// characters kept, every other byte %XX upper-case), i.e. what a client sending
/// those values canonically would send. Feed it to cache::build_key with the
/// writer's credential. "" when the scope is widened, does not give every query
/// parameter the route keys on, or the route keys on headers: the caller then
/// invalidates all of the writer's entries in that route.
std::string scope_target(const rules::RouteRule& route, const Scope& scope);

/// `value` percent-encoded as scope_target writes it.
std::string percent_encode(std::string_view value);

}  // namespace cacheproxy::invalidation
