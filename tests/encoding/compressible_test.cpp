#include "encoding/compressible.hpp"

#include <gtest/gtest.h>

#include <string_view>

using namespace cacheproxy::encoding;

TEST(Compressible, TextLikeTypes) {
    for (std::string_view t :
         {"application/json", "application/problem+json", "application/ld+json", "application/vnd.api+json",
          "application/x-ndjson", "text/plain", "text/html", "text/css", "text/csv", "text/javascript",
          "application/javascript", "application/x-javascript", "application/ecmascript", "application/xml",
          "text/xml", "application/atom+xml", "application/rss+xml", "application/xhtml+xml", "image/svg+xml",
          "application/yaml", "application/wasm", "font/ttf", "font/otf", "image/x-icon"})
        EXPECT_TRUE(compressible_type(t)) << t;
}

TEST(Compressible, ParametersCaseAndWhitespaceIgnored) {
    EXPECT_TRUE(compressible_type("application/json; charset=utf-8"));
    EXPECT_TRUE(compressible_type("application/json;charset=UTF-8"));
    EXPECT_TRUE(compressible_type("Application/JSON"));
    EXPECT_TRUE(compressible_type("  text/html ; charset=iso-8859-1"));
    EXPECT_TRUE(compressible_type("IMAGE/SVG+XML"));
    EXPECT_TRUE(compressible_type("text/plain; format=\"a;b\""));
    EXPECT_FALSE(compressible_type("image/png; charset=utf-8"));
}

TEST(Compressible, BinaryOrAlreadyCompressedTypes) {
    for (std::string_view t :
         {"image/png", "image/jpeg", "image/webp", "image/avif", "image/gif", "font/woff", "font/woff2",
          "video/mp4", "audio/mpeg", "application/octet-stream", "application/zip", "application/gzip",
          "application/pdf", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
          "application/jsonx", "application/json-seq-not", "text/event-stream"})
        EXPECT_FALSE(compressible_type(t)) << t;
}

TEST(Compressible, MalformedTypes) {
    for (std::string_view t : {"", " ", "json", "application/", "/json", "text", ";charset=utf-8",
                               "application/js on", "text/html/extra"})
        EXPECT_FALSE(compressible_type(t)) << "'" << t << "'";
}

TEST(WorthCompressing, MinSizeBoundary) {
    EXPECT_FALSE(worth_compressing("application/json", 999, 1000));
    EXPECT_TRUE(worth_compressing("application/json", 1000, 1000));
    EXPECT_TRUE(worth_compressing("application/json", 1001, 1000));
    EXPECT_FALSE(worth_compressing("application/json", 0, 1000));
    // The default is 1000.
    EXPECT_FALSE(worth_compressing("application/json", 999));
    EXPECT_TRUE(worth_compressing("application/json", 1000));
    EXPECT_EQ(kDefaultMinSize, 1000u);
    // A configured threshold.
    EXPECT_FALSE(worth_compressing("text/css", 4095, 4096));
    EXPECT_TRUE(worth_compressing("text/css", 4096, 4096));
    EXPECT_TRUE(worth_compressing("text/css", 0, 0));
}

TEST(WorthCompressing, TypeFilterAppliesAtAnySize) {
    EXPECT_FALSE(worth_compressing("image/png", 1'000'000, 1000));
    EXPECT_FALSE(worth_compressing("", 1'000'000, 1000));
    EXPECT_TRUE(worth_compressing("application/json; charset=utf-8", 1'000'000, 1000));
}

TEST(WorthCompressing, UnknownLengthIsCompressed) {
    EXPECT_TRUE(worth_compressing("application/json", std::nullopt, 1000));
    EXPECT_FALSE(worth_compressing("image/jpeg", std::nullopt, 1000));
}
