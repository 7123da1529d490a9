// format_imf_fixdate() and DateCache: the Date every response carries, at fixed times (no clock).
#include "http/date.hpp"

#include <gtest/gtest.h>

#include <ctime>
#include <limits>
#include <string>

namespace cacheproxy::http {
namespace {

std::string fixdate(std::time_t t) {
    char out[imf_fixdate_size];
    format_imf_fixdate(t, out);
    return std::string(out, imf_fixdate_size);
}

TEST(ImfFixdate, KnownTimes) {
    EXPECT_EQ(fixdate(0), "Thu, 01 Jan 1970 00:00:00 GMT");
    EXPECT_EQ(fixdate(784111777), "Sun, 06 Nov 1994 08:49:37 GMT");  // RFC 9110 5.6.7's example
    EXPECT_EQ(fixdate(951782400), "Tue, 29 Feb 2000 00:00:00 GMT");  // a leap day of a 400-year
    EXPECT_EQ(fixdate(1709208000), "Thu, 29 Feb 2024 12:00:00 GMT");
    EXPECT_EQ(fixdate(4107542400), "Mon, 01 Mar 2100 00:00:00 GMT");  // 2100 is no leap year
    EXPECT_EQ(fixdate(-1), "Wed, 31 Dec 1969 23:59:59 GMT");
    EXPECT_EQ(fixdate(-2208988800), "Mon, 01 Jan 1900 00:00:00 GMT");
    EXPECT_EQ(fixdate(253402300799), "Fri, 31 Dec 9999 23:59:59 GMT");
}

TEST(ImfFixdate, OutOfRangeIsClampedToFourDigitYears) {
    if constexpr (sizeof(std::time_t) < 8) GTEST_SKIP() << "32-bit time_t";
    EXPECT_EQ(fixdate(std::numeric_limits<std::time_t>::max()), "Fri, 31 Dec 9999 23:59:59 GMT");
    EXPECT_EQ(fixdate(std::numeric_limits<std::time_t>::min()), "Sat, 01 Jan 0000 00:00:00 GMT");
}

TEST(ImfFixdate, AgreesWithGmtimeAndStrftime) {
    // 1900 to 2200, in steps that land on every hour, minute, second and weekday.
    for (std::time_t t = -2208988800; t < 7258118400; t += 86400 * 3 + 3607 * 7 + 13) {
        std::tm tm{};
        ASSERT_NE(gmtime_r(&t, &tm), nullptr);
        char want[64];
        const auto n = std::strftime(want, sizeof want, "%a, %d %b %Y %H:%M:%S GMT", &tm);  // "C" locale
        ASSERT_EQ(fixdate(t), std::string(want, n)) << t;
    }
}

TEST(DateCache, FormatsOncePerSecond) {
    DateCache cache;
    const auto a = cache.at(784111777);
    EXPECT_EQ(a, "Sun, 06 Nov 1994 08:49:37 GMT");
    const auto same = cache.at(784111777);
    EXPECT_EQ(same.data(), a.data());  // the same bytes, not formatted again
    EXPECT_EQ(cache.at(784111778), "Sun, 06 Nov 1994 08:49:38 GMT");
    EXPECT_EQ(cache.at(784111777), "Sun, 06 Nov 1994 08:49:37 GMT");  // back again: reformatted
}

TEST(DateCache, HoldsTheWholeHeaderLine) {
    DateCache cache;
    EXPECT_EQ(cache.line_at(784111777), "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n");
    EXPECT_EQ(cache.at(784111777), "Sun, 06 Nov 1994 08:49:37 GMT");
    EXPECT_EQ(cache.line_at(0), "Date: Thu, 01 Jan 1970 00:00:00 GMT\r\n");
    EXPECT_EQ(cache.line_at(0).size(), DateCache::line_size);
}

TEST(DateCache, TheFirstCallIsRightForAnySecond) {
    DateCache a, b, c;
    EXPECT_EQ(a.at(0), "Thu, 01 Jan 1970 00:00:00 GMT");
    EXPECT_EQ(b.at(-1), "Wed, 31 Dec 1969 23:59:59 GMT");
    constexpr auto earliest = std::numeric_limits<std::time_t>::min();
    EXPECT_EQ(c.at(earliest), fixdate(earliest));  // the starting text is that second's
    DateCache d;
    EXPECT_EQ(d.line_at(earliest), "Date: " + fixdate(earliest) + "\r\n");
}

}  // namespace
}  // namespace cacheproxy::http
