#pragma once
/// Whether an upstream response may be stored, decided from plain facts (no
/// I/O, no Beast), and whether a client may bypass the cache.
/// Only complete, successful responses are stored; anything doubtful is not.

#include "cache/header_view.hpp"
#include "rules/route_rule.hpp"

#include <cstddef>
#include <string_view>

namespace cacheproxy::cache {

/// Why a response is not stored (none = storable).
enum class NotStorable {
    none,                  ///< storable
    status,                ///< not in the rule's statuses, or not 2xx/3xx, or 206/304
    set_cookie,            ///< carries Set-Cookie / Set-Cookie2
    no_store,              ///< Cache-Control: no-store (or no-cache: we never revalidate)
    private_,              ///< Cache-Control: private
    vary,                  ///< Vary names something the key does not hold (or '*')
    range_request,         ///< the request had Range, or the reply is partial (206 / Content-Range)
    no_length,             ///< close-delimited body (no Content-Length, not chunked)
    incomplete,            ///< the body was cut off, or a HEAD reply (no body to store)
    too_large,             ///< body larger than the rule's max_object_bytes
    authorization_shared,  ///< shared route, credentialed request, and the upstream says the answer depends on them
    encoded,               ///< Content-Encoding other than identity (the store keeps identity bodies)
    bad_encoding,          ///< the upstream's gzip body does not decode (truncated, corrupt): a failed fill
};

/// Short stable name of a reason, for logs and stats.
const char* to_string(NotStorable reason);

/// The plain facts about one upstream response and the request that caused it.
struct ResponseFacts {
    unsigned status = 0;                  ///< the upstream's status
    bool request_was_range = false;       ///< the client's request carried Range
    bool request_was_head = false;        ///< the request was HEAD (the reply has no body)
    bool request_had_credentials = false; ///< the request carried the identity credential or Authorization
    bool length_known = false;            ///< framed by Content-Length or chunked, not by closing the connection
    bool complete = false;                ///< the whole body arrived
    std::size_t body_bytes = 0;           ///< identity body size
    std::string_view identity_header;     ///< per-user route with a header identity: its name (Vary on it is keyed)
};

/// The first reason `facts` + `response_headers` make the response unstorable
/// on `rule`, or NotStorable::none.
NotStorable check_storable(const rules::RouteRule& rule, const ResponseFacts& facts,
                           const HeaderView& response_headers);

/// The first reason the response may not go to every request coalesced on
/// its fill (same key, so same identity), or none: a status the rule does not
/// store, no-store and a close-delimited body are no reason; Set-Cookie, a
/// Vary on what the key does not hold, private, credentials on a shared
/// route, an encoding, a partial or oversized body are.
NotStorable check_shareable(const rules::RouteRule& rule, const ResponseFacts& facts,
                            const HeaderView& response_headers);

/// True when the client asked to bypass the cache (Cache-Control: no-cache,
/// no-store or max-age=0, or Pragma: no-cache) and the route allows it.
bool client_bypasses(const rules::RouteRule& rule, const HeaderView& request_headers);

}  // namespace cacheproxy::cache
