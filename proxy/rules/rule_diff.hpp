#pragma once
/// What a reload changes in the rules, decided on plain data (no I/O): each
/// route's identity (the fingerprint of what decides its key and what it
/// stores), the diff of two rule sets by that identity, and the changes a
/// running process refuses to take without a restart.
///
/// A route whose fingerprint is unchanged keeps its cache entries (and its
/// generations: read-your-writes); one whose fingerprint changed is re-keyed
/// and starts empty; a removed one is dropped; an added one starts empty. TTL, stale windows,
/// refresh_ahead and allow_client_no_cache are tunables: they are not in the
/// fingerprint and apply to kept entries from the reload on.

#include "rules/route_rule.hpp"

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace cacheproxy::rules {

/// The route's identity: method, path, name (the first bytes of every key),
/// shared, the key spec (identity, query and headers in order, origin), the
/// identity source, the statuses and max_object_bytes it stores, and the
/// partition bounds (max_entries, max_bytes) its store was sized for. Two
/// routes with equal fingerprints build the same key for every request and
/// store the same answers. A canonical text, compared whole.
std::string route_fingerprint(const RouteRule& route, const IdentitySource& identity);

/// How one route of the new rules relates to the running ones.
enum class RouteChange {
    kept,     ///< same fingerprint, same tunables: nothing to do
    retuned,  ///< same fingerprint, other TTL / stale windows / refresh_ahead: entries kept, new windows apply
    rekeyed,  ///< same name, other fingerprint: its entries are dropped, it starts empty
    added,    ///< a name the running rules do not have
};

/// Printable name of a change ("kept", "retuned", "rekeyed", "added").
const char* to_string(RouteChange change);

/// The new rules against the running ones, route by route.
struct RuleDiff {
    static constexpr std::size_t npos = static_cast<std::size_t>(-1);
    std::vector<RouteChange> routes;      ///< per route of the new rules, in their order
    std::vector<std::size_t> old_index;   ///< per route of the new rules: its index in the old ones, or npos
    std::vector<std::size_t> removed;     ///< indexes of old routes the new rules do not name

    std::size_t count(RouteChange change) const;
    /// "2 kept, 1 retuned, 0 rekeyed, 0 added, 0 removed"
    std::string summary() const;
};

/// Diffs `next` against `running`, routes matched by name.
RuleDiff diff_rules(const RuleSet& running, const RuleSet& next);

/// The first change of `next` this process cannot apply while it runs, as
/// "key: why (needs a restart)"; nullopt when every change can be applied.
/// Refused: the identity source and coalesce.max_waiters / max_unshared /
/// error_hold. Routes and triggers may be added, removed, renamed (a removal
/// and an addition: the fingerprint holds the name) and reordered.
std::optional<std::string> reload_refusal(const RuleSet& running, const RuleSet& next, const RuleDiff& diff);

}  // namespace cacheproxy::rules
