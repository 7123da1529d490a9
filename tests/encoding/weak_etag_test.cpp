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
    EXPECT_EQ(weaken_etag("abc"), "");
    EXPECT_EQ(weaken_etag("\"abc"), "");
    EXPECT_EQ(weaken_etag("w/\"abc\""), "");  // the weak prefix is case-sensitive
    EXPECT_EQ(weaken_etag("W/abc"), "");
    EXPECT_EQ(weaken_etag("\"a\"b\""), "");   // DQUOTE is not an etagc
    EXPECT_EQ(weaken_etag("\"a b\""), "");    // nor is SP
    EXPECT_EQ(weaken_etag("\"a\", \"b\""), "");
    EXPECT_FALSE(is_weak_etag("W/"));
}
