#pragma once
/// ASCII helpers for HTTP tokens and field values (RFC 9110: field names and
/// tokens compare case-insensitively; OWS is SP / HTAB). Locale-free, no
/// allocation; header-only so every module can use them without a dependency.

#include <string_view>

namespace cacheproxy::util {

/// 'A'-'Z' to 'a'-'z'; every other byte as it is.
constexpr char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

/// Optional whitespace: SP or HTAB.
constexpr bool is_ows(char c) { return c == ' ' || c == '\t'; }

/// ASCII case-insensitive equality.
constexpr bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
    return true;
}

/// True when `s` ends with `suffix`, ASCII case-insensitively.
constexpr bool iends_with(std::string_view s, std::string_view suffix) {
    return s.size() >= suffix.size() && iequals(s.substr(s.size() - suffix.size()), suffix);
}

/// `s` without leading and trailing SP / HTAB.
constexpr std::string_view trim_ows(std::string_view s) {
    while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
    return s;
}

}  // namespace cacheproxy::util
