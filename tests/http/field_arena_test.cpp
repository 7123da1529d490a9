#include "http/field_arena.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <tuple>

namespace cacheproxy::http {
namespace {

namespace bhttp = boost::beast::http;
using Parser = RequestParserOf<bhttp::empty_body>;

/// Parses `raw` with a parser whose fields live in `arena`, as a session does.
void parse_into(std::optional<Parser>& parser, FieldArena& arena, const std::string& raw) {
    parser.reset();
    parser.emplace(std::piecewise_construct, std::make_tuple(), std::make_tuple(ArenaAllocator<char>(&arena)));
    parser->eager(false);
    parser->header_limit(64 * 1024);
    boost::system::error_code ec;
    parser->put(boost::asio::buffer(raw), ec);
    ASSERT_FALSE(ec) << ec.message();
    ASSERT_TRUE(parser->is_header_done());
}

std::string request(int extra_fields, std::size_t value_size) {
    std::string r = "GET /api/trading/balance?exchange=bybit HTTP/1.1\r\nHost: app\r\nAuthorization: Bearer t\r\n";
    for (int i = 0; i < extra_fields; ++i) r += "X-F" + std::to_string(i) + ": " + std::string(value_size, 'v') + "\r\n";
    return r + "\r\n";
}

TEST(FieldArena, ARequestsFieldsLiveInTheArenaAndItStartsOverWhenTheyAreGone) {
    RequestArena arena;
    std::optional<Parser> parser;
    parse_into(parser, arena, request(2, 10));
    const auto& req = parser->get();
    EXPECT_EQ(req.target(), "/api/trading/balance?exchange=bybit");
    EXPECT_EQ(req[bhttp::field::authorization], "Bearer t");
    EXPECT_EQ(req["X-F1"], "vvvvvvvvvv");
    EXPECT_EQ(arena.live(), 5u) << "4 fields and the start line";
    EXPECT_TRUE(arena.owns(req[bhttp::field::host].data()));
    const std::size_t used = arena.used();

    parse_into(parser, arena, request(2, 10));  // the next request on the connection
    EXPECT_EQ(arena.live(), 5u);
    EXPECT_EQ(arena.used(), used) << "the same bytes again: the arena started over";
    parser.reset();
    EXPECT_EQ(arena.live(), 0u);
    EXPECT_EQ(arena.used(), 0u);
}

TEST(FieldArena, FieldsThatDoNotFitGoToTheHeapAndAreStillRight) {
    RequestArena arena;
    std::optional<Parser> parser;
    parse_into(parser, arena, request(40, 200));  // ~10 kB of fields: more than the arena holds
    const auto& req = parser->get();
    EXPECT_EQ(req["X-F39"], std::string(200, 'v'));
    EXPECT_EQ(req["X-F0"], std::string(200, 'v'));
    EXPECT_TRUE(arena.owns(req[bhttp::field::host].data())) << "the first fields still took the arena";
    EXPECT_FALSE(arena.owns(req["X-F39"].data())) << "the last ones the heap";
    std::size_t n = 0;
    for (const auto& f : req) n += !f.value().empty();
    EXPECT_EQ(n, 42u);
    parser.reset();
    EXPECT_EQ(arena.live(), 0u) << "every arena block came back; the heap ones went to the heap";
}

TEST(FieldArena, ACopyOfTheFieldsLivesOnTheHeap) {
    RequestArena arena;
    std::optional<Parser> parser;
    parse_into(parser, arena, request(1, 10));
    const Fields copy = parser->get().base();  // may outlive the connection
    EXPECT_EQ(copy.get_allocator().arena(), nullptr);
    EXPECT_EQ(copy["X-F0"], "vvvvvvvvvv");
    EXPECT_FALSE(arena.owns(copy["X-F0"].data()));
    const auto live = arena.live();
    parser.reset();
    EXPECT_EQ(arena.live(), 0u);
    EXPECT_GT(live, 0u);
    EXPECT_EQ(copy["X-F0"], "vvvvvvvvvv") << "the copy did not share the arena's bytes";
}

TEST(FieldArena, TakeAlignsAndRefusesWhatDoesNotFit) {
    RequestArena arena;
    void* a = arena.take(3, 1);
    void* b = arena.take(8, 8);
    ASSERT_NE(a, nullptr);
    ASSERT_NE(b, nullptr);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(b) % 8, 0u);
    EXPECT_EQ(arena.take(arena.capacity(), 1), nullptr) << "full: the allocator goes to the heap";
    EXPECT_EQ(arena.live(), 2u);
    arena.give_back();
    EXPECT_EQ(arena.used(), 16u) << "3 bytes, padding to 8, 8 bytes: one block still out, nothing reused yet";
    arena.give_back();
    EXPECT_EQ(arena.used(), 0u);
    EXPECT_NE(arena.take(arena.capacity(), 1), nullptr) << "empty again: all of it";
}

}  // namespace
}  // namespace cacheproxy::http
