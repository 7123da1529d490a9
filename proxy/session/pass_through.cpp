#include "session/pass_through.hpp"

#include "session/principal_step.hpp"

#include "http/proxy_error.hpp"
#include "http/request_guard.hpp"
#include "http/upstream_head.hpp"
#include "http/wire.hpp"
#include "log/logging.hpp"
#include "net/send_now.hpp"
#include "session/client_head.hpp"
#include "session/tunnel.hpp"
#include "upstream/retry.hpp"
#include "util/ascii.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/serializer.hpp>
#include <spdlog/spdlog.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <optional>
#include <utility>

#include <sys/socket.h>

namespace cacheproxy::session {

namespace asio = boost::asio;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;
using http_errors::errc;
constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);

namespace {

/// "<hex size>\r\n": a chunk's header.
std::string_view chunk_header(std::size_t n, char (&buf)[24]) {
    const auto r = std::to_chars(buf, buf + 20, n, 16);
    r.ptr[0] = '\r';
    r.ptr[1] = '\n';
    return {buf, static_cast<std::size_t>(r.ptr + 2 - buf)};
}

/// Whether a body with `left` bytes still to relay as it is goes by splice(2),
/// socket to socket (net/splice.hpp), either way: limits.splice_from_bytes.
bool splices(const Exchange& ex, std::uint64_t left) {
    const auto from = ex.cfg().limits.splice_from_bytes;
    return from != 0 && left >= from;
}

/// Step 2: sends the prepared head and the body read so far, then streams the
/// rest of the body from the client (at limits.min_body_rate at least); a
/// `chunked` stream is framed as chunks, the last one empty. Returns the
/// upstream write error and the client read error.
asio::awaitable<std::pair<error_code, error_code>> send_request(Exchange& ex, upstream::Connection& up, bool chunked) {
    const auto& lim = ex.cfg().limits;
    auto& s = ex.scratch;
    static constexpr std::string_view crlf = "\r\n", last_chunk = "0\r\n\r\n";
    char size_line[24];
    const bool framed_prefix = chunked && !s.request_body.empty();
    const std::array<asio::const_buffer, 4> first{
        asio::buffer(s.wire_head),
        framed_prefix ? asio::buffer(chunk_header(s.request_body.size(), size_line)) : asio::const_buffer{},
        asio::buffer(s.request_body), framed_prefix ? asio::buffer(crlf) : asio::const_buffer{}};
    error_code ec;
    const std::size_t sent = net::send_now(up.stream.socket(), first, ec);
    if (!ec && sent < asio::buffer_size(first))
        std::tie(ec, std::ignore) = co_await net::send_rest(up.stream, first, sent, lim.body_timeout);
    const auto t0 = Clock::now();
    std::uint64_t streamed = 0;
    while (!ec && !ex.body.is_done()) {
        if (splices(ex, ex.body.on_socket())) {  // a large upload's rest: socket to socket
            auto pipe = ex.worker.pipes.take();
            if (pipe.is_open()) {
                const auto spliced = co_await ex.body.splice_to(up.stream.socket(), pipe, lim.body_timeout);
                ex.worker.pipes.give_back(std::move(pipe));
                if (spliced.from) co_return std::pair{spliced.to, spliced.from};
                ec = spliced.to;
                break;
            }
        }
        std::size_t got = 0;
        if (auto rec = co_await ex.body.read_piece(s.relay(), Scratch::relay_size, got); rec)
            co_return std::pair{ec, rec};
        streamed += got;
        const auto elapsed = Clock::now() - t0;
        if (lim.min_body_rate != 0 && elapsed > config::min_body_rate_grace &&
            static_cast<double>(streamed) <
                static_cast<double>(lim.min_body_rate) * std::chrono::duration<double>(elapsed).count())
            co_return std::pair{ec, make_error_code(boost::beast::error::timeout)};
        const bool frame = chunked && got > 0;
        const std::array<asio::const_buffer, 3> piece{
            frame ? asio::buffer(chunk_header(got, size_line)) : asio::const_buffer{}, asio::buffer(s.relay(), got),
            frame ? asio::buffer(crlf) : asio::const_buffer{}};
        const std::size_t n = net::send_now(up.stream.socket(), piece, ec);
        if (!ec && n < asio::buffer_size(piece))
            std::tie(ec, std::ignore) = co_await net::send_rest(up.stream, piece, n, lim.body_timeout);
    }
    if (!ec && chunked) {
        const auto end = asio::buffer(last_chunk);
        const std::size_t n = net::send_now(up.stream.socket(), end, ec);
        if (!ec && n < end.size()) std::tie(ec, std::ignore) = co_await net::send_rest(up.stream, end, n, lim.body_timeout);
    }
    co_return std::pair{ec, error_code{}};
}

/// Step 3: reads the response head into scratch.response; 1xx interim
/// answers are skipped, a Connection naming its own framing is a bad
/// response, and so is a 101 unless `upgrade` was asked for.
asio::awaitable<upstream::Attempt> read_response_head(Exchange& ex, upstream::Connection& up, bool upgrade,
                                                      config::Duration timeout) {
    auto& parser = ex.scratch.response;
    up.stream.expires_after(timeout);
    for (;;) {
        parser.reset();  // the last response's fields go back to the arena first
        parser.emplace(std::piecewise_construct, std::make_tuple(),
                       std::make_tuple(http::ArenaAllocator<char>(&ex.scratch.response_arena)));
        parser->body_limit(boost::none);
        parser->header_limit(64 * 1024);
        if (ex.is_head()) parser->skip(true);
        auto [ec, n] = co_await bhttp::async_read_header(up.stream, up.buffer, *parser, tuple_awaitable);
        if (ec) co_return upstream::Attempt{ec, parser->got_some() || up.buffer.size() != 0};
        const unsigned s = parser->get().result_int();
        if (s == 101) {
            if (upgrade) co_return upstream::Attempt{};  // the tunnel takes it from here
            co_return upstream::Attempt{errc::upstream_bad_response, true};
        }
        if (s >= 200) {
            // A Connection naming its own framing would strip it on the way through.
            if (!http::check_response(parser->get())) co_return upstream::Attempt{errc::upstream_bad_response, true};
            co_return upstream::Attempt{};
        }
    }
}

/// The upstream timeouts of this request: the longest matching
/// `timeouts:` prefix, else the globals.
struct Timeouts {
    config::Duration response;
    config::Duration body;         ///< between upstream body reads; 0 = none
    bool body_configured = false;  ///< set by a prefix (an event stream then keeps it)
};
Timeouts timeouts_for(const Exchange& ex) {
    const auto& cfg = ex.cfg();
    Timeouts t{cfg.upstream.response_timeout, cfg.limits.body_timeout};
    if (cfg.timeouts.empty()) return t;
    const auto target = ex.req.target();
    const auto path = target.substr(0, target.find('?'));
    const config::PathTimeouts* best = nullptr;
    for (const auto& p : cfg.timeouts)
        if (path.starts_with(p.prefix) && (!best || p.prefix.size() > best->prefix.size())) best = &p;
    if (best && best->response) t.response = *best->response;
    if (best && best->body) {
        t.body = *best->body;
        t.body_configured = true;
    }
    return t;
}

/// A Server-Sent Events answer (text/event-stream).
bool is_event_stream(const http::ResponseHeader& res) {
    const auto type = res[bhttp::field::content_type];
    return type.size() >= 17 && util::iequals(type.substr(0, 17), "text/event-stream");
}

/// The timeout between upstream body reads: an event stream may stay quiet
/// as long as the app likes (limits.stream_timeout, 0 = never cut) unless a
/// prefix says otherwise.
config::Duration body_read_timeout(const Exchange& ex, const Timeouts& t, const http::ResponseHeader& res) {
    return !t.body_configured && is_event_stream(res) ? ex.cfg().limits.stream_timeout : t.body;
}

/// Arms the stream's deadline for one read: `d`, or none for 0.
void expire(boost::beast::tcp_stream& stream, config::Duration d) {
    if (d > config::Duration::zero())
        stream.expires_after(d);
    else
        stream.expires_never();
}

/// Step 1's head: written from the parse (upstream_head.hpp), the client's
/// header left as it came.
void prepare_upstream_head(Exchange& ex, const PassThroughOptions& options, const RequestBody::Prefix& prefix) {
    ex.scratch.wire_head.clear();
    auto forward = ex.forward_context();
    forward.upgrade = options.upgrade;
    forward.chunked = prefix.chunked;
    http::append_upstream_head(ex.req, forward, prefix.length, ex.scratch.wire_head);
}

/// What gunzip may still decode (compression.max_decoded_bytes in all).
std::size_t decode_budget(const Exchange& ex) {
    const auto used = ex.scratch.gunzip ? ex.scratch.gunzip->total_out() : 0;
    const auto limit = ex.cfg().compression.max_decoded_bytes;
    return used >= limit ? 0 : static_cast<std::size_t>(limit - used);
}

/// Readies the (de)compressor a transform needs, made once per connection.
void start_transform(Exchange& ex, Transform t) {
    auto& s = ex.scratch;
    if (t == Transform::gzip) {
        if (!s.gzip)
            s.gzip = std::make_unique<encoding::GzipStream>(ex.cfg().compression.stream_level);
        else
            s.gzip->reset();
    } else if (t == Transform::gunzip) {
        if (!s.gunzip)
            s.gunzip = std::make_unique<encoding::GunzipStream>();
        else
            s.gunzip->reset();
    }
}

/// Puts the piece in body.data through the transform, flushed so a slow
/// stream still reaches the client promptly. False: the upstream's gzip is bad.
bool transform_piece(Exchange& ex, Transform t, bhttp::buffer_body::value_type& body) {
    auto& s = ex.scratch;
    s.transformed.clear();
    const std::string_view piece(static_cast<const char*>(body.data), body.size);
    const bool ok = t == Transform::gzip
                        ? s.gzip->write(piece, s.transformed, encoding::Flush::sync) &&
                              (body.more || s.gzip->finish(s.transformed))
                        : s.gunzip->write(piece, s.transformed, decode_budget(ex)) && (body.more || s.gunzip->finish());
    body.data = s.transformed.empty() ? nullptr : s.transformed.data();
    body.size = s.transformed.size();
    return ok;
}

/// A relay with no upstream read timeout (a quiet event stream) would not
/// notice a client that left until the upstream sends again: the watch peeks
/// at the client socket every second (nginx: EPOLLRDHUP) and, on EOF or an
/// error, cancels the upstream read. Same thread as the relay: no lock.
struct ClientWatch {
    explicit ClientWatch(const asio::any_io_executor& ex) : timer(ex) {}
    asio::steady_timer timer;
    bool done = false;  ///< the relay ended: stop
    bool gone = false;  ///< the client went away
};

asio::awaitable<void> watch_client(std::shared_ptr<ClientWatch> w, boost::beast::tcp_stream& client,
                                   boost::beast::tcp_stream& up) {
    while (!w->done) {
        w->timer.expires_after(std::chrono::seconds(1));
        co_await w->timer.async_wait(tuple_awaitable);
        if (w->done) break;
        char byte;
        const auto n = ::recv(client.socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            w->gone = true;
            up.cancel();
            break;
        }
    }
}

void stop_client_watch(ClientWatch& w, bool& client_failed) {
    w.done = true;
    w.timer.cancel();
    if (w.gone) client_failed = true;
}

std::shared_ptr<ClientWatch> start_client_watch(Exchange& ex, upstream::Connection& up) {
    auto w = std::make_shared<ClientWatch>(ex.worker.ioc.get_executor());
    asio::co_spawn(ex.worker.ioc, watch_client(w, ex.client, up.stream), asio::detached);
    return w;
}

/// How the relay ended.
struct Relayed {
    error_code upstream;     ///< the upstream's body failed (cut short, bad gzip)
    bool client_failed = false;
    bool head_sent = false;  ///< bytes went to the client
    bool complete = false;   ///< the whole message was read from the upstream, framed
};

/// Step 5 for the usual download: a body of known length, relayed as it is
/// (no transform, no chunks). Raw reads straight into the relay buffer, as
/// large as it is, and no parser in between; the head goes with the first
/// bytes; a large body's rest is spliced, never entering our buffers. Reads
/// exactly `length` bytes, so the connection stays reusable.
asio::awaitable<Relayed> relay_raw(Exchange& ex, upstream::Connection& up, std::uint64_t length,
                                   config::Duration read_timeout) {
    auto& s = ex.scratch;
    s.wire_head.clear();
    http::append_head(ex.scratch.response->get(), s.wire_head);
    Relayed out;
    const auto buffered = static_cast<std::size_t>(std::min<std::uint64_t>(up.buffer.size(), length));
    const std::array<asio::const_buffer, 2> first{asio::buffer(s.wire_head),
                                                  asio::buffer(up.buffer.data().data(), buffered)};
    error_code ec;
    std::size_t sent = ex.down.write_now(first, ec);
    if (!ec && sent < asio::buffer_size(first)) ec = co_await ex.down.write_rest(first, sent);
    if (ec) {
        out.client_failed = true;
        co_return out;
    }
    out.head_sent = true;
    up.buffer.consume(buffered);
    std::uint64_t left = length - buffered;
    if (splices(ex, left)) {
        auto pipe = ex.worker.pipes.take();
        if (pipe.is_open()) {
            const auto spliced = co_await ex.down.splice_from(up.stream.socket(), left, pipe, read_timeout);
            ex.worker.pipes.give_back(std::move(pipe));
            out.client_failed = static_cast<bool>(spliced.to);
            if (spliced.from && !spliced.to)
                out.upstream = spliced.from == asio::error::eof ? make_error_code(bhttp::error::partial_message)
                                                                : spliced.from;
            out.complete = !spliced.from && !spliced.to;
            co_return out;
        }
    }
    while (left > 0) {
        expire(up.stream, read_timeout);
        const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(Scratch::relay_size, left));
        auto [rec, n] = co_await up.stream.async_read_some(asio::buffer(s.relay(), want), tuple_awaitable);
        left -= n;
        if (n > 0) {
            const std::array<asio::const_buffer, 1> piece{asio::buffer(s.relay(), n)};
            sent = ex.down.write_now(piece, ec);
            if (!ec && sent < n) ec = co_await ex.down.write_rest(piece, sent);
            if (ec) {
                out.client_failed = true;
                co_return out;
            }
        }
        if (rec && left > 0) {
            out.upstream = rec == asio::error::eof ? make_error_code(bhttp::error::partial_message) : rec;
            co_return out;
        }
    }
    out.complete = true;
    co_return out;
}

