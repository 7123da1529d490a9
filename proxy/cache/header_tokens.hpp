#pragma once
/// Reading comma-separated header lists (RFC 9110 5.6.1): Cache-Control, Pragma,
/// Vary, Connection. Pure functions over views; nothing allocates.

#include "cache/header_view.hpp"
#include "util/ascii.hpp"

#include <cstddef>
#include <string_view>

namespace cacheproxy::cache {

/// One list element: `name` or `name=argument` (argument raw, quotes kept).
struct Directive {
    std::string_view name;      ///< the token, trimmed
    std::string_view argument;  ///< after '=', trimmed; empty when none
};

/// ASCII case-insensitive equality (util/ascii.hpp).
using util::iequals;

/// `s` without leading/trailing spaces and tabs (util/ascii.hpp).
using util::trim_ows;

/// Reads the list element starting at `pos` in `list` into `out` (empty
/// elements are skipped; a quoted argument may hold commas). Returns the
/// position after it, or npos when the list has no further element.
std::size_t next_directive(std::string_view list, std::size_t pos, Directive& out);

/// Calls `fn(const Directive&)` for every element of every field named `field`,
/// in order; stops when `fn` returns false. Returns false when stopped early.
template <class Fn>
bool for_each_directive(const HeaderView& headers, std::string_view field, Fn&& fn) {
    const std::size_t n = headers.count(field);
    for (std::size_t i = 0; i < n; ++i) {
        const std::string_view list = headers.value(field, i);
        Directive d;
        for (std::size_t pos = next_directive(list, 0, d); pos != std::string_view::npos;
             pos = next_directive(list, pos, d))
            if (!fn(d)) return false;
    }
    return true;
}

/// True when some field named `field` lists `directive` (case-insensitive, with or without argument).
bool has_directive(const HeaderView& headers, std::string_view field, std::string_view directive);

}  // namespace cacheproxy::cache
