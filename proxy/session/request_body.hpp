#pragma once
/// The request body as a handler reads it: pieces as they come, a bounded
/// prefix before an upstream connection is taken, or whole (chunked bodies
/// are always read whole and checked: bad chunks, long extensions and
/// trailers are errors). Sends "100 Continue" before the first read when the
/// client asked for it. One per connection, reset for each request.

#include "config/config.hpp"
#include "http/field_arena.hpp"
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

/// A client request's parser: its fields live in the connection's arena.
using RequestParser = http::RequestParserOf<bhttp::buffer_body>;

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
        // A Content-Length body is read raw, straight into the caller's
        // buffer (no parser copy, reads as large as the buffer); a chunked
        // one goes through the parser, which checks its framing.
        const auto length = parser.content_length();
        raw_ = !parser.chunked() && length.has_value();
        remaining_ = raw_ ? *length : 0;
    }

    bool is_done() const { return raw_ ? remaining_ == 0 : parser_->is_done(); }
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

    /// What read_prefix() read.
    struct Prefix {
        std::optional<std::uint64_t> length;  ///< the length to announce upstream (none: no body, or chunked)
        bool whole = true;                    ///< nothing of the body is left to stream
        bool chunked = false;                 ///< the rest streams chunked (a chunked body larger than the prefix)
    };
    /// Reads, before an upstream connection is taken, the body up to
    /// limits.request_buffer_bytes into `into`. A chunked body read whole is
    /// checked (no trailers) and goes on with a Content-Length; a longer one
    /// streams on chunked.
    boost::asio::awaitable<boost::system::error_code> read_prefix(std::string& into, Prefix& prefix);

    /// Reads the whole body into `into` (a chunked one bounded by the
    /// parser's body limit, a Content-Length one of exactly its length).
    boost::asio::awaitable<boost::system::error_code> read_whole(std::string& into);

    /// Bytes of a Content-Length body still on the socket with none of it
    /// buffered: what splice_to() can move (0 for a chunked body).
    std::uint64_t on_socket() const { return raw_ && buffer_.size() == 0 ? remaining_ : 0; }
    /// Moves the on_socket() bytes to `to` by splice(2) through `pipe`, no copy
    /// (net/splice.hpp), under limits.body_timeout and limits.min_body_rate
    /// on the client's side and `write_timeout` on `to`'s. The client's end
    /// before the last byte is a partial_message in `from`.
    boost::asio::awaitable<net::Spliced> splice_to(boost::asio::ip::tcp::socket& to, net::SplicePipe& pipe,
                                                   std::chrono::steady_clock::duration write_timeout);

    /// "100 Continue" once, if the request asked for it (before its body is read).
    boost::asio::awaitable<boost::system::error_code> send_continue();

private:
    boost::asio::awaitable<boost::system::error_code> read_chunked(std::string& into);

    boost::beast::tcp_stream& stream_;
    boost::beast::flat_buffer& buffer_;
    const config::LimitsConfig& limits_;
    Downstream& down_;
    /// A raw read of a Content-Length body (reset()).
    boost::asio::awaitable<boost::system::error_code> read_raw(char* dst, std::size_t size, std::size_t& got);

    RequestParser* parser_ = nullptr;
    bool expect_continue_ = false;
    bool raw_ = false;            ///< a Content-Length body, read raw
    std::uint64_t remaining_ = 0; ///< of a raw body, bytes still to read
};

}  // namespace cacheproxy::session
