#pragma once
/// The relayed response's header as the client gets it: pure decisions, no
/// I/O (unit-tested in tests/session/client_head_test.cpp).

#include "config/config.hpp"
#include "http/date.hpp"
#include "http/field_arena.hpp"
#include "session/request_record.hpp"

#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/message.hpp>

#include <cstdint>
#include <optional>
#include <string_view>

namespace cacheproxy::session {

namespace bhttp = boost::beast::http;

/// True when the request's Accept-Encoding picks gzip (RFC 9110 12.5.3).
bool accepts_gzip(const http::RequestHeader& req);

/// What happens to a relayed body on its way through.
enum class Transform { none, gzip, gunzip };

/// Picks the body transform for a pass-through response and adds `Vary:
/// Accept-Encoding` when the answer depends on it.
Transform choose_transform(http::ResponseHeader& res, const http::RequestHeader& req,
                           const config::CompressionConfig& compression);

/// What prepare_client_head() needs to know.
struct ClientHeadInput {
    const http::RequestHeader& req;
    const config::CompressionConfig& compression;
    std::optional<std::uint64_t> content_length;  ///< the upstream's, from the parse (none: chunked or close-delimited)
    CacheResult label = CacheResult::none;        ///< X-Cache / Cache-Status for a cached route's forwarded request
    /// The Date the client gets in place of the upstream's (which uvicorn
    /// fixes per connection: stale over a pooled one). By default this
    /// thread's current one, read where the input is made; a test passes a
    /// fixed one. Empty: the upstream's Date is left as it is.
    std::string_view date = http::current_date();
};

/// What it decided.
struct ClientHead {
    /// What happens to the body; none when there is no body (a HEAD's answer
    /// still says what its GET's would: Content-Encoding, Vary, weak ETag).
    Transform transform = Transform::none;
    bool has_body = true;    ///< not a HEAD, 1xx, 204 or 304
    bool keep_alive = true;  ///< false when the body must be close-delimited (HTTP/1.0 client, unknown length)
};

/// Rewrites the upstream's response header `res` for the client: hop-by-hop
/// fields out, a canonical Content-Length (from the parse), the transform
/// (Content-Length out, ETag weakened, Content-Encoding set or removed),
/// framing for the client's version (chunked, or close-delimited for
/// HTTP/1.0), our Date, Via joined, the cache labels, version and keep-alive.
/// A HEAD's answer gets the header its GET's would (RFC 9110 9.3.2), less
/// the framing of a body it does not have: where the GET's would be chunked,
/// it has neither Content-Length nor Transfer-Encoding (as nginx answers it).
ClientHead prepare_client_head(bhttp::response<bhttp::buffer_body, http::Fields>& res, const ClientHeadInput& in, bool keep_alive);

}  // namespace cacheproxy::session
