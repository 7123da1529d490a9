#include "session/cache_fill.hpp"

#include <gtest/gtest.h>

#include <string>

namespace cacheproxy::session {
namespace {

rules::RouteRule route() {
    rules::RouteRule r;
    r.name = "positions";
    r.path = "/api/trading/positions";
    r.key.identity = true;
    return r;
}

TEST(CacheFillTest, AFillRequestIsAGetWithoutWhatTheKeyDoesNotSay) {
    http::RequestHeader client;
    client.method(boost::beast::http::verb::head);
    client.target("/api/trading/positions?exchange=bybit");
    client.set(boost::beast::http::field::host, "app");
    client.set(boost::beast::http::field::authorization, "Bearer a");
    client.set(boost::beast::http::field::range, "bytes=0-3");
    client.set(boost::beast::http::field::if_none_match, "\"x\"");
    client.set(boost::beast::http::field::accept_encoding, "gzip");
    auto r = route();
    auto fill = make_fill_request(client, r, {}, "127.0.0.1", "app:1");
    EXPECT_EQ(fill->head.rfind("GET /api/trading/positions?exchange=bybit HTTP/1.1\r\n", 0), 0u) << fill->head;
    for (auto gone : {"Range", "If-None-Match", "Accept-Encoding"})
        EXPECT_EQ(fill->head.find(gone), std::string::npos) << gone;
    EXPECT_NE(fill->head.find("Authorization: Bearer a"), std::string::npos);
    r.shared = true;
    r.key.identity = false;
    fill = make_fill_request(client, r, {}, "127.0.0.1", "app:1");
    EXPECT_EQ(fill->head.find("Authorization"), std::string::npos) << "a shared entry is fetched anonymously";
}

}  // namespace
}  // namespace cacheproxy::session