/// Step 5: relays the body. A plain relay (no chunk framing, no transform)
/// writes the head by hand and the body bytes as they come, the head gathered
/// with the first piece; otherwise Beast's serializer frames the chunks.
asio::awaitable<Relayed> relay_body(Exchange& ex, upstream::Connection& up, const ClientHead& head,
                                    config::Duration read_timeout) {
    auto& parser = *ex.scratch.response;
    auto& res = parser.get();
    auto& s = ex.scratch;
    const bool plain = head.transform == Transform::none && !res.chunked();
    std::optional<bhttp::response_serializer<bhttp::buffer_body, http::Fields>> sr;
    if (plain) {
        s.wire_head.clear();
        http::append_head(res, s.wire_head);
    } else {
        sr.emplace(res);
    }
    Relayed out;
    for (;;) {
        auto& body = res.body();
        if (!parser.is_done()) {
            body.data = s.relay();
            body.size = Scratch::relay_size;
            expire(up.stream, read_timeout);
            auto [rec, rn] = co_await bhttp::async_read_some(up.stream, up.buffer, parser, tuple_awaitable);
            if (rec == bhttp::error::need_buffer) rec = {};
            if (rec) {
                out.upstream = rec;
                co_return out;
            }
            body.size = Scratch::relay_size - body.size;
            body.data = body.size ? s.relay() : nullptr;  // an empty chunk would end the body
            body.more = !parser.is_done();
            if (head.transform != Transform::none && head.has_body && !transform_piece(ex, head.transform, body)) {
                out.upstream = make_error_code(errc::upstream_bad_response);
                co_return out;
            }
            if (body.size == 0 && body.more) {
                // Nothing to send yet (an empty piece would end a chunked
                // body): send the header alone if it has not gone out.
                if (!out.head_sent) {
                    error_code hec;  // no ?: around co_await (see Downstream::send_error's note)
                    if (plain) {
                        const std::array<asio::const_buffer, 1> only{asio::buffer(s.wire_head)};
                        const std::size_t sent = ex.down.write_now(only, hec);
                        if (!hec && sent < s.wire_head.size()) hec = co_await ex.down.write_rest(only, sent);
                    } else {
                        hec = co_await ex.down.write_header(*sr);
                    }
                    if (hec) {
                        out.client_failed = true;
                        co_return out;
                    }
                    out.head_sent = true;
                }
                continue;
            }
        } else {
            body.data = nullptr;
            body.size = 0;
            body.more = false;
        }
        error_code wec;
        bool done = false;
        if (plain) {
            const std::array<asio::const_buffer, 2> pieces{
                out.head_sent ? asio::const_buffer{} : asio::buffer(s.wire_head), asio::const_buffer(body.data, body.size)};
            const std::size_t sent = ex.down.write_now(pieces, wec);
            if (!wec && sent < asio::buffer_size(pieces)) wec = co_await ex.down.write_rest(pieces, sent);
            done = !body.more;
        } else {
            wec = co_await ex.down.write_some(*sr);
            done = sr->is_done();
        }
        if (wec) {
            out.client_failed = true;
            co_return out;
        }
        out.head_sent = true;
        if (done) {
            out.complete = parser.is_done() && !parser.need_eof();
            co_return out;
        }
    }
}

}  // namespace

