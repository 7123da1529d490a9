#pragma once
/// The pass-through handler: a request no rule caches goes upstream and its
/// answer streams back, in five named steps (pass_through.cpp):
///   1. prepare the upstream request   the body prefix read, the head written from the parse (upstream_head.hpp)
///   2. send it                        head + prefix, the rest streamed from the client at a minimum rate
///   3. read the response head         1xx skipped; framing checked   (steps 2-3 retried once on a stale connection)
///   4. prepare the client head        client_head.hpp, pure
///   5. relay the body                 piece by piece, (de)compressed on the way where chosen
/// Cached routes use it for what they cannot cache (BYPASS, too large, ...).

#include "session/exchange.hpp"

#include <boost/asio/awaitable.hpp>

#include <functional>
#include <string_view>

namespace cacheproxy::session {

struct PassThroughOptions {
    /// The labels of a cached route's forwarded request (none: plain pass-through).
    CacheResult label = CacheResult::none;
    /// Run once, when the upstream was reached (answered, failed after the
    /// request went out), before anything is written to the client: a watched
    /// write too large to buffer invalidates here.
    std::function<boost::asio::awaitable<void>()> before_reply = {};
    /// An upgrade to ask the upstream for ("websocket"; "" = none): a 101
    /// then turns the connection into a tunnel (tunnel.hpp).
    std::string_view upgrade = {};
};

/// Answers `ex` from the upstream; returns whether the connection stays open.
boost::asio::awaitable<bool> pass_through(Exchange& ex, PassThroughOptions options = {});

}  // namespace cacheproxy::session
