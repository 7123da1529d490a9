/// gzip scenarios: the proxy negotiating Accept-Encoding with its clients, on
/// cached routes (a gzip variant made once per fill, next to the identity
/// bytes) and on pass-through bodies (compressed, or an upstream's gzip
/// decoded, on the fly). Each test says what the client sent, what it got
/// back (Content-Encoding, Vary, Content-Length / chunked, ETag, the decoded
/// bytes) and what the origin saw.
///
/// Origins: the legacy simulator as is (it never encodes), the simulator with
/// --gzip (Starlette's GZipMiddleware: gzips >= 1000 B whenever the request's
/// Accept-Encoding *contains* "gzip", even "gzip;q=0"), and FakeUpstream for
/// exact headers (an ETag, a gzip body sent whatever the request said).

#include "support/cache_helpers.hpp"
#include "support/fake_upstream.hpp"
#include "support/fixtures.hpp"
#include "support/gzip_helpers.hpp"
#include "support/raw_client.hpp"

#include "encoding/gzip.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <iostream>
#include <string>
#include <vector>

namespace cacheproxy::e2e {
namespace {

using namespace gz;
using std::chrono::milliseconds;

/// True when some Vary field of `r` names Accept-Encoding.
bool varies_on_accept_encoding(const std::vector<std::string>& vary_values) {
    return std::any_of(vary_values.begin(), vary_values.end(),
                       [](const std::string& v) { return lower(v).find("accept-encoding") != std::string::npos; });
}
bool varies_on_accept_encoding(const Response& r) { return varies_on_accept_encoding(r.header_values("Vary")); }

/// The body as the client would read it: gunzipped when Content-Encoding is
/// gzip. nullopt when it claims gzip and is not.
std::optional<std::string> decoded_body(const Response& r) {
    if (lower(r.header("Content-Encoding").value_or("")) == "gzip") return gunzip(r.body);
    return r.body;
}

/// The bytes the proxy must send for a JSON body the FakeUpstream serves:
/// about 2.4 kB, compressible.
std::string fake_json() {
    std::string s = "{\"items\":[";
    for (int i = 0; i < 60; ++i) {
        if (i) s += ",";
        s += "{\"symbol\":\"SYM" + std::to_string(1000 + i) + "USDT\",\"side\":\"LONG\",\"size\":" +
             std::to_string(i) + "}";
    }
    s += "]}";
    return s;
}

/// One whole HTTP/1.1 200 answer with `fields` (each "Name: value\r\n"), a
/// Content-Length for `body`, and Connection: close (FakeUpstream closes
/// after every answer; the proxy must not pool the connection).
std::string fake_response(const std::string& fields, const std::string& body) {
    return "HTTP/1.1 200 OK\r\n" + fields + "Content-Length: " + std::to_string(body.size()) +
           "\r\nConnection: close\r\n\r\n" + body;
}

/// A shared simulator that never encodes.
class Gzip : public SimulatorTest {
protected:
    static void SetUpTestSuite() { StartSharedSimulator(); }
    static void TearDownTestSuite() { StopSharedSimulator(); }