asio::awaitable<bool> pass_through(Exchange& ex, PassThroughOptions options) {
    auto& rec = ex.record;
    rec.cache = options.label;
    const auto& req = ex.req;
    bool keep_alive = ex.keep_alive();
    auto before_reply = [&options]() -> asio::awaitable<void> {
        if (!options.before_reply) co_return;
        const auto run = std::exchange(options.before_reply, nullptr);  // lives until it is done
        co_await run();
    };

    // 1. The body, or its first request_buffer_bytes, is read before an
    // upstream connection is taken: a slow client holds only its own
    // connection. A chunked body is read and checked whole (bounded by
    // max_body_bytes): a bad chunk, an over-long extension or a trailer then
    // costs the upstream nothing, and it goes on with a Content-Length. The
    // head is written from the parse; the client's header is left as it came.
    RequestBody::Prefix prefix;
    if (auto ec = co_await ex.body.read_prefix(ex.scratch.request_body, prefix); ec) {
        spdlog::debug("request body from {} refused: {}", ex.peer.ip, ec.message());
        co_await ex.send_error(http_errors::status_for_client_body(ec), ec, false);
        co_return false;
    }
    prepare_upstream_head(ex, options, prefix);

    // 2 + 3. Send, read the response head; once more on a fresh connection
    // if a reused one was dead (upstream/retry.hpp). Only a request that can
    // be sent again whole may be.
    auto& pool = ex.worker.pool;
    const auto t_up = Clock::now();
    const auto timeouts = timeouts_for(ex);
    const upstream::RetryPolicy policy{.retry_if_stale = prefix.whole && http::is_idempotent(req.method())};
    upstream::Pool::Lease lease;
    for (int n = 0;; ++n) {
        error_code ec;
        lease = co_await pool.acquire(ec, upstream::fresh_only(policy, n));
        if (ec) {
            spdlog::debug("no upstream connection: {}", ec.message());
            const bool keep = keep_alive && ex.body.is_done();
            co_await ex.send_error(http_errors::status_for(ec), ec, keep);
            co_return keep;
        }
        ++lease.conn->requests;
        auto [sent_ec, client_ec] = co_await send_request(ex, *lease.conn, prefix.chunked);
        if (client_ec) {
            // The client's body was bad, slow or cut: the upstream never gets a complete request.
            pool.release(std::move(lease.conn), false);
            spdlog::debug("request body from {} refused: {}", ex.peer.ip, client_ec.message());
            co_await ex.send_error(http_errors::status_for_client_body(client_ec), client_ec, false);
            co_return false;
        }
        const upstream::Attempt tried =
            sent_ec ? upstream::Attempt{sent_ec, false}
                    : co_await read_response_head(ex, *lease.conn, !options.upgrade.empty(), timeouts.response);
        if (!tried.ec) break;
        pool.release(std::move(lease.conn), false);
        if (upstream::retry_on_stale(policy, n, lease, tried)) continue;
        co_await before_reply();
        const bool keep = keep_alive && ex.body.is_done();
        if (sent_ec) {
            co_await ex.send_error(502, "upstream write failed", keep);
            co_return keep;
        }
        const unsigned status = http_errors::status_for(tried.ec);
        spdlog::warn("upstream response for {} {} failed: {}", req.method_string(), log::path_only(req.target()),
                     tried.ec.message());
        const char* reason = status == 504 ? "upstream timed out" : "bad or no upstream response";
        co_await ex.send_error(status, reason, keep_alive);
        co_return keep_alive;
    }

    // 4. The client's head (a 101: the tunnel's own).
    co_await before_reply();
    auto& parser = *ex.scratch.response;
    auto& res = parser.get();
    rec.status = res.result_int();
    if (ex.worker.ctx.cache) drop_if_refused(*ex.worker.ctx.cache, rec.status, req);  // before the client sees it
    if (rec.status == 101) co_return co_await tunnel(ex, std::move(lease), options.upgrade);
    const bool upstream_keep_alive = res.keep_alive();
    std::optional<std::uint64_t> content_length;
    if (const auto n = parser.content_length()) content_length = *n;
    const auto head = prepare_client_head(
        res, {.req = req, .compression = ex.cfg().compression, .content_length = content_length, .label = options.label},
        keep_alive);
    keep_alive = head.keep_alive;
    start_transform(ex, head.transform);

    // 5. The body.
    const auto read_timeout = body_read_timeout(ex, timeouts, res);
    const auto watch = read_timeout == config::Duration::zero() ? start_client_watch(ex, *lease.conn) : nullptr;
    const bool raw = head.has_body && head.transform == Transform::none && !res.chunked() && content_length;
    Relayed relayed;  // no ?: around co_await (see Downstream::send_error's note)
    if (raw)
        relayed = co_await relay_raw(ex, *lease.conn, *content_length, read_timeout);
    else
        relayed = co_await relay_body(ex, *lease.conn, head, read_timeout);
    if (watch) stop_client_watch(*watch, relayed.client_failed);
    rec.upstream_ms = std::chrono::duration<double, std::milli>(Clock::now() - t_up).count();
    if (relayed.client_failed) {
        // The client went away: the upstream connection is mid-message.
        pool.release(std::move(lease.conn), false);
        co_return false;
    }
    if (relayed.upstream) {
        pool.release(std::move(lease.conn), false);
        spdlog::warn("upstream body for {} {} cut short: {}", req.method_string(), log::path_only(req.target()),
                     relayed.upstream.message());
        if (!relayed.head_sent) co_await ex.send_error(502, "upstream response cut short", false);
        // Bytes already went out: closing without completing the message
        // is the only honest signal left.
        co_return false;
    }
    // Nothing unread may stay on a pooled connection: not a byte after the
    // response, and not the body a HEAD answer may still send late.
    const bool reusable = upstream_keep_alive && relayed.complete && lease.conn->buffer.size() == 0 &&
                          !ex.is_head() && options.upgrade.empty();
    pool.release(std::move(lease.conn), reusable);
    co_return keep_alive;
}

}  // namespace cacheproxy::session
