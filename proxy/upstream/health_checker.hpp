#pragma once
/// The active health check: `GET <health.path>` on a fresh connection every
/// `health.interval`. A failure marks the upstream down (clients get a 502 at
/// once); a success marks it up again.

#include "config/config.hpp"
#include "upstream/upstream_health.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

namespace cacheproxy::upstream {

/// Runs until `stop` becomes true; spawn it on one worker's executor.
boost::asio::awaitable<void> run_health_checks(const config::UpstreamConfig& cfg,
                                               boost::asio::ip::tcp::endpoint endpoint,
                                               UpstreamHealth& health, const std::atomic<bool>& stop);

}  // namespace cacheproxy::upstream
