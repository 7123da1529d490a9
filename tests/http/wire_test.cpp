#include "http/wire.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/serializer.hpp>
#include <gtest/gtest.h>

#include <string>

namespace bhttp = boost::beast::http;
using cacheproxy::http::append_head;

namespace {

/// What Beast's serializer writes for this message's header.
template <bool isRequest, class Fields>
std::string beast_head(bhttp::message<isRequest, bhttp::empty_body, Fields>& m) {
    bhttp::serializer<isRequest, bhttp::empty_body, Fields> sr{m};
    sr.split(true);
    std::string out;
    boost::system::error_code ec;
    while (!sr.is_header_done()) {
        sr.next(ec, [&](boost::system::error_code&, const auto& buffers) {
            out += boost::beast::buffers_to_string(buffers);
            sr.consume(boost::asio::buffer_size(buffers));
        });
        if (ec) break;
    }
    return out;
}

}  // namespace

TEST(Wire, RequestHeadIsWhatBeastWrites) {
    // A client's request, as the session parses it (its fields type).
    bhttp::request<bhttp::empty_body, cacheproxy::http::Fields> req{bhttp::verb::get, "/api/trading/balance?exchange=bybit&account_type=demo", 11};
    req.set(bhttp::field::host, "127.0.0.1:8765");
    req.set("authorization", "Bearer user1");
    req.insert("X-Custom", "a");
    req.insert("x-custom", "b");  // repeated, other case: kept as given, in order
    req.set(bhttp::field::via, "1.1 cacheproxy");
    std::string mine;
    append_head(req, mine);
    EXPECT_EQ(mine, beast_head(req));
    EXPECT_EQ(mine.substr(0, mine.find("\r\n")), "GET /api/trading/balance?exchange=bybit&account_type=demo HTTP/1.1");

    bhttp::request<bhttp::empty_body, cacheproxy::http::Fields> odd;
    odd.method_string("PURGE");  // an extension method keeps its spelling
    odd.target("*");
    odd.version(10);
    mine.clear();
    append_head(odd, mine);
    EXPECT_EQ(mine, beast_head(odd));
    EXPECT_EQ(mine, "PURGE * HTTP/1.0\r\n\r\n");
}

TEST(Wire, ResponseHeadIsWhatBeastWrites) {
    // A relayed response, as the session parses it (its fields type).
    bhttp::response<bhttp::empty_body, cacheproxy::http::Fields> res{bhttp::status::ok, 11};
    res.set(bhttp::field::content_type, "application/json");
    res.set(bhttp::field::content_length, "143");
    res.set("X-Cache", "MISS");
    std::string mine;
    append_head(res, mine);
    EXPECT_EQ(mine, beast_head(res));
    EXPECT_EQ(mine.substr(0, 17), "HTTP/1.1 200 OK\r\n");

    // An upstream's own phrase is kept; an empty one becomes the standard one;
    // a code Beast does not know keeps its digits.
    for (const auto& [code, reason] : {std::pair{404u, "Nope"}, std::pair{503u, ""}, std::pair{599u, "Custom"},
                                       std::pair{299u, ""}}) {
        bhttp::response<bhttp::empty_body, cacheproxy::http::Fields> r;
        r.result(code);
        r.reason(reason);
        r.version(10);
        mine.clear();
        append_head(r, mine);
        EXPECT_EQ(mine, beast_head(r)) << code;
    }
}
