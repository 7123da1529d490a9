#include "cache/query_string.hpp"

#include <cstring>

namespace cacheproxy::cache {

namespace {

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/// True when `s` holds a byte form-decoding would change ('%' or '+').
bool has_escape(std::string_view s) {
    for (const char c : s)
        if (c == '%' || c == '+') return true;
    return false;
}

/// The first separator in [p, end): '&', or ';' too when `semicolons`; `end` when none.
const char* next_separator(const char* p, const char* end, bool semicolons) {
    if (!semicolons) {
        const void* amp = std::memchr(p, '&', static_cast<std::size_t>(end - p));
        return amp ? static_cast<const char*>(amp) : end;
    }
    while (p != end && *p != '&' && *p != ';') ++p;
    return p;
}

/// Counts the segments (split on '&', and on ';' too when `semicolons`) whose
/// decoded name is `name`; remembers the first such segment. One pass, memchr
/// per segment; no allocation.
std::size_t count_segments(std::string_view query, bool semicolons, std::string_view name,
                           std::string_view& first_segment) {
    std::size_t count = 0;
    const char* p = query.data();
    const char* const end = p + query.size();
    while (p != end) {
        const char* const sep = next_separator(p, end, semicolons);
        if (sep != p) {
            const std::size_t len = static_cast<std::size_t>(sep - p);
            const void* eq = std::memchr(p, '=', len);
            const std::string_view raw_name(p, eq ? static_cast<std::size_t>(static_cast<const char*>(eq) - p) : len);
            if (decoded_name_equals(raw_name, name)) {
                if (count == 0) first_segment = std::string_view(p, len);
                ++count;
            }
        }
        if (sep == end) break;
        p = sep + 1;
    }
    return count;
}

}  // namespace

std::string_view path_of(std::string_view target) { return target.substr(0, target.find('?')); }

std::string_view query_of(std::string_view target) {
    const std::size_t q = target.find('?');
    return q == std::string_view::npos ? std::string_view{} : target.substr(q + 1);
}

bool valid_percent_encoding(std::string_view s) {
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '%') continue;
        if (i + 2 >= s.size()) return false;
        if (hex_value(s[i + 1]) < 0 || hex_value(s[i + 2]) < 0) return false;
        i += 2;
    }
    return true;
}

bool decoded_name_equals(std::string_view raw_name, std::string_view name) {
    // Decoding never lengthens a name; and a name without '%' or '+' decodes to itself.
    if (raw_name.size() < name.size()) return false;
    if (!has_escape(raw_name)) return raw_name == name;
    std::size_t j = 0;
    for (std::size_t i = 0; i < raw_name.size(); ++i, ++j) {
        char c = raw_name[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%' && i + 2 < raw_name.size()) {
            const int hi = hex_value(raw_name[i + 1]);
            const int lo = hex_value(raw_name[i + 2]);
            if (hi >= 0 && lo >= 0) {
                c = static_cast<char>(hi * 16 + lo);
                i += 2;
            }
        }
        if (j >= name.size() || name[j] != c) return false;
    }
    return j == name.size();
}

ParamLookup find_param(std::string_view query, std::string_view name) {
    ParamLookup out;
    std::string_view first_amp;
    std::string_view first_both;
    out.count = count_segments(query, false, name, first_amp);
    // Without a ';' both splits are the same split.
    const std::size_t count_both = query.find(';') == std::string_view::npos
                                       ? out.count
                                       : count_segments(query, true, name, first_both);
    out.ambiguous = count_both != out.count;
    if (out.count > 0) {
        const std::size_t eq = first_amp.find('=');
        out.has_equals = eq != std::string_view::npos;
        if (out.has_equals) out.raw_value = first_amp.substr(eq + 1);
    }
    return out;
}

}  // namespace cacheproxy::cache
