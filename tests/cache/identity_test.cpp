#include "cache/identity.hpp"

#include "cache/header_list.hpp"

#include <gtest/gtest.h>

#include <set>

namespace cacheproxy::cache {
namespace {

IdentityHasher::Key fixed_key(std::uint8_t fill) {
    IdentityHasher::Key k{};
    k.fill(fill);
    return k;
}

TEST(IdentityTest, HmacSha256KnownAnswer) {
    // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
    // Our key is 32 bytes: "Jefe" zero-padded to 32 is the same HMAC key (keys
    // shorter than the block are zero-padded to 64 bytes).
    IdentityHasher::Key k{};
    k[0] = 'J';
    k[1] = 'e';
    k[2] = 'f';
    k[3] = 'e';
    const IdentityHasher h(k);
    EXPECT_EQ(IdentityHasher::hex(h.hash("what do ya want for nothing?")), "5bdcc146bf60754e6a042426089575c7");
}

TEST(IdentityTest, SameCredentialSameHashDifferentDiffer) {
    const IdentityHasher h(fixed_key(7));
    EXPECT_EQ(h.hash("Bearer alice"), h.hash("Bearer alice"));
    EXPECT_NE(h.hash("Bearer alice"), h.hash("Bearer bob"));
    EXPECT_NE(h.hash("Bearer alice"), h.hash("Bearer alice "));
    std::set<IdentityHash> seen;
    for (int i = 0; i < 1000; ++i) seen.insert(h.hash("Bearer token-" + std::to_string(i)));
    EXPECT_EQ(seen.size(), 1000u);
}

TEST(IdentityTest, KeyedPerProcess) {
    const IdentityHasher a(fixed_key(1));
    const IdentityHasher b(fixed_key(2));
    EXPECT_NE(a.hash("Bearer alice"), b.hash("Bearer alice"));
    const IdentityHasher r1;
    const IdentityHasher r2;
    EXPECT_NE(r1.hash("Bearer alice"), r2.hash("Bearer alice"));  // random keys
}

TEST(IdentityTest, RecentCacheNeverAnswersForAnotherKeyOrCredential) {
    // The per-thread cache of recent credentials must be invisible: a hasher
    // made later (even at the same address) with another key gets its own hash.
    IdentityHash first{};
    {
        const IdentityHasher a(fixed_key(3));
        first = a.hash("Bearer alice");
        EXPECT_EQ(a.hash("Bearer alice"), first);  // served from the cache, same answer
    }
    const IdentityHasher b(fixed_key(4));
    EXPECT_NE(b.hash("Bearer alice"), first);
    EXPECT_EQ(b.hash("Bearer alice"), b.hash("Bearer alice"));
    for (int i = 0; i < 500; ++i) {  // more credentials than slots: evictions keep answers right
        const std::string c = "Bearer user" + std::to_string(i);
        EXPECT_EQ(b.hash(c), IdentityHasher(fixed_key(4)).hash(c)) << c;
    }
}

TEST(IdentityTest, HexIs32LowerCaseChars) {
    const IdentityHasher h(fixed_key(3));
    const std::string x = IdentityHasher::hex(h.hash("Bearer alice"));
    EXPECT_EQ(x.size(), 32u);
    EXPECT_EQ(x.find_first_not_of("0123456789abcdef"), std::string::npos);
    EXPECT_EQ(x.find("alice"), std::string::npos);
}

TEST(IdentityTest, HeaderIdentity) {
    const rules::IdentitySource src;  // header Authorization
    const HeaderList h{{"authorization", "Bearer abc"}};
    ASSERT_TRUE(extract_identity(src, h, "/x").has_value());
    EXPECT_EQ(*extract_identity(src, h, "/x"), "Bearer abc");
    const HeaderList padded{{"Authorization", "  Bearer abc \t"}};
    EXPECT_EQ(*extract_identity(src, padded, "/x"), "Bearer abc");
}

TEST(IdentityTest, HeaderIdentityAbsentEmptyOrRepeatedIsNone) {
    const rules::IdentitySource src;
    EXPECT_FALSE(extract_identity(src, HeaderList{}, "/x"));
    EXPECT_FALSE(extract_identity(src, HeaderList{{"Authorization", ""}}, "/x"));
    EXPECT_FALSE(extract_identity(src, HeaderList{{"Authorization", "  \t "}}, "/x"));
    EXPECT_FALSE(extract_identity(src, HeaderList{{"Authorization", "Bearer a"}, {"authorization", "Bearer a"}}, "/x"));
    EXPECT_FALSE(extract_identity(src, HeaderList{{"Authorization", "Bearer a"}, {"AUTHORIZATION", "Bearer b"}}, "/x"));
    EXPECT_FALSE(extract_identity(src, HeaderList{{"X-Authorization", "Bearer a"}}, "/x"));
}

TEST(IdentityTest, CookieIdentity) {
    rules::IdentitySource src;
    src.kind = rules::IdentitySource::Kind::cookie;
    src.name = "session";
    EXPECT_EQ(*extract_identity(src, HeaderList{{"Cookie", "a=1; session=s3cr3t; b=2"}}, "/x"), "s3cr3t");
    EXPECT_EQ(*extract_identity(src, HeaderList{{"Cookie", "a=1"}, {"Cookie", "session=s3cr3t"}}, "/x"), "s3cr3t");
    EXPECT_FALSE(extract_identity(src, HeaderList{{"Cookie", "a=1; Session=x"}}, "/x"));  // names are case-sensitive
    EXPECT_FALSE(extract_identity(src, HeaderList{{"Cookie", "session="}}, "/x"));
    EXPECT_FALSE(extract_identity(src, HeaderList{{"Cookie", "session= ; a=1"}}, "/x"));
    EXPECT_FALSE(extract_identity(src, HeaderList{{"Cookie", "session=a; session=b"}}, "/x"));
    EXPECT_FALSE(extract_identity(src, HeaderList{{"Cookie", "session=a"}, {"Cookie", "session=a"}}, "/x"));
    EXPECT_FALSE(extract_identity(src, HeaderList{{"Cookie", "xsession=a"}}, "/x"));
    EXPECT_FALSE(extract_identity(src, HeaderList{}, "/x"));
}

TEST(IdentityTest, QueryIdentity) {
    rules::IdentitySource src;
    src.kind = rules::IdentitySource::Kind::query;
    src.name = "token";
    const HeaderList none;
    EXPECT_EQ(*extract_identity(src, none, "/x?a=1&token=t0k%2Fen"), "t0k%2Fen");  // raw, not decoded
    EXPECT_FALSE(extract_identity(src, none, "/x?a=1"));
    EXPECT_FALSE(extract_identity(src, none, "/x?token="));
    EXPECT_FALSE(extract_identity(src, none, "/x?token"));
    EXPECT_FALSE(extract_identity(src, none, "/x?token=a&token=a"));
    EXPECT_FALSE(extract_identity(src, none, "/x?token=a&%74oken=b"));  // the upstream decodes names
    EXPECT_FALSE(extract_identity(src, none, "/x?token=a;token=b"));    // old Pythons split on ';'
    EXPECT_FALSE(extract_identity(src, none, "/x"));
}

}  // namespace
}  // namespace cacheproxy::cache
