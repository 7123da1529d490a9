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
    std::size_t count(std::string_view name) const override {
        std::size_t n = 0;
        for (const auto& f : fields_)
            if (named(f, name)) ++n;
        return n;
    }

    /// The value of the `nth` field named `name`; empty when there is none.
    std::string_view value(std::string_view name, std::size_t nth) const override {
        for (const auto& f : fields_)
            if (named(f, name) && nth-- == 0) return {f.value().data(), f.value().size()};
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
    using Field = typename boost::beast::http::basic_fields<Allocator>::value_type;

    /// A walk of the wire-order list: a request has a handful of fields, and
    /// comparing lengths first rejects almost all of them in one instruction,
    /// where Beast's name index costs a tree descent of case-folding
    /// comparisons per lookup.
    static bool named(const Field& f, std::string_view name) {
        const auto s = f.name_string();
        return s.size() == name.size() && boost::beast::iequals(s, boost::beast::string_view{name.data(), name.size()});
    }

    const boost::beast::http::basic_fields<Allocator>& fields_;
};

}  // namespace cacheproxy::cache
