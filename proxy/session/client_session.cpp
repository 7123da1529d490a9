#include "session/client_session.hpp"

#include "http/hop_by_hop.hpp"
#include "http/proxy_error.hpp"
#include "invalidation/trigger_matcher.hpp"
#include "log/logging.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>

namespace cacheproxy::session {

namespace asio = boost::asio;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;
constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);

namespace {

/// Counts a request as in flight for as long as it lives (drain waits on it).
/// Counts a request in its worker's in-flight gauge. Single writer (the
/// worker's thread): a relaxed load and store, never a locked read-modify-write.
struct InflightGuard {
    explicit InflightGuard(std::atomic<std::size_t>& c) : count(c) {
        count.store(count.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    }
    ~InflightGuard() { count.store(count.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed); }
    std::atomic<std::size_t>& count;
};

double ms_since(Clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

}  // namespace

void ClientSession::ChunkExtensionLimit::operator()(std::uint64_t, std::string_view ext, error_code& ec) const {
    if (ext.size() > limit) ec = bhttp::error::bad_chunk_extension;
}

ClientSession::ClientSession(asio::ip::tcp::socket socket, app::Worker& worker)
    : stream_(std::move(socket)), worker_(worker), cfg_(worker.ctx.cfg),
      chunk_ext_limit_{worker.ctx.cfg.limits.max_chunk_extension_bytes} {
    error_code ec;
    const auto ep = stream_.socket().remote_endpoint(ec);
    peer_ip_ = ec ? std::string("unknown") : ep.address().to_string();
    stream_.socket().set_option(asio::ip::tcp::no_delay(true), ec);
    stream_.socket().non_blocking(true, ec);  // for net::send_now; async operations are unaffected
    if (cfg_.rules.identity.kind == rules::IdentitySource::Kind::header) identity_header_ = cfg_.rules.identity.name;
    worker_.ctx.client_connections.fetch_add(1);
    worker_.sessions.push_back(*this);
}

void ClientSession::on_drain() {
    if (!idle_wait_) return;  // mid-request: it closes after the answer
    error_code ec;
    if (stream_.socket().available(ec) == 0 || ec) stream_.cancel();
}

ClientSession::~ClientSession() { worker_.ctx.client_connections.fetch_sub(1); }

char* ClientSession::body_buffer() {
    if (!body_buffer_) body_buffer_ = std::make_unique<char[]>(body_buffer_size);
    return body_buffer_.get();
}

asio::awaitable<void> ClientSession::run() {
    for (;;) {
        bool closed = false;
        const auto verdict = co_await read_header(closed);
        if (closed) break;
        if (verdict) {
            spdlog::debug("refused request from {}: {} ({})", peer_ip_, verdict.status, verdict.reason);
            log::access({"-", "-", verdict.status, "-", "-", -1, 0});
            co_await send_error(verdict.status, verdict.reason, false);
            break;
        }
        if (!co_await handle_request()) break;
        if (worker_.ctx.draining.load()) break;
    }
    co_await graceful_close();
}

asio::awaitable<http::Verdict> ClientSession::read_header(bool& closed) {
    const auto& lim = cfg_.limits;
    closed = false;
    bool started = buffer_.size() > 0;
    bool armed = false;  // the deadline is set just before a read that needs it
    std::size_t end = 0;
    for (;;) {
        const std::string_view data(static_cast<const char*>(buffer_.data().data()), buffer_.size());
        bool bare_lf = false;
        end = http::find_header_end(data.substr(0, std::min(data.size(), lim.max_header_bytes)), bare_lf);
        if (bare_lf) co_return http::Verdict{400, "bare LF in the header section"};
        if (end != 0) break;
        if (buffer_.size() >= lim.max_header_bytes) co_return http::Verdict{431, "header section too large"};
        if (!armed) {
            // Idle until the first byte, then the whole header within header_timeout.
            stream_.expires_after(started ? lim.header_timeout : lim.idle_timeout);
            armed = true;
        }
        if (!started && worker_.ctx.draining.load()) {
            // Draining: a request already sent is answered; none waits for one.
            error_code aec;
            if (stream_.socket().available(aec) == 0 || aec) {
                closed = true;
                co_return http::Verdict{};
            }
        }
        const auto want = std::min<std::size_t>(8192, lim.max_header_bytes - buffer_.size() + 4);
        idle_wait_ = !started;
        auto [ec, n] = co_await stream_.async_read_some(buffer_.prepare(want), tuple_awaitable);
        idle_wait_ = false;
        buffer_.commit(n);
        if (ec) {
            if (ec == beast::error::timeout && started && buffer_.size() > 0)
                co_return http::Verdict{408, "request header not received in time"};
            closed = true;
            co_return http::Verdict{};
        }
        if (!started) {
            started = true;
            armed = false;  // from the first byte on: header_timeout, if another read is needed
        }
    }

    const std::string_view section(static_cast<const char*>(buffer_.data().data()), end);
    if (auto v = http::scan_raw_header(section)) co_return v;

    req_parser_.emplace();
    req_parser_->eager(false);
    req_parser_->header_limit(static_cast<std::uint32_t>(lim.max_header_bytes + 4));
    req_parser_->body_limit(lim.max_body_bytes);
    req_parser_->on_chunk_header(chunk_ext_limit_);
    error_code ec;
    const auto used = req_parser_->put(asio::buffer(section.data(), section.size()), ec);
    if (ec == bhttp::error::body_limit) co_return http::Verdict{413, "request body too large"};
    if (ec || !req_parser_->is_header_done()) {
        spdlog::debug("request header parse error: {}", ec.message());
        co_return http::Verdict{400, "malformed request header"};
    }
    buffer_.consume(used);
    co_return http::check_request(req_parser_->get(), expect_continue_, identity_header_);
}

asio::awaitable<bool> ClientSession::handle_request() {
    InflightGuard inflight(worker_.inflight);
    const auto t0 = Clock::now();
    Outcome out;
    const auto& req = req_parser_->get();
    bool keep_alive = false;
    const auto* cache = worker_.ctx.cache.get();
    const rules::RouteRule* rule = cache ? cache->matcher.match(req.method_string(), req.target()) : nullptr;
    const rules::TriggerRule* trigger = nullptr;
    if (!rule && cache && !cache->triggers.triggers().empty() && req.method() != bhttp::verb::get &&
        req.method() != bhttp::verb::head) {
        write_target_ = invalidation::normalize_write_target(req.target());
        trigger = cache->triggers.match(req.method_string(), write_target_);
    }
    if (rule) {
        out.route = rule->name;
        keep_alive = co_await serve_cached(*rule, cache->matcher.index_of(rule), out);
    } else if (trigger) {
        out.route = trigger->name;
        keep_alive = co_await serve_write(*trigger, static_cast<std::size_t>(trigger - cache->triggers.triggers().data()), out);
    } else {
        keep_alive = co_await forward(out);
    }
    // Idle sessions stay small.
    if (request_body_.capacity() > 2 * body_buffer_size) std::string().swap(request_body_);
    if (transformed_.capacity() > 2 * body_buffer_size) std::string().swap(transformed_);
    log::access({req.method_string(), req.target(), out.status, out.route, out.cache, out.upstream_ms, ms_since(t0)});
    worker_.stats.record(out.route, out.status, out.cache, t0);  // per-thread, lock-free (stats/)
    co_return keep_alive;
}

asio::awaitable<void> ClientSession::send_error(unsigned status, std::string_view reason, bool keep_alive) {
    bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(status), 11};
    res.set(bhttp::field::content_type, "text/plain; charset=utf-8");
    res.set(bhttp::field::via, http::via_token(11));
    res.body() = std::to_string(status) + " " + std::string(bhttp::obsolete_reason(res.result())) + ": " +
                 std::string(reason) + "\n";
    res.keep_alive(keep_alive);
    res.prepare_payload();
    stream_.expires_after(cfg_.limits.body_timeout);
    // A HEAD's answer carries no body, ours included: the next response on the
    // connection would be read as one.
    const bool head = req_parser_ && req_parser_->is_header_done() && req_parser_->get().method() == bhttp::verb::head;
    if (head) {
        bhttp::response_serializer<bhttp::string_body> sr{res};
        co_await bhttp::async_write_header(stream_, sr, tuple_awaitable);
        co_return;
    }
    co_await bhttp::async_write(stream_, res, tuple_awaitable);
}

asio::awaitable<void> ClientSession::send_error(unsigned status, error_code ec, bool keep_alive) {
    const std::string reason = ec.message();  // named: see the note on send_error
    co_await send_error(status, reason, keep_alive);
}

asio::awaitable<error_code> ClientSession::send_continue() {
    if (!expect_continue_) co_return error_code{};
    expect_continue_ = false;
    static constexpr std::string_view cont = "HTTP/1.1 100 Continue\r\n\r\n";
    stream_.expires_after(cfg_.limits.body_timeout);
    auto [ec, n] = co_await asio::async_write(stream_, asio::buffer(cont), tuple_awaitable);
    co_return ec;
}

asio::awaitable<void> ClientSession::graceful_close() {
    error_code ec;
    stream_.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ec);
    if (!ec) {
        stream_.expires_after(std::chrono::milliseconds(500));
        std::size_t drained = 0;
        char sink[4096];
        while (drained < 256 * 1024) {
            auto [rec, n] = co_await stream_.async_read_some(asio::buffer(sink), tuple_awaitable);
            if (rec) break;
            drained += n;
        }
    }
    stream_.socket().close(ec);
}

}  // namespace cacheproxy::session
