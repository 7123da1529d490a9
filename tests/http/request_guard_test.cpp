#include "http/request_guard.hpp"

#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <gtest/gtest.h>

#include <string>

namespace bhttp = boost::beast::http;
using cacheproxy::http::check_request;
using cacheproxy::http::find_header_end;
using cacheproxy::http::scan_raw_header;

namespace {

/// Parses a header section with Beast; returns the parse error (if any) and the verdict.
struct Parsed {
    boost::system::error_code parse_ec;
    unsigned status = 0;
};

Parsed parse_and_check(const std::string& raw) {
    cacheproxy::http::RequestParserOf<bhttp::empty_body> p;
    p.eager(false);
    Parsed out;
    p.put(boost::asio::buffer(raw), out.parse_ec);
    if (out.parse_ec) return out;
    bool expect_continue = false;
    out.status = check_request(p.get(), expect_continue).status;
    return out;
}

/// The proxy refuses it: Beast failed to parse it, or our checks say 4xx.
bool refused(const std::string& raw) {
    const auto raw_verdict = scan_raw_header(raw);
    if (raw_verdict) return true;
    auto r = parse_and_check(raw);
    return r.parse_ec || r.status >= 400;
}

}  // namespace

TEST(RequestGuard, AcceptsPlainRequests) {
    EXPECT_FALSE(refused("GET /api/trading/balance?exchange=bybit HTTP/1.1\r\nHost: x\r\n\r\n"));
    EXPECT_FALSE(refused("POST /api/trading/order HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n"));
    EXPECT_FALSE(refused("POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"));
    EXPECT_FALSE(refused("GET / HTTP/1.0\r\n\r\n"));
    EXPECT_FALSE(refused("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n"));
    EXPECT_FALSE(refused("GET / HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, x-custom\r\n\r\n"));
    EXPECT_FALSE(refused("POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n"));
}

