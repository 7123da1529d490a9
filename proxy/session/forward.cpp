/// The upstream leg of a request: take a pooled connection, write the request
/// re-serialized from the strict parse (body streamed through), read the
/// answer, strip hop-by-hop headers and stream it to the client (Beast's
/// relay() pattern with buffer_body).

#include "encoding/accept_encoding.hpp"
#include "encoding/compressible.hpp"
#include "encoding/weak_etag.hpp"
#include "http/hop_by_hop.hpp"
#include "http/proxy_error.hpp"
#include "http/request_guard.hpp"
#include "http/upstream_head.hpp"
#include "http/wire.hpp"
#include "net/send_now.hpp"
#include "log/logging.hpp"
#include "session/client_session.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/write.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <optional>
#include <span>
#include <tuple>

namespace cacheproxy::session {

namespace asio = boost::asio;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;
using http_errors::errc;
constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);

namespace {

/// Errors that mean a reused keep-alive connection was already dead.
bool stale_connection_error(const error_code& ec) {
    return ec == asio::error::eof || ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
           ec == bhttp::error::end_of_stream || ec == asio::error::connection_aborted;
}

bool status_has_no_body(unsigned s) { return (s >= 100 && s < 200) || s == 204 || s == 304; }

}  // namespace

ClientSession::Transform ClientSession::choose_transform(bhttp::response_header<>& res,
                                                        const bhttp::request_header<>& req, unsigned client_version,
                                                        bool is_head) const {
    const unsigned status = res.result_int();
    if (!cfg_.compression.enabled || status < 200 || status == 204 || status == 206 || status == 304)
        return Transform::none;
    // One walk for the fields this needs (the first of each), rather than a
    // tree lookup per field.
    bool ranged = false;
    std::optional<std::string_view> coding, content_length, content_type, vary_field;
    for (const auto& f : res) {
        switch (f.name()) {
            case bhttp::field::content_range: ranged = true; break;
            case bhttp::field::content_encoding: if (!coding) coding = f.value(); break;
            case bhttp::field::content_length: if (!content_length) content_length = f.value(); break;
            case bhttp::field::content_type: if (!content_type) content_type = f.value(); break;
            case bhttp::field::vary: if (!vary_field) vary_field = f.value(); break;
            default: break;
        }
    }
    if (ranged) return Transform::none;
    const bool client_gzip = accepts_gzip(req);
    const auto applied = encoding::applied_coding(coding.value_or(std::string_view{}));
    // An upstream's gzip reaches a client that cannot read it decoded; any
    // other coding of the upstream's is never touched.
    if (applied == encoding::Applied::gzip) return client_gzip ? Transform::none : Transform::gunzip;
    if (applied != encoding::Applied::identity) return Transform::none;
    std::optional<std::size_t> length;
    if (const auto cl = content_length.value_or(std::string_view{}); !cl.empty()) {
        std::size_t v = 0;
        if (std::from_chars(cl.data(), cl.data() + cl.size(), v).ec == std::errc{}) length = v;
    }
    if (!encoding::worth_compressing(content_type.value_or(std::string_view{}), length, cfg_.compression.min_size))
        return Transform::none;
    // It varies with Accept-Encoding whichever client asks.
    const auto vary = vary_field.value_or(std::string_view{});
    if (vary.empty())
        res.set(bhttp::field::vary, "Accept-Encoding");
    else if (vary.find("ccept-") == std::string_view::npos)
        res.set(bhttp::field::vary, std::string(vary) + ", Accept-Encoding");
    if (!client_gzip || client_version != 11) return Transform::none;  // HTTP/1.0: no chunked framing
    (void)is_head;
    return Transform::gzip;
}

