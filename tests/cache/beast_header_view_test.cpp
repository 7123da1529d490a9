#include "cache/beast_header_view.hpp"

#include "cache/identity.hpp"
#include "cache/storability.hpp"
#include "cache/stored_head.hpp"

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <gtest/gtest.h>

namespace cacheproxy::cache {
namespace {

namespace bhttp = boost::beast::http;

TEST(CacheBeastHeaderViewTest, ReadsRepeatedFieldsCaseInsensitively) {
    bhttp::request<bhttp::string_body> req{bhttp::verb::get, "/api/trading/balance", 11};
    req.set(bhttp::field::authorization, "Bearer alice");
    req.insert("X-Multi", "1");
    req.insert("x-multi", "2");
    const BeastHeaderView view(req.base());
    EXPECT_EQ(view.count("authorization"), 1u);
    EXPECT_EQ(view.first("AUTHORIZATION"), "Bearer alice");
    EXPECT_EQ(view.count("x-multi"), 2u);
    EXPECT_EQ(view.value("X-MULTI", 1), "2");
    EXPECT_EQ(view.value("X-MULTI", 2), "");
    EXPECT_EQ(*extract_identity(rules::IdentitySource{}, view, req.target()), "Bearer alice");
    req.insert(bhttp::field::authorization, "Bearer mallory");
    EXPECT_FALSE(extract_identity(rules::IdentitySource{}, view, req.target()));
}

TEST(CacheBeastHeaderViewTest, RepeatedFieldsWithOthersBetweenAreReadRight) {
    // Beast's equal_range spans other fields standing between two of the same
    // name: a second Cache-Control line must still be seen, and nothing else.
    bhttp::response<bhttp::string_body> res{bhttp::status::ok, 11};
    res.insert(bhttp::field::cache_control, "max-age=5");
    res.insert("X-Between", "noise");
    res.insert(bhttp::field::cache_control, "private");
    const BeastHeaderView view(res.base());
    EXPECT_EQ(view.count("cache-control"), 2u);
    EXPECT_EQ(view.value("cache-control", 0), "max-age=5");
    EXPECT_EQ(view.value("cache-control", 1), "private");
    EXPECT_EQ(view.value("cache-control", 2), "");

    rules::RouteRule rule;
    rule.name = "balance";
    rule.path = "/api/trading/balance";
    rule.key.identity = true;
    ResponseFacts facts;
    facts.status = 200;
    facts.length_known = true;
    facts.complete = true;
    EXPECT_EQ(check_storable(rule, facts, view), NotStorable::private_);
}

TEST(CacheBeastHeaderViewTest, FeedsStorabilityAndStoredHead) {
    bhttp::response<bhttp::string_body> res{bhttp::status::ok, 11};
    res.set(bhttp::field::content_type, "application/json");
    res.set(bhttp::field::connection, "X-Hop");
    res.set("X-Hop", "1");
    res.set(bhttp::field::date, "Mon, 01 Jan 2024 00:00:00 GMT");
    res.body() = "{}";
    res.prepare_payload();
    const BeastHeaderView view(res.base());
    ResponseFacts f;
    f.status = res.result_int();
    f.length_known = f.complete = true;
    f.body_bytes = res.body().size();
    EXPECT_EQ(check_storable(rules::RouteRule{}, f, view), NotStorable::none);
    const auto fields = view.list();
    EXPECT_EQ(build_stored_head(res.result_int(), res.reason(), fields),
              "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n");
    res.insert(bhttp::field::set_cookie, "sid=1");
    EXPECT_EQ(check_storable(rules::RouteRule{}, f, view), NotStorable::set_cookie);
}

}  // namespace
}  // namespace cacheproxy::cache
