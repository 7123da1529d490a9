#pragma once
/// The active health check, opt-in (`upstream.health.path`, "" = off, the
/// default): `GET <path>` on a fresh connection every `health.interval`.
///
/// The rule: only evidence that the app cannot take connections turns requests
/// into 502s. So a probe's *connect* counts exactly like the pool's: refused,
/// unreachable or timed out (after connect_timeout) marks the upstream down for
/// health_interval; connected marks it up (recovery is seen within one interval
/// without waiting for a request). What the app *answers* -- a 404 because it
/// has no such path, a 5xx, or nothing within health.timeout because a handler
/// blocks its event loop -- never marks it down: requests go on to the app,
/// which may well answer them. That answer only sets last_check_ok, which
/// /readyz and /stats report, and is logged when it changes.

#include "config/config.hpp"
#include "upstream/upstream_health.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <atomic>
#include <string>

namespace cacheproxy::upstream {

/// What one probe found.
enum class ProbeResult {
    refused,   ///< the connect failed: the upstream cannot take connections
    failed,    ///< connected, but no 2xx answer within health.timeout
    ok,        ///< a 2xx answer
};

/// One probe against `endpoint`, sent with Host `host` ("" = cfg's host:port).
boost::asio::awaitable<ProbeResult> probe_once(const config::UpstreamConfig& cfg,
                                               boost::asio::ip::tcp::endpoint endpoint, std::string host = {});

/// Applies one probe's result to `health` by the rule above.
void apply_probe(ProbeResult result, const config::UpstreamConfig& cfg, UpstreamHealth& health);

/// Runs until `stop` becomes true; spawn it on one worker's executor, and only
/// when cfg.health_path is set. Each probe goes to `endpoint` as it is then
/// (that worker's pool's: a reload's new upstream is probed from its next
/// probe on), with Host `*authority` (that worker's Worker::upstream_authority);
/// both must outlive the loop and change only on that executor.
boost::asio::awaitable<void> run_health_checks(const config::UpstreamConfig& cfg,
                                               const boost::asio::ip::tcp::endpoint& endpoint,
                                               const std::string* const& authority,
                                               UpstreamHealth& health, const std::atomic<bool>& stop);

}  // namespace cacheproxy::upstream
