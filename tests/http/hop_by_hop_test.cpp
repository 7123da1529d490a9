#include "http/hop_by_hop.hpp"

#include <gtest/gtest.h>

namespace bhttp = boost::beast::http;
using namespace cacheproxy::http;

TEST(HopByHop, StripsConnectionAndTheFieldsItNames) {
    bhttp::fields f;
    f.set(bhttp::field::host, "example");
    f.set(bhttp::field::connection, "keep-alive, X-Secret-Hop");
    f.set("X-Secret-Hop", "1");
    f.set(bhttp::field::keep_alive, "timeout=5");
    f.set(bhttp::field::te, "trailers");
    f.set(bhttp::field::trailer, "X-T");
    f.set(bhttp::field::upgrade, "websocket");
    f.set(bhttp::field::proxy_authorization, "Basic abc");
    f.set("Proxy-Connection", "keep-alive");
    f.set(bhttp::field::transfer_encoding, "chunked");
    f.set(bhttp::field::content_type, "application/json");
    f.set(bhttp::field::content_length, "12");
    strip_hop_by_hop(f);
    for (auto name : {"Connection", "X-Secret-Hop", "Keep-Alive", "TE", "Trailer", "Upgrade", "Proxy-Authorization",
                      "Proxy-Connection", "Transfer-Encoding"}) {
        EXPECT_EQ(f.count(name), 0u) << name;
    }
    EXPECT_EQ(f[bhttp::field::host], "example");
    EXPECT_EQ(f[bhttp::field::content_type], "application/json");
    EXPECT_EQ(f[bhttp::field::content_length], "12");
}

