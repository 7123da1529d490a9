#pragma once
/// Content-coding negotiation from Accept-Encoding (RFC 9110 12.5.3). Pure
/// functions over views: no I/O, no allocation, no exceptions.
///
/// The only coding this proxy produces is gzip, so negotiation answers one
/// question: send gzip, send identity, or is nothing acceptable at all.

#include <cstddef>
#include <optional>
#include <span>
#include <string_view>

namespace cacheproxy::encoding {

/// The coding to send.
enum class Coding {
    identity,  ///< the body as is
    gzip,      ///< the body gzip-encoded
    none,      ///< neither gzip nor identity is acceptable (the client said
               ///< `identity;q=0` or `*;q=0`): 406-worthy. RFC 9110 12.5.3 lets a
               ///< server send identity anyway; the caller decides.
};

/// A qvalue in thousandths: 0 (not acceptable) .. 1000.
inline constexpr int kQMax = 1000;

/// The effective weights of the two codings we can send, after `*`, aliases
/// and defaults are applied. Only meaningful when the header is present.
struct Weights {
    int gzip = 0;         ///< q of gzip (or x-gzip, or `*` when neither is listed), else 0
    int identity = kQMax; ///< q of identity (or `*` when identity is not listed), else 1000
    bool identity_listed = false;  ///< identity (or `*`) was named: only then can it outrank gzip
};

/// Parses an RFC 9110 12.4.2 qvalue ("0", "0.5", "1.000"; at most 3 decimals,
/// never above 1) into thousandths. nullopt when malformed ("abc", "1.5",
/// "0.1234", "", ".5", "-0").
std::optional<int> parse_qvalue(std::string_view s);

/// Weighs the field lines of a present Accept-Encoding header (one element per
/// field line, or one joined value; lists are comma-separated either way).
///
/// Rules:
///  - codings compare case-insensitively; `x-gzip` is gzip (RFC 9110 8.4.1.3);
///  - `*` gives its q to gzip and identity when they are not listed themselves;
///  - identity that is neither listed nor covered by `*` keeps q=1 (12.5.3 rule 2);
///  - a member with a malformed q (`gzip;q=abc`, `gzip;q=1.5`) counts as q=0:
///    a client that garbles its weights is not sent what it may not decode,
///    and identity is always decodable. Other parameters are ignored;
///  - a coding listed twice (say, on two field lines) takes its lowest q, for
///    the same reason.
Weights weigh(std::span<const std::string_view> field_values);

/// The coding to send for an Accept-Encoding header.
///
/// `field_values` holds the header's field lines in order; an empty span means
/// the header is absent. An absent header makes every coding acceptable
/// (12.5.3 rule 1), but we choose identity: many clients (scripts, health
/// checks, old libraries) omit the header and cannot decode gzip, and sending
/// gzip to them gains little and breaks much.
///
/// A present but empty header means "no content coding" → identity.
/// Otherwise gzip when its q > 0 and q(gzip) >= q(identity) (ties favour the
/// smaller body), else identity when its q > 0, else none.
Coding negotiate(std::span<const std::string_view> field_values);

/// Single-value form: `value` is the (joined) field value, `header_present`
/// false when the request had no Accept-Encoding at all (`value` is then ignored).
Coding negotiate(std::string_view value, bool header_present);

/// True when negotiation picks gzip: the client takes gzip and prefers it (or
/// has no preference between gzip and identity). False for an absent header.
bool accepts_gzip(std::span<const std::string_view> field_values);
bool accepts_gzip(std::string_view value, bool header_present);

/// How an upstream response's body is already encoded, from its Content-Encoding value.
enum class Applied {
    identity,  ///< absent, empty, or only "identity"
    gzip,      ///< exactly one coding: gzip (or x-gzip)
    other,     ///< anything else (br, deflate, zstd, a stack like "gzip, gzip", garbage)
};

/// Classifies a Content-Encoding field value. Pass an empty view when absent.
/// A body that is not `Applied::identity` is never encoded again; only
/// `Applied::gzip` can be decoded for a client that does not accept gzip.
Applied applied_coding(std::string_view content_encoding);

}  // namespace cacheproxy::encoding
