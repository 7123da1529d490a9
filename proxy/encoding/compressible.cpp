#include "encoding/compressible.hpp"

#include <array>

namespace cacheproxy::encoding {

namespace {

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool is_ows(char c) { return c == ' ' || c == '\t'; }

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (lower(a[i]) != lower(b[i])) return false;
    return true;
}

bool iends_with(std::string_view s, std::string_view suffix) {
    return s.size() >= suffix.size() && iequals(s.substr(s.size() - suffix.size()), suffix);
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
    return s;
}

/// RFC 9110 5.6.2 tchar.
bool is_tchar(char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    switch (c) {
        case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
        case '-': case '.': case '^': case '_': case '`': case '|': case '~':
            return true;
        default:
            return false;
    }
}

bool is_token(std::string_view s) {
    if (s.empty()) return false;
    for (char c : s)
        if (!is_tchar(c)) return false;
    return true;
}

constexpr std::array<std::string_view, 14> kCompressibleTypes = {
    "application/json",       "application/x-ndjson", "application/ndjson",
    "application/xml",        "application/javascript", "application/x-javascript",
    "application/ecmascript", "application/yaml",     "application/x-yaml",
    "application/wasm",       "font/ttf",             "font/otf",
    "image/x-icon",           "image/bmp",
};

}  // namespace

bool compressible_type(std::string_view content_type) {
    // media-type = type "/" subtype parameters (RFC 9110 8.3.1)
    const std::string_view media = trim(content_type.substr(0, content_type.find(';')));
    const std::size_t slash = media.find('/');
    if (slash == std::string_view::npos) return false;
    const std::string_view type = media.substr(0, slash);
    const std::string_view subtype = media.substr(slash + 1);
    if (!is_token(type) || !is_token(subtype)) return false;

    if (iequals(type, "text")) return !iequals(subtype, "event-stream");
    if (iends_with(subtype, "+json") || iends_with(subtype, "+xml")) return true;
    for (std::string_view known : kCompressibleTypes)
        if (iequals(media, known)) return true;
    return false;
}

bool worth_compressing(std::string_view content_type, std::optional<std::size_t> length, std::size_t min_size) {
    if (length && *length < min_size) return false;
    return compressible_type(content_type);
}

}  // namespace cacheproxy::encoding
