#pragma once
/// A whole-response upstream exchange, for cache fills and background
/// refreshes: the body is read into memory (bounded), so it can be stored and
/// shared. Pass-through traffic never uses this; it streams (session/pass_through.cpp).

#include "config/config.hpp"
#include "upstream/upstream_pool.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

namespace cacheproxy::upstream {

/// What came back.
struct FetchResult {
    boost::system::error_code ec;  ///< transport failure (no usable response): 502 / 504
    boost::beast::http::response<boost::beast::http::string_body> response;
    bool too_large = false;        ///< the body passed `body_limit`: nothing usable was kept
    bool length_known = false;     ///< framed by Content-Length or chunked (not by close)
};

/// The request an exchange sends (a fill's GET, or a buffered write), in wire
/// form: the head as http::append_upstream_head() wrote it, then the body.
struct Request {
    std::string head;         ///< start line, fields, empty line
    std::string body;         ///< exactly the Content-Length the head announces
    bool head_method = false; ///< a HEAD: the answer has no body
};

/// Sends `req` on a pooled connection and reads the whole answer within
/// upstream.response_timeout. When `retry_if_stale` (idempotent requests only),
/// a request that fails on a reused keep-alive connection before any byte came
/// back is retried once on a fresh one.
boost::asio::awaitable<FetchResult> fetch_whole(Pool& pool, const config::UpstreamConfig& cfg, const Request& req,
                                                std::size_t body_limit, bool retry_if_stale = true);

}  // namespace cacheproxy::upstream
