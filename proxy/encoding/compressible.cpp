#include "encoding/compressible.hpp"

#include "util/ascii.hpp"

#include <array>

namespace cacheproxy::encoding {

namespace {

using util::iends_with;
using util::iequals;
using util::trim_ows;

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
    const std::string_view media = trim_ows(content_type.substr(0, content_type.find(';')));
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
