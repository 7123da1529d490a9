#include "cache/stored_head.hpp"

#include "cache/header_list.hpp"

#include <gtest/gtest.h>

namespace cacheproxy::cache {
namespace {

TEST(StoredHeadTest, KeepsEndToEndFieldsDropsTheRest) {
    const HeaderList fields{
        {"Content-Type", "application/json"},
        {"Content-Length", "42"},
        {"Connection", "keep-alive, X-Hop"},
        {"X-Hop", "secret-hop"},
        {"Keep-Alive", "timeout=5"},
        {"Transfer-Encoding", "chunked"},
        {"Date", "Mon, 01 Jan 2024 00:00:00 GMT"},
        {"Age", "3"},
        {"Set-Cookie", "sid=1"},
        {"X-Cache", "HIT"},
        {"Cache-Status", "upstream; hit"},
        {"Proxy-Authenticate", "Basic"},
        {"Content-Encoding", "identity"},
        {"ETag", "\"v1\""},
        {"X-Request-Id", "abc"},
    };
    const std::string head = build_stored_head(200, "OK", fields.fields());
    EXPECT_EQ(head,
              "HTTP/1.1 200 OK\r\n"
              "Content-Type: application/json\r\n"
              "ETag: \"v1\"\r\n"
              "X-Request-Id: abc\r\n");
}

TEST(StoredHeadTest, ReasonFallbackAndUnsafeBytes) {
    const HeaderList fields{{"X-Bad", "a\r\nSet-Cookie: x=1"}, {"X-Good", "b"}};
    EXPECT_EQ(build_stored_head(200, "", fields.fields()), "HTTP/1.1 200 OK\r\nX-Good: b\r\n");
    EXPECT_EQ(build_stored_head(203, "x\r\ny", {}), "HTTP/1.1 203 Non-Authoritative Information\r\n");
}

TEST(StoredHeadTest, NoDateIsStoredWhateverItsCase) {
    // Every answer from the entry gets the Date of its own second (Downstream::write_entry).
    const HeaderList fields{{"date", "Mon, 01 Jan 2024 00:00:00 GMT"}, {"X-A", "1"}, {"DATE", "x"}, {"Date", ""}};
    EXPECT_EQ(build_stored_head(200, "OK", fields.fields()), "HTTP/1.1 200 OK\r\nX-A: 1\r\n");
}

TEST(StoredHeadTest, NeverStoredNames) {
    for (const char* n : {"age", "DATE", "Connection", "keep-alive", "Transfer-Encoding", "set-cookie", "X-Cache",
                          "cache-status", "proxy-connection", "Proxy-Authorization"})
        EXPECT_TRUE(never_stored(n)) << n;
    EXPECT_FALSE(never_stored("content-type"));
    EXPECT_FALSE(never_stored("proxy"));
}

}  // namespace
}  // namespace cacheproxy::cache
