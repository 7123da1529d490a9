#include "cache/storability.hpp"

#include "cache/header_list.hpp"

#include <gtest/gtest.h>

namespace cacheproxy::cache {
namespace {

rules::RouteRule rule() {
    rules::RouteRule r;
    r.name = "balance";
    r.path = "/api/trading/balance";
    r.key.identity = true;
    r.max_object_bytes = 1000;
    return r;
}

ResponseFacts ok_facts() {
    ResponseFacts f;
    f.status = 200;
    f.length_known = true;
    f.complete = true;
    f.body_bytes = 100;
    return f;
}

const HeaderList kJson{{"Content-Type", "application/json"}, {"Content-Length", "100"}};

TEST(StorabilityTest, PlainSuccessIsStorable) {
    EXPECT_EQ(check_storable(rule(), ok_facts(), kJson), NotStorable::none);
    EXPECT_EQ(check_storable(rule(), ok_facts(), HeaderList{{"Cache-Control", "max-age=60, public"}}),
              NotStorable::none);
}

TEST(StorabilityTest, StatusNotListedOrErrorIsNot) {
    for (unsigned s : {201u, 204u, 301u, 302u, 304u, 400u, 401u, 403u, 404u, 429u, 500u, 502u, 503u, 504u}) {
        auto f = ok_facts();
        f.status = s;
        EXPECT_EQ(check_storable(rule(), f, kJson), NotStorable::status) << s;
    }
    // Listing an error status in the rule does not make errors storable.
    auto r = rule();
    r.statuses = {200, 203, 500};
    auto f = ok_facts();
    f.status = 500;
    EXPECT_EQ(check_storable(r, f, kJson), NotStorable::status);
    f.status = 203;
    EXPECT_EQ(check_storable(r, f, kJson), NotStorable::none);
}

TEST(StorabilityTest, SetCookieIsNot) {
    EXPECT_EQ(check_storable(rule(), ok_facts(), HeaderList{{"Set-Cookie", "sid=1"}}), NotStorable::set_cookie);
    EXPECT_EQ(check_storable(rule(), ok_facts(), HeaderList{{"set-cookie2", "sid=1"}}), NotStorable::set_cookie);
}

TEST(StorabilityTest, NoStoreAndNoCacheAreNot) {
    EXPECT_EQ(check_storable(rule(), ok_facts(), HeaderList{{"Cache-Control", "no-store"}}), NotStorable::no_store);
    EXPECT_EQ(check_storable(rule(), ok_facts(), HeaderList{{"Cache-Control", "max-age=5, No-Store"}}),
              NotStorable::no_store);
    EXPECT_EQ(check_storable(rule(), ok_facts(), HeaderList{{"Cache-Control", "max-age=5"}, {"cache-control", "no-store"}}),
              NotStorable::no_store);
    EXPECT_EQ(check_storable(rule(), ok_facts(), HeaderList{{"Cache-Control", "no-cache"}}), NotStorable::no_store);
    // A quoted argument holding the word is not the directive.
    EXPECT_EQ(check_storable(rule(), ok_facts(), HeaderList{{"Cache-Control", "ext=\"no-store, private\""}}),
              NotStorable::none);
}

TEST(StorabilityTest, PrivateIsNot) {
    EXPECT_EQ(check_storable(rule(), ok_facts(), HeaderList{{"Cache-Control", "private"}}), NotStorable::private_);
    EXPECT_EQ(check_storable(rule(), ok_facts(), HeaderList{{"Cache-Control", "private=\"X-A, X-B\", max-age=9"}}),
              NotStorable::private_);
}

TEST(StorabilityTest, VaryOnWhatTheKeyDoesNotHoldIsNot) {
    EXPECT_EQ(check_storable(rule(), ok_facts(), HeaderList{{"Vary", "*"}}), NotStorable::vary);
    EXPECT_EQ(check_storable(rule(), ok_facts(), HeaderList{{"Vary", "User-Agent"}}), NotStorable::vary);
    EXPECT_EQ(check_storable(rule(), ok_facts(), HeaderList{{"Vary", "Accept-Encoding"}, {"Vary", "Cookie"}}),
              NotStorable::vary);
    // Keyed: Accept-Encoding (we negotiate it), the rule's key headers, the identity header.
    EXPECT_EQ(check_storable(rule(), ok_facts(), HeaderList{{"Vary", "Accept-Encoding"}}), NotStorable::none);
    auto r = rule();
    r.key.headers = {"accept-language"};
    EXPECT_EQ(check_storable(r, ok_facts(), HeaderList{{"Vary", "accept-encoding, Accept-Language"}}),
              NotStorable::none);
    auto f = ok_facts();
    EXPECT_EQ(check_storable(r, f, HeaderList{{"Vary", "Authorization"}}), NotStorable::vary);
    f.identity_header = "Authorization";
    EXPECT_EQ(check_storable(r, f, HeaderList{{"Vary", "Authorization"}}), NotStorable::none);
}

TEST(StorabilityTest, RangeIsNot) {
    auto f = ok_facts();
    f.request_was_range = true;
    EXPECT_EQ(check_storable(rule(), f, kJson), NotStorable::range_request);
    f = ok_facts();
    f.status = 206;
    EXPECT_EQ(check_storable(rule(), f, kJson), NotStorable::range_request);
    EXPECT_EQ(check_storable(rule(), ok_facts(), HeaderList{{"Content-Range", "bytes 0-99/200"}}),
              NotStorable::range_request);
}

TEST(StorabilityTest, CloseDelimitedIsNot) {
    auto f = ok_facts();
    f.length_known = false;
    EXPECT_EQ(check_storable(rule(), f, kJson), NotStorable::no_length);
}

TEST(StorabilityTest, CutOffBodyIsNot) {
    auto f = ok_facts();
    f.complete = false;
    EXPECT_EQ(check_storable(rule(), f, kJson), NotStorable::incomplete);
}

TEST(StorabilityTest, HeadReplyIsNot) {
    auto f = ok_facts();
    f.request_was_head = true;
    f.body_bytes = 0;
    EXPECT_EQ(check_storable(rule(), f, kJson), NotStorable::incomplete);
}

TEST(StorabilityTest, TooLargeIsNot) {
    auto f = ok_facts();
    f.body_bytes = 1000;
    EXPECT_EQ(check_storable(rule(), f, kJson), NotStorable::none);
    f.body_bytes = 1001;
    EXPECT_EQ(check_storable(rule(), f, kJson), NotStorable::too_large);
}

TEST(StorabilityTest, EncodedBodyIsNot) {
    EXPECT_EQ(check_storable(rule(), ok_facts(), HeaderList{{"Content-Encoding", "gzip"}}), NotStorable::encoded);
    EXPECT_EQ(check_storable(rule(), ok_facts(), HeaderList{{"Content-Encoding", "identity"}}), NotStorable::none);
}

TEST(StorabilityTest, SharedRouteAnswerThatDependsOnCredentialsIsNot) {
    auto r = rule();
    r.shared = true;
    r.key.identity = false;
    auto f = ok_facts();
    f.request_had_credentials = true;
    EXPECT_EQ(check_storable(r, f, kJson), NotStorable::none);  // the rule says: same for everyone
    EXPECT_EQ(check_storable(r, f, HeaderList{{"Vary", "Authorization"}}), NotStorable::authorization_shared);
    EXPECT_EQ(check_storable(r, f, HeaderList{{"Vary", "Cookie"}}), NotStorable::authorization_shared);
    EXPECT_EQ(check_storable(r, f, HeaderList{{"Cache-Control", "private"}}), NotStorable::authorization_shared);
    f.request_had_credentials = false;
    EXPECT_EQ(check_storable(r, f, HeaderList{{"Cache-Control", "private"}}), NotStorable::private_);
}

TEST(StorabilityTest, ReasonNames) {
    EXPECT_STREQ(to_string(NotStorable::none), "none");
    EXPECT_STREQ(to_string(NotStorable::private_), "private");
    EXPECT_STREQ(to_string(NotStorable::authorization_shared), "authorization_shared");
    EXPECT_STREQ(to_string(NotStorable::encoded), "encoded");
}

TEST(StorabilityTest, ClientCannotBustUnlessRouteAllows) {
    const HeaderList no_cache{{"Cache-Control", "no-cache"}};
    const HeaderList pragma{{"Pragma", "no-cache"}};
    const HeaderList max_age0{{"Cache-Control", "max-age=0"}};
    const HeaderList plain{{"Cache-Control", "max-age=60"}};
    auto r = rule();
    EXPECT_FALSE(client_bypasses(r, no_cache));
    EXPECT_FALSE(client_bypasses(r, pragma));
    EXPECT_FALSE(client_bypasses(r, max_age0));
    r.allow_client_no_cache = true;
    EXPECT_TRUE(client_bypasses(r, no_cache));
    EXPECT_TRUE(client_bypasses(r, pragma));
    EXPECT_TRUE(client_bypasses(r, max_age0));
    EXPECT_TRUE(client_bypasses(r, HeaderList{{"cache-control", "No-Store"}}));
    EXPECT_FALSE(client_bypasses(r, plain));
    EXPECT_FALSE(client_bypasses(r, HeaderList{}));
}

TEST(StorabilityTest, WhatTheWaitersOfAFillMayShare) {
    // Not stored, but the same answer for every request on the key: shared.
    auto error = ok_facts();
    error.status = 500;
    EXPECT_EQ(check_storable(rule(), error, kJson), NotStorable::status);
    EXPECT_EQ(check_shareable(rule(), error, kJson), NotStorable::none);
    auto close_delimited = ok_facts();
    close_delimited.length_known = false;
    EXPECT_EQ(check_shareable(rule(), close_delimited, kJson), NotStorable::none);
    EXPECT_EQ(check_shareable(rule(), ok_facts(), HeaderList{{"Cache-Control", "no-store"}}), NotStorable::none);
    // What one client may not pass to another, whatever the status.
    EXPECT_EQ(check_shareable(rule(), error, HeaderList{{"Set-Cookie", "sid=1"}}), NotStorable::set_cookie);
    EXPECT_EQ(check_shareable(rule(), ok_facts(), HeaderList{{"Vary", "Cookie"}}), NotStorable::vary);
    EXPECT_EQ(check_shareable(rule(), ok_facts(), HeaderList{{"Cache-Control", "private"}}), NotStorable::private_);
    EXPECT_EQ(check_shareable(rule(), ok_facts(), HeaderList{{"Content-Encoding", "br"}}), NotStorable::encoded);
    auto big = ok_facts();
    big.body_bytes = 5000;
    EXPECT_EQ(check_shareable(rule(), big, kJson), NotStorable::too_large);
}

}  // namespace
}  // namespace cacheproxy::cache
