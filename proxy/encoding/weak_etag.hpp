#pragma once
/// ETags of encoded variants (RFC 9110 8.8.3). A strong validator promises
/// byte-identical representations; the gzip variant's bytes differ from the
/// identity variant's (and from another compressor's), so its ETag is weakened.

#include <string>
#include <string_view>

namespace cacheproxy::encoding {

/// True for `W/"..."`.
bool is_weak_etag(std::string_view etag);

/// The ETag to send with a compressed body: `W/"x"` for the strong `"x"`, a
/// weak ETag unchanged (surrounding whitespace trimmed), and `W/"x"` for an
/// unquoted `x` made only of etagc characters (Starlette's `5d4c...-1234`:
/// quoted, it is the opaque-tag the app meant; a client sends it back in
/// If-None-Match as it got it). Anything else (lowercase `w/"x"`, unquoted
/// `W/x`, unterminated `"x`, a DQUOTE, whitespace or control character
/// inside, empty) yields an empty string: the caller drops the ETag, since
/// it cannot be weakened and must not be sent as strong (nginx does the same).
std::string weaken_etag(std::string_view etag);

}  // namespace cacheproxy::encoding
