#include "invalidation/trigger_matcher.hpp"

#include "cache/query_string.hpp"

namespace cacheproxy::invalidation {

TriggerMatcher::TriggerMatcher(const rules::RuleSet& rules) : triggers_(rules.triggers) {
    patterns_.reserve(triggers_.size());
    for (const rules::TriggerRule& t : triggers_) {
        std::vector<Segment> segments;
        // The loader guarantees a leading '/'; a path without one gets no segments and matches nothing.
        if (!t.path.empty() && t.path.front() == '/') {
            std::string_view rest = std::string_view(t.path).substr(1);
            while (true) {
                const std::size_t slash = rest.find('/');
                const std::string_view s = rest.substr(0, slash);
                const bool param = s.size() >= 2 && s.front() == '{' && s.back() == '}';
                segments.push_back(Segment{std::string(param ? s.substr(1, s.size() - 2) : s), param});
                if (slash == std::string_view::npos) break;
                rest.remove_prefix(slash + 1);
            }
        }
        patterns_.push_back(std::move(segments));
    }
}

const rules::TriggerRule* TriggerMatcher::match(std::string_view method, std::string_view target,
                                                std::vector<PathParam>* path_params) const {
    if (path_params) path_params->clear();
    const std::string_view path = cache::path_of(target);
    if (path.empty() || path.front() != '/') return nullptr;  // absolute-form, '*': no trigger

    std::vector<PathParam> params;
    for (std::size_t i = 0; i < triggers_.size(); ++i) {
        if (triggers_[i].method != method || patterns_[i].empty()) continue;
        params.clear();
        std::string_view rest = path.substr(1);
        bool matched = true;
        for (std::size_t n = 0; n < patterns_[i].size() && matched; ++n) {
            const Segment& want = patterns_[i][n];
            const bool last = n + 1 == patterns_[i].size();
            const std::size_t slash = rest.find('/');
            // The last pattern segment must take the rest of the path; others must end at a '/'.
            if (last != (slash == std::string_view::npos)) {
                matched = false;
                break;
            }
            const std::string_view got = rest.substr(0, slash);
            if (want.param)
                matched = !got.empty();
            else
                matched = got == want.text;
            if (matched && want.param) params.emplace_back(want.text, got);
            if (!last) rest.remove_prefix(slash + 1);
        }
        if (!matched) continue;
        if (path_params) *path_params = std::move(params);
        return &triggers_[i];
    }
    return nullptr;
}

}  // namespace cacheproxy::invalidation