    long long positions_count_seen() { return sim().stats().route("positions"); }
};

/// A shared simulator started with --gzip.
class GzipUpstream : public SimulatorTest {
protected:
    static void SetUpTestSuite() {
        Simulator::Options o;
        o.extra_args = {"--gzip"};
        StartSharedSimulator(o);
    }
    static void TearDownTestSuite() { StopSharedSimulator(); }
};

/// FakeUpstream origins only (each test makes its own).
class GzipFakeOrigin : public ::testing::Test {};

// --------------------------------------------------------------- cached route: the two variants

TEST_F(Gzip, CachedRouteServesGzipAndIdentityVariantsOfOneFill) {
    ASSERT_EQ(seed_positions(sim(), 1), "");
    auto proxy = StartProxy(with_rules(positions_and_balance_rules()));

    // client: user1 GET positions with Accept-Encoding: gzip (cold), then the same again
    Response fill = http_request(proxy->port(), "GET", positions_target(), bearer_accepting(1, "gzip"));
    Response gz = http_request(proxy->port(), "GET", positions_target(), bearer_accepting(1, "gzip"));
    // client: user1 GET positions with no Accept-Encoding
    Response id = http_request(proxy->port(), "GET", positions_target(), bearer(1));

    // client got (identity): 200 HIT, the ~29 kB JSON as is, its exact length, Vary: Accept-Encoding
    ASSERT_EQ(id.status, 200u) << describe(id);
    EXPECT_TRUE(CacheIs(id, "HIT"));
    EXPECT_FALSE(id.has_header("Content-Encoding")) << describe(id);
    EXPECT_TRUE(varies_on_accept_encoding(id)) << describe(id);
    EXPECT_EQ(id.header("Content-Length"), std::to_string(id.body.size())) << describe(id);
    EXPECT_GT(id.body.size(), 20000u) << describe(id);
    EXPECT_EQ(positions_count(id.body), 300) << describe(id);
    EXPECT_EQ(user_id_of(id), sim_user_id(1));

    // client got (gzip, after the fill): 200 HIT, Content-Encoding: gzip, Vary,
    // a Content-Length equal to the gzip bytes, decoding to the identity body exactly
    ASSERT_EQ(gz.status, 200u) << describe(gz);
    EXPECT_TRUE(CacheIs(gz, "HIT"));
    EXPECT_EQ(gz.header("Content-Encoding"), "gzip") << describe(gz);
    EXPECT_TRUE(varies_on_accept_encoding(gz)) << describe(gz);
    EXPECT_EQ(gz.header("Content-Length"), std::to_string(gz.body.size())) << describe(gz);
    EXPECT_FALSE(gz.chunked);
    EXPECT_LT(gz.body.size(), id.body.size());
    auto plain = gunzip(gz.body);
    ASSERT_TRUE(plain) << "the gzip HIT is not valid gzip: " << gz.head_text();
    EXPECT_TRUE(*plain == id.body) << "decoded gzip variant (" << plain->size() << " B) differs from identity ("
                                   << id.body.size() << " B)";
    EXPECT_EQ(gz.header("Content-Type"), id.header("Content-Type"));

    // client got (gzip, the fill itself): a MISS, the gzip variant of the same fill
    ASSERT_EQ(fill.status, 200u) << describe(fill);
    EXPECT_TRUE(CacheIs(fill, "MISS"));
    EXPECT_EQ(fill.header("Content-Encoding"), "gzip") << describe(fill);
    auto fill_plain = decoded_body(fill);
    ASSERT_TRUE(fill_plain) << describe(fill);
    EXPECT_TRUE(*fill_plain == id.body) << "the fill's body differs from the HIT's";

    // origin saw: one positions request
    EXPECT_EQ(positions_count_seen(), 1) << sim().stats().json;
}

TEST_F(Gzip, SmallBodiesAreNeverGzipped) {
    auto proxy = StartProxy(with_rules(positions_and_balance_rules()));

    // client: user1 GET balance (~150 B, below min_size 1000) with Accept-Encoding: gzip, twice
    Response miss = http_request(proxy->port(), "GET", balance_target(), bearer_accepting(1, "gzip"));
    Response hit = http_request(proxy->port(), "GET", balance_target(), bearer_accepting(1, "gzip"));

    // client got: the JSON as is both times (no Content-Encoding), its exact length
    for (const Response* r : {&miss, &hit}) {
        ASSERT_EQ(r->status, 200u) << describe(*r);
        EXPECT_FALSE(r->has_header("Content-Encoding")) << describe(*r);
        EXPECT_LT(r->body.size(), 1000u) << describe(*r);
        EXPECT_EQ(r->header("Content-Length"), std::to_string(r->body.size())) << describe(*r);
        EXPECT_EQ(user_id_of(*r), sim_user_id(1)) << describe(*r);
    }
    EXPECT_TRUE(CacheIs(miss, "MISS"));
    EXPECT_TRUE(CacheIs(hit, "HIT"));
    EXPECT_EQ(hit.body, miss.body);

    // client: a small pass-through JSON with a Content-Length (/echo/small), gzip accepted
    Response echo = http_request(proxy->port(), "GET", "/echo/small", accept_encoding("gzip"));
    // client got: it as is
    ASSERT_EQ(echo.status, 200u) << describe(echo);
    EXPECT_LT(echo.body.size(), 1000u) << "the premise (a body under min_size) does not hold: " << describe(echo);
    EXPECT_FALSE(echo.has_header("Content-Encoding")) << describe(echo);
    EXPECT_TRUE(parse_echo(echo.body).has_value()) << describe(echo);

    // origin saw: one balance request
    EXPECT_EQ(sim().stats().route("balance"), 1) << sim().stats().json;
}

// --------------------------------------------------------------- Accept-Encoding negotiation

struct Negotiation {
    const char* accept_encoding;
    bool gzip;
};

/// RFC 9110 12.5.3 cases. The first three are the contract; the rest follow from the same rules.
const Negotiation kNegotiations[] = {
    {"gzip;q=0", false},            // gzip explicitly refused
    {"*", true},                    // anything: gzip
    {"identity;q=0, gzip", true},   // identity refused, gzip fine
    {"GZIP", true},                 // codings are case-insensitive
    {"deflate, br", false},         // nothing we produce
    {"gzip;q=0, *", false},         // the explicit refusal beats the wildcard
    {"br, gzip;q=0.5", true},       // gzip at a lower weight is still acceptable
    {"", false},                    // an empty value: identity only
};

TEST_F(Gzip, AcceptEncodingPicksTheCachedVariant) {
    ASSERT_EQ(seed_positions(sim(), 1), "");
    auto proxy = StartProxy(with_rules(positions_and_balance_rules()));

    // client: user1 fills positions with no Accept-Encoding
    Response fill = http_request(proxy->port(), "GET", positions_target(), bearer(1));
    ASSERT_EQ(fill.status, 200u) << describe(fill);
    ASSERT_GT(fill.body.size(), 20000u) << describe(fill);

    for (const auto& n : kNegotiations) {
        SCOPED_TRACE(std::string("Accept-Encoding: \"") + n.accept_encoding + "\"");
        // client: the same GET with this Accept-Encoding
        Response r = http_request(proxy->port(), "GET", positions_target(), bearer_accepting(1, n.accept_encoding));
        // client got: a HIT, gzip exactly when acceptable, decoding to the filled body
        ASSERT_EQ(r.status, 200u) << describe(r);
        EXPECT_TRUE(CacheIs(r, "HIT"));
        if (n.gzip)
            EXPECT_EQ(r.header("Content-Encoding"), "gzip") << describe(r);
        else
            EXPECT_FALSE(r.has_header("Content-Encoding")) << describe(r);
        EXPECT_EQ(r.header("Content-Length"), std::to_string(r.body.size())) << describe(r);
        EXPECT_TRUE(varies_on_accept_encoding(r)) << describe(r);
        auto plain = decoded_body(r);
        ASSERT_TRUE(plain) << describe(r);
        EXPECT_TRUE(*plain == fill.body) << "decoded body differs from the fill";
    }

    // origin saw: the one fill
    EXPECT_EQ(positions_count_seen(), 1) << sim().stats().json;
}

TEST_F(Gzip, AcceptEncodingPicksThePassThroughEncoding) {
    auto proxy = StartProxy();
    const std::string target = "/stream?n=20000&chunk=4096";  // text/plain, chunked, no length

    for (const auto& n : kNegotiations) {
        SCOPED_TRACE(std::string("Accept-Encoding: \"") + n.accept_encoding + "\"");
        // client: GET the 20000-byte text stream with this Accept-Encoding
        Response r = http_request(proxy->port(), "GET", target, accept_encoding(n.accept_encoding));
        // client got: gzip exactly when acceptable, decoding to the 20000 bytes
        ASSERT_EQ(r.status, 200u) << describe(r);
        if (n.gzip)
            EXPECT_EQ(r.header("Content-Encoding"), "gzip") << describe(r);
        else
            EXPECT_FALSE(r.has_header("Content-Encoding")) << describe(r);
        auto plain = decoded_body(r);
        ASSERT_TRUE(plain) << describe(r);
        EXPECT_EQ(plain->size(), 20000u) << describe(r);
        EXPECT_EQ(first_sim_bytes_mismatch(*plain), std::string::npos);
    }
}

// --------------------------------------------------------------- HEAD

TEST_F(Gzip, HeadOnCachedRouteGetsTheHeadersOfItsGet) {
    ASSERT_EQ(seed_positions(sim(), 1), "");
    auto proxy = StartProxy(with_rules(positions_and_balance_rules()));
    RawClient c(proxy->port());
    ASSERT_TRUE(c.connected()) << c.last_error();

    // client, on one connection: GET gzip (fill), GET gzip (HIT), HEAD gzip, HEAD identity, GET gzip
    Response fill = c.request("GET", positions_target(), bearer_accepting(1, "gzip"));
    ASSERT_EQ(fill.status, 200u) << describe(fill);
    Response get = c.request("GET", positions_target(), bearer_accepting(1, "gzip"));
    ASSERT_TRUE(c.send(build_request("HEAD", positions_target(), bearer_accepting(1, "gzip")))) << c.last_error();
    Response head_gz = c.read_response(/*head=*/true);
    ASSERT_TRUE(c.send(build_request("HEAD", positions_target(), bearer(1)))) << c.last_error();
    Response head_id = c.read_response(/*head=*/true);
    Response after = c.request("GET", positions_target(), bearer_accepting(1, "gzip"));

    // client got (gzip HEAD): 200 HIT, no body, the gzip GET's Content-Encoding, Content-Length, Vary, type
    ASSERT_EQ(get.status, 200u) << describe(get);
    ASSERT_EQ(get.header("Content-Encoding"), "gzip") << describe(get);
    ASSERT_EQ(head_gz.status, 200u) << describe(head_gz);
    EXPECT_TRUE(CacheIs(head_gz, "HIT"));
    EXPECT_TRUE(head_gz.body.empty());
    EXPECT_EQ(head_gz.header("Content-Encoding"), "gzip") << describe(head_gz);
    EXPECT_EQ(head_gz.header("Content-Length"), get.header("Content-Length")) << describe(head_gz);
    EXPECT_EQ(head_gz.header("Content-Length"), std::to_string(get.body.size())) << describe(head_gz);
    EXPECT_TRUE(varies_on_accept_encoding(head_gz)) << describe(head_gz);
    EXPECT_EQ(head_gz.header("Content-Type"), get.header("Content-Type"));
    EXPECT_FALSE(head_gz.has_header("Transfer-Encoding")) << describe(head_gz);

    // client got (identity HEAD): the identity length, no Content-Encoding
    auto plain = gunzip(get.body);
    ASSERT_TRUE(plain) << describe(get);
    ASSERT_EQ(head_id.status, 200u) << describe(head_id);
    EXPECT_TRUE(head_id.body.empty());
    EXPECT_FALSE(head_id.has_header("Content-Encoding")) << describe(head_id);
    EXPECT_EQ(head_id.header("Content-Length"), std::to_string(plain->size())) << describe(head_id);

    // and the connection stayed in step: the last GET got its own whole gzip answer
    ASSERT_EQ(after.status, 200u) << describe(after) << "\nreceived:\n" << c.received().substr(0, 1500);
    EXPECT_TRUE(CacheIs(after, "HIT"));
    EXPECT_TRUE(after.body == get.body);

    // origin saw: only the first GET
    EXPECT_EQ(positions_count_seen(), 1) << sim().stats().json;
}

// --------------------------------------------------------------- streaming pass-through

TEST_F(Gzip, StreamedPassThroughIsGzippedWithFlatProxyMemory) {
    auto proxy = StartProxy();
    const pid_t pid = proxy->process().pid();
    ASSERT_GT(proc_status_kb(pid, "VmRSS"), 0) << "cannot read /proc/" << pid << "/status";
    const std::uint64_t n = 8u * 1024 * 1024;
    const std::string target = "/stream?n=" + std::to_string(n) + "&chunk=65536";

    // warm-up: a 1 MiB stream the same way, so buffers, zlib state and
    // allocator arenas that any gzip stream needs exist before measuring
    StreamedBody warm = stream_sim_bytes(proxy->port(), "/stream?n=1048576&chunk=65536", accept_encoding("gzip"));
    ASSERT_TRUE(warm.complete) << warm.head_text();

    // client: GET an 8 MiB text/plain chunked stream with Accept-Encoding: gzip,
    // read piece by piece, sampling the proxy's RSS as it goes
    const bool peak_reset = reset_peak_rss(pid);
    const long long rss_before = proc_status_kb(pid, "VmRSS");
    long long rss_max = rss_before;
    StreamedBody r = stream_sim_bytes(proxy->port(), target, accept_encoding("gzip"), std::chrono::seconds(5),
                                      std::chrono::seconds(15), [&](std::uint64_t) {
                                          rss_max = std::max(rss_max, proc_status_kb(pid, "VmRSS"));
                                      });
    const long long rss_after = proc_status_kb(pid, "VmRSS");
    const long long hwm_after = proc_status_kb(pid, "VmHWM");
    rss_max = std::max(rss_max, rss_after);
    if (peak_reset) rss_max = std::max(rss_max, hwm_after);  // the true peak since the reset

    // client got: 200, Content-Encoding: gzip, chunked (no Content-Length), Vary,
    // decoding to exactly the 8 MiB of the simulator's pattern
    ASSERT_EQ(r.status, 200u) << r.head_text();
    EXPECT_TRUE(r.gzip) << r.head_text();
    EXPECT_TRUE(r.chunked) << r.head_text();
    EXPECT_FALSE(r.header("Content-Length")) << r.head_text();
    std::vector<std::string> vary;
    for (const auto& [k, v] : r.headers)
        if (iequals(k, "Vary")) vary.push_back(v);
    EXPECT_TRUE(varies_on_accept_encoding(vary)) << r.head_text();
    EXPECT_TRUE(r.complete) << r.head_text();
    EXPECT_EQ(r.decoded_bytes, n) << r.head_text();
    EXPECT_EQ(r.mismatch_at, UINT64_MAX) << "first wrong decoded byte at " << r.mismatch_at;
    EXPECT_LT(r.wire_body_bytes, n / 2) << "barely compressed: " << r.head_text();

    // proxy: its memory stayed flat (far below the body's 8 MiB)
    const long long growth_kb = rss_max - rss_before;
    RecordProperty("rss_before_kb", std::to_string(rss_before));
    RecordProperty("rss_peak_kb", std::to_string(rss_max));
    std::cerr << "[ gzip ] proxy RSS before " << rss_before << " kB, peak " << rss_max << " kB (growth "
              << growth_kb << " kB; peak reset " << (peak_reset ? "yes" : "no, sampled") << "), after "
              << rss_after << " kB; wire " << r.wire_body_bytes << " B for " << r.decoded_bytes << " B\n";
    EXPECT_LT(growth_kb, 4 * 1024) << "the proxy grew by " << growth_kb << " kB while streaming 8 MiB";

    // origin saw: the two stream requests
    EXPECT_EQ(sim().stats().route("other"), 2) << sim().stats().json;
}

// --------------------------------------------------------------- ETag

TEST_F(GzipFakeOrigin, UpstreamEtagIsWeakOnlyInTheGzipVariantOfAPassThrough) {
    const std::string json = fake_json();
    ASSERT_GE(json.size(), 1000u);
    FakeUpstream origin({{fake_response("Content-Type: application/json\r\nETag: \"abc\"\r\n", json)}});
    Proxy proxy(origin.url());

    // client: GET /data with Accept-Encoding: gzip, then with none
    Response gz = http_request(proxy.port(), "GET", "/data", accept_encoding("gzip"));
    Response id = http_request(proxy.port(), "GET", "/data");

    // client got (gzip): Content-Encoding: gzip, the ETag made weak, decoding to the JSON
    ASSERT_EQ(gz.status, 200u) << describe(gz);
    EXPECT_EQ(gz.header("Content-Encoding"), "gzip") << describe(gz);
    EXPECT_EQ(gz.header("ETag"), "W/\"abc\"") << describe(gz);
    EXPECT_TRUE(varies_on_accept_encoding(gz)) << describe(gz);
    auto plain = gunzip(gz.body);
    ASSERT_TRUE(plain) << describe(gz);
    EXPECT_TRUE(*plain == json);

    // client got (identity): the strong ETag as sent, the JSON as is with its length
    ASSERT_EQ(id.status, 200u) << describe(id);
    EXPECT_FALSE(id.has_header("Content-Encoding")) << describe(id);
    EXPECT_EQ(id.header("ETag"), "\"abc\"") << describe(id);
    EXPECT_EQ(id.header("Content-Length"), std::to_string(json.size())) << describe(id);
    EXPECT_TRUE(id.body == json);

    // origin saw: both requests
    EXPECT_EQ(origin.request_count(), 2u);
}

TEST_F(GzipFakeOrigin, UpstreamEtagIsWeakOnlyInTheGzipVariantOfACachedEntry) {
    const std::string json = fake_json();
    FakeUpstream origin({{fake_response("Content-Type: application/json\r\nETag: \"abc\"\r\n", json)}});
    Proxy proxy(origin.url(), with_rules(positions_and_balance_rules()));

    // client: user1 GET positions with Accept-Encoding: gzip (fill), then with none (HIT), then gzip (HIT)
    Response fill = http_request(proxy.port(), "GET", positions_target(), bearer_accepting(1, "gzip"));
    Response id = http_request(proxy.port(), "GET", positions_target(), bearer(1));
    Response gz = http_request(proxy.port(), "GET", positions_target(), bearer_accepting(1, "gzip"));

    // client got: W/"abc" with the gzip variant, "abc" with the identity one
    ASSERT_EQ(fill.status, 200u) << describe(fill);
    for (const Response* r : {&fill, &gz}) {
        EXPECT_EQ(r->header("Content-Encoding"), "gzip") << describe(*r);
        EXPECT_EQ(r->header("ETag"), "W/\"abc\"") << describe(*r);
        auto plain = gunzip(r->body);
        ASSERT_TRUE(plain) << describe(*r);
        EXPECT_TRUE(*plain == json);
    }
    EXPECT_TRUE(CacheIs(gz, "HIT"));
    ASSERT_EQ(id.status, 200u) << describe(id);
    EXPECT_TRUE(CacheIs(id, "HIT"));
    EXPECT_FALSE(id.has_header("Content-Encoding")) << describe(id);
    EXPECT_EQ(id.header("ETag"), "\"abc\"") << describe(id);
    EXPECT_TRUE(id.body == json);

    // origin saw: one request
    EXPECT_EQ(origin.request_count(), 1u);
}

// --------------------------------------------------------------- an origin that gzips anyway

TEST_F(GzipFakeOrigin, OriginGzipWhateverWasAskedIsDecodedForIdentityClients) {
    const std::string json = fake_json();
    std::string packed;
    ASSERT_TRUE(encoding::gzip_compress(json, 9, packed));
    FakeUpstream origin({{fake_response("Content-Type: application/json\r\nContent-Encoding: gzip\r\n"
                                        "Vary: Accept-Encoding\r\n",
                                        packed)}});
    Proxy proxy(origin.url(), with_rules(positions_and_balance_rules()));

    // pass-through: a client with no Accept-Encoding, then one with gzip
    Response id = http_request(proxy.port(), "GET", "/data");
    Response gz = http_request(proxy.port(), "GET", "/data", accept_encoding("gzip"));
    // client got (identity): the JSON decoded, no Content-Encoding
    ASSERT_EQ(id.status, 200u) << describe(id);
    EXPECT_FALSE(id.has_header("Content-Encoding")) << describe(id);
    EXPECT_TRUE(id.body == json) << describe(id);
    // client got (gzip): the origin's gzip untouched
    ASSERT_EQ(gz.status, 200u) << describe(gz);
    EXPECT_EQ(gz.header("Content-Encoding"), "gzip") << describe(gz);
    EXPECT_TRUE(gz.body == packed) << describe(gz);

    // cached route: identity client fills, gzip client and identity client hit
    Response fill = http_request(proxy.port(), "GET", positions_target(), bearer(1));
    Response hit_gz = http_request(proxy.port(), "GET", positions_target(), bearer_accepting(1, "gzip"));
    Response hit_id = http_request(proxy.port(), "GET", positions_target(), bearer(1));
    ASSERT_EQ(fill.status, 200u) << describe(fill);
    EXPECT_TRUE(CacheIs(fill, "MISS"));
    EXPECT_FALSE(fill.has_header("Content-Encoding")) << describe(fill);
    EXPECT_TRUE(fill.body == json) << describe(fill);
    EXPECT_TRUE(CacheIs(hit_id, "HIT"));
    EXPECT_TRUE(hit_id.body == json) << describe(hit_id);
    EXPECT_TRUE(CacheIs(hit_gz, "HIT"));
    EXPECT_EQ(hit_gz.header("Content-Encoding"), "gzip") << describe(hit_gz);
    auto plain = gunzip(hit_gz.body);
    ASSERT_TRUE(plain) << describe(hit_gz);
    EXPECT_TRUE(*plain == json);

    // origin saw: the two pass-throughs and one fill
    EXPECT_EQ(origin.request_count(), 3u);
}

TEST_F(GzipUpstream, CachedRouteFromAGzippingOriginServesBothClients) {
    ASSERT_EQ(seed_positions(sim(), 1), "");
    auto proxy = StartProxy(with_rules(positions_and_balance_rules()));

    // client: user1 GET positions with gzip (fill), then with none, then with gzip again
    Response fill = http_request(proxy->port(), "GET", positions_target(), bearer_accepting(1, "gzip"));
    Response id = http_request(proxy->port(), "GET", positions_target(), bearer(1));
    Response gz = http_request(proxy->port(), "GET", positions_target(), bearer_accepting(1, "gzip"));

    // client got (identity): the JSON as is, 300 positions
    ASSERT_EQ(id.status, 200u) << describe(id);
    EXPECT_TRUE(CacheIs(id, "HIT"));
    EXPECT_FALSE(id.has_header("Content-Encoding")) << describe(id);
    EXPECT_EQ(id.header("Content-Length"), std::to_string(id.body.size())) << describe(id);
    EXPECT_EQ(positions_count(id.body), 300) << describe(id);
    EXPECT_TRUE(varies_on_accept_encoding(id)) << describe(id);

    // client got (gzip, fill and HIT): gzip, decoding once to the identity body
    for (const Response* r : {&fill, &gz}) {
        ASSERT_EQ(r->status, 200u) << describe(*r);
        EXPECT_EQ(r->header("Content-Encoding"), "gzip") << describe(*r);
        EXPECT_EQ(r->header("Content-Length"), std::to_string(r->body.size())) << describe(*r);
        auto plain = gunzip(r->body);
        ASSERT_TRUE(plain) << describe(*r);
        EXPECT_TRUE(*plain == id.body) << "decoded gzip (" << plain->size() << " B) != identity (" << id.body.size()
                                       << " B); decoded starts: " << plain->substr(0, 80);
    }
    EXPECT_TRUE(CacheIs(fill, "MISS"));
    EXPECT_TRUE(CacheIs(gz, "HIT"));

    // origin saw: one positions request
    EXPECT_EQ(sim().stats().route("positions"), 1) << sim().stats().json;
}

TEST_F(GzipUpstream, PassThroughFromAGzippingOrigin) {
    auto proxy = StartProxy();
    const std::string stream = "/stream?n=300000&chunk=7000";

    // what the origin itself sends a gzip client (Starlette: deterministic but for the MTIME bytes 4..7)
    Response direct = sim().direct("GET", stream, accept_encoding("gzip"));
    ASSERT_EQ(direct.header("Content-Encoding"), "gzip") << describe(direct);

    // client: GET the stream with Accept-Encoding: gzip
    Response gz = http_request(proxy->port(), "GET", stream, accept_encoding("gzip"));
    // client got: the origin's gzip, untouched (decodes once to the 300000 bytes)
    ASSERT_EQ(gz.status, 200u) << describe(gz);
    EXPECT_EQ(gz.header("Content-Encoding"), "gzip") << describe(gz);
    auto plain = gunzip(gz.body);
    ASSERT_TRUE(plain) << describe(gz);
    EXPECT_EQ(plain->size(), 300000u);
    EXPECT_EQ(first_sim_bytes_mismatch(*plain), std::string::npos);
    ASSERT_EQ(gz.body.size(), direct.body.size()) << "not the origin's gzip (re-encoded?)";
    std::string a = gz.body, b = direct.body;
    for (std::size_t i = 4; i < 8 && i < a.size(); ++i) a[i] = b[i] = 0;  // MTIME
    EXPECT_TRUE(a == b) << "not the origin's gzip bytes";

    // client: GET the stream with no Accept-Encoding (the origin does not encode it)
    Response id = http_request(proxy->port(), "GET", stream);
    ASSERT_EQ(id.status, 200u) << describe(id);
    EXPECT_FALSE(id.has_header("Content-Encoding")) << describe(id);
    EXPECT_EQ(id.body.size(), 300000u);
    EXPECT_EQ(first_sim_bytes_mismatch(id.body), std::string::npos);

    // client: Accept-Encoding: gzip;q=0 (the origin still gzips: "gzip" is in the value)
    Response refused = http_request(proxy->port(), "GET", stream, accept_encoding("gzip;q=0"));
    // client got: the stream decoded, no Content-Encoding
    ASSERT_EQ(refused.status, 200u) << describe(refused);
    EXPECT_FALSE(refused.has_header("Content-Encoding")) << describe(refused);
    EXPECT_EQ(refused.body.size(), 300000u) << describe(refused);
    EXPECT_EQ(first_sim_bytes_mismatch(refused.body), std::string::npos);

    // the same for /bytes (octet-stream, which the origin gzips anyway)
    Response bytes_gz = http_request(proxy->port(), "GET", "/bytes?n=300000", accept_encoding("gzip"));
    ASSERT_EQ(bytes_gz.status, 200u) << describe(bytes_gz);
    EXPECT_EQ(bytes_gz.header("Content-Encoding"), "gzip") << describe(bytes_gz);
    auto bytes_plain = gunzip(bytes_gz.body);
    ASSERT_TRUE(bytes_plain) << describe(bytes_gz);
    EXPECT_EQ(bytes_plain->size(), 300000u);
    EXPECT_EQ(first_sim_bytes_mismatch(*bytes_plain), std::string::npos);
    Response bytes_refused = http_request(proxy->port(), "GET", "/bytes?n=300000", accept_encoding("gzip;q=0"));
    ASSERT_EQ(bytes_refused.status, 200u) << describe(bytes_refused);
    EXPECT_FALSE(bytes_refused.has_header("Content-Encoding")) << describe(bytes_refused);
    EXPECT_EQ(bytes_refused.body.size(), 300000u) << describe(bytes_refused);
    EXPECT_EQ(first_sim_bytes_mismatch(bytes_refused.body), std::string::npos);
    Response bytes_id = http_request(proxy->port(), "GET", "/bytes?n=300000");
    ASSERT_EQ(bytes_id.status, 200u) << describe(bytes_id);
    EXPECT_FALSE(bytes_id.has_header("Content-Encoding")) << describe(bytes_id);
    EXPECT_EQ(bytes_id.header("Content-Length"), "300000") << describe(bytes_id);
    EXPECT_EQ(first_sim_bytes_mismatch(bytes_id.body), std::string::npos);

    // origin saw: seven requests (the direct one included)
    EXPECT_EQ(sim().stats().route("other"), 7) << sim().stats().json;
}

// --------------------------------------------------------------- switched off

TEST_F(Gzip, DisabledCompressionServesIdentityToGzipClients) {
    ASSERT_EQ(seed_positions(sim(), 1), "");
    auto proxy = StartProxy(
        with_rules(positions_and_balance_rules(), [](ProxyConfig& c) { c.set("compression.enabled", "false"); }));

    // client: user1 GET positions with Accept-Encoding: gzip, twice (fill, HIT)
    Response fill = http_request(proxy->port(), "GET", positions_target(), bearer_accepting(1, "gzip"));
    Response hit = http_request(proxy->port(), "GET", positions_target(), bearer_accepting(1, "gzip"));
    // client got: the JSON as is, with its length, both times
    for (const Response* r : {&fill, &hit}) {
        ASSERT_EQ(r->status, 200u) << describe(*r);
        EXPECT_FALSE(r->has_header("Content-Encoding")) << describe(*r);
        EXPECT_EQ(r->header("Content-Length"), std::to_string(r->body.size())) << describe(*r);
        EXPECT_EQ(positions_count(r->body), 300) << describe(*r);
    }
    EXPECT_TRUE(CacheIs(fill, "MISS"));
    EXPECT_TRUE(CacheIs(hit, "HIT"));
    EXPECT_EQ(hit.body, fill.body);

    // client: a pass-through text stream with Accept-Encoding: gzip
    Response s = http_request(proxy->port(), "GET", "/stream?n=100000&chunk=8192", accept_encoding("gzip"));
    // client got: the bytes as is
    ASSERT_EQ(s.status, 200u) << describe(s);
    EXPECT_FALSE(s.has_header("Content-Encoding")) << describe(s);
    EXPECT_EQ(s.body.size(), 100000u);
    EXPECT_EQ(first_sim_bytes_mismatch(s.body), std::string::npos);

    // origin saw: one positions request
    EXPECT_EQ(positions_count_seen(), 1) << sim().stats().json;
}

}  // namespace
}  // namespace cacheproxy::e2e
