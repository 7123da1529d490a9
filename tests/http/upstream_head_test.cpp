#include "http/upstream_head.hpp"

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace bhttp = boost::beast::http;
using namespace cacheproxy::http;

namespace {

/// The client's header as the session holds it after the strict parse.
RequestHeader parse(const std::string& raw) {
    cacheproxy::http::RequestParserOf<bhttp::empty_body> p;
    p.eager(false);
    boost::system::error_code ec;
    p.put(boost::asio::buffer(raw), ec);
    EXPECT_FALSE(ec) << ec.message();
    return p.get().base();
}

/// What the upstream reads back: one request, whole, with nothing left over.
struct Seen {
    bhttp::request<bhttp::string_body> req;
    std::size_t used = 0;
};

Seen reparse(const std::string& wire) {
    bhttp::request_parser<bhttp::string_body> p;
    p.eager(true);
    boost::system::error_code ec;
    Seen s;
    s.used = p.put(boost::asio::buffer(wire), ec);
    EXPECT_FALSE(ec) << ec.message() << "\n" << wire;
    EXPECT_TRUE(p.is_done()) << wire;
    s.req = p.release();
    return s;
}

std::string head_of(const std::string& raw, std::optional<std::uint64_t> body_length = std::nullopt,
                    ForwardContext ctx = {.peer_ip = "10.1.2.3", .upstream_authority = "app:8765"}) {
    const auto req = parse(raw);
    std::string out;
    append_upstream_head(req, ctx, body_length, out);
    return out;
}

}  // namespace

TEST(UpstreamHead, KeepsEndToEndFieldsAndWritesForwardingHeaders) {
    const auto head = head_of("GET /a?b=1 HTTP/1.1\r\nHost: example\r\nAccept: */*\r\nX-Forwarded-For: 6.6.6.6\r\n"
                              "X-Forwarded-Proto: https\r\nVia: 1.1 edge\r\n\r\n");
    const auto s = reparse(head);
    EXPECT_EQ(s.used, head.size());
    EXPECT_EQ(s.req.method(), bhttp::verb::get);
    EXPECT_EQ(s.req.target(), "/a?b=1");
    EXPECT_EQ(s.req.version(), 11u);
    EXPECT_EQ(s.req[bhttp::field::host], "example");
    EXPECT_EQ(s.req[bhttp::field::accept], "*/*");
    EXPECT_EQ(s.req.count("X-Forwarded-For"), 1u);
    EXPECT_EQ(s.req["X-Forwarded-For"], "10.1.2.3");  // the real peer, never the client's claim
    EXPECT_EQ(s.req["X-Forwarded-Proto"], "http");
    EXPECT_EQ(s.req[bhttp::field::via], "1.1 edge, 1.1 cacheproxy");
    EXPECT_EQ(s.req.count(bhttp::field::content_length), 0u);
}

TEST(UpstreamHead, DropsHopByHopAndWhatConnectionNames) {
    const auto head = head_of("GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\n"
                              "Keep-Alive: timeout=5\r\nTE: trailers\r\nUpgrade: websocket\r\n"
                              "Proxy-Authorization: Basic x\r\nProxy-Connection: keep-alive\r\nX-End: 2\r\n\r\n");
    const auto s = reparse(head);
    for (auto name : {"Connection", "X-Hop", "Keep-Alive", "TE", "Upgrade", "Proxy-Authorization", "Proxy-Connection"})
        EXPECT_EQ(s.req.count(name), 0u) << name;
    EXPECT_EQ(s.req["X-End"], "2");
}

TEST(UpstreamHead, ProxyConnectionIsNeverReadAsAListOfNames) {
    // The smuggling form: Proxy-Connection naming Content-Length must not
    // remove the framing (check_request refuses it first; this is the second wall).
    const auto head = head_of("POST /o HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nProxy-Connection: Content-Length\r\n"
                              "X-Keep: 1\r\n\r\n",
                              5);
    const auto s = reparse(head + "hello");
    EXPECT_EQ(s.req[bhttp::field::content_length], "5");
    EXPECT_EQ(s.req.body(), "hello");
    EXPECT_EQ(s.req["X-Keep"], "1");
}

