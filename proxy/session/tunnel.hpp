#pragma once
/// The tunnel: what an upgraded connection (WebSocket) becomes once the
/// upstream answered 101 Switching Protocols. The request went out as a
/// pass-through with the upgrade asked for (pass_through.cpp, which alone can
/// see a real 101); from the 101 on the client connection and an upstream
/// connection of its own (never pooled again) carry bytes both ways until
/// either side closes, an error, or tunnel.idle_timeout without a byte.
/// A FIN from one side is passed on as a FIN (half-close); a reset or an
/// error closes both.

#include "session/exchange.hpp"
#include "upstream/upstream_pool.hpp"

#include <boost/asio/awaitable.hpp>

#include <optional>
#include <string_view>

namespace cacheproxy::session {

/// The configured Upgrade token this request asks for (the config's own
/// spelling), or none: not HTTP/1.1, no `Connection: upgrade`, or a protocol
/// the operator did not allow (it is then forwarded without the upgrade).
std::optional<std::string_view> requested_upgrade(const http::RequestHeader& req,
                                                  const config::TunnelConfig& tunnel);

/// Relays the 101 in ex.scratch.response to the client, then carries bytes
/// both ways. Takes the upstream connection; returns false (the client
/// connection is done with HTTP).
boost::asio::awaitable<bool> tunnel(Exchange& ex, upstream::Pool::Lease lease, std::string_view protocol);

}  // namespace cacheproxy::session
