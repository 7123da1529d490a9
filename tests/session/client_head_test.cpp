// prepare_client_head(): the relayed response's header as the client gets it.
#include "session/client_head.hpp"

#include <gtest/gtest.h>

namespace cacheproxy::session {
namespace {

bhttp::request_header<> get(unsigned version = 11, std::string_view accept_encoding = "") {
    bhttp::request_header<> req;
    req.method(bhttp::verb::get);
    req.target("/static/app.js");
    req.version(version);
    if (!accept_encoding.empty()) req.set(bhttp::field::accept_encoding, accept_encoding);
    return req;
}

bhttp::response<bhttp::buffer_body> response(unsigned status = 200) {
    bhttp::response<bhttp::buffer_body> res;
    res.result(status);
    res.version(11);
    return res;
}

config::CompressionConfig compression() {
    config::CompressionConfig c;
    c.enabled = true;
    c.min_size = 100;
    return c;
}

TEST(ClientHead, HopByHopFieldsGoAndViaIsJoined) {
    auto res = response();
    res.set(bhttp::field::connection, "x-secret");
    res.set("X-Secret", "1");
    res.set(bhttp::field::keep_alive, "timeout=5");
    res.set(bhttp::field::via, "1.1 front");
    res.set(bhttp::field::content_length, "5");
    const auto req = get();
    const auto head = prepare_client_head(res, {.req = req, .compression = compression(), .content_length = 5}, true);
    EXPECT_EQ(res.find("X-Secret"), res.end());
    EXPECT_EQ(res.find(bhttp::field::keep_alive), res.end());
    EXPECT_EQ(res[bhttp::field::via], "1.1 front, 1.1 cacheproxy");
    EXPECT_TRUE(head.keep_alive);
    EXPECT_TRUE(head.has_body);
    EXPECT_EQ(head.transform, Transform::none);
}

TEST(ClientHead, ANonCanonicalContentLengthIsRewrittenFromTheParse) {
    auto res = response();
    res.set(bhttp::field::content_length, "010");
    const auto req = get();
    prepare_client_head(res, {.req = req, .compression = compression(), .content_length = 10}, true);
    EXPECT_EQ(res[bhttp::field::content_length], "10");
}

TEST(ClientHead, AnUnknownLengthIsChunkedForHttp11AndCloseDelimitedForHttp10) {
    {
        auto res = response();
        const auto req = get(11);
        const auto head = prepare_client_head(res, {.req = req, .compression = compression()}, true);
        EXPECT_TRUE(res.chunked());
        EXPECT_TRUE(head.keep_alive);
    }
    {
        auto res = response();
        const auto req = get(10);
        const auto head = prepare_client_head(res, {.req = req, .compression = compression()}, true);
        EXPECT_FALSE(res.chunked());
        EXPECT_FALSE(head.keep_alive);
        EXPECT_EQ(res.version(), 10u);
    }
}

TEST(ClientHead, ACompressibleBodyIsGzippedForAClientThatAcceptsIt) {
    auto res = response();
    res.set(bhttp::field::content_type, "application/javascript");
    res.set(bhttp::field::content_length, "5000");
    res.set(bhttp::field::etag, "\"abc\"");
    const auto req = get(11, "gzip");
    const auto head = prepare_client_head(res, {.req = req, .compression = compression(), .content_length = 5000}, true);
    EXPECT_EQ(head.transform, Transform::gzip);
    EXPECT_EQ(res[bhttp::field::content_encoding], "gzip");
    EXPECT_EQ(res.find(bhttp::field::content_length), res.end());
    EXPECT_EQ(res[bhttp::field::etag], "W/\"abc\"");
    EXPECT_EQ(res[bhttp::field::vary], "Accept-Encoding");
    EXPECT_TRUE(res.chunked());
}

TEST(ClientHead, AnUpstreamGzipIsDecodedForAClientWithoutIt) {
    auto res = response();
    res.set(bhttp::field::content_type, "text/html");
    res.set(bhttp::field::content_encoding, "gzip");
    res.set(bhttp::field::content_length, "300");
    const auto req = get(11);
    const auto head = prepare_client_head(res, {.req = req, .compression = compression(), .content_length = 300}, true);
    EXPECT_EQ(head.transform, Transform::gunzip);
    EXPECT_EQ(res.find(bhttp::field::content_encoding), res.end());
}

TEST(ClientHead, NoBodyStatusesAndHeadGetNoFraming) {
    auto res = response(304);
    const auto req = get();
    const auto head = prepare_client_head(res, {.req = req, .compression = compression()}, true);
    EXPECT_FALSE(head.has_body);
    EXPECT_FALSE(res.chunked());
}

TEST(ClientHead, ACachedRoutesForwardedAnswerCarriesItsLabels) {
    auto res = response();
    res.set(bhttp::field::content_length, "2");
    const auto req = get();
    prepare_client_head(res,
                        {.req = req, .compression = compression(), .content_length = 2,
                         .label = CacheResult::bypass_no_identity},
                        true);
    EXPECT_EQ(res["X-Cache"], "BYPASS");
    EXPECT_EQ(res["Cache-Status"], "cacheproxy; fwd=bypass; detail=no-identity");
}

TEST(RequestRecordText, EveryResultHasOneLabelAndAStatsLabel) {
    EXPECT_EQ(text_of(CacheResult::none).x_cache, "");
    EXPECT_EQ(text_of(CacheResult::hit).x_cache, "HIT");
    EXPECT_EQ(text_of(CacheResult::hit).label, stats::CacheLabel::hit);
    EXPECT_EQ(text_of(CacheResult::stale_if_error).label, stats::CacheLabel::stale);
    EXPECT_EQ(text_of(CacheResult::miss_queue_full).label, stats::CacheLabel::miss);
    EXPECT_EQ(text_of(CacheResult::bypass_uncacheable).label, stats::CacheLabel::bypass);
    for (int r = 1; r <= static_cast<int>(CacheResult::bypass_cross_origin); ++r) {
        const auto t = text_of(static_cast<CacheResult>(r));
        EXPECT_FALSE(t.x_cache.empty()) << r;
        EXPECT_TRUE(t.cache_status.starts_with("cacheproxy; ")) << r;
    }
}

}  // namespace
}  // namespace cacheproxy::session
