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
/// weak ETag unchanged (surrounding whitespace trimmed). A malformed value
/// (unquoted `abc`, lowercase `w/"x"`, unterminated `"x`, empty) yields an
/// empty string: the caller drops the ETag, since it cannot be weakened and
/// must not be sent as strong (nginx does the same).
std::string weaken_etag(std::string_view etag);

}  // namespace cacheproxy::encoding
