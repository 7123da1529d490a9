#pragma once
/// Builds CachedResponse::head from an upstream response: the status line and
/// the end-to-end fields worth replaying. Pure, no Beast.

#include "cache/header_view.hpp"

#include <span>
#include <string>
#include <string_view>

namespace cacheproxy::cache {

/// "HTTP/1.1 <status> <reason>\r\n" + one "Name: value\r\n" per kept field, no
/// final blank line. Dropped: Connection and every field it names, hop-by-hop
/// fields (Keep-Alive, Proxy-*, TE, Trailer, Upgrade, Transfer-Encoding),
/// framing and encoding (Content-Length, Content-Encoding: the writer adds
/// them per variant), per-response fields (Age, Date, Set-Cookie,
/// Set-Cookie2, X-Cache, Cache-Status), and any field holding CR, LF or NUL.
/// An empty or unsafe `reason` is replaced by the standard phrase.
std::string build_stored_head(unsigned status, std::string_view reason, std::span<const HeaderField> fields);

/// True when `name` is one of the fields build_stored_head always drops.
bool never_stored(std::string_view name);

}  // namespace cacheproxy::cache