asio::awaitable<bool> ClientSession::forward(Outcome& out, CacheLabel label) {
    // A watched write that could not be buffered invalidates before any reply.
    auto run_before_reply = [this] {
        if (before_reply_) std::exchange(before_reply_, nullptr)();
    };
    unsigned& status = out.status;
    double& upstream_ms = out.upstream_ms;
    if (!label.x_cache.empty()) out.cache = label.x_cache;
    const auto& req = req_parser_->get();
    const unsigned client_version = req.version();
    const bool is_head = req.method() == bhttp::verb::head;
    bool client_keep_alive = req_parser_->keep_alive() && !worker_.ctx.draining.load();  // the parser's flag: no field lookup

    // The body, or its first request_buffer_bytes, is read before an upstream
    // connection is taken: a slow client holds only its own connection. A
    // chunked body is read and checked whole (bounded by max_body_bytes): a
    // bad chunk, an over-long extension or a trailer then costs the upstream
    // nothing, and it goes on with a Content-Length.
    std::optional<std::uint64_t> body_length;
    bool body_whole = true;
    if (auto ec = co_await read_body_prefix(body_length, body_whole); ec) {
        status = http_errors::status_for_client_body(ec);
        spdlog::debug("request body from {} refused: {}", peer_ip_, ec.message());
        co_await send_error(status, ec, false);
        co_return false;
    }

    // The request as the upstream sees it, written from the parse (the
    // client's header is left as it came): upstream_head.hpp.
    wire_head_.clear();
    http::append_upstream_head(req,
                               {.peer_ip = peer_ip_,
                                .upstream_authority = worker_.ctx.upstream_authority,
                                .identity_header = identity_header_},
                               body_length, wire_head_);

    // Only a request the upstream can be sent again whole may be retried.
    const bool retryable = body_whole && http::is_idempotent(req.method());
    auto& pool = worker_.pool;
    const auto t_up = Clock::now();

    for (int attempt = 0;; ++attempt) {
        error_code ec;
        auto lease = co_await pool.acquire(ec, attempt > 0);
        if (ec) {
            spdlog::debug("no upstream connection: {}", ec.message());
            status = http_errors::status_for(ec);
            const bool keep = client_keep_alive && req_parser_->is_done();
            co_await send_error(status, ec, keep);
            co_return keep;
        }
        auto& up = *lease.conn;
        ++up.requests;

        // --- request: head and buffered body, then the rest streamed from the client ---
        error_code client_ec;  // a failure reading the client's body
        std::tie(ec, client_ec) = co_await send_request(up);
        if (client_ec) {
            // The client's body was bad, slow or cut: the upstream never gets a complete request.
            pool.release(std::move(lease.conn), false);
            status = http_errors::status_for_client_body(client_ec);
            spdlog::debug("request body from {} refused: {}", peer_ip_, client_ec.message());
            co_await send_error(status, client_ec, false);
            co_return false;
        }
        if (ec) {
            pool.release(std::move(lease.conn), false);
            if (attempt == 0 && lease.reused && retryable && stale_connection_error(ec)) continue;
            run_before_reply();
            status = 502;
            const bool keep = client_keep_alive && req_parser_->is_done();
            co_await send_error(status, "upstream write failed", keep);
            co_return keep;
        }

        // --- response header (1xx interim answers are skipped) ---
        up.stream.expires_after(cfg_.upstream.response_timeout);
        for (;;) {
            res_parser_.emplace();
            res_parser_->body_limit(boost::none);
            res_parser_->header_limit(64 * 1024);
            if (is_head) res_parser_->skip(true);
            auto [rec, rn] = co_await bhttp::async_read_header(up.stream, up.buffer, *res_parser_, tuple_awaitable);
            ec = rec;
            if (ec) break;
            const unsigned s = res_parser_->get().result_int();
            if (s == 101) {
                ec = errc::upstream_bad_response;
                break;
            }
            if (s >= 200) {
                // A Connection naming its own framing would strip it on the way through.
                if (!http::check_response(res_parser_->get())) ec = errc::upstream_bad_response;
                break;
            }
        }
        if (ec) {
            const bool nothing_received = !res_parser_->got_some() && up.buffer.size() == 0;
            pool.release(std::move(lease.conn), false);
            if (attempt == 0 && lease.reused && retryable && nothing_received && stale_connection_error(ec)) continue;
            run_before_reply();
            status = http_errors::status_for(ec);
            spdlog::warn("upstream response for {} {} failed: {}", req.method_string(),
                         log::path_only(req.target()), ec.message());
            const char* reason = status == 504 ? "upstream timed out" : "bad or no upstream response";
            co_await send_error(status, reason, client_keep_alive);
            co_return client_keep_alive;
        }

        // --- response to the client, body streamed through ---
        run_before_reply();
        auto& res = res_parser_->get();
        status = res.result_int();
        const bool upstream_keep_alive = res.keep_alive();
        const bool known_length = res_parser_->content_length().has_value();
        const bool no_body = is_head || status_has_no_body(status);
        http::strip_hop_by_hop(res);
        // Framing the client sees comes from the parse: a Content-Length such
        // as "010" goes on canonical.
        if (known_length && !no_body) canonical_content_length(res, *res_parser_->content_length());
        const auto transform = choose_transform(res, req, client_version, is_head);
        if (transform != Transform::none) {
            // The body changes size: no Content-Length; its ETag names the
            // other representation, so it can only be weak.
            res.erase(bhttp::field::content_length);
            if (const auto etag = res[bhttp::field::etag]; !etag.empty()) {
                const auto weak = encoding::weaken_etag(etag);
                if (weak.empty())
                    res.erase(bhttp::field::etag);
                else
                    res.set(bhttp::field::etag, weak);
            }
            if (transform == Transform::gzip) {
                res.set(bhttp::field::content_encoding, "gzip");
                if (!gzip_) gzip_ = std::make_unique<encoding::GzipStream>(cfg_.compression.stream_level);
                else gzip_->reset();
            } else {
                res.erase(bhttp::field::content_encoding);
                if (!gunzip_) gunzip_ = std::make_unique<encoding::GunzipStream>();
                else gunzip_->reset();
            }
        }
        if (!no_body && (!known_length || transform != Transform::none)) {
            // Chunked or close-delimited upstream body: chunk it for an
            // HTTP/1.1 client, close-delimit it for an HTTP/1.0 one.
            if (client_version == 11)
                res.chunked(true);
            else
                client_keep_alive = false;
        }
        const auto via = res.find(bhttp::field::via);
        if (via == res.end()) {
            res.set(bhttp::field::via, http::via_token(11));
        } else {
            std::string joined(via->value());
            joined.append(", ").append(http::via_token(11));
            res.set(bhttp::field::via, joined);
        }
        if (!label.x_cache.empty()) {
            res.set("X-Cache", label.x_cache);
            res.set("Cache-Status", label.status);
        }
        res.version(client_version);
        res.keep_alive(client_keep_alive);

        // A plain relay (no chunk framing, no transform) writes the header by
        // hand and the body bytes as they come, the header gathered with the
        // first piece; otherwise Beast's serializer frames the chunks.
        const bool plain = transform == Transform::none && !res.chunked();
        std::optional<bhttp::response_serializer<bhttp::buffer_body>> res_sr;
        bool head_sent = false;
        if (plain) {
            wire_head_.clear();
            http::append_head(res, wire_head_);
        } else {
            res_sr.emplace(res);
        }
        error_code up_ec;
        for (;;) {
            auto& body = res.body();
            if (!res_parser_->is_done()) {
                body.data = body_buffer();
                body.size = body_buffer_size;
                up.stream.expires_after(cfg_.limits.body_timeout);
                auto [rec, rn] = co_await bhttp::async_read_some(up.stream, up.buffer, *res_parser_, tuple_awaitable);
                if (rec == bhttp::error::need_buffer) rec = {};
                if (rec) {
                    up_ec = rec;
                    break;
                }
                body.size = body_buffer_size - body.size;
                body.data = body.size ? body_buffer() : nullptr;  // an empty chunk would end the body
                body.more = !res_parser_->is_done();
                if (transform != Transform::none && !is_head) {
                    // Each piece through the (de)compressor, flushed so a slow
                    // stream still reaches the client promptly.
                    transformed_.clear();
                    const std::string_view piece(body_buffer(), body.size);
                    bool ok = transform == Transform::gzip
                                  ? gzip_->write(piece, transformed_, encoding::Flush::sync) &&
                                        (body.more || gzip_->finish(transformed_))
                                  : gunzip_->write(piece, transformed_, decode_budget()) &&
                                        (body.more || gunzip_->finish());
                    if (!ok) {
                        up_ec = http_errors::errc::upstream_bad_response;
                        break;
                    }
                    body.data = transformed_.empty() ? nullptr : transformed_.data();
                    body.size = transformed_.size();
                }
                if (body.size == 0 && body.more) {
                    // Nothing to send yet (an empty piece would end a chunked
                    // body): send the header alone if it has not gone out.
                    if (!head_sent) {
                        stream_.expires_after(cfg_.limits.body_timeout);
                        error_code hec;  // no ?: around co_await (see send_error's note)
                        if (plain) {
                            auto [pec, pn] = co_await asio::async_write(stream_, asio::buffer(wire_head_), tuple_awaitable);
                            hec = pec;
                        } else {
                            auto [sec, sn] = co_await bhttp::async_write_header(stream_, *res_sr, tuple_awaitable);
                            hec = sec;
                        }
                        if (hec) {
                            pool.release(std::move(lease.conn), false);
                            co_return false;
                        }
                        head_sent = true;
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
                    head_sent ? asio::const_buffer{} : asio::buffer(wire_head_),
                    asio::const_buffer(body.data, body.size)};
                const std::size_t sent = net::send_now(stream_.socket(), pieces, wec);
                if (!wec && sent < asio::buffer_size(pieces))
                    std::tie(wec, std::ignore) = co_await net::send_rest(stream_, pieces, sent, cfg_.limits.body_timeout);
                done = !body.more;
            } else {
                stream_.expires_after(cfg_.limits.body_timeout);
                auto [sec, sn] = co_await bhttp::async_write(stream_, *res_sr, tuple_awaitable);
                wec = sec == bhttp::error::need_buffer ? error_code{} : sec;
                done = res_sr->is_done();
            }
            if (wec) {
                // The client went away: the upstream connection is mid-message.
                pool.release(std::move(lease.conn), false);
                co_return false;
            }
            head_sent = true;
            if (done) break;
        }
        upstream_ms = std::chrono::duration<double, std::milli>(Clock::now() - t_up).count();
        if (up_ec) {
            pool.release(std::move(lease.conn), false);
            spdlog::warn("upstream body for {} {} cut short: {}", req.method_string(),
                         log::path_only(req.target()), up_ec.message());
            if (!head_sent) {
                status = 502;
                co_await send_error(status, "upstream response cut short", false);
            }
            // Bytes already went out: closing without completing the message
            // is the only honest signal left.
            co_return false;
        }
        // Nothing unread may stay on a pooled connection: not a byte after the
        // response, and not the body a HEAD answer may still send late.
        const bool reusable = upstream_keep_alive && res_parser_->is_done() && !res_parser_->need_eof() &&
                              up.buffer.size() == 0 && !is_head;
        pool.release(std::move(lease.conn), reusable);
        co_return client_keep_alive;
    }
}

asio::awaitable<error_code> ClientSession::read_body_piece(char* dst, std::size_t size, std::size_t& got) {
    got = 0;
    auto& body = req_parser_->get().body();
    while (got == 0 && !req_parser_->is_done()) {
        body.data = dst;
        body.size = size;
        stream_.expires_after(cfg_.limits.body_timeout);
        auto [ec, n] = co_await bhttp::async_read_some(stream_, buffer_, *req_parser_, tuple_awaitable);
        if (ec == bhttp::error::need_buffer) ec = {};
        got = size - body.size;
        if (ec) co_return ec;
    }
    co_return error_code{};
}

asio::awaitable<error_code> ClientSession::read_body_prefix(std::optional<std::uint64_t>& body_length,
                                                            bool& whole) {
    request_body_.clear();
    whole = true;
    body_length.reset();
    if (req_parser_->chunked()) {
        if (auto ec = co_await send_continue(); ec) co_return ec;
        if (auto ec = co_await read_chunked_body(); ec) co_return ec;
        body_length = request_body_.size();
        co_return error_code{};
    }
    const auto declared = req_parser_->content_length();
    if (!declared) co_return error_code{};  // neither Content-Length nor chunked: no body
    body_length = *declared;
    if (req_parser_->is_done()) co_return error_code{};
    if (auto ec = co_await send_continue(); ec) co_return ec;
    const auto want = static_cast<std::size_t>(std::min<std::uint64_t>(*declared, cfg_.limits.request_buffer_bytes));
    request_body_.resize(want);
    std::size_t have = 0;
    error_code ec;
    while (!ec && have < want && !req_parser_->is_done()) {
        std::size_t got = 0;
        ec = co_await read_body_piece(request_body_.data() + have, want - have, got);
        have += got;
    }
    request_body_.resize(have);
    whole = req_parser_->is_done();
    co_return ec;
}

asio::awaitable<std::pair<error_code, error_code>> ClientSession::send_request(upstream::Connection& up) {
    const auto& lim = cfg_.limits;
    const std::array<asio::const_buffer, 2> first{asio::buffer(wire_head_), asio::buffer(request_body_)};
    error_code ec;
    const std::size_t sent = net::send_now(up.stream.socket(), first, ec);
    if (!ec && sent < asio::buffer_size(first))
        std::tie(ec, std::ignore) = co_await net::send_rest(up.stream, first, sent, lim.body_timeout);
    // The rest of a body larger than request_buffer_bytes, piece by piece as
    // the client sends it, at no less than min_body_rate on average.
    const auto t0 = Clock::now();
    std::uint64_t streamed = 0;
    while (!ec && !req_parser_->is_done()) {
        std::size_t got = 0;
        if (auto rec = co_await read_body_piece(body_buffer(), body_buffer_size, got); rec) co_return std::pair{ec, rec};
        streamed += got;
        const auto elapsed = Clock::now() - t0;
        if (lim.min_body_rate != 0 && elapsed > config::min_body_rate_grace &&
            static_cast<double>(streamed) < static_cast<double>(lim.min_body_rate) *
                                                std::chrono::duration<double>(elapsed).count())
            co_return std::pair{ec, make_error_code(beast::error::timeout)};
        const auto piece = asio::buffer(body_buffer(), got);
        const std::size_t n = net::send_now(up.stream.socket(), piece, ec);
        if (!ec && n < got) std::tie(ec, std::ignore) = co_await net::send_rest(up.stream, piece, n, lim.body_timeout);
    }
    co_return std::pair{ec, error_code{}};
}

std::size_t ClientSession::decode_budget() const {
    const auto used = gunzip_ ? gunzip_->total_out() : 0;
    const auto limit = cfg_.compression.max_decoded_bytes;
    return used >= limit ? 0 : static_cast<std::size_t>(limit - used);
}

void ClientSession::canonical_content_length(bhttp::response_header<>& res, std::uint64_t length) {
    for (const auto& f : res) {
        if (f.name() != bhttp::field::content_length) continue;
        const auto v = f.value();
        const bool canonical = !v.empty() && v.size() <= 20 && (v.size() == 1 || v.front() != '0') &&
                               std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; });
        if (!canonical) res.set(bhttp::field::content_length, std::to_string(length));
        return;
    }
}

asio::awaitable<error_code> ClientSession::read_chunked_body() {
    auto& req = req_parser_->get();
    const auto fields_before = static_cast<std::size_t>(std::distance(req.begin(), req.end()));
    request_body_.clear();
    while (!req_parser_->is_done()) {
        auto& body = req.body();
        body.data = body_buffer();
        body.size = body_buffer_size;
        stream_.expires_after(cfg_.limits.body_timeout);
        auto [ec, n] = co_await bhttp::async_read_some(stream_, buffer_, *req_parser_, tuple_awaitable);
        if (ec == bhttp::error::need_buffer) ec = {};
        if (ec) co_return ec;
        request_body_.append(body_buffer(), body_buffer_size - body.size);
    }
    // Beast merges trailer fields into the header: any new field is a trailer.
    if (static_cast<std::size_t>(std::distance(req.begin(), req.end())) != fields_before)
        co_return make_error_code(errc::trailers_not_allowed);
    co_return error_code{};
}

}  // namespace cacheproxy::session
