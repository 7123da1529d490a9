#pragma once
/// Hop-by-hop header handling (RFC 9110 7.6.1) for responses, and the Via
/// token this proxy adds. Pure functions over Beast's fields, no I/O. What a
/// request sends upstream is written by upstream_head.hpp.

#include "http/field_arena.hpp"

#include <boost/beast/http/fields.hpp>

#include <string_view>

namespace cacheproxy::http {

/// True for a field hop-by-hop by its own name: Connection, Keep-Alive, TE,
/// Trailer, Upgrade, Transfer-Encoding, and every Proxy-*.
bool hop_by_hop_name(boost::beast::http::field field, std::string_view name);

/// Removes Connection and every field it names, Keep-Alive, TE, Trailer,
/// Upgrade, Proxy-* and Transfer-Encoding (framing is recomputed by the
/// serializer). Content-Length is left alone: the caller decides framing.
/// Proxy-Connection is removed as a field; its value is never read as a list
/// of names. Used on responses (requests go upstream through upstream_head.hpp).
template <class Allocator>
void strip_hop_by_hop(boost::beast::http::basic_fields<Allocator>& fields);
extern template void strip_hop_by_hop(boost::beast::http::fields&);  // a fill's response
extern template void strip_hop_by_hop(http::Fields&);                // a relayed one

/// The Via token this proxy adds, e.g. "1.1 cacheproxy".
std::string_view via_token(unsigned version);

}  // namespace cacheproxy::http
