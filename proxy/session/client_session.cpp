#include "session/client_session.hpp"

#include "invalidation/trigger_matcher.hpp"
#include "log/logging.hpp"
#include "session/cached_read.hpp"
#include "session/pass_through.hpp"
#include "session/tunnel.hpp"
#include "session/watched_write.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/error.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>

namespace cacheproxy::session {

namespace asio = boost::asio;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;
constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);

namespace {

/// Counts a request in its worker's in-flight gauge (drain waits on it) for
/// as long as it lives. Single writer (the worker's thread): a relaxed load
/// and store, never a locked read-modify-write.
struct InflightGuard {
    explicit InflightGuard(std::atomic<std::size_t>& c) : count(c) {
        count.store(count.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    }
    ~InflightGuard() { count.store(count.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed); }
    std::atomic<std::size_t>& count;
};

}  // namespace

void ClientSession::ChunkExtensionLimit::operator()(std::uint64_t, std::string_view ext, error_code& ec) const {
    if (ext.size() > limit) ec = bhttp::error::bad_chunk_extension;
}

ClientSession::ClientSession(asio::ip::tcp::socket socket, app::Worker& worker)
    : stream_(std::move(socket)), worker_(worker), cfg_(worker.ctx.cfg),
      chunk_ext_limit_{worker.ctx.cfg.limits.max_chunk_extension_bytes}, down_(stream_, cfg_.limits),
      body_(stream_, buffer_, cfg_.limits, down_) {
    error_code ec;
    const auto ep = stream_.socket().remote_endpoint(ec);
    peer_.ip = ec ? std::string("unknown") : ep.address().to_string();
    peer_.trusted = !ec && worker.ctx.trusted_proxies.contains(ep.address());  // a TLS front: its X-Forwarded-* are kept
    stream_.socket().set_option(asio::ip::tcp::no_delay(true), ec);
    stream_.socket().non_blocking(true, ec);  // for net::send_now; async operations are unaffected
    if (cfg_.rules.identity.kind == rules::IdentitySource::Kind::header) peer_.identity_header = cfg_.rules.identity.name;
    worker_.ctx.client_connections.fetch_add(1);
    worker_.sessions.push_back(*this);
}

void ClientSession::on_drain(bool fresh_too) {
    if (!idle_wait_) return;           // mid-request: it closes after the answer
    if (fresh_ && !fresh_too) return;  // just connected: its request is likely on its way
    error_code ec;
    if (stream_.socket().available(ec) == 0 || ec) stream_.cancel();
}

void ClientSession::on_deadline() {
    error_code ec;
    stream_.socket().cancel(ec);
}

ClientSession::~ClientSession() { worker_.ctx.client_connections.fetch_sub(1); }

asio::awaitable<void> ClientSession::run() {
    for (;;) {
        bool closed = false;
        const auto verdict = co_await read_header(closed);
        if (closed) break;
        if (verdict) {
            spdlog::debug("refused request from {}: {} ({})", peer_.ip, verdict.status, verdict.reason);
            log::access({.method = "-", .target = "-", .status = verdict.status, .route = "-", .cache = "-"});
            const bool head = parser_ && parser_->is_header_done() && parser_->get().method() == bhttp::verb::head;
            co_await down_.send_error(verdict.status, verdict.reason, false, head);
            break;
        }
        fresh_ = false;
        if (!co_await handle_request()) break;
        if (worker_.ctx.draining.load()) break;
    }
    co_await down_.close();
}

asio::awaitable<http::Verdict> ClientSession::read_header(bool& closed) {
    const auto& lim = cfg_.limits;
    closed = false;
    bool started = buffer_.size() > 0;
    bool armed = false;  // the deadline is set just before a read that needs it
    // No timer per read: the worker's sweep ends this read once read_deadline
    // has passed (core/read_deadline.hpp); every way out of here disarms it.
    struct Disarm {
        app::ReadDeadline& d;
        ~Disarm() { d.disarm(); }
    } disarm{read_deadline};
    for (;;) {
        const std::string_view data(static_cast<const char*>(buffer_.data().data()), buffer_.size());
        bool bare_lf = false;
        const auto end = http::find_header_end(data.substr(0, std::min(data.size(), lim.max_header_bytes)), bare_lf);
        if (bare_lf) co_return http::Verdict{400, "bare LF in the header section"};
        if (end != 0) co_return parse_header(end);
        if (buffer_.size() >= lim.max_header_bytes) co_return http::Verdict{431, "header section too large"};
        if (!armed) {
            // Idle until the first byte, then the whole header within header_timeout.
            read_deadline.arm(app::SteadyClock::now() + (started ? lim.header_timeout : lim.idle_timeout));
            armed = true;
        }
        if (!started && worker_.ctx.draining.load() && (!fresh_ || worker_.ctx.drain_fresh_too.load())) {
            // Draining: a request already sent is answered; none waits for one.
            error_code aec;
            if (stream_.socket().available(aec) == 0 || aec) {
                closed = true;
                co_return http::Verdict{};
            }
        }
        const auto want = std::min<std::size_t>(8192, lim.max_header_bytes - buffer_.size() + 4);
        idle_wait_ = !started;
        auto [ec, n] = co_await stream_.socket().async_read_some(buffer_.prepare(want), tuple_awaitable);
        idle_wait_ = false;
        buffer_.commit(n);
        // Fired: the deadline passed, even if this read completed just before
        // the sweep's cancel. A header begun and not finished gets a 408; an
        // idle wait ends quietly (bytes that came with its deadline included).
        if (ec || read_deadline.fired) {
            if (read_deadline.fired && started && buffer_.size() > 0)
                co_return http::Verdict{408, "request header not received in time"};
            closed = true;
            co_return http::Verdict{};
        }
        if (!started) {
            started = true;
            armed = false;  // from the first byte on: header_timeout, if another read is needed
        }
    }
}

http::Verdict ClientSession::parse_header(std::size_t end) {
    const auto& lim = cfg_.limits;
    const std::string_view section(static_cast<const char*>(buffer_.data().data()), end);
    if (auto v = http::scan_raw_header(section)) return v;

    parser_.reset();  // the last request's fields go back to the arena first
    parser_.emplace(std::piecewise_construct, std::make_tuple(), std::make_tuple(http::ArenaAllocator<char>(&arena_)));
    parser_->eager(false);
    parser_->header_limit(static_cast<std::uint32_t>(lim.max_header_bytes + 4));
    // No limit yet: a pass-through body streams, however large; the routes
    // that hold bodies set theirs once the request is matched (handle_request).
    parser_->body_limit(boost::none);
    parser_->on_chunk_header(chunk_ext_limit_);
    error_code ec;
    const auto used = parser_->put(asio::buffer(section.data(), section.size()), ec);
    if (ec == bhttp::error::body_limit) return http::Verdict{413, "request body too large"};
    if (ec || !parser_->is_header_done()) {
        spdlog::debug("request header parse error: {}", ec.message());
        return http::Verdict{400, "malformed request header"};
    }
    buffer_.consume(used);
    return http::check_request(parser_->get(), expect_continue_, peer_.identity_header);
}

bool ClientSession::body_within_limit(std::size_t limit) {
    if (limit == 0) return true;
    if (const auto declared = parser_->content_length(); declared && *declared > limit) return false;
    parser_->body_limit(limit);  // a chunked body is counted as it comes
    return true;
}

asio::awaitable<bool> ClientSession::handle_request() {
    InflightGuard inflight(worker_.inflight);
    const auto t0 = Clock::now();
    RequestRecord record;
    const auto& req = parser_->get();
    body_.reset(*parser_, expect_continue_);
    // This request's rules, held to its end: a reload meanwhile changes the
    // worker's copy, never this one.
    Exchange ex{req, body_, down_, worker_, peer_, scratch_, record, stream_, buffer_, worker_.snapshot};
    const app::RuleSnapshot* cache = ex.rules.get();

    const rules::RouteRule* rule = cache ? cache->matcher.match(req.method_string(), req.target()) : nullptr;
    const rules::TriggerRule* trigger = nullptr;
    if (!rule && cache && !cache->triggers.triggers().empty() && req.method() != bhttp::verb::get &&
        req.method() != bhttp::verb::head) {
        write_target_ = invalidation::normalize_write_target(req.target());
        trigger = cache->triggers.match(req.method_string(), write_target_);
    }
    bool keep_alive = false;
    if (!body_within_limit(rule || trigger ? cfg_.limits.max_body_bytes : cfg_.limits.max_pass_through_body_bytes)) {
        // A cached or watched route holds its body (limits.max_body_bytes); a
        // pass-through one streams (limits.max_pass_through_body_bytes, 0 = none).
        co_await ex.send_error(413, "request body too large", false);
    } else if (rule) {
        const auto index = cache->matcher.index_of(rule);
        record.route = rule->name;
        record.slot = cache->route_cell(index);
        keep_alive = co_await cached_read(ex, *rule, index);
    } else if (trigger) {
        const auto index = static_cast<std::size_t>(trigger - cache->triggers.triggers().data());
        record.route = trigger->name;
        record.slot = cache->trigger_cell(index);
        keep_alive = co_await watched_write(ex, *trigger, index, write_target_);
    } else if (const auto upgrade = requested_upgrade(req, cfg_.tunnel)) {
        // An upgrade (WebSocket): a pass-through that may become a tunnel.
        if (worker_.ctx.tunnels_open.load(std::memory_order_relaxed) >= cfg_.tunnel.max_open) {
            stats::bump(worker_.tunnels.refused);
            co_await ex.send_error(503, "too many upgraded connections open (tunnel.max_open)", false);
        } else {
            keep_alive = co_await pass_through(ex, {.upgrade = *upgrade});
        }
    } else {
        keep_alive = co_await pass_through(ex);
    }
    // Whatever the handler decided: bytes of this request's body left unread
    // would be parsed as the next request. Only a request read to its end
    // keeps the connection.
    if (keep_alive && !body_.is_done()) keep_alive = false;
    scratch_.trim();
    const auto elapsed = Clock::now() - t0;
    const auto text = text_of(record.cache);
    log::access({.method = req.method_string(),
                 .target = req.target(),
                 .status = record.status,
                 .route = record.route,
                 .cache = text.x_cache.empty() ? std::string_view("-") : text.x_cache,
                 .upstream_ms = record.upstream_ms,
                 .total_ms = std::chrono::duration<double, std::milli>(elapsed).count()});
    worker_.stats.record(record.slot, record.status, text.label, elapsed);  // per-thread, lock-free
    co_return keep_alive;
}

}  // namespace cacheproxy::session
