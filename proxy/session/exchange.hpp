#pragma once
/// What a handler gets to answer one request: the parsed request header
/// (read-only: the client's header is never edited), its body source, the
/// downstream writer, the peer, the worker, reusable buffers and the record
/// it fills in. The transport (client_session.cpp) makes one per request and
/// hands it to exactly one handler: cached_read, watched_write, pass_through
/// (or a tunnel, later), none of which knows the others.

#include "cache/cache_key.hpp"
#include "core/worker.hpp"
#include "encoding/gzip.hpp"
#include "http/field_arena.hpp"
#include "http/upstream_head.hpp"
#include "session/downstream.hpp"
#include "session/request_body.hpp"
#include "session/request_record.hpp"

#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>

#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace cacheproxy::session {

/// Who is on the other end of the client connection.
struct Peer {
    std::string ip;                    ///< "unknown" when the socket could not tell
    bool trusted = false;              ///< a trusted front (server.trusted_proxies): its X-Forwarded-* are kept
    std::string_view identity_header;  ///< the identity header's name ("" when identity is a cookie or query)
};

/// Buffers a connection reuses from request to request; none is shared with
/// another connection. The handlers borrow them for one request.
struct Scratch {
    static constexpr std::size_t relay_size = 64 * 1024;  ///< one read of a relayed body (as the upstream read buffer)
    /// The body relay buffer, made on first use.
    char* relay() {
        if (!relay_) relay_ = std::make_unique<char[]>(relay_size);
        return relay_.get();
    }
    /// Idle connections stay small: large buffers are let go between requests.
    void trim() {
        if (request_body.capacity() > 2 * relay_size) std::string().swap(request_body);
        if (transformed.capacity() > 2 * relay_size) std::string().swap(transformed);
        if (key.bytes.capacity() > 4096) std::string().swap(key.bytes);  // a key with a long query value
    }

    std::string wire_head;     ///< a hand-serialized upstream request head or relayed response head
    std::string request_body;  ///< the body (or its prefix) read before an upstream connection is taken
    std::string transformed;   ///< one (de)compressed relay piece
    std::string cache_status;  ///< a Cache-Status built per answer (not-storable detail)
    cache::CacheKey key;       ///< a cached route's key (cached_read), rebuilt in place per request
    std::unique_ptr<encoding::GzipStream> gzip;      ///< pass-through compression, made on first use
    std::unique_ptr<encoding::GunzipStream> gunzip;  ///< an upstream's gzip for a client without it
    http::ResponseArena response_arena;  ///< response's fields (before it: it outlives them)
    std::optional<http::ResponseParserOf<bhttp::buffer_body>> response;  ///< the relayed response's parser

private:
    std::unique_ptr<char[]> relay_;
};

struct Exchange {
    const http::RequestHeader& req;
    RequestBody& body;
    Downstream& down;
    app::Worker& worker;
    const Peer& peer;
    Scratch& scratch;
    RequestRecord& record;
    /// The client connection and its read buffer, for the tunnel alone
    /// (tunnel.cpp reads raw bytes once the upgrade is done; it too writes
    /// only through `down`). No other handler touches them.
    boost::beast::tcp_stream& client;
    boost::beast::flat_buffer& client_buffer;
    /// The rules this request runs on (null when nothing is cached), held
    /// until the handler returns (a copy of Worker::snapshot, taken once).
    std::shared_ptr<const app::RuleSnapshot> rules;

    const config::Config& cfg() const { return worker.ctx.cfg; }
    bool is_head() const { return req.method() == bhttp::verb::head; }
    /// The connection stays open after this answer: the client wants it and
    /// the process is not draining.
    bool keep_alive() const { return body.keep_alive() && !worker.ctx.draining.load(); }
    /// How every upstream head of this request is written (upstream_head.hpp).
    http::ForwardContext forward_context() const {
        return {.peer_ip = peer.ip,
                .upstream_authority = *worker.upstream_authority,
                .identity_header = peer.identity_header,
                .trusted_peer = peer.trusted};
    }
    /// send_error() for this request (a HEAD gets the header alone).
    boost::asio::awaitable<boost::system::error_code> send_error(unsigned status, std::string_view reason,
                                                                 bool keep) {
        record.status = status;
        return down.send_error(status, reason, keep, is_head());
    }
    boost::asio::awaitable<boost::system::error_code> send_error(unsigned status, boost::system::error_code ec,
                                                                 bool keep) {
        record.status = status;
        return down.send_error(status, ec, keep, is_head());
    }
};

}  // namespace cacheproxy::session
