#include "yaml/units.hpp"

#include <gtest/gtest.h>

#include <limits>
#include <vector>

using namespace std::chrono_literals;
using cacheproxy::config::format_duration;
using cacheproxy::config::format_host_port;
using cacheproxy::config::format_size;
using cacheproxy::config::HostPort;
using cacheproxy::config::is_loopback_host;
using cacheproxy::config::parse_duration;
using cacheproxy::config::parse_host_port;
using cacheproxy::config::parse_http_url;
using cacheproxy::config::parse_size;

TEST(UnitsTest, DurationAcceptsIntegerAndUnit) {
    EXPECT_EQ(parse_duration("300ms"), 300ms);
    EXPECT_EQ(parse_duration("15s"), 15s);
    EXPECT_EQ(parse_duration("2m"), 2min);
    EXPECT_EQ(parse_duration("1h"), 1h);
    EXPECT_EQ(parse_duration("0s"), 0ms);
    EXPECT_EQ(parse_duration("0ms"), 0ms);
    EXPECT_EQ(parse_duration("015s"), 15s);
}

TEST(UnitsTest, DurationRejectsEverythingElse) {
    for (const char* bad : {"", "15", "0", "s", "ms", "-5s", "+5s", "1.5s", "15 s", " 15s", "15s ", "15S", "15sec",
                            "1d", "15us", "abc", "5 sec", "1h30m", "0x10s"})
        EXPECT_EQ(parse_duration(bad), std::nullopt) << '"' << bad << '"';
}

TEST(UnitsTest, DurationRejectsOverflow) {
    EXPECT_EQ(parse_duration("9223372036854775807h"), std::nullopt);
    EXPECT_EQ(parse_duration("99999999999999999999999s"), std::nullopt);
    EXPECT_EQ(parse_duration("9223372036854775807ms"), std::chrono::milliseconds::max());
    EXPECT_EQ(parse_duration("9223372036854776s"), std::nullopt);
}

