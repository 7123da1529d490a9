#pragma once
/// Errors of the proxy's own data path, as error_codes (no exceptions after start-up).

#include <boost/system/error_code.hpp>

#include <string>
#include <type_traits>

namespace cacheproxy::http_errors {

enum class errc {
    upstream_unavailable = 1,  ///< connect refused, reset, or marked down by health checks -> 502
    upstream_timeout,          ///< no complete response within response_timeout -> 504
    upstream_bad_response,     ///< framing the proxy cannot relay safely -> 502
    upstream_pool_exhausted,   ///< no connection became free in time -> 503
    trailers_not_allowed,      ///< a chunked request carried trailer fields -> 400
    bare_line_ending,          ///< CR or LF alone in a header section -> 400
    header_too_large,          ///< header section over the limit -> 431
};

const boost::system::error_category& category();

inline boost::system::error_code make_error_code(errc e) {
    return {static_cast<int>(e), category()};
}

/// The status a proxy-generated answer gets for an upstream failure:
/// 504 for a timeout, 503 for an exhausted pool, else 502.
unsigned status_for(const boost::system::error_code& ec);

/// The status for a request body the client failed to deliver: 413 over the
/// limit, 408 too slow (timeout), else 400 (malformed, cut short).
unsigned status_for_client_body(const boost::system::error_code& ec);

}  // namespace cacheproxy::http_errors

template <>
struct boost::system::is_error_code_enum<cacheproxy::http_errors::errc> : std::true_type {};
