#include "session/pass_through.hpp"

#include "http/proxy_error.hpp"
#include "http/request_guard.hpp"
#include "http/upstream_head.hpp"
#include "http/wire.hpp"
#include "log/logging.hpp"
#include "net/send_now.hpp"
#include "session/client_head.hpp"
#include "session/tunnel.hpp"
#include "upstream/retry.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/serializer.hpp>
#include <spdlog/spdlog.h>

#include <array>
#include <chrono>
#include <optional>
#include <utility>

namespace cacheproxy::session {

namespace asio = boost::asio;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;
using http_errors::errc;
constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);

namespace {

/// Step 2: sends the prepared head and the body read so far, then streams the
/// rest of the body from the client (at limits.min_body_rate at least).
/// Returns the upstream write error and the client read error.
asio::awaitable<std::pair<error_code, error_code>> send_request(Exchange& ex, upstream::Connection& up) {
    const auto& lim = ex.cfg().limits;
    auto& s = ex.scratch;
    const std::array<asio::const_buffer, 2> first{asio::buffer(s.wire_head), asio::buffer(s.request_body)};
    error_code ec;
    const std::size_t sent = net::send_now(up.stream.socket(), first, ec);
    if (!ec && sent < asio::buffer_size(first))
        std::tie(ec, std::ignore) = co_await net::send_rest(up.stream, first, sent, lim.body_timeout);
    const auto t0 = Clock::now();
    std::uint64_t streamed = 0;
    while (!ec && !ex.body.is_done()) {
        std::size_t got = 0;
        if (auto rec = co_await ex.body.read_piece(s.relay(), Scratch::relay_size, got); rec)
            co_return std::pair{ec, rec};
        streamed += got;
        const auto elapsed = Clock::now() - t0;
        if (lim.min_body_rate != 0 && elapsed > config::min_body_rate_grace &&
            static_cast<double>(streamed) <
                static_cast<double>(lim.min_body_rate) * std::chrono::duration<double>(elapsed).count())
            co_return std::pair{ec, make_error_code(boost::beast::error::timeout)};
        const auto piece = asio::buffer(s.relay(), got);
        const std::size_t n = net::send_now(up.stream.socket(), piece, ec);
        if (!ec && n < got) std::tie(ec, std::ignore) = co_await net::send_rest(up.stream, piece, n, lim.body_timeout);
    }
    co_return std::pair{ec, error_code{}};
}

/// Step 3: reads the response head into scratch.response; 1xx interim
/// answers are skipped, a Connection naming its own framing is a bad
/// response, and so is a 101 unless `upgrade` was asked for.
asio::awaitable<upstream::Attempt> read_response_head(Exchange& ex, upstream::Connection& up, bool upgrade) {
    auto& parser = ex.scratch.response;
    up.stream.expires_after(ex.cfg().upstream.response_timeout);
    for (;;) {
        parser.emplace();
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

/// How the relay ended.
struct Relayed {
    error_code upstream;     ///< the upstream's body failed (cut short, bad gzip)
    bool client_failed = false;
    bool head_sent = false;  ///< bytes went to the client
};

/// Step 5: relays the body. A plain relay (no chunk framing, no transform)
/// writes the head by hand and the body bytes as they come, the head gathered
/// with the first piece; otherwise Beast's serializer frames the chunks.
asio::awaitable<Relayed> relay_body(Exchange& ex, upstream::Connection& up, const ClientHead& head) {
    auto& parser = *ex.scratch.response;
    auto& res = parser.get();
    auto& s = ex.scratch;
    const bool plain = head.transform == Transform::none && !res.chunked();
    std::optional<bhttp::response_serializer<bhttp::buffer_body>> sr;
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
            up.stream.expires_after(ex.cfg().limits.body_timeout);
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
        if (done) co_return out;
    }
}

}  // namespace

asio::awaitable<bool> pass_through(Exchange& ex, PassThroughOptions options) {
    auto& rec = ex.record;
    rec.cache = options.label;
    const auto& req = ex.req;
    bool keep_alive = ex.keep_alive();
    auto before_reply = [&options] {
        if (options.before_reply) std::exchange(options.before_reply, nullptr)();
    };

    // 1. The body, or its first request_buffer_bytes, is read before an
    // upstream connection is taken: a slow client holds only its own
    // connection. A chunked body is read and checked whole (bounded by
    // max_body_bytes): a bad chunk, an over-long extension or a trailer then
    // costs the upstream nothing, and it goes on with a Content-Length. The
    // head is written from the parse; the client's header is left as it came.
    std::optional<std::uint64_t> body_length;
    bool body_whole = true;
    if (auto ec = co_await ex.body.read_prefix(ex.scratch.request_body, body_length, body_whole); ec) {
        spdlog::debug("request body from {} refused: {}", ex.peer.ip, ec.message());
        co_await ex.send_error(http_errors::status_for_client_body(ec), ec, false);
        co_return false;
    }
    ex.scratch.wire_head.clear();
    auto forward = ex.forward_context();
    forward.upgrade = options.upgrade;
    http::append_upstream_head(req, forward, body_length, ex.scratch.wire_head);

    // 2 + 3. Send, read the response head; once more on a fresh connection
    // if a reused one was dead (upstream/retry.hpp). Only a request that can
    // be sent again whole may be.
    auto& pool = ex.worker.pool;
    const auto t_up = Clock::now();
    const upstream::RetryPolicy policy{.retry_if_stale = body_whole && http::is_idempotent(req.method())};
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
        auto [sent_ec, client_ec] = co_await send_request(ex, *lease.conn);
        if (client_ec) {
            // The client's body was bad, slow or cut: the upstream never gets a complete request.
            pool.release(std::move(lease.conn), false);
            spdlog::debug("request body from {} refused: {}", ex.peer.ip, client_ec.message());
            co_await ex.send_error(http_errors::status_for_client_body(client_ec), client_ec, false);
            co_return false;
        }
        const upstream::Attempt tried =
            sent_ec ? upstream::Attempt{sent_ec, false}
                    : co_await read_response_head(ex, *lease.conn, !options.upgrade.empty());
        if (!tried.ec) break;
        pool.release(std::move(lease.conn), false);
        if (upstream::retry_on_stale(policy, n, lease, tried)) continue;
        before_reply();
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
    before_reply();
    auto& parser = *ex.scratch.response;
    auto& res = parser.get();
    rec.status = res.result_int();
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
    const auto relayed = co_await relay_body(ex, *lease.conn, head);
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
    const bool reusable = upstream_keep_alive && parser.is_done() && !parser.need_eof() &&
                          lease.conn->buffer.size() == 0 && !ex.is_head() && options.upgrade.empty();
    pool.release(std::move(lease.conn), reusable);
    co_return keep_alive;
}

}  // namespace cacheproxy::session