TEST(RequestGuard, RefusesAmbiguousTransferEncoding) {
    EXPECT_TRUE(refused("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n"));
    EXPECT_TRUE(refused("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n"));
    EXPECT_TRUE(refused("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n"));
    EXPECT_TRUE(refused("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"));
    EXPECT_TRUE(refused(
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"));
    EXPECT_TRUE(refused("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n"));
}

TEST(RequestGuard, RefusesTransferEncodingWithContentLengthInEitherOrder) {
    EXPECT_TRUE(refused("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"));
    EXPECT_TRUE(refused("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"));
}

TEST(RequestGuard, RefusesListOrDuplicateContentLength) {
    EXPECT_TRUE(refused("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5, 5\r\n\r\n"));
    EXPECT_TRUE(refused("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n"));
    EXPECT_TRUE(refused("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\n"));
}

TEST(RequestGuard, RefusesHostProblems) {
    EXPECT_TRUE(refused("GET / HTTP/1.1\r\n\r\n"));
    EXPECT_TRUE(refused("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"));
    EXPECT_TRUE(refused("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"));
    EXPECT_TRUE(refused("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"));
}

TEST(RequestGuard, RefusesBadTargets) {
    EXPECT_TRUE(refused("GET /a#frag HTTP/1.1\r\nHost: x\r\n\r\n"));
    EXPECT_TRUE(refused("GET /caf\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n"));
    EXPECT_TRUE(refused("GET http://other/ HTTP/1.1\r\nHost: x\r\n\r\n"));
    EXPECT_TRUE(refused("GET * HTTP/1.1\r\nHost: x\r\n\r\n"));
}

TEST(RequestGuard, RefusesObsFoldAndControlBytes) {
    EXPECT_TRUE(refused("GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n  folded\r\n\r\n"));
    EXPECT_TRUE(refused("GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n\tfolded\r\n\r\n"));
    EXPECT_TRUE(refused(std::string("GET / HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n", 38)));
}

TEST(RequestGuard, ScanFindsAControlByteAtEveryOffsetOfALongField) {
    // The field scan tests 8 bytes at a time: a control byte or DEL must be
    // caught wherever it falls in a word, and bytes >= 0x80 (obs-text) and HTAB
    // must pass.
    const std::string head = "GET / HTTP/1.1\r\nHost: x\r\nX-Long: ";
    const std::string tail = "\r\n\r\n";
    const std::string plain(40, 'v');
    EXPECT_FALSE(scan_raw_header(head + plain + tail));
    EXPECT_FALSE(scan_raw_header(head + std::string(17, '\xe9') + "\tx" + plain + tail));
    for (const char bad : {'\0', '\x01', '\x1f', '\x7f', '\n', '\r'}) {
        for (std::size_t at = 0; at < plain.size(); ++at) {
            std::string value = plain;
            value[at] = bad;
            EXPECT_TRUE(scan_raw_header(head + value + tail)) << "byte " << int(bad) << " at " << at;
        }
    }
    EXPECT_TRUE(scan_raw_header("GET / HTTP/1.1\r\nHost: x\r\nX-A: abcdefghijkl"));  // no CRLF at all
    EXPECT_TRUE(scan_raw_header("GET / HTTP/1.1\r\nHost: x\r\nX-A: abcdefghijkl\r"));
    EXPECT_FALSE(scan_raw_header("GET / HTTP/1.1\r\nHost: x\r\nX-A: abcdefghijkl\r\n"));
}

TEST(RequestGuard, RefusesConnectionNamingEndToEndFields) {
    for (const char* f : {"Host", "Content-Length", "Authorization", "close, host"}) {
        EXPECT_TRUE(refused(std::string("GET / HTTP/1.1\r\nHost: x\r\nConnection: ") + f + "\r\n\r\n")) << f;
    }
}

TEST(RequestGuard, StatusesForMethodsAndExpect) {
    EXPECT_EQ(parse_and_check("TRACE / HTTP/1.1\r\nHost: x\r\n\r\n").status, 405u);
    EXPECT_EQ(parse_and_check("CONNECT a:443 HTTP/1.1\r\nHost: x\r\n\r\n").status, 405u);
    EXPECT_EQ(parse_and_check("POST / HTTP/1.1\r\nHost: x\r\nExpect: magic\r\nContent-Length: 1\r\n\r\n").status,
              417u);
}

TEST(RequestGuard, AcceptedVerdictSaysWhetherTheClientAwaits100Continue) {
    // Starts true: check_request must clear it as well as set it.
    auto awaits_continue = [](const std::string& raw) {
        cacheproxy::http::RequestParserOf<bhttp::empty_body> p;
        p.eager(false);
        boost::system::error_code ec;
        p.put(boost::asio::buffer(raw), ec);
        EXPECT_FALSE(ec) << raw;
        bool expect_continue = true;
        EXPECT_FALSE(check_request(p.get(), expect_continue)) << raw;
        return expect_continue;
    };
    EXPECT_TRUE(awaits_continue("POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-Continue \r\nContent-Length: 1\r\n\r\n"));
    EXPECT_FALSE(awaits_continue("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n"));
    // HTTP/1.0 has no interim responses: the field is ignored, never answered.
    EXPECT_FALSE(awaits_continue("POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n"));
}

TEST(RequestGuard, FindHeaderEnd) {
    bool bad = false;
    EXPECT_EQ(find_header_end("GET / HTTP/1.1\r\nHost: x\r\n\r\nrest", bad), 27u);
    EXPECT_FALSE(bad);
    EXPECT_EQ(find_header_end("GET / HTTP/1.1\r\nHost: x\r\n", bad), 0u);
    EXPECT_FALSE(bad);
    EXPECT_EQ(find_header_end("GET / HTTP/1.1\nHost: x\n\n", bad), 0u);
    EXPECT_TRUE(bad);
}

TEST(RequestGuard, ConnectionAndProxyConnectionMayNotNameFramingOrIdentity) {
    for (std::string field : {"Connection", "Proxy-Connection"}) {
        for (std::string named : {"Content-Length", "transfer-encoding", "Host", "Authorization", "Cookie",
                                  "keep-alive, content-length"}) {
            const std::string raw = "POST /o HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n" + field + ": " + named +
                                    "\r\n\r\n";
            EXPECT_EQ(parse_and_check(raw).status, 400u) << raw;
        }
    }
    // The identity header, when identity is a header of another name.
    cacheproxy::http::RequestParserOf<bhttp::empty_body> p;
    p.eager(false);
    boost::system::error_code ec;
    const std::string raw = "GET / HTTP/1.1\r\nHost: h\r\nConnection: X-User-Token\r\nX-User-Token: t\r\n\r\n";
    p.put(boost::asio::buffer(raw), ec);
    ASSERT_FALSE(ec);
    bool expect_continue = false;
    EXPECT_EQ(check_request(p.get(), expect_continue, "X-User-Token").status, 400u);
    EXPECT_EQ(check_request(p.get(), expect_continue).status, 0u);  // no such identity: an ordinary hop-by-hop name
    // Harmless tokens pass.
    EXPECT_EQ(parse_and_check("GET / HTTP/1.1\r\nHost: h\r\nProxy-Connection: keep-alive\r\n\r\n").status, 0u);
    EXPECT_EQ(parse_and_check("GET / HTTP/1.1\r\nHost: h\r\nConnection: close, X-Hop\r\n\r\n").status, 0u);
}

TEST(RequestGuard, AResponseMayNotNominateItsOwnFraming) {
    auto response = [](const std::string& raw) {
        bhttp::response_parser<bhttp::empty_body> p;
        p.eager(false);
        boost::system::error_code ec;
        p.put(boost::asio::buffer(raw), ec);
        EXPECT_FALSE(ec) << ec.message();
        return cacheproxy::http::check_response(p.get());
    };
    EXPECT_FALSE(response("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: Content-Length\r\n\r\n"));
    EXPECT_FALSE(response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close, transfer-encoding\r\n\r\n"));
    EXPECT_FALSE(response("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nProxy-Connection: Content-Length\r\n\r\n"));
    EXPECT_TRUE(response("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive, X-Hop\r\n\r\n"));
}
