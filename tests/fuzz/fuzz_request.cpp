/// The request read path, exactly as ClientSession runs it, and what goes upstream.
///
/// The input is the bytes a client sends on one connection (possibly several
/// pipelined requests), delivered in segments whose sizes come from the input's
/// hash (so TCP segmentation is exercised, and a reproducer replays exactly).
/// Per request, as client_session.cpp read_header() and handle_request() do:
///   find_header_end (within max_header_bytes) -> scan_raw_header -> Beast
///   request_parser<buffer_body> (eager(false), header_limit(max_header_bytes+4),
///   body_limit(max_body_bytes), the chunk-extension limit) -> check_request ->
///   route match (RouteMatcher over the shipped rules/trading.yaml) / trigger
///   match (normalize_write_target) -> cache key (build_key) or the body read
///   through the same parser (chunked: whole, trailers refused) -> the bytes
///   the upstream would get (upstream_bytes_*(): the pass-through forward, a
///   cache fill, or a watched write). The limits and the upstream come from the
///   shipped config/cacheproxy.yaml.
///
/// The assertion, for every request check_request accepted whose body arrived
/// whole: the upstream bytes (head + body) parse with a fresh strict Beast
/// parser to exactly ONE complete request, with no byte left over, with the
/// same method (GET for a fill), target and body bytes; no Transfer-Encoding;
/// no field the client's Connection named (but the forwarding fields the proxy
/// writes itself); exactly one Host, the client's when it sent one; HTTP/1.1,
/// keep-alive; a head our own scan_raw_header and check_request accept.
/// A fill carries no body, no conditional, Range, Accept-Encoding or
/// Cache-Control, and on a shared route no credential. Also: Beast consumes
/// exactly the header section the raw scan found; a key, when built, is
/// deterministic.
///
/// The upstream head is written by http::append_upstream_head() (fills: the
/// call session::make_fill_request makes, restated) when the checkout has it
/// (CACHEPROXY_FUZZ_HAVE_UPSTREAM_HEAD, set by CMakeLists.txt); otherwise by
/// the sequence pass_through.cpp, cache_fill.cpp and watched_write.cpp used before it
/// (strip_hop_by_hop on a copy, erase Expect, add_forwarding_headers,
/// ensure_host, Content-Length, http::append_head). Only those functions differ.

#include "cache/beast_header_view.hpp"
#include "cache/cache_key.hpp"
#include "cache/identity.hpp"
#include "cache/route_matcher.hpp"
#include "config/config.hpp"
#include "fuzz_common.hpp"
#include "http/hop_by_hop.hpp"
#include "http/request_guard.hpp"
#include "http/wire.hpp"
#include "invalidation/trigger_matcher.hpp"

#if CACHEPROXY_FUZZ_HAVE_UPSTREAM_HEAD
#include "http/upstream_head.hpp"
#endif

#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/rfc7230.hpp>
#include <boost/beast/http/string_body.hpp>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

using namespace cacheproxy;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using boost::system::error_code;

namespace {

constexpr std::string_view kPeer = "192.0.2.7";

struct World {
    config::Config cfg;
    std::unique_ptr<cache::RouteMatcher> matcher;
    std::unique_ptr<invalidation::TriggerMatcher> triggers;
    std::unique_ptr<cache::IdentityHasher> hasher;
    std::string authority;        ///< "host:port" of the upstream
    std::string identity_header;  ///< the identity header's name, "" when identity is not a header
};

World& world() {
    static World* w = [] {
        auto* w = new World;
        const std::string path = std::string(CACHEPROXY_SOURCE_DIR) + "/config/cacheproxy.yaml";
        if (auto err = config::load_config(path, w->cfg)) {
            std::fprintf(stderr, "cannot load %s: %s\n", path.c_str(), err->to_string().c_str());
            std::abort();
        }
        w->matcher = std::make_unique<cache::RouteMatcher>(w->cfg.rules);
        w->triggers = std::make_unique<invalidation::TriggerMatcher>(w->cfg.rules);
        w->hasher = std::make_unique<cache::IdentityHasher>(cache::IdentityHasher::Key{42});
        const auto& up = w->cfg.upstream;
        const bool v6 = up.host.find(':') != std::string::npos;
        w->authority = (v6 ? "[" + up.host + "]" : up.host) + ":" + std::to_string(up.port);
        if (w->cfg.rules.identity.kind == rules::IdentitySource::Kind::header)
            w->identity_header = w->cfg.rules.identity.name;
        return w;
    }();
    return *w;
}

/// The client's side of the connection: the input, delivered in segments.
class SegmentedStream {
public:
    SegmentedStream(std::string_view data, fuzz::Splitter& split) : data_(data), split_(split) {}

