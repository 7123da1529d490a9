// RESP2 encoding and parsing (proxy/redis/resp.hpp) and the cluster helpers
// that need no server (key_slot, parse_address in proxy/redis/client.hpp).

#include "redis/client.hpp"
#include "redis/errors.hpp"
#include "redis/resp.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace cacheproxy::redis {
namespace {

/// Every reply in `bytes`, fed in one go; fails the test on a protocol error.
std::vector<Reply> parse_all(std::string_view bytes) {
    Parser p;
    p.feed(bytes);
    std::vector<Reply> out;
    boost::system::error_code ec;
    while (auto r = p.next(ec)) out.push_back(std::move(*r));
    EXPECT_FALSE(ec) << ec.message();
    return out;
}

/// A literal with its NULs, without the terminating one.
template <std::size_t N>
std::string bin(const char (&literal)[N]) {
    return std::string(literal, N - 1);
}

bool same(const Reply& a, const Reply& b) {
    if (a.type != b.type || a.integer != b.integer || a.str != b.str || a.elements.size() != b.elements.size())
        return false;
    for (std::size_t i = 0; i < a.elements.size(); ++i)
        if (!same(a.elements[i], b.elements[i])) return false;
    return true;
}

TEST(RespEncode, BinarySafeArguments) {
    const std::string binary = bin("a\0b\r\nc");
    const std::vector<std::string> argv{"SET", binary, ""};
    EXPECT_EQ(encode(std::span<const std::string>(argv)),
              bin("*3\r\n$3\r\nSET\r\n$6\r\na\0b\r\nc\r\n$0\r\n\r\n"));
    const std::vector<std::string_view> views{"PING"};
    EXPECT_EQ(encode(std::span<const std::string_view>(views)), "*1\r\n$4\r\nPING\r\n");
}

TEST(RespParser, EveryType) {
    const auto replies = parse_all("+OK\r\n-ERR bad\r\n:-42\r\n$3\r\nfoo\r\n$-1\r\n*-1\r\n*0\r\n");
    ASSERT_EQ(replies.size(), 7u);
    EXPECT_EQ(replies[0].type, Reply::Type::status);
    EXPECT_EQ(replies[0].str, "OK");
    EXPECT_TRUE(replies[1].is_error());
    EXPECT_EQ(replies[1].str, "ERR bad");
    EXPECT_EQ(replies[2].type, Reply::Type::integer);
    EXPECT_EQ(replies[2].integer, -42);
    EXPECT_EQ(replies[3].type, Reply::Type::string);
    EXPECT_EQ(replies[3].str, "foo");
    EXPECT_TRUE(replies[4].is_nil());  // nil bulk
    EXPECT_TRUE(replies[5].is_nil());  // nil array
    EXPECT_TRUE(replies[6].is_array());
    EXPECT_TRUE(replies[6].elements.empty());
}

TEST(RespParser, NestedArrays) {
    const auto replies = parse_all("*3\r\n:1\r\n*2\r\n$1\r\na\r\n*1\r\n$-1\r\n+x\r\n");
    ASSERT_EQ(replies.size(), 1u);
    const Reply& r = replies[0];
    ASSERT_TRUE(r.is_array());
    ASSERT_EQ(r.elements.size(), 3u);
    EXPECT_EQ(r.elements[0].integer, 1);
    ASSERT_EQ(r.elements[1].elements.size(), 2u);
    EXPECT_EQ(r.elements[1].elements[0].str, "a");
    ASSERT_EQ(r.elements[1].elements[1].elements.size(), 1u);
    EXPECT_TRUE(r.elements[1].elements[1].elements[0].is_nil());
    EXPECT_EQ(r.elements[2].str, "x");
}

TEST(RespParser, SplitAtEveryByte) {
    const std::string bytes = bin("*4\r\n$5\r\nhe\0lo\r\n:7\r\n*2\r\n+s\r\n-E\r\n$-1\r\n+OK\r\n");
    const auto whole = parse_all(bytes);
    ASSERT_EQ(whole.size(), 2u);
    EXPECT_EQ(whole[0].elements[0].str, std::string("he\0lo", 5));
    for (std::size_t cut = 0; cut <= bytes.size(); ++cut) {
        Parser p;
        std::vector<Reply> got;
        boost::system::error_code ec;
        p.feed(std::string_view(bytes).substr(0, cut));
        while (auto r = p.next(ec)) got.push_back(std::move(*r));
        ASSERT_FALSE(ec) << "cut " << cut;
        p.feed(std::string_view(bytes).substr(cut));
        while (auto r = p.next(ec)) got.push_back(std::move(*r));
        ASSERT_FALSE(ec) << "cut " << cut;
        ASSERT_EQ(got.size(), whole.size()) << "cut " << cut;
        for (std::size_t i = 0; i < got.size(); ++i) EXPECT_TRUE(same(got[i], whole[i])) << "cut " << cut;
    }
}

TEST(RespParser, ByteByByte) {
    const std::string bytes = "*2\r\n$3\r\nabc\r\n:12345\r\n";
    Parser p;
    boost::system::error_code ec;
    std::optional<Reply> got;
    for (char c : bytes) {
        ASSERT_FALSE(got);
        p.feed(std::string_view(&c, 1));
        got = p.next(ec);
        ASSERT_FALSE(ec);
    }
    ASSERT_TRUE(got);
    EXPECT_EQ(got->elements[1].integer, 12345);
}

TEST(RespParser, OneMebibyteBulk) {
    std::string value(1 << 20, '\0');
    for (std::size_t i = 0; i < value.size(); ++i) value[i] = static_cast<char>(i * 31 + 7);
    const std::string bytes = "$" + std::to_string(value.size()) + "\r\n" + value + "\r\n";
    Parser p;
    boost::system::error_code ec;
    std::optional<Reply> got;
    for (std::size_t at = 0; at < bytes.size() && !got; at += 4096) {  // as a socket would deliver it
        p.feed(std::string_view(bytes).substr(at, 4096));
        got = p.next(ec);
        ASSERT_FALSE(ec);
    }
    ASSERT_TRUE(got);
    EXPECT_EQ(got->str.size(), value.size());
    EXPECT_TRUE(got->str == value);
}

TEST(RespParser, AnArrayHeaderPastTheBoundIsAnErrorNotAnAllocation) {
    // Found by fuzz_shared_tier: hiredis 0.14 callocs the pointers a `*<n>`
    // header announces before any element arrives (16 GB here).
    Parser p;
    p.feed("*2005010200\r\n:1\r\n");
    boost::system::error_code ec;
    EXPECT_FALSE(p.next(ec));
    EXPECT_EQ(ec, make_error_code(Error::protocol));
    Parser q;  // a million elements is still a reply
    std::string many = "*1048576\r\n";
    for (int i = 0; i < 1048576; ++i) many += ":1\r\n";
    q.feed(many);
    const auto r = q.next(ec);
    ASSERT_TRUE(r) << ec.message();
    EXPECT_EQ(r->elements.size(), 1048576u);
}

TEST(RespParser, GarbageIsAProtocolError) {
    Parser p;
    p.feed("hello\r\n");
    boost::system::error_code ec;
    EXPECT_FALSE(p.next(ec));
    EXPECT_EQ(ec, make_error_code(Error::protocol));
    EXPECT_FALSE(p.next(ec));  // stays unusable
    EXPECT_TRUE(ec);

    Parser q;
    q.feed("$abc\r\n");
    EXPECT_FALSE(q.next(ec));
    EXPECT_TRUE(ec);
}

TEST(RespReply, Moved) {
    Reply r;
    r.type = Reply::Type::error;
    r.str = "MOVED 3999 127.0.0.1:6381";
    std::uint16_t slot = 0;
    std::string address;
    ASSERT_TRUE(r.moved(slot, address));
    EXPECT_EQ(slot, 3999);
    EXPECT_EQ(address, "127.0.0.1:6381");

    r.str = "ASK 3999 127.0.0.1:6381";
    EXPECT_FALSE(r.moved(slot, address));
    r.str = "MOVED x 127.0.0.1:6381";
    EXPECT_FALSE(r.moved(slot, address));
    r.str = "MOVED 99999 127.0.0.1:6381";
    EXPECT_FALSE(r.moved(slot, address));
    r.str = "MOVED 12";
    EXPECT_FALSE(r.moved(slot, address));
    r.type = Reply::Type::status;
    r.str = "MOVED 3999 127.0.0.1:6381";
    EXPECT_FALSE(r.moved(slot, address));  // only an error reply redirects
}

TEST(RespErrors, Category) {
    const boost::system::error_code ec = Error::timeout;
    EXPECT_STREQ(ec.category().name(), "cacheproxy.redis");
    EXPECT_FALSE(ec.message().empty());
    EXPECT_NE(ec, make_error_code(Error::closed));
}

TEST(RedisAddress, Parse) {
    auto a = parse_address("127.0.0.1:6379");
    ASSERT_TRUE(a);
    EXPECT_EQ(a->host, "127.0.0.1");
    EXPECT_EQ(a->port, 6379);
    auto b = parse_address("[::1]:7000");
    ASSERT_TRUE(b);
    EXPECT_EQ(b->host, "::1");
    EXPECT_EQ(b->port, 7000);
    EXPECT_TRUE(parse_address("10.0.0.1:65535"));
    for (const char* bad : {"", "127.0.0.1", "127.0.0.1:", ":6379", "127.0.0.1:0", "127.0.0.1:65536",
                            "127.0.0.1:63x9", "[::1]", "[::1]6379", "::1:6379", "[]:6379", "127.0.0.1:-1"})
        EXPECT_FALSE(parse_address(bad)) << bad;
}

TEST(RedisKeySlot, Vectors) {
    // Values as `CLUSTER KEYSLOT` gives them on Redis 7.0.
    EXPECT_EQ(key_slot("123456789"), 12739);  // CRC16/XMODEM check value 0x31C3
    EXPECT_EQ(key_slot("foo"), 12182);
    EXPECT_EQ(key_slot("bar"), 5061);
    EXPECT_EQ(key_slot(""), 0);
    EXPECT_EQ(key_slot("{user1000}.following"), key_slot("{user1000}.followers"));
    EXPECT_EQ(key_slot("{user1000}.following"), 3443);
    EXPECT_EQ(key_slot("foo{}{bar}"), 8363);
    EXPECT_EQ(key_slot("foo{{bar}}zap"), key_slot("{bar"));
    EXPECT_EQ(key_slot("foo{bar}{zap}"), key_slot("bar"));
    EXPECT_EQ(key_slot("{}"), 15257);
    EXPECT_EQ(key_slot("a{b"), 13340);
}

}  // namespace
}  // namespace cacheproxy::redis
