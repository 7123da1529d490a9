#include "encoding/accept_encoding.hpp"

#include <gtest/gtest.h>

#include <array>
#include <string_view>

using namespace cacheproxy::encoding;

namespace {

Coding present(std::string_view v) { return negotiate(v, true); }

}  // namespace

TEST(AcceptEncoding, AbsentHeaderGetsIdentity) {
    EXPECT_EQ(negotiate("", false), Coding::identity);
    EXPECT_EQ(negotiate("gzip", false), Coding::identity);  // the value is ignored when absent
    EXPECT_EQ(negotiate(std::span<const std::string_view>{}), Coding::identity);
    EXPECT_FALSE(accepts_gzip("", false));
}

TEST(AcceptEncoding, EmptyHeaderMeansNoCoding) {
    EXPECT_EQ(present(""), Coding::identity);
    EXPECT_EQ(present("   "), Coding::identity);
    EXPECT_EQ(present(" , ,"), Coding::identity);
}

TEST(AcceptEncoding, Gzip) {
    EXPECT_EQ(present("gzip"), Coding::gzip);
    EXPECT_TRUE(accepts_gzip("gzip", true));
    EXPECT_EQ(present("gzip, deflate, br, zstd"), Coding::gzip);  // what browsers send
}

TEST(AcceptEncoding, CaseInsensitive) {
    EXPECT_EQ(present("GZIP"), Coding::gzip);
    EXPECT_EQ(present("GZip;Q=1"), Coding::gzip);
    EXPECT_EQ(present("GZip;Q=0.5, IDENTITY;Q=0.4"), Coding::gzip);
    EXPECT_EQ(present("gzip;Q=0"), Coding::identity);
    EXPECT_EQ(present("IDENTITY;q=0"), Coding::none);
    EXPECT_EQ(present("X-GZIP"), Coding::gzip);
}

TEST(AcceptEncoding, XGzipIsGzip) {
    EXPECT_EQ(present("x-gzip"), Coding::gzip);
    EXPECT_EQ(present("x-gzip;q=0"), Coding::identity);
}

TEST(AcceptEncoding, GzipQZeroIsNotAcceptable) {
    EXPECT_EQ(present("gzip;q=0"), Coding::identity);
    EXPECT_EQ(present("gzip;q=0.0"), Coding::identity);
    EXPECT_EQ(present("gzip;q=0.000"), Coding::identity);
    EXPECT_EQ(present("gzip;q=0."), Coding::identity);
    EXPECT_FALSE(accepts_gzip("gzip;q=0", true));
}

TEST(AcceptEncoding, QValuesCompareGzipWithIdentity) {
    EXPECT_EQ(present("gzip; q=0.5, identity;q=1"), Coding::identity);
    // Identity unlisted: acceptable, but not preferred over a gzip the client named.
    EXPECT_EQ(present("gzip;q=0.5"), Coding::gzip);
    EXPECT_EQ(present("br, gzip;q=0.5"), Coding::gzip);
    EXPECT_EQ(present("*;q=0.8, gzip;q=0.5"), Coding::identity);  // '*' names identity's weight
    EXPECT_EQ(present("gzip;q=1, identity;q=0.5"), Coding::gzip);
    EXPECT_EQ(present("gzip;q=0.5, identity;q=0.5"), Coding::gzip);  // tie: the smaller body
    EXPECT_EQ(present("gzip;q=0.001, identity;q=0"), Coding::gzip);
    EXPECT_EQ(present("identity;q=0.5, gzip"), Coding::gzip);
    EXPECT_EQ(present("gzip;q=1.000"), Coding::gzip);
    EXPECT_EQ(present("gzip;q=1."), Coding::gzip);
}

TEST(AcceptEncoding, IdentityQZeroAlone) {
    EXPECT_EQ(present("identity;q=0"), Coding::none);
    EXPECT_EQ(present("identity;q=0, gzip"), Coding::gzip);
    EXPECT_EQ(present("identity;q=0, gzip;q=0"), Coding::none);
    EXPECT_EQ(present("identity;q=0, deflate, br"), Coding::none);  // nothing we can send
    EXPECT_EQ(present("identity;q=0, *"), Coding::gzip);
}

TEST(AcceptEncoding, Star) {
    EXPECT_EQ(present("*"), Coding::gzip);
    EXPECT_EQ(present("*;q=0.5"), Coding::gzip);  // gzip and identity both 0.5: tie
    EXPECT_EQ(present("*;q=0.5, identity"), Coding::identity);
    EXPECT_EQ(present("*, gzip;q=0"), Coding::identity);  // the explicit entry wins over *
    EXPECT_EQ(present("br, *"), Coding::gzip);
}

// RFC 9110 12.5.3 rule 2: identity is acceptable by default "unless specifically
// excluded by ... "identity;q=0" or "*;q=0" without a more specific entry for
// "identity"". So `*;q=0` alone leaves nothing acceptable; identity listed keeps it.
TEST(AcceptEncoding, StarQZero) {
    EXPECT_EQ(present("*;q=0"), Coding::none);
    EXPECT_EQ(present("*;q=0, identity"), Coding::identity);
    EXPECT_EQ(present("*;q=0, identity;q=0.1"), Coding::identity);
    EXPECT_EQ(present("*;q=0, identity;q=0"), Coding::none);
    EXPECT_EQ(present("*;q=0, gzip"), Coding::gzip);
    EXPECT_EQ(present("*;q=0, x-gzip;q=0.2"), Coding::gzip);
    EXPECT_EQ(present("gzip, *;q=0"), Coding::gzip);  // order does not matter
}