    template <class MutableBufferSequence>
    std::size_t read_some(const MutableBufferSequence& buffers, error_code& ec) {
        ec = {};
        if (data_.empty()) {
            ec = asio::error::eof;
            return 0;
        }
        const std::size_t n = std::min({asio::buffer_size(buffers), data_.size(), split_.piece(4096)});
        const std::size_t copied = asio::buffer_copy(buffers, asio::buffer(data_.data(), n));
        data_.remove_prefix(copied);
        return copied;
    }
    template <class MutableBufferSequence>
    std::size_t read_some(const MutableBufferSequence& buffers) {
        error_code ec;
        const auto n = read_some(buffers, ec);
        if (ec) throw boost::system::system_error(ec);
        return n;
    }

private:
    std::string_view data_;
    fuzz::Splitter& split_;
};

/// ClientSession::ChunkExtensionLimit.
struct ChunkExtensionLimit {
    std::size_t limit;
    void operator()(std::uint64_t, std::string_view ext, error_code& ec) const {
        if (ext.size() > limit) ec = bhttp::error::bad_chunk_extension;
    }
};

using RequestParser = http::RequestParserOf<bhttp::buffer_body>;  // its fields in an arena, as a session's
using Header = http::RequestHeader;

// ---------------------------------------------------------------------------
// What goes upstream: the swappable part.
// ---------------------------------------------------------------------------

#if CACHEPROXY_FUZZ_HAVE_UPSTREAM_HEAD

/// pass_through.cpp and watched_write.cpp: the head from the parse, then the body.
std::string upstream_bytes_forward(const Header& req, bool /*chunked*/, std::optional<std::uint64_t> body_length,
                                   std::string_view body) {
    const World& w = world();
    std::string out;
    http::append_upstream_head(req,
                               {.peer_ip = kPeer, .upstream_authority = w.authority, .identity_header = w.identity_header},
                               body_length, out);
    out.append(body);
    return out;
}

/// session/cache_fill.cpp make_fill_request(): a fill's GET (its head only,
/// no body). Restated here, the same append_upstream_head() call with the same
/// drop list, because session/ is coroutine code this build leaves out; keep
/// the two in step.
std::string upstream_bytes_fill(const Header& req, const rules::RouteRule& rule) {
    const World& w = world();
    static constexpr std::string_view kNotKeyed[] = {
        "range", "if-range", "if-none-match", "if-modified-since", "if-match", "if-unmodified-since",
        "accept-encoding", "cache-control", "pragma"};
    std::vector<std::string_view> drop(std::begin(kNotKeyed), std::end(kNotKeyed));
    const auto& identity = w.cfg.rules.identity;
    const bool header_identity = identity.kind == rules::IdentitySource::Kind::header;
    if (rule.shared) {
        drop.push_back("authorization");
        drop.push_back("cookie");
        if (header_identity) drop.push_back(identity.name);
    }
    std::string out;
    http::append_upstream_head(req,
                               {.peer_ip = kPeer,
                                .upstream_authority = w.authority,
                                .identity_header = header_identity ? std::string_view(identity.name) : "",
                                .drop = drop,
                                .method = "GET"},
                               std::nullopt, out);
    return out;
}

#else  // the sequence before http/upstream_head.hpp

std::string upstream_bytes_forward(const Header& client, bool chunked, std::optional<std::uint64_t> body_length,
                                   std::string_view body) {
    // pass_through.cpp: strip, Expect, forwarding headers, Host, version, the
    // chunked body's length; the client's Content-Length otherwise stays.
    const World& w = world();
    Header req = client;
    const unsigned client_version = req.version();
    http::strip_hop_by_hop(req);
    req.erase(bhttp::field::expect);
    http::add_forwarding_headers(req, kPeer, client_version);
    http::ensure_host(req, w.cfg.upstream.host, w.cfg.upstream.port);
    req.version(11);
    if (chunked) req.set(bhttp::field::content_length, std::to_string(*body_length));  // message::content_length()
    std::string out;
    http::append_head(req, out);
    out.append(body);
    return out;
}

std::string upstream_bytes_fill(const Header& client, const rules::RouteRule& rule) {
    // cache_fill.cpp make_fill_request(), serialized as Beast writes it.
    const World& w = world();
    Header req;
    req.method(bhttp::verb::get);
    req.target(client.target());
    req.version(11);
    for (const auto& f : client) req.insert(f.name_string(), f.value());
    http::strip_hop_by_hop(req);
    for (auto f : {bhttp::field::expect, bhttp::field::range, bhttp::field::if_range, bhttp::field::if_none_match,
                   bhttp::field::if_modified_since, bhttp::field::if_match, bhttp::field::if_unmodified_since,
                   bhttp::field::accept_encoding, bhttp::field::cache_control, bhttp::field::pragma,
                   bhttp::field::content_length, bhttp::field::transfer_encoding})
        req.erase(f);
    if (rule.shared) {
        req.erase(bhttp::field::authorization);
        req.erase(bhttp::field::cookie);
        if (w.cfg.rules.identity.kind == rules::IdentitySource::Kind::header) req.erase(w.cfg.rules.identity.name);
    }
    http::add_forwarding_headers(req, kPeer, 11);
    http::ensure_host(req, w.cfg.upstream.host, w.cfg.upstream.port);
    std::string out;
    http::append_head(req, out);
    return out;
}

#endif

/// watched_write.cpp: the head with the buffered body's length, then the body.
std::string upstream_bytes_write(const Header& client, bool has_body, std::string_view body) {
#if CACHEPROXY_FUZZ_HAVE_UPSTREAM_HEAD
    return upstream_bytes_forward(client, false, has_body ? std::optional<std::uint64_t>(body.size()) : std::nullopt,
                                  body);
#else
    const World& w = world();
    Header req = client;
    const unsigned client_version = req.version();
    req.version(11);
    http::strip_hop_by_hop(req);
    req.erase(bhttp::field::expect);
    req.erase(bhttp::field::content_length);
    http::add_forwarding_headers(req, kPeer, client_version);
    http::ensure_host(req, w.cfg.upstream.host, w.cfg.upstream.port);
    if (has_body) req.set(bhttp::field::content_length, std::to_string(body.size()));
    std::string out;
    http::append_head(req, out);
    out.append(body);
    return out;
#endif
}

// ---------------------------------------------------------------------------
// The checks.
// ---------------------------------------------------------------------------

bool proxy_written(std::string_view name) {
    return beast::iequals(name, "x-forwarded-for") || beast::iequals(name, "x-forwarded-proto") ||
           beast::iequals(name, "via");
}

/// The upstream bytes are one complete request, the one the client sent.
void check_upstream(const Header& client, std::string_view bytes, std::string_view method, std::string_view body,
                    std::string_view input) {
    http::RequestParserOf<bhttp::string_body> p;  // parsed as a session would, then checked as one
    p.eager(true);
    p.header_limit(1024 * 1024);
    p.body_limit(boost::none);
    std::size_t offset = 0;
    error_code ec;
    while (!ec && !p.is_done() && offset < bytes.size()) {
        const std::size_t n = p.put(asio::buffer(bytes.data() + offset, bytes.size() - offset), ec);
        if (ec == bhttp::error::need_more) ec = {};
        offset += n;
        if (n == 0) break;
    }
    if (!ec && !p.is_done()) p.put_eof(ec);
    FUZZ_CHECK(!ec && p.is_done(), bytes);
    FUZZ_CHECK(offset == bytes.size(), bytes);  // nothing left over: not a second request

    const auto& m = p.get();
    FUZZ_CHECK(m.method_string() == method, bytes);
    FUZZ_CHECK(m.target() == client.target(), bytes);
    FUZZ_CHECK(m.body() == body, bytes);
    FUZZ_CHECK(m.version() == 11, bytes);
    FUZZ_CHECK(m.count(bhttp::field::transfer_encoding) == 0, bytes);
    FUZZ_CHECK(m.count(bhttp::field::connection) == 0, bytes);
    FUZZ_CHECK(p.keep_alive(), bytes);
    FUZZ_CHECK(!p.chunked(), bytes);
    if (!body.empty()) FUZZ_CHECK(p.content_length() && *p.content_length() == body.size(), bytes);
    FUZZ_CHECK(m.count(bhttp::field::content_length) <= 1, bytes);

    // Exactly one Host: the client's when it sent one.
    FUZZ_CHECK(m.count(bhttp::field::host) == 1, bytes);
    if (client.count(bhttp::field::host) == 1) FUZZ_CHECK(m[bhttp::field::host] == client[bhttp::field::host], bytes);

    // Nothing the client's Connection named (the proxy's own forwarding fields aside).
    for (const auto& f : client) {
        if (f.name() != bhttp::field::connection) continue;
        for (auto tok : bhttp::opt_token_list{f.value()}) {
            if (proxy_written(tok)) continue;
            for (const auto& g : m) FUZZ_CHECK(!beast::iequals(g.name_string(), tok), bytes);
        }
    }

    // What we send, we would accept ourselves.
    bool bare_lf = false;
    const std::size_t end = http::find_header_end(bytes, bare_lf);
    FUZZ_CHECK(!bare_lf && end != 0, bytes);
    FUZZ_CHECK(!http::scan_raw_header(bytes.substr(0, end)), bytes);
    bool expect = false;
    const auto verdict = http::check_request(m.base(), expect);
    FUZZ_CHECK(!verdict, verdict.reason);
    FUZZ_CHECK(!expect);
    FUZZ_CHECK(m.count(bhttp::field::expect) == 0, bytes);

#if CACHEPROXY_FUZZ_HAVE_UPSTREAM_HEAD
    // upstream_head.hpp: no look-alike of a protected field ('_' for '-').
    for (const auto& g : m) FUZZ_CHECK(!http::lookalike_name(g.name_string(), world().identity_header), bytes);
#endif
    (void)input;
}

void check_fill(const Header& client, const rules::RouteRule& rule, std::string_view bytes, std::string_view input) {
    check_upstream(client, bytes, "GET", {}, input);
    bhttp::request_parser<bhttp::string_body> p;
    error_code ec;
    p.put(asio::buffer(bytes.data(), bytes.size()), ec);
    const auto& m = p.get();
    for (auto f : {bhttp::field::range, bhttp::field::if_range, bhttp::field::if_none_match,
                   bhttp::field::if_modified_since, bhttp::field::if_match, bhttp::field::if_unmodified_since,
                   bhttp::field::accept_encoding, bhttp::field::cache_control, bhttp::field::pragma,
                   bhttp::field::content_length})
        FUZZ_CHECK(m.count(f) == 0, bytes);
    if (rule.shared) {
        FUZZ_CHECK(m.count(bhttp::field::authorization) == 0 && m.count(bhttp::field::cookie) == 0, bytes);
        const auto& id = world().cfg.rules.identity;
        if (id.kind == rules::IdentitySource::Kind::header) FUZZ_CHECK(m.count(id.name) == 0, bytes);
    }
}

// ---------------------------------------------------------------------------
// The session's steps.
// ---------------------------------------------------------------------------

/// Reads the rest of the body through the parser, as read_chunked_body() /
/// read_body_piece() do (a 32 KiB piece buffer). False when the body is bad,
/// cut, over the limit, or (chunked) carries trailers: the session then
/// answers 4xx and closes, and no complete request reached the upstream.
bool read_body(RequestParser& parser, SegmentedStream& net, beast::flat_buffer& buffer, std::string& body) {
    static char piece[32 * 1024];
    auto& req = parser.get();
    const auto fields_before = static_cast<std::size_t>(std::distance(req.begin(), req.end()));
    while (!parser.is_done()) {
        auto& b = req.body();
        b.data = piece;
        b.size = sizeof piece;
        error_code ec;
        bhttp::read_some(net, buffer, parser, ec);
        if (ec == bhttp::error::need_buffer) ec = {};
        if (ec) return false;
        body.append(piece, sizeof piece - b.size);
    }
    if (parser.chunked() && static_cast<std::size_t>(std::distance(req.begin(), req.end())) != fields_before)
        return false;  // trailers_not_allowed
    return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    World& w = world();
    const auto& lim = w.cfg.limits;
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    fuzz::Splitter split(fuzz::hash_bytes(in));
    SegmentedStream net(in, split);
    beast::flat_buffer buffer;
    http::RequestArena arena;  // before the parser: it outlives its fields
    std::optional<RequestParser> parser;

    for (int request = 0; request < 8; ++request) {
        // --- read_header(): the raw header section, bounded ---
        std::size_t end = 0;
        bool closed = false;
        for (;;) {
            const std::string_view have(static_cast<const char*>(buffer.data().data()), buffer.size());
            bool bare_lf = false;
            end = http::find_header_end(have.substr(0, std::min(have.size(), lim.max_header_bytes)), bare_lf);
            if (bare_lf) return 0;  // 400
            if (end != 0) break;
            if (buffer.size() >= lim.max_header_bytes) return 0;  // 431
            const auto want = std::min<std::size_t>(8192, lim.max_header_bytes - buffer.size() + 4);
            error_code ec;
            const std::size_t n = net.read_some(buffer.prepare(want), ec);
            buffer.commit(n);
            if (ec) {
                closed = true;
                break;
            }
        }
        if (closed) return 0;
        FUZZ_CHECK(end <= lim.max_header_bytes);
        const std::string_view section(static_cast<const char*>(buffer.data().data()), end);
        if (http::scan_raw_header(section)) return 0;  // 400

        parser.reset();  // the last request's fields go back to the arena first
        parser.emplace(std::piecewise_construct, std::make_tuple(), std::make_tuple(http::ArenaAllocator<char>(&arena)));
        parser->eager(false);
        parser->header_limit(static_cast<std::uint32_t>(lim.max_header_bytes + 4));
        parser->body_limit(lim.max_body_bytes);
        static ChunkExtensionLimit chunk_ext_limit{lim.max_chunk_extension_bytes};  // held by reference, as the session's member
        parser->on_chunk_header(chunk_ext_limit);
        error_code ec;
        const std::size_t used = parser->put(asio::buffer(section.data(), section.size()), ec);
        if (ec == bhttp::error::body_limit) return 0;           // 413
        if (ec || !parser->is_header_done()) return 0;          // 400
        FUZZ_CHECK(used == section.size(), section);  // Beast's header is the one the raw scan found
        buffer.consume(used);
        bool expect_continue = false;
#if CACHEPROXY_FUZZ_HAVE_UPSTREAM_HEAD
        if (http::check_request(parser->get(), expect_continue, w.identity_header)) return 0;  // 4xx
#else
        if (http::check_request(parser->get(), expect_continue)) return 0;  // 4xx
#endif
        const Header& req = parser->get().base();
        // Accepted: the framing is one of exactly three kinds.
        FUZZ_CHECK(req.count(bhttp::field::transfer_encoding) + req.count(bhttp::field::content_length) <= 1);
        if (parser->chunked()) FUZZ_CHECK(req.version() == 11);

        // --- handle_request(): which path ---
        const rules::RouteRule* rule = w.matcher->match(req.method_string(), req.target());
        const rules::TriggerRule* trigger = nullptr;
        if (!rule && !w.triggers->triggers().empty() && req.method() != bhttp::verb::get &&
            req.method() != bhttp::verb::head) {
            const std::string write_target = invalidation::normalize_write_target(req.target());
            trigger = w.triggers->match(req.method_string(), write_target);
        }

        bool forwarded = true;
        if (rule) {
            // serve_cached(): a key, or BYPASS -> forward.
            const cache::BeastHeaderView headers(req);
            const auto credential = cache::extract_identity(w.cfg.rules.identity, headers, req.target());
            bool length_or_range = false;
            for (const auto& f : req)
                if (f.name() == bhttp::field::content_length || f.name() == bhttp::field::range) length_or_range = true;
            std::optional<cache::CacheKey> key;
            if (!(cache::per_user(*rule) && !credential) && parser->is_done() && !length_or_range) {
                const auto index = w.matcher->index_of(rule);
                key = cache::build_key(*rule, index, req.target(), credential, *w.hasher, headers);
                const auto again = cache::build_key(*rule, index, req.target(), credential, *w.hasher, headers);
                FUZZ_CHECK(key.has_value() == again.has_value());
                if (key) FUZZ_CHECK(key->bytes == again->bytes && key->canonical_values == again->canonical_values);
                if (key && cache::per_user(*rule) && !key->canonical_values) key.reset();
            }
            if (key) {
                // A hit sends nothing; a miss (or a refresh) sends this fill.
                check_fill(req, *rule, upstream_bytes_fill(req, *rule), in);
                forwarded = false;
            }
        } else if (trigger) {
            // serve_write(): a body larger than the rule reads streams through forward().
            const auto declared = parser->content_length();
            if (parser->chunked() || !declared || *declared <= trigger->max_body_bytes) {
                std::string body;
                if (!read_body(*parser, net, buffer, body)) return 0;  // 4xx, closed
                const bool has_body = !body.empty() || declared.has_value() || parser->chunked();
                check_upstream(req, upstream_bytes_write(req, has_body, body), req.method_string(), body, in);
                forwarded = false;
            }
        }
        if (forwarded) {
            // forward(): the body through the same parser; Content-Length from the parse.
            std::string body;
            std::optional<std::uint64_t> body_length;
            if (parser->chunked()) {
                if (!read_body(*parser, net, buffer, body)) return 0;
                body_length = body.size();
            } else if (const auto declared = parser->content_length()) {
                body_length = *declared;
                if (!read_body(*parser, net, buffer, body)) return 0;  // cut: the upstream connection is dropped
                FUZZ_CHECK(body.size() == *declared);
            }
            check_upstream(req, upstream_bytes_forward(req, parser->chunked(), body_length, body), req.method_string(),
                           body, in);
        }
        if (!parser->is_done()) return 0;
        if (!parser->keep_alive()) return 0;
    }
    return 0;
}
