#pragma once
/// The request head the upstream sees, written from the client's parsed
/// header without touching it. Pure, no I/O: one walk over the client's fields.
///
/// What goes upstream is decided here and only here (pass-through, cache fills
/// and watched writes alike):
///   - the start line "METHOD target HTTP/1.1";
///   - every end-to-end field as the client sent it, in order, except
///     * hop-by-hop fields: Connection and every field it names, Keep-Alive,
///       TE, Trailer, Upgrade, Transfer-Encoding, every Proxy-* (Proxy-Connection
///       is dropped as a field: its value is never read as a list of names);
///     * framing: Content-Length is never copied; it is written from the parse
///       (`body_length`), canonical, after everything else was dropped;
///     * Expect (the proxy answers 100-continue itself);
///     * look-alikes: a name that reads as a protected field once '_' is read
///       as '-' (`Content_Length`, `Transfer_Encoding`, `X_Forwarded_For`, the
///       identity header's), which CGI-style servers would merge with the real one;
///     * X-Forwarded-For / X-Forwarded-Proto (overwritten), X-Forwarded-Host
///       (dropped), Via (appended to); from a trusted peer (a TLS front,
///       `server.trusted_proxies`, `ForwardContext::trusted_peer`) X-Forwarded-For
///       is appended to ("<its values>, <peer>") and X-Forwarded-Proto /
///       X-Forwarded-Host go on as that peer sent them: only the front knows
///       the client's scheme and address, and only a trusted one may say them;
///     * the fields the caller asks to drop (a fill's conditionals, a shared
///       route's credentials);
///   - Host added when an HTTP/1.0 request came without one.
/// check_request() has already refused a Connection or Proxy-Connection that
/// names a framing or identity field, so nothing named can remove those.

#include "http/field_arena.hpp"

#include <boost/beast/http/message.hpp>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace cacheproxy::http {

/// What the upstream head needs besides the client's header.
struct ForwardContext {
    std::string_view peer_ip;             ///< X-Forwarded-For (the real peer, never the client's claim)
    std::string_view upstream_authority;  ///< "host:port": Host for an HTTP/1.0 request without one
    std::string_view identity_header;     ///< the identity header's name ("" when identity is not a header)
    std::span<const std::string_view> drop = {};  ///< more field names to leave out (case-insensitive)
    std::string_view method = {};         ///< the method to send ("" = the client's): a fill is always a GET
    /// The peer is in server.trusted_proxies: its X-Forwarded-* are the client's, not a claim.
    bool trusted_peer = false;
    /// A protocol upgrade to ask for ("websocket"; "" = none): written as
    /// `Connection: upgrade` + `Upgrade: <token>` (the client's own hop-by-hop
    /// fields are never copied). Only the tunnel's request sets it.
    std::string_view upgrade = {};
    /// The body follows chunked (a large chunked upload streamed through:
    /// `Transfer-Encoding: chunked`, with no body_length).
    bool chunked = false;
};

/// Appends the upstream request head for `req` to `out`: `body_length` is the
/// body that follows (nullopt: none, no Content-Length written).
void append_upstream_head(const http::RequestHeader& req, const ForwardContext& ctx,
                          std::optional<std::uint64_t> body_length, std::string& out);

/// True when `name` holds '_' and reads as a protected field name (framing,
/// Host, Connection, Upgrade, forwarding headers, or `identity_header`) once
/// each '_' is read as '-'.
bool lookalike_name(std::string_view name, std::string_view identity_header);

}  // namespace cacheproxy::http
