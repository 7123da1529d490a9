#pragma once
/// The adapter the session uses to hand a Beast message's fields to the cache's
/// pure helpers. Header-only so that nothing else under cache/ depends on Beast.

#include "cache/header_view.hpp"

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/fields.hpp>

#include <string_view>
#include <vector>

namespace cacheproxy::cache {

/// A HeaderView over Beast's basic_fields (no copy; the fields must outlive it).
template <class Allocator>
class BeastHeaderView final : public HeaderView {
public:
    /// Views `fields`.
    explicit BeastHeaderView(const boost::beast::http::basic_fields<Allocator>& fields) : fields_(fields) {}

    /// How many fields are named `name`.
    std::size_t count(std::string_view name) const override { return fields_.count({name.data(), name.size()}); }

    /// The value of the `nth` field named `name`; empty when there is none.
    std::string_view value(std::string_view name, std::size_t nth) const override {
        // Beast's equal_range spans, in list order, from the first to the last
        // field of that name: other fields may stand between them. Skip those.
        auto range = fields_.equal_range({name.data(), name.size()});
        for (auto it = range.first; it != range.second; ++it) {
            if (!boost::beast::iequals(it->name_string(), boost::beast::string_view{name.data(), name.size()}))
                continue;
            if (nth-- == 0) return {it->value().data(), it->value().size()};
        }
        return {};
    }

    /// Every field as a view, in wire order (for build_stored_head).
    std::vector<HeaderField> list() const {
        std::vector<HeaderField> out;
        for (const auto& f : fields_)
            out.push_back({{f.name_string().data(), f.name_string().size()}, {f.value().data(), f.value().size()}});
        return out;
    }

private:
    const boost::beast::http::basic_fields<Allocator>& fields_;
};

}  // namespace cacheproxy::cache
