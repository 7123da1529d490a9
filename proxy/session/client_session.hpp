#pragma once
/// One client connection: read a request, check it, forward it, relay the
/// answer, repeat (keep-alive; pipelined requests are answered in order
/// because they are read one at a time).
///
/// The request's path, top to bottom:
///   client_session.cpp  read_header() -> scan + parse + check_request() -> route match
///   cache_flow.cpp      serve_cached(): key -> lookup -> freshness -> coalesce -> fill -> write_entry()
///   write_flow.cpp      serve_write(): a write that invalidates (buffered, evaluated, then answered)
///   forward.cpp         forward(): upstream pool -> write request -> relay response (streamed)

#include "app/worker.hpp"
#include "cache/cached_response.hpp"
#include "cache/fill_result.hpp"
#include "encoding/gzip.hpp"
#include "http/request_guard.hpp"
#include "upstream/upstream_pool.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>

namespace cacheproxy::session {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

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
    /// in the socket is read and answered, then the connection closes.
    void on_drain() override;

private:
    /// Refuses chunk extensions longer than the configured limit.
    struct ChunkExtensionLimit {
        std::size_t limit;
        void operator()(std::uint64_t, std::string_view ext, boost::system::error_code& ec) const;
    };

    /// Reads one request header into req_parser_. `closed` = the client went away quietly.
    boost::asio::awaitable<http::Verdict> read_header(bool& closed);
    /// Handles the request in req_parser_; returns whether the connection stays open.
    boost::asio::awaitable<bool> handle_request();
    /// What the access log records of one request.
    struct Outcome {
        unsigned status = 0;
        double upstream_ms = -1;
        std::string_view route = "-";
        std::string_view cache = "-";   ///< HIT, MISS, STALE, BYPASS
    };
    /// How a response from a cached route is labelled (X-Cache, Cache-Status).
    struct CacheLabel {
        std::string_view x_cache;       ///< "" = not a cached route: no labels
        std::string_view status;        ///< the Cache-Status value
    };
    /// Forwards to the upstream and relays the answer, streamed (forward.cpp).
    boost::asio::awaitable<bool> forward(Outcome& out, CacheLabel label = {});
    /// What forward() does to a response body on its way through.
    enum class Transform { none, gzip, gunzip };
    /// Picks the body transform for a pass-through response (adds Vary when
    /// the answer depends on Accept-Encoding); pure, no I/O.
    Transform choose_transform(bhttp::response_header<>& res, const bhttp::request_header<>& req,
                               unsigned client_version, bool is_head) const;
    /// Answers a request for a cached route (cache_flow.cpp).
    boost::asio::awaitable<bool> serve_cached(const rules::RouteRule& rule, std::size_t route_index, Outcome& out);
    /// Answers a write that a trigger rule watches (write_flow.cpp).
    boost::asio::awaitable<bool> serve_write(const rules::TriggerRule& trigger, std::size_t trigger_index,
                                             Outcome& out);
    /// Drops (and bumps the generations of) the writer's entries in the
    /// trigger's scope; an unknown outcome does it once more a response
    /// timeout later, in case the app applies the write late.
    void invalidate(const rules::TriggerRule& trigger, std::size_t trigger_index, std::string_view request_body,
                    bool body_complete, bool outcome_unknown);
    /// Answers a cached-route request from a fill's outcome (its own, or one
    /// it waited for: `collapsed`): the entry, or `stale` for a failure or a
    /// 5xx where the rule allows it, or the failure's status.
    boost::asio::awaitable<bool> answer_fill(const cache::FillResult& result, const cache::EntryPtr& stale,
                                             bool collapsed, std::size_t route_index, Outcome& out);
    /// Writes a stored entry: its stored head and body as they are, plus the
    /// few per-hit headers (Age, labels, framing). Nothing is copied.
    boost::asio::awaitable<bool> write_entry(const cache::CachedResponse& entry, std::string_view x_cache,
                                             std::string_view cache_status, Outcome& out);
    /// Reads a whole chunked request body into request_body_ (bounded by the
    /// body limit); trailers, bad chunks and long extensions are errors.
    boost::asio::awaitable<boost::system::error_code> read_chunked_body();
    /// Reads what the request body has next into [dst, dst + size): at least
    /// one byte unless the body is complete. `got` = the bytes written.
    boost::asio::awaitable<boost::system::error_code> read_body_piece(char* dst, std::size_t size, std::size_t& got);
    /// Reads the body before an upstream connection is taken: a chunked one
    /// whole, a Content-Length one up to limits.request_buffer_bytes, into
    /// request_body_. `body_length` = the length to announce upstream (none: no
    /// body); `whole` = nothing of the body is left to stream.
    boost::asio::awaitable<boost::system::error_code> read_body_prefix(std::optional<std::uint64_t>& body_length,
                                                                      bool& whole);
    /// Sends wire_head_ and request_body_, then streams the rest of the body
    /// from the client (at limits.min_body_rate at least). Returns the upstream
    /// write error and the client read error.
    boost::asio::awaitable<std::pair<boost::system::error_code, boost::system::error_code>> send_request(
        upstream::Connection& up);
    /// What a pass-through gunzip may still decode (compression.max_decoded_bytes in all).
    std::size_t decode_budget() const;
    /// Rewrites a non-canonical Content-Length ("010") as the parsed `length`.
    static void canonical_content_length(bhttp::response_header<>& res, std::uint64_t length);
    /// Answers with a short plain-text error generated by the proxy; a HEAD
    /// gets the header alone. Callers pass a *named* string: GCC 12
    /// double-frees a std::string temporary made by `?:` inside a co_await
    /// expression (seen on the write path; reproduced in a standalone
    /// program), so none is built there; the error_code overload names it here.
    boost::asio::awaitable<void> send_error(unsigned status, std::string_view reason, bool keep_alive);
    /// send_error() with `ec.message()` as the reason.
    boost::asio::awaitable<void> send_error(unsigned status, boost::system::error_code ec, bool keep_alive);
    /// Answers "100 Continue" once, if this request asked for it (HTTP/1.1
    /// Expect: 100-continue) and its body is about to be read.
    boost::asio::awaitable<boost::system::error_code> send_continue();
    /// True when the request's Accept-Encoding picks gzip (RFC 9110 12.5.3).
    static bool accepts_gzip(const bhttp::request_header<>& req);
    /// Sends FIN, then discards what the client still sends for a moment, so
    /// the last response is not destroyed by a reset.
    boost::asio::awaitable<void> graceful_close();

