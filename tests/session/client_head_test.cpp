// prepare_client_head(): the relayed response's header as the client gets it.
#include "session/client_head.hpp"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace cacheproxy::session {
namespace {

http::RequestHeader get(unsigned version = 11, std::string_view accept_encoding = "") {
    http::RequestHeader req;
    req.method(bhttp::verb::get);
    req.target("/static/app.js");
    req.version(version);
    if (!accept_encoding.empty()) req.set(bhttp::field::accept_encoding, accept_encoding);
    return req;
}

bhttp::response<bhttp::buffer_body, http::Fields> response(unsigned status = 200) {
    bhttp::response<bhttp::buffer_body, http::Fields> res;
    res.result(status);
    res.version(11);
    return res;
}

http::RequestHeader head_request(std::string_view accept_encoding = "") {
    auto req = get(11, accept_encoding);
    req.method(bhttp::verb::head);
    return req;
}

/// A static file as Starlette serves it (HEAD and GET alike): unquoted ETag.
bhttp::response<bhttp::buffer_body, http::Fields> static_file(std::string_view type = "application/javascript",
                                                std::string_view coding = "") {
    auto res = response();
    res.set(bhttp::field::content_type, type);
    res.set(bhttp::field::content_length, "5000");
    res.set(bhttp::field::etag, "5d4c2a1b0f9e8d7c-5000");
    res.set(bhttp::field::last_modified, "Sun, 06 Nov 1994 08:49:37 GMT");
    res.set(bhttp::field::date, "Sun, 06 Nov 1994 08:49:00 GMT");  // fixed when the upstream connection opened
    if (!coding.empty()) res.set(bhttp::field::content_encoding, coding);
    return res;
}

/// The fields as the client gets them, in order, less `skip`.
std::vector<std::pair<std::string, std::string>> fields_of(const http::ResponseHeader& res,
                                                           bhttp::field skip = bhttp::field::unknown) {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& f : res)
        if (skip == bhttp::field::unknown || f.name() != skip) out.emplace_back(f.name_string(), f.value());
    return out;
}

