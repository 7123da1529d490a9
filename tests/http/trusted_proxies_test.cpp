/// server.trusted_proxies: parsing an entry, matching a peer (IPv4, IPv6,
/// IPv4-mapped IPv6), and what is refused.

#include "http/trusted_proxies.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

using cacheproxy::http::parse_network;
using cacheproxy::http::TrustedProxies;
using boost::asio::ip::make_address;

namespace {

TrustedProxies list(std::vector<std::string> entries) { return TrustedProxies(entries); }

std::string refusal(const std::string& text) {
    std::string why;
    EXPECT_FALSE(parse_network(text, why).has_value()) << text;
    return why;
}

}  // namespace

TEST(TrustedProxies, EmptyTrustsNoOne) {
    const TrustedProxies none;
    EXPECT_TRUE(none.empty());
    EXPECT_FALSE(none.contains(make_address("127.0.0.1")));
    EXPECT_FALSE(none.contains(make_address("::1")));
}

TEST(TrustedProxies, ASingleAddressMatchesOnlyItself) {
    const auto t = list({"192.0.2.7", "::1"});
    EXPECT_TRUE(t.contains(make_address("192.0.2.7")));
    EXPECT_FALSE(t.contains(make_address("192.0.2.8")));
    EXPECT_TRUE(t.contains(make_address("::1")));
    EXPECT_FALSE(t.contains(make_address("::2")));
    EXPECT_FALSE(t.contains(make_address("127.0.0.1"))) << "::1 is not 127.0.0.1";
}

TEST(TrustedProxies, Ipv4Blocks) {
    const auto t = list({"10.0.0.0/8", "172.16.0.0/12", "192.168.1.128/25"});
    EXPECT_TRUE(t.contains(make_address("10.255.1.2")));
    EXPECT_TRUE(t.contains(make_address("172.31.255.255")));
    EXPECT_FALSE(t.contains(make_address("172.32.0.0")));
    EXPECT_TRUE(t.contains(make_address("192.168.1.200")));
    EXPECT_FALSE(t.contains(make_address("192.168.1.127")));
    EXPECT_FALSE(t.contains(make_address("11.0.0.1")));
}

TEST(TrustedProxies, Ipv6Blocks) {
    const auto t = list({"2001:db8::/32", "fd00::/8", "fe80::1:0/112"});
    EXPECT_TRUE(t.contains(make_address("2001:db8:ffff::1")));
    EXPECT_FALSE(t.contains(make_address("2001:db9::1")));
    EXPECT_TRUE(t.contains(make_address("fdab::1")));
    EXPECT_FALSE(t.contains(make_address("fc00::1")));
    EXPECT_TRUE(t.contains(make_address("fe80::1:ffff")));
    EXPECT_FALSE(t.contains(make_address("fe80::2:0")));
    EXPECT_FALSE(t.contains(make_address("10.0.0.1")));
}

TEST(TrustedProxies, ZeroPrefixMatchesTheWholeFamily) {
    const auto v4 = list({"0.0.0.0/0"});
    EXPECT_TRUE(v4.contains(make_address("203.0.113.9")));
    EXPECT_FALSE(v4.contains(make_address("2001:db8::1")));
    const auto v6 = list({"::/0"});
    EXPECT_TRUE(v6.contains(make_address("2001:db8::1")));
    EXPECT_FALSE(v6.contains(make_address("203.0.113.9")));
}

TEST(TrustedProxies, AnIpv4MappedPeerMatchesItsIpv4Entry) {
    // A dual-stack listener reports an IPv4 client as ::ffff:a.b.c.d.
    const auto t = list({"127.0.0.1", "10.0.0.0/8"});
    EXPECT_TRUE(t.contains(make_address("::ffff:127.0.0.1")));
    EXPECT_TRUE(t.contains(make_address("::ffff:10.1.2.3")));
    EXPECT_FALSE(t.contains(make_address("::ffff:11.1.2.3")));
    // ... and an entry written in the mapped form is the IPv4 block it carries.
    const auto mapped = list({"::ffff:10.0.0.0/104"});
    EXPECT_TRUE(mapped.contains(make_address("10.9.9.9")));
    EXPECT_TRUE(mapped.contains(make_address("::ffff:10.9.9.9")));
    EXPECT_FALSE(mapped.contains(make_address("11.0.0.1")));
}

TEST(TrustedProxies, ParseReportsWhy) {
    EXPECT_NE(refusal("localhost").find("not an IPv4 or IPv6 address"), std::string::npos);
    EXPECT_NE(refusal("").find("not an IPv4 or IPv6 address"), std::string::npos);
    EXPECT_NE(refusal("/8").find("not an IPv4 or IPv6 address"), std::string::npos);
    EXPECT_NE(refusal(" 10.0.0.1").find("not an IPv4"), std::string::npos);
    EXPECT_NE(refusal("10.0.0.256").find("not an IPv4"), std::string::npos);
    EXPECT_NE(refusal("10.0.0.0/33").find("0..32"), std::string::npos);
    EXPECT_NE(refusal("::/129").find("0..128"), std::string::npos);
    EXPECT_NE(refusal("10.0.0.0/").find("prefix length"), std::string::npos);
    EXPECT_NE(refusal("10.0.0.0/-1").find("prefix length"), std::string::npos);
    EXPECT_NE(refusal("10.0.0.0/8x").find("prefix length"), std::string::npos);
    EXPECT_NE(refusal("10.0.0.0/0008").find("prefix length"), std::string::npos);
    EXPECT_NE(refusal("::ffff:10.0.0.0/90").find("96..128"), std::string::npos);
    EXPECT_NE(refusal("fe80::1%eth0").find("zone"), std::string::npos);
    // A typo that would trust another block than meant.
    EXPECT_NE(refusal("10.0.0.1/8").find("past the prefix"), std::string::npos);
    EXPECT_NE(refusal("2001:db8::1/32").find("past the prefix"), std::string::npos);
}

TEST(TrustedProxies, ParseAcceptsEveryForm) {
    std::string why;
    for (const char* ok : {"127.0.0.1", "127.0.0.1/32", "10.0.0.0/8", "0.0.0.0/0", "::1", "::1/128", "::/0",
                           "2001:db8::/32", "::ffff:192.0.2.1"}) {
        EXPECT_TRUE(parse_network(ok, why).has_value()) << ok << ": " << why;
    }
    const auto n = parse_network("192.168.0.0/16", why);
    ASSERT_TRUE(n);
    EXPECT_TRUE(n->v4);
    EXPECT_EQ(n->prefix, 16u);
}
