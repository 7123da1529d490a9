#pragma once
/// The request body as a handler reads it: pieces as they come, a bounded
/// prefix before an upstream connection is taken, or whole (chunked bodies
/// are always read whole and checked: bad chunks, long extensions and
/// trailers are errors). Sends "100 Continue" before the first read when the
/// client asked for it. One per connection, reset for each request.

#include "config/config.hpp"
#include "session/downstream.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/system/error_code.hpp>

#include <cstdint>
#include <optional>
#include <string>

namespace cacheproxy::session {

using RequestParser = bhttp::request_parser<bhttp::buffer_body>;

class RequestBody {
public:
    RequestBody(boost::beast::tcp_stream& stream, boost::beast::flat_buffer& buffer, const config::LimitsConfig& limits,
                Downstream& down)
        : stream_(stream), buffer_(buffer), limits_(limits), down_(down) {}
    RequestBody(const RequestBody&) = delete;
    RequestBody& operator=(const RequestBody&) = delete;

    /// The next request's body: what `parser` (its header parsed) frames.
    void reset(RequestParser& parser, bool expect_continue) {
        parser_ = &parser;
        expect_continue_ = expect_continue;
    }

    bool is_done() const { return parser_->is_done(); }
    bool chunked() const { return parser_->chunked(); }
    std::optional<std::uint64_t> content_length() const {
        const auto n = parser_->content_length();
        return n ? std::optional<std::uint64_t>(*n) : std::nullopt;
    }
    /// The request's own keep-alive (the parser's flag: no field lookup).
    bool keep_alive() const { return parser_->keep_alive(); }

    /// Reads what the body has next into [dst, dst + size): at least one byte
    /// unless the body is complete. `got` = the bytes written.
    boost::asio::awaitable<boost::system::error_code> read_piece(char* dst, std::size_t size, std::size_t& got);

    /// Reads, before an upstream connection is taken, a chunked body whole and
    /// a Content-Length one up to limits.request_buffer_bytes into `into`.
    /// `length` = the length to announce upstream (none: no body); `whole` =
    /// nothing of the body is left to stream.
    boost::asio::awaitable<boost::system::error_code> read_prefix(std::string& into,
                                                                  std::optional<std::uint64_t>& length, bool& whole);

    /// Reads the whole body into `into` (a chunked one bounded by the
    /// parser's body limit, a Content-Length one of exactly its length).
    boost::asio::awaitable<boost::system::error_code> read_whole(std::string& into);

    /// "100 Continue" once, if the request asked for it (before its body is read).
    boost::asio::awaitable<boost::system::error_code> send_continue();

private:
    boost::asio::awaitable<boost::system::error_code> read_chunked(std::string& into);

    boost::beast::tcp_stream& stream_;
    boost::beast::flat_buffer& buffer_;
    const config::LimitsConfig& limits_;
    Downstream& down_;
    RequestParser* parser_ = nullptr;
    bool expect_continue_ = false;
};

}  // namespace cacheproxy::session