constexpr std::string_view now = "Sun, 06 Nov 1994 08:49:37 GMT";

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
        const auto head =
            prepare_client_head(res, {.req = req, .compression = compression(), .content_length = {}}, true);
        EXPECT_TRUE(res.chunked());
        EXPECT_TRUE(head.keep_alive);
    }
    {
        auto res = response();
        const auto req = get(10);
        const auto head =
            prepare_client_head(res, {.req = req, .compression = compression(), .content_length = {}}, true);
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
    const auto head = prepare_client_head(res, {.req = req, .compression = compression(), .content_length = {}}, true);
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

TEST(ClientHead, TheUpstreamsDateIsReplacedByOurs) {
    auto res = static_file("image/png");
    const auto req = get();
    prepare_client_head(res, {.req = req, .compression = compression(), .content_length = 5000, .date = now}, true);
    EXPECT_EQ(res[bhttp::field::date], now);
    EXPECT_EQ(res.count(bhttp::field::date), 1u);
}

TEST(ClientHead, AnAnswerWithoutADateGetsOurs) {
    for (const unsigned status : {200u, 204u, 304u, 404u, 502u}) {
        auto res = response(status);
        const auto req = get();
        prepare_client_head(res, {.req = req, .compression = compression(), .content_length = {}, .date = now}, true);
        EXPECT_EQ(res[bhttp::field::date], now) << status;
    }
}

TEST(ClientHead, AnEmptyDateLeavesTheUpstreamsAsItIs) {
    auto res = static_file("image/png");
    const auto req = get();
    prepare_client_head(res, {.req = req, .compression = compression(), .content_length = 5000, .date = {}}, true);
    EXPECT_EQ(res[bhttp::field::date], "Sun, 06 Nov 1994 08:49:00 GMT");
}

TEST(ClientHead, ByDefaultTheDateIsThisThreadsCurrentOne) {
    auto res = static_file("image/png");
    const auto req = get();
    prepare_client_head(res, {.req = req, .compression = compression(), .content_length = 5000}, true);
    EXPECT_EQ(res[bhttp::field::date].size(), http::imf_fixdate_size);
    EXPECT_NE(res[bhttp::field::date], "Sun, 06 Nov 1994 08:49:00 GMT");
}

TEST(ClientHead, AnUnquotedEtagIsWeakenedThroughGzip) {
    auto res = static_file();
    const auto req = get(11, "gzip");
    const auto head = prepare_client_head(res, {.req = req, .compression = compression(), .content_length = 5000}, true);
    EXPECT_EQ(head.transform, Transform::gzip);
    EXPECT_EQ(res[bhttp::field::etag], "W/\"5d4c2a1b0f9e8d7c-5000\"");
}

TEST(ClientHead, AnEtagThatCannotBeWeakenedIsDroppedThroughGzip) {
    auto res = static_file();
    res.set(bhttp::field::etag, "W/abc");
    const auto req = get(11, "gzip");
    prepare_client_head(res, {.req = req, .compression = compression(), .content_length = 5000}, true);
    EXPECT_EQ(res.find(bhttp::field::etag), res.end());
}

/// GET and HEAD of the same file with the same Accept-Encoding: the HEAD's
/// header is the GET's but for the framing of the body it does not carry.
void expect_head_as_its_get(std::string_view accept_encoding, std::string_view type, std::string_view coding) {
    SCOPED_TRACE(std::string(accept_encoding) + " " + std::string(type) + " " + std::string(coding));
    auto g = static_file(type, coding);
    const auto greq = get(11, accept_encoding);
    const auto ghead =
        prepare_client_head(g, {.req = greq, .compression = compression(), .content_length = 5000, .date = now}, true);
    auto h = static_file(type, coding);
    const auto hreq = head_request(accept_encoding);
    const auto hhead =
        prepare_client_head(h, {.req = hreq, .compression = compression(), .content_length = 5000, .date = now}, true);
    EXPECT_TRUE(ghead.has_body);
    EXPECT_FALSE(hhead.has_body);
    EXPECT_EQ(hhead.transform, Transform::none);  // no body to run through it
    EXPECT_FALSE(h.chunked());                   // a HEAD's answer ends at its header
    EXPECT_EQ(hhead.keep_alive, ghead.keep_alive);
    EXPECT_EQ(fields_of(h), fields_of(g, bhttp::field::transfer_encoding));
    EXPECT_EQ(h.result_int(), g.result_int());
    EXPECT_EQ(h.version(), g.version());
}

TEST(ClientHead, AHeadGetsTheHeaderOfItsGet) {
    expect_head_as_its_get("gzip", "application/javascript", "");  // GET gzipped: chunked, weak ETag, Vary
    expect_head_as_its_get("", "application/javascript", "");      // GET identity, Vary, Content-Length
    expect_head_as_its_get("gzip", "image/png", "");               // not compressible: as the upstream said
    expect_head_as_its_get("", "text/html", "gzip");               // GET gunzipped for a client without gzip
    expect_head_as_its_get("gzip", "text/html", "gzip");           // the upstream's gzip, as it is
}

TEST(ClientHead, AGzippedHeadIsLabelledAsItsGet) {
    auto res = static_file();
    const auto req = head_request("gzip");
    const auto head =
        prepare_client_head(res, {.req = req, .compression = compression(), .content_length = 5000, .date = now}, true);
    EXPECT_EQ(head.transform, Transform::none);
    EXPECT_EQ(res[bhttp::field::content_encoding], "gzip");
    EXPECT_EQ(res[bhttp::field::vary], "Accept-Encoding");
    EXPECT_EQ(res[bhttp::field::etag], "W/\"5d4c2a1b0f9e8d7c-5000\"");
    EXPECT_EQ(res.find(bhttp::field::content_length), res.end());  // the GET's length is the gzip's: unknown
    EXPECT_EQ(res.find(bhttp::field::transfer_encoding), res.end());
    EXPECT_EQ(res[bhttp::field::date], now);
}

TEST(ClientHead, AHeadsNonCanonicalContentLengthIsRewrittenAsItsGets) {
    auto res = static_file("image/png");
    res.set(bhttp::field::content_length, "05000");
    const auto req = head_request();
    prepare_client_head(res, {.req = req, .compression = compression(), .content_length = 5000}, true);
    EXPECT_EQ(res[bhttp::field::content_length], "5000");
}

TEST(RequestRecordText, EveryResultHasOneLabelAndAStatsLabel) {
    EXPECT_EQ(text_of(CacheResult::none).x_cache, "");
    EXPECT_EQ(text_of(CacheResult::hit).x_cache, "HIT");
    EXPECT_EQ(text_of(CacheResult::hit).label, stats::CacheLabel::hit);
    EXPECT_EQ(text_of(CacheResult::stale_if_error).label, stats::CacheLabel::stale);
    EXPECT_EQ(text_of(CacheResult::miss_queue_full).label, stats::CacheLabel::miss);
    EXPECT_EQ(text_of(CacheResult::bypass_uncacheable).label, stats::CacheLabel::bypass);
    for (int r = 1; r <= static_cast<int>(CacheResult::bypass_tier_down); ++r) {
        const auto t = text_of(static_cast<CacheResult>(r));
        EXPECT_FALSE(t.x_cache.empty()) << r;
        EXPECT_TRUE(t.cache_status.starts_with("cacheproxy; ")) << r;
    }
}

}  // namespace
}  // namespace cacheproxy::session
