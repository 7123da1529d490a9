#pragma once
/// The one retry rule of every upstream exchange (pass-through, fills, watched
/// writes): a request that fails on a *reused* keep-alive connection with an
/// error meaning that connection was already dead (the upstream closed it
/// while it sat in the pool), before any byte of the answer came back, is
/// sent once more on a fresh connection, if it may be sent twice at all
/// (idempotent, and its body is still whole in memory). Nothing else is ever
/// retried: not a timeout, not a partial answer, not a write.

#include "upstream/upstream_pool.hpp"

#include <boost/asio/error.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/system/error_code.hpp>


namespace cacheproxy::upstream {

/// Errors that mean a reused keep-alive connection was already dead.
inline bool stale_connection_error(const boost::system::error_code& ec) {
    namespace asio = boost::asio;
    return ec == asio::error::eof || ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
           ec == boost::beast::http::error::end_of_stream || ec == asio::error::connection_aborted;
}

/// How one attempt on a connection went.
struct Attempt {
    boost::system::error_code ec;  ///< clear: the lease is the caller's to use and release
    bool answer_started = false;   ///< a byte of the answer arrived (or the failure is not the connection's)
};

/// When to retry.
struct RetryPolicy {
    bool retry_if_stale = true;  ///< the request may be sent twice
    bool fresh_first = false;    ///< never on a kept-alive connection, not even the first time (a write)
};

/// Whether attempt `n` (0 = the first) must take a fresh connection.
inline bool fresh_only(RetryPolicy policy, int n) { return n > 0 || policy.fresh_first; }

/// Whether a failed attempt `n` goes once more, on a fresh connection (the
/// rule above). The caller closes the failed connection either way:
///
///     for (int n = 0;; ++n) {
///         auto lease = co_await pool.acquire(ec, fresh_only(policy, n));
///         if (ec) ...;                         // no connection: no retry
///         const Attempt tried = co_await ...;  // send, read the answer
///         if (!tried.ec) break;                // the lease is the caller's
///         pool.release(std::move(lease.conn), false);
///         if (!retry_on_stale(policy, n, lease, tried)) ...;  // the error is final
///     }
///
/// (A loop in each caller rather than a higher-order coroutine: each
/// coroutine frame on the request path is an allocation Asio's recycler
/// cannot take, as they are larger than it keeps.)
inline bool retry_on_stale(RetryPolicy policy, int n, const Pool::Lease& lease, const Attempt& tried) {
    return n == 0 && lease.reused && policy.retry_if_stale && !tried.answer_started &&
           stale_connection_error(tried.ec);
}

}  // namespace cacheproxy::upstream