TEST(UpstreamHead, FramingIsWrittenFromTheParseCanonical) {
    // "010" goes on as 10; a chunked body goes on as its Content-Length.
    const auto head = head_of("POST /o HTTP/1.1\r\nHost: h\r\nContent-Length: 010\r\n\r\n", 10);
    EXPECT_NE(head.find("\r\nContent-Length: 10\r\n"), std::string::npos) << head;
    EXPECT_EQ(head.find("010"), std::string::npos) << head;
    const auto chunked = head_of("POST /o HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n", 7);
    const auto s = reparse(chunked + "1234567");
    EXPECT_EQ(s.req.count(bhttp::field::transfer_encoding), 0u);
    EXPECT_EQ(s.req.body(), "1234567");
}

TEST(UpstreamHead, LookAlikeFramingAndIdentityNamesAreDropped) {
    const auto head = head_of("POST /o HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nContent_Length: 50\r\n"
                              "Transfer_Encoding: chunked\r\nX_Forwarded_For: 1.1.1.1\r\nX_User_Token: b\r\n"
                              "X_Other: keep\r\n\r\n",
                              2, {.peer_ip = "1.2.3.4", .upstream_authority = "a:1", .identity_header = "X-User-Token"});
    for (auto name : {"Content_Length", "Transfer_Encoding", "X_Forwarded_For", "X_User_Token"})
        EXPECT_EQ(head.find(name), std::string::npos) << name << "\n" << head;
    EXPECT_NE(head.find("X_Other: keep"), std::string::npos) << head;
    EXPECT_TRUE(lookalike_name("content_LENGTH", ""));
    EXPECT_TRUE(lookalike_name("x_user_token", "X-User-Token"));
    EXPECT_FALSE(lookalike_name("Content-Length", ""));  // the real one is framing, handled elsewhere
    EXPECT_FALSE(lookalike_name("X_Other", "X-User-Token"));
}

TEST(UpstreamHead, ExpectAndCallerListedFieldsAreDropped) {
    const std::vector<std::string_view> drop = {"range", "authorization"};
    const auto head = head_of("GET /t HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nRange: bytes=0-1\r\n"
                              "Authorization: Bearer x\r\nAccept: a\r\n\r\n",
                              std::nullopt,
                              {.peer_ip = "p", .upstream_authority = "a:1", .drop = drop, .method = "GET"});
    const auto s = reparse(head);
    EXPECT_EQ(s.req.count(bhttp::field::expect), 0u);
    EXPECT_EQ(s.req.count(bhttp::field::range), 0u);
    EXPECT_EQ(s.req.count(bhttp::field::authorization), 0u);
    EXPECT_EQ(s.req[bhttp::field::accept], "a");
}

TEST(UpstreamHead, Http10WithoutHostGetsTheUpstreamAuthorityAndGoesAsHttp11) {
    const auto head = head_of("GET /x HTTP/1.0\r\nAccept: a\r\n\r\n");
    const auto s = reparse(head);
    EXPECT_EQ(s.req.version(), 11u);
    EXPECT_EQ(s.req[bhttp::field::host], "app:8765");
    EXPECT_EQ(s.req[bhttp::field::via], "1.0 cacheproxy");
}

TEST(UpstreamHead, AMethodOverrideSendsAGet) {
    const auto head = head_of("HEAD /x HTTP/1.1\r\nHost: h\r\n\r\n", std::nullopt,
                              {.peer_ip = "p", .upstream_authority = "a:1", .method = "GET"});
    EXPECT_EQ(head.rfind("GET /x HTTP/1.1\r\n", 0), 0u) << head;
}

// ------------------------------------------------------------------ trusted fronts (server.trusted_proxies)

namespace {

/// The head as sent for a request from `peer`, trusted or not.
Seen forwarded_from(const std::string& raw, bool trusted, std::string_view peer = "127.0.0.1") {
    return reparse(head_of(raw, std::nullopt,
                           {.peer_ip = peer, .upstream_authority = "app:8765", .trusted_peer = trusted}));
}

std::vector<std::string> values_of(const Seen& s, std::string_view name) {
    std::vector<std::string> out;
    for (const auto& f : s.req)
        if (boost::beast::iequals(f.name_string(), name)) out.emplace_back(f.value());
    return out;
}

}  // namespace

