#pragma once
/// How the cache reads a message's header fields without depending on Beast.
///
/// A single "find one value" callback is not enough: the cache must see a
/// repeated field (an identity header given twice means "no identity", a
/// chosen key header given twice means "not cacheable") and must read every
/// line of a list field (Cache-Control, Vary, Connection, Pragma).

#include <cstddef>
#include <string_view>

namespace cacheproxy::cache {

/// One header field as two views; the bytes are owned elsewhere.
struct HeaderField {
    std::string_view name;   ///< field name as on the wire (any case)
    std::string_view value;  ///< field value without surrounding whitespace
};

/// Read-only access to one header section. Names match ASCII case-insensitively.
class HeaderView {
public:
    virtual ~HeaderView() = default;

    /// How many fields are named `name`.
    virtual std::size_t count(std::string_view name) const = 0;

    /// The value of the `nth` field named `name` (0-based, wire order); empty when there is none.
    virtual std::string_view value(std::string_view name, std::size_t nth) const = 0;

    /// The value of the first field named `name`; empty when there is none.
    std::string_view first(std::string_view name) const { return value(name, 0); }
};

}  // namespace cacheproxy::cache