    char* body_buffer();  ///< the per-session body relay buffer, made on first use
    static constexpr std::size_t body_buffer_size = 32 * 1024;

    beast::tcp_stream stream_;
    beast::flat_buffer buffer_;          ///< client bytes, reused across requests
    app::Worker& worker_;
    const config::Config& cfg_;
    std::string peer_ip_;
    ChunkExtensionLimit chunk_ext_limit_;
    std::optional<bhttp::request_parser<bhttp::buffer_body>> req_parser_;
    std::optional<bhttp::response_parser<bhttp::buffer_body>> res_parser_;
    std::unique_ptr<char[]> body_buffer_;
    std::function<void()> before_reply_;  ///< forward(): run once the upstream was reached, before replying
    std::unique_ptr<encoding::GzipStream> gzip_;      ///< pass-through compression, made on first use
    std::unique_ptr<encoding::GunzipStream> gunzip_;  ///< for an upstream's gzip to a client without it
    std::string transformed_;            ///< one transformed piece, reused
    std::string write_target_;           ///< a watched write's normalized target
    bool expect_continue_ = false;       ///< this request awaits "100 Continue" before its body
    bool idle_wait_ = false;             ///< waiting for the first byte of the next request (on_drain may end it)
    std::string hit_head_;               ///< per-hit header bytes, reused across requests
    std::string hit_status_;             ///< a Cache-Status built per answer (not-storable detail), reused
    std::string wire_head_;              ///< forward(): a hand-serialized request or response header, reused
    std::string request_body_;           ///< the body read before an upstream connection is taken (read_body_prefix)
    std::string_view identity_header_;   ///< the identity header's name, in the config ("" when identity is a cookie or query)
};

}  // namespace cacheproxy::session
