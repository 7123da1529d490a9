#pragma once
/// Reading a request-target's query the way the upstream will, without
/// decoding the values the cache keys on. Pure functions, no allocation.
///
/// The upstream is Python (Starlette: urllib.parse.parse_qsl). It decodes
/// parameter *names* (%XX and '+'), keeps the last of repeated names, and
/// Pythons before 3.9.2 also split on ';'. The cache therefore matches names
/// after decoding, counts occurrences under both splits, and refuses to cache
/// when a chosen name occurs twice or the two splits disagree: otherwise
/// `?symbol=BTC&x=1;symbol=EVIL` could store EVIL's answer under BTC's key.

#include <cstddef>
#include <string_view>

namespace cacheproxy::cache {

/// The path part of a request-target: everything before the first '?'.
std::string_view path_of(std::string_view target);

/// The query part of a request-target: everything after the first '?' (empty when none).
std::string_view query_of(std::string_view target);

/// True when every '%' in `s` starts a %XX escape with two hex digits.
bool valid_percent_encoding(std::string_view s);

/// True when `raw_name`, form-decoded as Python does (%XX -> byte, '+' -> ' ',
/// a malformed escape kept literally), equals `name`.
bool decoded_name_equals(std::string_view raw_name, std::string_view name);

/// What the query says about one parameter name.
struct ParamLookup {
    std::size_t count = 0;        ///< occurrences (0 = absent)
    bool ambiguous = false;       ///< the '&' and '&;' splits disagree: parsers differ, do not cache
    bool has_equals = false;      ///< the (single) occurrence had '=' (`?a` vs `?a=`)
    std::string_view raw_value;   ///< the (first) occurrence's raw value: between '=' and the next '&'
};

/// Looks `name` up in `query` (the part after '?').
ParamLookup find_param(std::string_view query, std::string_view name);

}  // namespace cacheproxy::cache
