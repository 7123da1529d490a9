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

std::string normalize_write_target(std::string_view target) {
    const auto q = target.find('?');
    const auto path = target.substr(0, q);
    auto hex = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    };
    std::string out;
    out.reserve(target.size());
    for (std::size_t i = 0; i < path.size(); ++i) {
        char c = path[i];
        if (c == '%' && i + 2 < path.size() && hex(path[i + 1]) >= 0 && hex(path[i + 2]) >= 0) {
            const char decoded = static_cast<char>(hex(path[i + 1]) * 16 + hex(path[i + 2]));
            if (decoded == '?') {
                // Stays encoded: a decoded '?' would start a query the app never read (found by fuzzing).
                out.append("%3F");
                i += 2;
                continue;
            }
            c = decoded;
            i += 2;
        }
        if (c == '/' && !out.empty() && out.back() == '/') continue;
        out.push_back(c);
    }
    if (out.size() > 1 && out.back() == '/') out.pop_back();
    if (q != std::string_view::npos) out.append(target.substr(q));
    return out;
}

}  // namespace cacheproxy::invalidation
