#pragma once
/// The watched-write handler: a write a trigger rule watches (an order, a
/// close, a cancel, a config change), top to bottom (watched_write.cpp):
///   1. read the request body whole (bounded by the trigger's max_body_bytes;
///      a larger one is passed through and the scope widens)
///   2. send it upstream and read the whole answer (never retried)
///   3. evaluate: success, failure, or unknown (timeout, reset) = success
///   4. invalidate the writer's scope: bump its generations, drop its entries
///   5. only then answer the client: read-your-writes (ARCHITECTURE.md)

#include "session/exchange.hpp"

#include <boost/asio/awaitable.hpp>

#include <string_view>

namespace cacheproxy::session {

/// Answers `ex` for `trigger` (trigger `trigger_index`); `target` is the
/// request target as the trigger matched it (normalized). Returns whether the
/// connection stays open.
boost::asio::awaitable<bool> watched_write(Exchange& ex, const rules::TriggerRule& trigger, std::size_t trigger_index,
                                           std::string_view target);

}  // namespace cacheproxy::session