TEST(UpstreamHead, FromATrustedPeerXForwardedForIsAppendedTo) {
    const auto s = forwarded_from("GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 203.0.113.9\r\n\r\n", true);
    EXPECT_EQ(values_of(s, "X-Forwarded-For"), std::vector<std::string>{"203.0.113.9, 127.0.0.1"});
    // Several fields (and lists in them) are one list, in order (RFC 9110 5.3).
    const auto many = forwarded_from("GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 198.51.100.1, 10.0.0.2\r\n"
                                     "Accept: a\r\nx-forwarded-for: 203.0.113.9\r\n\r\n",
                                     true, "::1");
    EXPECT_EQ(values_of(many, "X-Forwarded-For"),
              std::vector<std::string>{"198.51.100.1, 10.0.0.2, 203.0.113.9, ::1"});
    // None sent: the peer alone, as from anyone.
    const auto none = forwarded_from("GET / HTTP/1.1\r\nHost: h\r\n\r\n", true);
    EXPECT_EQ(values_of(none, "X-Forwarded-For"), std::vector<std::string>{"127.0.0.1"});
    // An empty one adds no empty element.
    const auto empty = forwarded_from("GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For:\r\n\r\n", true);
    EXPECT_EQ(values_of(empty, "X-Forwarded-For"), std::vector<std::string>{"127.0.0.1"});
}

TEST(UpstreamHead, FromATrustedPeerProtoAndHostAreKeptAsSent) {
    const auto s = forwarded_from("GET / HTTP/1.1\r\nHost: app.internal\r\nX-Forwarded-Proto: https\r\n"
                                  "X-Forwarded-Host: shop.example\r\n\r\n",
                                  true);
    EXPECT_EQ(values_of(s, "X-Forwarded-Proto"), std::vector<std::string>{"https"});
    EXPECT_EQ(values_of(s, "X-Forwarded-Host"), std::vector<std::string>{"shop.example"});
    EXPECT_EQ(s.req[bhttp::field::host], "app.internal");
    // Absent: the proto is written as for anyone ("http"); no host is made up.
    const auto absent = forwarded_from("GET / HTTP/1.1\r\nHost: h\r\n\r\n", true);
    EXPECT_EQ(values_of(absent, "X-Forwarded-Proto"), std::vector<std::string>{"http"});
    EXPECT_TRUE(values_of(absent, "X-Forwarded-Host").empty());
}

TEST(UpstreamHead, FromAnyoneElseTheForwardingFieldsAreOverwritten) {
    const std::string raw = "GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Proto: https\r\n"
                            "X-Forwarded-Host: evil.example\r\n\r\n";
    const auto s = forwarded_from(raw, false, "203.0.113.9");
    EXPECT_EQ(values_of(s, "X-Forwarded-For"), std::vector<std::string>{"203.0.113.9"});
    EXPECT_EQ(values_of(s, "X-Forwarded-Proto"), std::vector<std::string>{"http"});
    EXPECT_TRUE(values_of(s, "X-Forwarded-Host").empty()) << "a client's claim about the host is not passed on";
    // The default context is the untrusted one.
    const ForwardContext plain{.peer_ip = "203.0.113.9", .upstream_authority = "a:1"};
    EXPECT_FALSE(plain.trusted_peer);
    EXPECT_EQ(values_of(reparse(head_of(raw, std::nullopt, plain)), "X-Forwarded-For"),
              std::vector<std::string>{"203.0.113.9"});
}

TEST(UpstreamHead, ATrustedPeerCannotSmuggleForwardingFieldsPastTheChecks) {
    // Look-alikes are dropped whoever sends them; a forwarding field that
    // Connection names is hop-by-hop even from a front (the proto is then ours).
    const auto s = forwarded_from("GET / HTTP/1.1\r\nHost: h\r\nConnection: X-Forwarded-Proto, X-Forwarded-For\r\n"
                                  "X-Forwarded-Proto: https\r\nX-Forwarded-For: 1.1.1.1\r\n"
                                  "X_Forwarded_For: 2.2.2.2\r\nX_Forwarded_Host: evil\r\n\r\n",
                                  true);
    EXPECT_EQ(values_of(s, "X-Forwarded-For"), std::vector<std::string>{"127.0.0.1"});
    EXPECT_EQ(values_of(s, "X-Forwarded-Proto"), std::vector<std::string>{"http"});
    EXPECT_TRUE(values_of(s, "X_Forwarded_For").empty());
    EXPECT_TRUE(values_of(s, "X_Forwarded_Host").empty());
    EXPECT_EQ(s.req.count(bhttp::field::connection), 0u);
}
