#include "encoding/weak_etag.hpp"

#include "util/ascii.hpp"

namespace cacheproxy::encoding {

namespace {

/// etagc = %x21 / %x23-7E / obs-text: no DQUOTE, whitespace or control.
bool all_etagc(std::string_view s) {
    for (char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if (!(c == 0x21 || (c >= 0x23 && c <= 0x7E) || c >= 0x80)) return false;
    }
    return true;
}

/// opaque-tag = DQUOTE *etagc DQUOTE
bool is_opaque_tag(std::string_view s) {
    return s.size() >= 2 && s.front() == '"' && s.back() == '"' && all_etagc(s.substr(1, s.size() - 2));
}

/// An unquoted tag as Starlette sends it (`5d4c...-1234`): one or more
/// etagc, and not a weak prefix without its quotes (`W/abc`).
bool is_unquoted_tag(std::string_view s) {
    return !s.empty() && !s.starts_with("W/") && !s.starts_with("w/") && all_etagc(s);
}

}  // namespace

bool is_weak_etag(std::string_view etag) {
    etag = util::trim_ows(etag);
    return etag.size() >= 2 && etag[0] == 'W' && etag[1] == '/' && is_opaque_tag(etag.substr(2));
}

std::string weaken_etag(std::string_view etag) {
    try {
        etag = util::trim_ows(etag);
        if (is_weak_etag(etag)) return std::string(etag);
        std::string out;
        if (is_opaque_tag(etag)) {
            out.reserve(etag.size() + 2);
            out.append("W/").append(etag);
        } else if (is_unquoted_tag(etag)) {
            out.reserve(etag.size() + 4);
            out.append("W/\"").append(etag).append("\"");
        }
        return out;
    } catch (...) {
        return {};  // allocation failure: drop the ETag rather than throw
    }
}

}  // namespace cacheproxy::encoding
