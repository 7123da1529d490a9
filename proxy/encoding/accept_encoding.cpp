#include "encoding/accept_encoding.hpp"

#include "util/ascii.hpp"

#include <algorithm>

namespace cacheproxy::encoding {

namespace {

using util::iequals;
using util::trim_ows;

/// Splits `s` at the first `sep`: returns the part before, leaves the rest
/// (after the separator) in `s`, or empties `s` when there is no separator.
std::string_view take_until(std::string_view& s, char sep) {
    const std::size_t at = s.find(sep);
    const std::string_view head = s.substr(0, at);
    s = at == std::string_view::npos ? std::string_view{} : s.substr(at + 1);
    return head;
}

bool is_gzip_name(std::string_view coding) { return iequals(coding, "gzip") || iequals(coding, "x-gzip"); }

/// One list member `coding *( OWS ";" OWS param )`: its coding and its q
/// (1000 when no q parameter; 0 when the q parameter is malformed).
struct Member {
    std::string_view coding;
    int q = kQMax;
};

Member parse_member(std::string_view member) {
    Member m;
    m.coding = trim_ows(take_until(member, ';'));
    while (!member.empty()) {
        std::string_view param = trim_ows(take_until(member, ';'));
        const std::size_t eq = param.find('=');
        if (eq == std::string_view::npos) {
            // A bare "q" (no value) is a malformed weight; other bare params are ignored.
            if (iequals(param, "q")) m.q = 0;
            continue;
        }
        if (!iequals(trim_ows(param.substr(0, eq)), "q")) continue;  // not a weight: ignored
        m.q = parse_qvalue(trim_ows(param.substr(eq + 1))).value_or(0);
    }
    return m;
}

/// Lowest q seen so far for a coding; -1 when not listed.
void lower_to(int& slot, int q) { slot = slot < 0 ? q : std::min(slot, q); }

}  // namespace

std::optional<int> parse_qvalue(std::string_view s) {
    if (s.empty() || (s[0] != '0' && s[0] != '1')) return std::nullopt;
    const bool one = s[0] == '1';
    if (s.size() == 1) return one ? kQMax : 0;
    if (s[1] != '.' || s.size() > 5) return std::nullopt;
    int frac = 0;
    int scale = 100;
    for (std::size_t i = 2; i < s.size(); ++i) {
        if (s[i] < '0' || s[i] > '9') return std::nullopt;
        frac += (s[i] - '0') * scale;
        scale /= 10;
    }
    if (one) return frac == 0 ? std::optional<int>(kQMax) : std::nullopt;
    return frac;
}

Weights weigh(std::span<const std::string_view> field_values) {
    int gzip = -1;
    int identity = -1;
    int star = -1;
    for (std::string_view list : field_values) {
        while (!list.empty()) {
            const Member m = parse_member(take_until(list, ','));
            if (m.coding.empty()) continue;  // empty list elements are allowed (RFC 9110 5.6.1)
            if (is_gzip_name(m.coding))
                lower_to(gzip, m.q);
            else if (iequals(m.coding, "identity"))
                lower_to(identity, m.q);
            else if (m.coding == "*")
                lower_to(star, m.q);
            // Any other coding (br, deflate, zstd, ...) does not concern us.
        }
    }
    Weights w;
    w.gzip = gzip >= 0 ? gzip : (star >= 0 ? star : 0);
    w.identity = identity >= 0 ? identity : (star >= 0 ? star : kQMax);
    w.identity_listed = identity >= 0 || star >= 0;
    return w;
}

Coding negotiate(std::span<const std::string_view> field_values) {
    if (field_values.empty()) return Coding::identity;  // absent header: our choice, see the header
    const Weights w = weigh(field_values);
    // An identity the client never named is acceptable, but not a preference:
    // "br, gzip;q=0.5" asks for compression (as nginx reads it).
    if (w.gzip > 0 && (!w.identity_listed || w.gzip >= w.identity)) return Coding::gzip;
    if (w.identity > 0) return Coding::identity;
    return Coding::none;
}

Coding negotiate(std::string_view value, bool header_present) {
    if (!header_present) return Coding::identity;
    return negotiate(std::span<const std::string_view>(&value, 1));
}

bool accepts_gzip(std::span<const std::string_view> field_values) {
    return negotiate(field_values) == Coding::gzip;
}

bool accepts_gzip(std::string_view value, bool header_present) {
    return negotiate(value, header_present) == Coding::gzip;
}

Applied applied_coding(std::string_view content_encoding) {
    Applied result = Applied::identity;
    std::string_view list = content_encoding;
    while (!list.empty()) {
        const std::string_view coding = trim_ows(take_until(list, ','));
        if (coding.empty() || iequals(coding, "identity")) continue;
        if (result != Applied::identity || !is_gzip_name(coding)) return Applied::other;
        result = Applied::gzip;
    }
    return result;
}

}  // namespace cacheproxy::encoding
