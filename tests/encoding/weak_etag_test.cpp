#include "encoding/weak_etag.hpp"

#include <gtest/gtest.h>

using namespace cacheproxy::encoding;

TEST(WeakEtag, StrongBecomesWeak) {
    EXPECT_EQ(weaken_etag("\"abc\""), "W/\"abc\"");
    EXPECT_EQ(weaken_etag("\"\""), "W/\"\"");
    EXPECT_EQ(weaken_etag("  \"v1-2\"  "), "W/\"v1-2\"");
}

TEST(WeakEtag, WeakStaysUnchanged) {
    EXPECT_EQ(weaken_etag("W/\"abc\""), "W/\"abc\"");
    EXPECT_EQ(weaken_etag(" W/\"abc\" "), "W/\"abc\"");
    EXPECT_TRUE(is_weak_etag("W/\"abc\""));
    EXPECT_FALSE(is_weak_etag("\"abc\""));
}

TEST(WeakEtag, MalformedIsDropped) {
    EXPECT_EQ(weaken_etag(""), "");
    EXPECT_EQ(weaken_etag("\"abc"), "");
    EXPECT_EQ(weaken_etag("w/\"abc\""), "");  // the weak prefix is case-sensitive
    EXPECT_EQ(weaken_etag("W/abc"), "");      // a weak prefix without its quotes
    EXPECT_EQ(weaken_etag("w/abc"), "");
    EXPECT_EQ(weaken_etag("\"a\"b\""), "");   // DQUOTE is not an etagc
    EXPECT_EQ(weaken_etag("\"a b\""), "");    // nor is SP
    EXPECT_EQ(weaken_etag("\"a\", \"b\""), "");
    EXPECT_FALSE(is_weak_etag("W/"));
}

TEST(WeakEtag, AnUnquotedTagIsQuotedAndWeakened) {
    // Starlette's FileResponse: md5 of mtime and size, then "-", then the size, unquoted.
    EXPECT_EQ(weaken_etag("5d4c2a1b0f9e8d7c6b5a4938271605f4-1234"), "W/\"5d4c2a1b0f9e8d7c6b5a4938271605f4-1234\"");
    EXPECT_EQ(weaken_etag("abc"), "W/\"abc\"");
    EXPECT_EQ(weaken_etag(" abc\t"), "W/\"abc\"");  // surrounding whitespace is not part of it
    EXPECT_EQ(weaken_etag("!#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"), "W/\"!#$%&'()*+,-./:;<=>?@[\\]^_`{|}~\"");
    EXPECT_EQ(weaken_etag("caf\xc3\xa9"), "W/\"caf\xc3\xa9\"");  // obs-text is etagc
    EXPECT_TRUE(is_weak_etag(weaken_etag("abc")));
}

TEST(WeakEtag, AnUnquotedTagWithAnythingButEtagcIsDropped) {
    EXPECT_EQ(weaken_etag("a b"), "");       // whitespace inside
    EXPECT_EQ(weaken_etag("a\tb"), "");
    EXPECT_EQ(weaken_etag("a\"b"), "");      // a DQUOTE inside
    EXPECT_EQ(weaken_etag("abc\""), "");     // or at one end only
    EXPECT_EQ(weaken_etag(std::string_view("a\0b", 3)), "");  // control characters
    EXPECT_EQ(weaken_etag("a\x01" "b"), "");
    EXPECT_EQ(weaken_etag("a\x7f"), "");
    EXPECT_EQ(weaken_etag("a\r\nX-Injected: 1"), "");
    EXPECT_EQ(weaken_etag("   "), "");
}
