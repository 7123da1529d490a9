#pragma once
/// One client connection, the transport: read a request header, check it,
/// hand the request to its handler, repeat (keep-alive; pipelined requests
/// are answered in order because they are read one at a time), then close
/// gracefully. The request's path, top to bottom:
///   client_session.cpp  read_header() -> scan + parse + check_request() -> dispatch by rule
///   cached_read.cpp     a cached route: key -> lookup -> coalesce -> fill -> answer
///   watched_write.cpp   a watched write: body -> upstream -> evaluate -> invalidate -> answer
///   pass_through.cpp    everything else: prepare -> send -> response head -> client head -> relay
/// Each handler gets an Exchange (exchange.hpp) and writes only through the
/// Downstream (downstream.hpp).

#include "core/worker.hpp"
#include "http/request_guard.hpp"
#include "session/downstream.hpp"
#include "session/exchange.hpp"
#include "session/request_body.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include <optional>
#include <string>

namespace cacheproxy::session {

class ClientSession final : public app::Drainable {
public:
    ClientSession(boost::asio::ip::tcp::socket socket, app::Worker& worker);
    ~ClientSession();
    ClientSession(const ClientSession&) = delete;
    ClientSession& operator=(const ClientSession&) = delete;

    /// Serves requests until the client leaves, an error, or shutdown.
    boost::asio::awaitable<void> run();

    /// The process is draining: if this connection waits for a request and
    /// none has arrived, stop waiting (it closes gracefully); a request already
    /// in the socket is read and answered, then the connection closes. One
    /// that has not sent its first request yet waits until `fresh_too`.
    void on_drain(bool fresh_too) override;
    /// The header read's deadline passed (idle_timeout before the first
    /// byte, header_timeout after it): the read ends, as timed out.
    void on_deadline() override;

private:
    /// Refuses chunk extensions longer than the configured limit.
    struct ChunkExtensionLimit {
        std::size_t limit;
        void operator()(std::uint64_t, std::string_view ext, boost::system::error_code& ec) const;
    };

    /// Reads one request header into parser_. `closed` = the client went away quietly.
    boost::asio::awaitable<http::Verdict> read_header(bool& closed);
    /// Parses and checks the header section, the first `end` bytes of buffer_.
    http::Verdict parse_header(std::size_t end);
    /// The request's body limit (0 = none): false when the declared length
    /// passes it; else the parser counts a chunked body against it.
    bool body_within_limit(std::size_t limit);
    /// Hands the request in parser_ to its handler; returns whether the connection stays open.
    boost::asio::awaitable<bool> handle_request();

    boost::beast::tcp_stream stream_;
    boost::beast::flat_buffer buffer_;  ///< client bytes, reused across requests
    app::Worker& worker_;
    const config::Config& cfg_;
    Peer peer_;
    ChunkExtensionLimit chunk_ext_limit_;
    Downstream down_;
    RequestBody body_;
    Scratch scratch_;
    http::RequestArena arena_;  ///< parser_'s fields (before parser_: it outlives them)
    std::optional<RequestParser> parser_;
    std::string write_target_;  ///< a watched write's normalized target
    bool expect_continue_ = false;  ///< this request awaits "100 Continue" before its body
    bool idle_wait_ = false;        ///< waiting for the first byte of the next request (on_drain may end it)
    bool fresh_ = true;             ///< no request read yet on this connection
};

}  // namespace cacheproxy::session
