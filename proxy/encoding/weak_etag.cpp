#include "encoding/weak_etag.hpp"

#include "util/ascii.hpp"

namespace cacheproxy::encoding {

namespace {

/// opaque-tag = DQUOTE *etagc DQUOTE; etagc = %x21 / %x23-7E / obs-text
bool is_opaque_tag(std::string_view s) {
    if (s.size() < 2 || s.front() != '"' || s.back() != '"') return false;
    for (char ch : s.substr(1, s.size() - 2)) {
        const auto c = static_cast<unsigned char>(ch);
        if (!(c == 0x21 || (c >= 0x23 && c <= 0x7E) || c >= 0x80)) return false;
    }
    return true;
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
        if (!is_opaque_tag(etag)) return {};
        std::string out;
        out.reserve(etag.size() + 2);
        out.append("W/").append(etag);
        return out;
    } catch (...) {
        return {};  // allocation failure: drop the ETag rather than throw
    }
}

}  // namespace cacheproxy::encoding