TEST(AcceptEncoding, OtherCodingsOnlyGetIdentity) {
    EXPECT_EQ(present("deflate, br"), Coding::identity);
    EXPECT_EQ(present("br;q=1, zstd"), Coding::identity);
    EXPECT_EQ(present("gzipx, xgzip, gzip2"), Coding::identity);  // no prefix matching
}

TEST(AcceptEncoding, MalformedQCountsAsZero) {
    EXPECT_EQ(present("gzip;q=abc"), Coding::identity);
    EXPECT_EQ(present("gzip;q=1.5"), Coding::identity);
    EXPECT_EQ(present("gzip;q=2"), Coding::identity);
    EXPECT_EQ(present("gzip;q=-1"), Coding::identity);
    EXPECT_EQ(present("gzip;q=0.1234"), Coding::identity);
    EXPECT_EQ(present("gzip;q=.5"), Coding::identity);
    EXPECT_EQ(present("gzip;q="), Coding::identity);
    EXPECT_EQ(present("gzip;q"), Coding::identity);
    EXPECT_EQ(present("*, gzip;q=abc"), Coding::identity);  // not rescued by *
    EXPECT_EQ(present("identity;q=abc"), Coding::none);     // the same rule for identity
    // A malformed member does not spoil the others.
    EXPECT_EQ(present("br;q=zzz, gzip"), Coding::gzip);
}

TEST(AcceptEncoding, OtherParametersAreIgnored) {
    EXPECT_EQ(present("gzip;level=9"), Coding::gzip);
    EXPECT_EQ(present("gzip;foo=bar;q=0"), Coding::identity);
    EXPECT_EQ(present("gzip;;q=0.7, identity;q=0.5"), Coding::gzip);
}

TEST(AcceptEncoding, Whitespace) {
    EXPECT_EQ(present("  gzip  "), Coding::gzip);
    EXPECT_EQ(present("\tgzip\t;\tq=0.5\t,\tidentity ; q=1 "), Coding::identity);
    EXPECT_EQ(present("gzip ; q=0"), Coding::identity);
    EXPECT_EQ(present("deflate ,gzip"), Coding::gzip);
    EXPECT_EQ(present(",,gzip,,"), Coding::gzip);
}

TEST(AcceptEncoding, MultipleFieldLines) {
    const std::array<std::string_view, 2> lines = {"deflate", "gzip"};
    EXPECT_EQ(negotiate(lines), Coding::gzip);
    EXPECT_TRUE(accepts_gzip(lines));

    const std::array<std::string_view, 2> excluded = {"gzip", "identity;q=1, gzip;q=0"};
    EXPECT_EQ(negotiate(excluded), Coding::identity);  // a coding listed twice: the lowest q

    const std::array<std::string_view, 2> none = {"identity;q=0", "br"};
    EXPECT_EQ(negotiate(none), Coding::none);

    const std::array<std::string_view, 1> empty_line = {""};
    EXPECT_EQ(negotiate(empty_line), Coding::identity);  // present and empty, not absent

    EXPECT_EQ(present("deflate, gzip"), negotiate(lines));  // joined == split
}

TEST(AcceptEncoding, Weights) {
    const std::string_view v = "gzip;q=0.25, *;q=0.5";
    const Weights w = weigh(std::span<const std::string_view>(&v, 1));
    EXPECT_EQ(w.gzip, 250);
    EXPECT_EQ(w.identity, 500);
    const std::string_view none = "br";
    const Weights d = weigh(std::span<const std::string_view>(&none, 1));
    EXPECT_EQ(d.gzip, 0);
    EXPECT_EQ(d.identity, kQMax);
}

TEST(AcceptEncoding, ParseQvalue) {
    EXPECT_EQ(parse_qvalue("0"), 0);
    EXPECT_EQ(parse_qvalue("1"), 1000);
    EXPECT_EQ(parse_qvalue("0.5"), 500);
    EXPECT_EQ(parse_qvalue("0.05"), 50);
    EXPECT_EQ(parse_qvalue("0.123"), 123);
    EXPECT_EQ(parse_qvalue("1.0"), 1000);
    EXPECT_EQ(parse_qvalue("1.000"), 1000);
    for (std::string_view bad : {"", "abc", "1.5", "1.001", "2", "0.1234", ".5", "-0", "0,5", "0.5 ", "+1", "1.0000"})
        EXPECT_FALSE(parse_qvalue(bad).has_value()) << bad;
}

TEST(ContentEncoding, Applied) {
    EXPECT_EQ(applied_coding(""), Applied::identity);
    EXPECT_EQ(applied_coding("identity"), Applied::identity);
    EXPECT_EQ(applied_coding("gzip"), Applied::gzip);
    EXPECT_EQ(applied_coding(" GZIP "), Applied::gzip);
    EXPECT_EQ(applied_coding("x-gzip"), Applied::gzip);
    EXPECT_EQ(applied_coding("br"), Applied::other);
    EXPECT_EQ(applied_coding("deflate"), Applied::other);
    EXPECT_EQ(applied_coding("gzip, gzip"), Applied::other);  // stacked: we only undo one
    EXPECT_EQ(applied_coding("deflate, gzip"), Applied::other);
    EXPECT_EQ(applied_coding("gzip;q=1"), Applied::other);  // not a coding we know
}
