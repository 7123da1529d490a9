#pragma once
/// A HeaderView over a list of (name, value) views: what tests use, and what the
/// session hands the pure helpers when it already has the fields as a list.

#include "cache/header_view.hpp"

#include <initializer_list>
#include <span>
#include <vector>

namespace cacheproxy::cache {

/// A list of header fields viewed as a HeaderView. Does not own the bytes.
class HeaderList final : public HeaderView {
public:
    /// An empty list.
    HeaderList() = default;
    /// A list holding `fields` in order.
    HeaderList(std::initializer_list<HeaderField> fields);

    /// Appends one field.
    void add(std::string_view name, std::string_view value);
    /// Every field, in order.
    std::span<const HeaderField> fields() const { return fields_; }

    /// How many fields are named `name`.
    std::size_t count(std::string_view name) const override;
    /// The value of the `nth` field named `name`; empty when there is none.
    std::string_view value(std::string_view name, std::size_t nth) const override;

private:
    std::vector<HeaderField> fields_;
};

}  // namespace cacheproxy::cache
