#include "cache/fill.hpp"

#include "encoding/gzip.hpp"

#include <gtest/gtest.h>

#include <string>

namespace cacheproxy::cache {
namespace {

using Outcome = cache::FillResult::Outcome;
using namespace std::chrono_literals;

/// A response as a fill read it.
struct Fetched {
    Response response;
    bool length_known = true;
};

rules::RouteRule route() {
    rules::RouteRule r;
    r.name = "positions";
    r.path = "/api/trading/positions";
    r.key.identity = true;
    r.max_object_bytes = 4096;
    return r;
}

Fetched fetched(unsigned status, std::string body, bool gzip = false) {
    Fetched f;
    f.response.result(status);
    f.response.set(boost::beast::http::field::content_type, "application/json");
    if (gzip) f.response.set(boost::beast::http::field::content_encoding, "gzip");
    f.response.body() = std::move(body);
    return f;
}

cache::FillResult admitted(Fetched f, const rules::RouteRule& r = route()) {
    cache::NotStorable why{};
    const auto entry = cache::admit(r, {}, {}, f.response, f.length_known, true, cache::TimePoint{}, 7, why);
    return cache::fill_result(entry, why);
}

TEST(FillTest, EveryOutcomeOfAFill) {
    const auto ok = admitted(fetched(200, "{\"ok\":true}"));
    EXPECT_EQ(ok.outcome, Outcome::stored);
    ASSERT_TRUE(ok.entry);
    EXPECT_EQ(ok.entry->generation(), 7u);

    const auto error = admitted(fetched(503, "{\"detail\":\"down\"}"));
    EXPECT_EQ(error.outcome, Outcome::answer);  // shared with the waiters, never stored
    ASSERT_TRUE(error.entry);
    EXPECT_EQ(error.entry->status(), 503u);
    EXPECT_STREQ(error.detail, "status");

    auto cookie = fetched(200, "{}");
    cookie.response.set(boost::beast::http::field::set_cookie, "sid=1");
    EXPECT_EQ(admitted(std::move(cookie)).outcome, Outcome::not_shareable);
}

TEST(FillTest, AGzipBodyThatDoesNotDecodeFailsTheFillForEveryone) {
    std::string gz;
    ASSERT_TRUE(encoding::gzip_compress(std::string(2000, 'a') + "tail", 6, gz));
    const auto whole = admitted(fetched(200, gz, true));
    EXPECT_EQ(whole.outcome, Outcome::stored);
    EXPECT_EQ(whole.entry->body().size(), 2004u);  // stored decoded

    const auto cut = admitted(fetched(200, gz.substr(0, gz.size() - 10), true));
    EXPECT_EQ(cut.outcome, Outcome::failed);
    EXPECT_EQ(cut.status, 502u);

    // Valid but larger than an entry may be: not a broken answer, a large one.
    std::string big;
    ASSERT_TRUE(encoding::gzip_compress(std::string(100000, 'z'), 6, big));
    EXPECT_TRUE(cache::decodes_past(big, 4096));
    EXPECT_FALSE(cache::decodes_past(gz.substr(0, gz.size() - 10), 4096));
    EXPECT_EQ(admitted(fetched(200, big, true)).outcome, Outcome::not_shareable);
}

TEST(FillTest, OnlyFailuresAreHeld) {
    rules::RuleSet rules;
    rules.coalesce_error_hold = 1s;
    const cache::TimePoint now{100s};
    const cache::FillResult failed{nullptr, Outcome::failed, 504, "upstream-error"};
    EXPECT_EQ(cache::hold_until(failed, rules, now), now + 1s);
    EXPECT_EQ(cache::hold_until(admitted(fetched(500, "x")), rules, now), now + 1s);
    EXPECT_FALSE(cache::hold_until(admitted(fetched(404, "x")), rules, now));
    EXPECT_FALSE(cache::hold_until(admitted(fetched(200, "x")), rules, now));
    rules.coalesce_error_hold = 0s;
    EXPECT_FALSE(cache::hold_until(failed, rules, now));
}

}  // namespace
}  // namespace cacheproxy::cache
