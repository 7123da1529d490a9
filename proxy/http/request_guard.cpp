#include "http/request_guard.hpp"

#include "util/ascii.hpp"

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/rfc7230.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>

namespace cacheproxy::http {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

namespace {

constexpr Verdict bad(const char* why) { return Verdict{400, why}; }

/// Bytes never allowed in a header line: controls other than HTAB, and DEL.
constexpr auto kControl = [] {
    std::array<bool, 256> t{};
    for (int c = 0; c < 0x20; ++c) t[c] = c != '\t';
    t[0x7f] = true;
    return t;
}();

bool all_digits(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

/// True when one of the 8 bytes at `p` is below 0x20 or is DEL: word-at-a-time
/// (bytes >= 0x80, obs-text, never match), so a field's plain run costs one test
/// per 8 bytes and only the CR LF at its end takes the byte-wise path.
bool has_control8(const char* p) {
    constexpr std::uint64_t ones = 0x0101010101010101ULL;
    constexpr std::uint64_t highs = 0x8080808080808080ULL;
    std::uint64_t w;
    std::memcpy(&w, p, sizeof w);
    const std::uint64_t below_space = (w - ones * 0x20) & ~w & highs;
    const std::uint64_t x = w ^ (ones * 0x7f);
    const std::uint64_t del = (x - ones) & ~x & highs;
    return (below_space | del) != 0;
}

/// The header lines after the request line, up to the blank line: each ends
/// in CR LF, holds no control byte but HTAB, and none starts with SP or HTAB
/// (obs-fold). One pass.
Verdict scan_fields(const char* p, const char* end) {
    bool line_start = true;
    while (p != end) {
        if (!line_start && end - p >= 8 && !has_control8(p)) {
            p += 8;
            continue;
        }
        const unsigned char c = static_cast<unsigned char>(*p);
        if (line_start) {
            if (c == ' ' || c == '\t') return bad("obs-fold (folded header line)");
            if (c == '\r' && end - p >= 2 && p[1] == '\n') return {};  // the empty line ending the section
            line_start = false;
        }
        if (c == '\r') {
            if (end - p < 2) return bad("unterminated header line");
            if (p[1] != '\n') return bad("control byte in header field");
            p += 2;
            line_start = true;
            continue;
        }
        if (kControl[c]) return bad("control byte in header field");
        ++p;
    }
    return line_start ? Verdict{} : bad("unterminated header line");
}

}  // namespace

std::size_t find_header_end(std::string_view data, bool& bad_ending) {
    bad_ending = false;
    std::size_t i = 0;
    while (i < data.size()) {
        const void* nl = std::memchr(data.data() + i, '\n', data.size() - i);
        if (nl == nullptr) return 0;
        i = static_cast<std::size_t>(static_cast<const char*>(nl) - data.data());
        if (i == 0 || data[i - 1] != '\r') {
            bad_ending = true;
            return 0;
        }
        // "\r\n\r\n": this LF ends an empty line.
        if (i >= 3 && data[i - 2] == '\n' && data[i - 3] == '\r') return i + 1;
        ++i;
    }
    return 0;
}

Verdict scan_raw_header(std::string_view h) {
    // Request line: METHOD SP TARGET SP VERSION CRLF
    const auto eol = h.find("\r\n");
    if (eol == std::string_view::npos) return bad("no request line");
    const auto line = h.substr(0, eol);
    const auto sp1 = line.find(' ');
    const auto sp2 = line.rfind(' ');
    if (sp1 == std::string_view::npos || sp2 == sp1) return bad("malformed request line");
    const auto target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    if (target.empty()) return bad("empty request target");
    for (unsigned char c : target) {
        if (c <= 0x20 || c >= 0x7f) return bad("non-ASCII or control byte in request target");
        if (c == '#') return bad("fragment in request target");
    }
    return scan_fields(h.data() + eol + 2, h.data() + h.size());
}

Verdict vet_connection_tokens(std::string_view value, std::string_view identity_header) {
    const bhttp::opt_token_list tokens{value};
    if (!bhttp::validate_list(tokens)) return bad("malformed Connection");
    for (auto tok : tokens) {
        if (beast::iequals(tok, "host") || beast::iequals(tok, "content-length") ||
            beast::iequals(tok, "authorization") || beast::iequals(tok, "transfer-encoding") ||
            beast::iequals(tok, "cookie") || (!identity_header.empty() && beast::iequals(tok, identity_header)))
            return bad("Connection names an end-to-end field");
    }
    return {};
}

Verdict check_request(const http::RequestHeader& req, bool& expect_continue, std::string_view identity_header) {
    expect_continue = false;
    const unsigned version = req.version();
    if (version != 10 && version != 11) return Verdict{505, "HTTP version not supported"};

    switch (req.method()) {
        case bhttp::verb::connect: return Verdict{405, "CONNECT is not supported"};
        case bhttp::verb::trace: return Verdict{405, "TRACE is not supported"};
        case bhttp::verb::unknown: return Verdict{501, "unknown method"};
        default: break;
    }

    const auto target = req.target();
    const bool origin_form = !target.empty() && target.front() == '/';
    const bool asterisk = target == "*" && req.method() == bhttp::verb::options;
    if (!origin_form && !asterisk) return bad("request target is not in origin form");

    // One walk over the fields (Beast's name index costs a tree descent per
    // lookup): count the framing fields, keep their first values, vet Connection.
    std::size_t hosts = 0, te_count = 0, cl_count = 0, expects = 0;
    beast::string_view host, te, cl, expect;
    for (const auto& f : req) {
        switch (f.name()) {
            case bhttp::field::host: if (hosts++ == 0) host = f.value(); break;
            case bhttp::field::transfer_encoding: if (te_count++ == 0) te = f.value(); break;
            case bhttp::field::content_length: if (cl_count++ == 0) cl = f.value(); break;
            case bhttp::field::expect: if (expects++ == 0) expect = f.value(); break;
            case bhttp::field::connection:
            case bhttp::field::proxy_connection:
                // Neither may name a field the proxy's framing or keying rests
                // on (Proxy-Connection is never read as a list of names, but a
                // server behind us might: refused just the same).
                if (auto v = vet_connection_tokens(f.value(), identity_header)) return v;
                break;
            default: break;
        }
    }

    // Host: exactly one on HTTP/1.1, at most one on HTTP/1.0.
    if (hosts > 1) return bad("duplicate Host");
    if (hosts == 0 && version == 11) return bad("missing Host");
    for (unsigned char c : host) {
        if (c <= 0x20 || c >= 0x7f || c == '/' || c == '@' || c == '\\' || c == ',') return bad("malformed Host");
    }

    // Framing: a single, final "chunked" or a single decimal Content-Length.
    if (te_count > 1) return bad("more than one Transfer-Encoding");
    if (cl_count > 1) return bad("more than one Content-Length");
    if (te_count == 1) {
        if (version == 10) return bad("Transfer-Encoding on HTTP/1.0");
        if (cl_count != 0) return bad("Transfer-Encoding together with Content-Length");
        if (!beast::iequals(util::trim_ows(te), "chunked")) return bad("Transfer-Encoding other than a single chunked");
    }
    if (cl_count == 1 && !all_digits(util::trim_ows(cl))) return bad("Content-Length is not a single decimal number");

    if (expects > 1 || (expects == 1 && !beast::iequals(util::trim_ows(expect), "100-continue")))
        return Verdict{417, "unsupported Expect"};
    expect_continue = expects == 1 && version == 11;
    return {};
}

template <class Fields>
bool check_response(const bhttp::header<false, Fields>& res) {
    for (const auto& f : res) {
        if (f.name() != bhttp::field::connection && f.name() != bhttp::field::proxy_connection) continue;
        for (auto tok : bhttp::opt_token_list{f.value()})
            if (beast::iequals(tok, "content-length") || beast::iequals(tok, "transfer-encoding")) return false;
    }
    return true;
}

template bool check_response(const bhttp::response_header<>&);
template bool check_response(const http::ResponseHeader&);

bool is_idempotent(bhttp::verb method) {
    switch (method) {
        case bhttp::verb::get:
        case bhttp::verb::head:
        case bhttp::verb::options:
        case bhttp::verb::put:
        case bhttp::verb::delete_:
            return true;
        default:
            return false;
    }
}

}  // namespace cacheproxy::http