TEST(UnitsTest, SizeAcceptsBytesBinaryAndDecimalUnits) {
    EXPECT_EQ(parse_size("512"), 512u);
    EXPECT_EQ(parse_size("0"), 0u);
    EXPECT_EQ(parse_size("512B"), 512u);
    EXPECT_EQ(parse_size("16KiB"), 16u * 1024);
    EXPECT_EQ(parse_size("10MiB"), 10u * 1024 * 1024);
    EXPECT_EQ(parse_size("1GiB"), 1024u * 1024 * 1024);
    EXPECT_EQ(parse_size("10KB"), 10'000u);
    EXPECT_EQ(parse_size("10MB"), 10'000'000u);
    EXPECT_EQ(parse_size("1GB"), 1'000'000'000u);
}

TEST(UnitsTest, SizeRejectsGarbageNegativeAndOverflow) {
    for (const char* bad : {"", "B", "KiB", "-1", "-1KiB", "+1", "1.5MiB", "10 MiB", "10mib", "10kb", "10K", "10Ki",
                            "10TiB", "abc", "10MiBs", " 10"})
        EXPECT_EQ(parse_size(bad), std::nullopt) << '"' << bad << '"';
    EXPECT_EQ(parse_size("18446744073709551616"), std::nullopt);
    EXPECT_EQ(parse_size("17179869184GiB"), std::nullopt);
    EXPECT_EQ(parse_size("18446744073709551615"), std::numeric_limits<std::size_t>::max());
}

TEST(UnitsTest, FormatDurationUsesTheLargestExactUnit) {
    EXPECT_EQ(format_duration(0ms), "0s");
    EXPECT_EQ(format_duration(300ms), "300ms");
    EXPECT_EQ(format_duration(1500ms), "1500ms");
    EXPECT_EQ(format_duration(15s), "15s");
    EXPECT_EQ(format_duration(90s), "90s");
    EXPECT_EQ(format_duration(2min), "2m");
    EXPECT_EQ(format_duration(1h), "1h");
    EXPECT_EQ(format_duration(300s), "5m");
}

TEST(UnitsTest, FormatSizeUsesTheLargestExactUnit) {
    EXPECT_EQ(format_size(0), "0B");
    EXPECT_EQ(format_size(256), "256B");
    EXPECT_EQ(format_size(16 * 1024), "16KiB");
    EXPECT_EQ(format_size(1024 * 1024), "1MiB");
    EXPECT_EQ(format_size(10'000'000), "10MB");
    EXPECT_EQ(format_size(1'000), "1KB");
    EXPECT_EQ(format_size(1024u * 1024 * 1024), "1GiB");
}

TEST(UnitsTest, FormattedValuesParseBack) {
    for (std::chrono::milliseconds d : std::vector<std::chrono::milliseconds>{0ms, 1ms, 999ms, 1500ms, 15s, 61s, 2min, 90min, 1h, 48h})
        EXPECT_EQ(parse_duration(format_duration(d)), d);
    for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{1000}, std::size_t{1024}, std::size_t{1536},
                          std::size_t{1024000}, std::size_t{3} << 30, std::numeric_limits<std::size_t>::max()})
        EXPECT_EQ(parse_size(format_size(n)), n);
}

TEST(UnitsTest, HostPortAcceptsNamesIpv4AndBracketedIpv6) {
    HostPort hp;
    EXPECT_EQ(parse_host_port("127.0.0.1:8080", hp), std::nullopt);
    EXPECT_EQ(hp.host, "127.0.0.1");
    EXPECT_EQ(hp.port, 8080);
    EXPECT_EQ(parse_host_port("localhost:0", hp), std::nullopt);
    EXPECT_EQ(hp.host, "localhost");
    EXPECT_EQ(hp.port, 0);
    EXPECT_EQ(parse_host_port("[::1]:9901", hp), std::nullopt);
    EXPECT_EQ(hp.host, "::1");
    EXPECT_EQ(hp.port, 9901);
    EXPECT_EQ(format_host_port(hp), "[::1]:9901");
    EXPECT_EQ(parse_host_port("0.0.0.0:65535", hp), std::nullopt);
    EXPECT_EQ(hp.port, 65535);
}

TEST(UnitsTest, HostPortRejectsMalformedAddresses) {
    for (const char* bad : {"", "127.0.0.1", ":8080", "host:", "host:65536", "host:-1", "host:80x", "::1:80", "[::1]",
                            "[::1]80", "[::1:80", "[zz]:80", "a b:80", "host:123456"}) {
        HostPort hp{"unchanged", 1};
        EXPECT_NE(parse_host_port(bad, hp), std::nullopt) << '"' << bad << '"';
        EXPECT_EQ(hp.host, "unchanged");
    }
    HostPort hp;
    EXPECT_NE(parse_host_port("::1:80", hp)->find("brackets"), std::string::npos);
}

TEST(UnitsTest, HttpUrlAcceptsHostPortAndDefaultsTo80) {
    HostPort hp;
    EXPECT_EQ(parse_http_url("http://127.0.0.1:8765", hp), std::nullopt);
    EXPECT_EQ(hp.host, "127.0.0.1");
    EXPECT_EQ(hp.port, 8765);
    EXPECT_EQ(parse_http_url("http://legacy.internal", hp), std::nullopt);
    EXPECT_EQ(hp.host, "legacy.internal");
    EXPECT_EQ(hp.port, 80);
    EXPECT_EQ(parse_http_url("http://legacy:8000/", hp), std::nullopt);
    EXPECT_EQ(hp.port, 8000);
    EXPECT_EQ(parse_http_url("HTTP://[::1]", hp), std::nullopt);
    EXPECT_EQ(hp.host, "::1");
    EXPECT_EQ(hp.port, 80);
}

TEST(UnitsTest, HttpUrlRejectsHttpsPathsAndOtherForms) {
    HostPort hp;
    auto https = parse_http_url("https://127.0.0.1:8765", hp);
    ASSERT_NE(https, std::nullopt);
    EXPECT_NE(https->find("https is not supported"), std::string::npos) << *https;
    auto path = parse_http_url("http://127.0.0.1:8765/api", hp);
    ASSERT_NE(path, std::nullopt);
    EXPECT_NE(path->find("path"), std::string::npos) << *path;
    for (const char* bad : {"127.0.0.1:8765", "http://h:1?x=1", "http://h:1#f", "http://h:0", "http://u@h:1",
                            "ftp://h:21", "http://", "http://:80", "http://h:99999"})
        EXPECT_NE(parse_http_url(bad, hp), std::nullopt) << '"' << bad << '"';
}

TEST(UnitsTest, LoopbackHosts) {
    for (const char* host : {"127.0.0.1", "127.1.2.3", "::1", "localhost", "LOCALHOST"})
        EXPECT_TRUE(is_loopback_host(host)) << host;
    for (const char* host : {"0.0.0.0", "::", "10.0.0.1", "192.168.1.1", "example.com", "128.0.0.1", "localhost.evil"})
        EXPECT_FALSE(is_loopback_host(host)) << host;
}
