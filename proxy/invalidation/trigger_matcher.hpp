#pragma once
/// Which trigger, if any, a write falls under. Exact, byte-for-byte like the
/// RouteMatcher: the path is never decoded or normalized and the query is
/// ignored; a "{name}" segment of a trigger matches any one non-empty segment.

#include "rules/route_rule.hpp"

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cacheproxy::invalidation {

/// A path parameter of a matched write: (name in the trigger, raw segment in the target).
using PathParam = std::pair<std::string_view, std::string_view>;

/// Matches (method, request-target) against the rules' triggers.
class TriggerMatcher {
public:
    /// Copies the triggers of `rules`, in rule order.
    explicit TriggerMatcher(const rules::RuleSet& rules);

    /// The first trigger whose method equals `method` (case-sensitive) and whose
    /// path matches the path part of `target` segment by segment; null when none.
    /// On a match, `path_params` (if given) is set to the "{name}" segments' values,
    /// which view the matcher's names and `target`'s bytes; otherwise it is left empty.
    const rules::TriggerRule* match(std::string_view method, std::string_view target,
                                    std::vector<PathParam>* path_params = nullptr) const;

    /// The triggers, in rule order.
    const std::vector<rules::TriggerRule>& triggers() const { return triggers_; }

private:
    /// One segment of a trigger path: literal text, or a parameter's name.
    struct Segment {
        std::string text;
        bool param = false;
    };

    std::vector<rules::TriggerRule> triggers_;
    std::vector<std::vector<Segment>> patterns_;  ///< per trigger, its path split on '/'
};

/// The target a write is matched and scoped on: the path with every %XX
/// decoded, runs of '/' collapsed and a trailing '/' dropped (what the app's
/// router sees; an encoded '?' stays "%3F", so the path cannot grow a query),
/// the query kept as it is. A write spelled oddly still
/// invalidates: matching it more widely is safe, missing it is not.
std::string normalize_write_target(std::string_view target);

}  // namespace cacheproxy::invalidation
