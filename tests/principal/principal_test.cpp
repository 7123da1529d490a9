// Principal extraction (principal/principal.hpp): a JSON answer's field, and
// a JWT claim only when its signature checks (HS256, RS256, ES256), it has not
// expired, and its header names the configured algorithm ("none" refused).

#include "principal/principal.hpp"

#include "support/jwt_helpers.hpp"

#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include <chrono>
#include <memory>
#include <string>

namespace cacheproxy::principal {
namespace {

using Alg = rules::PrincipalRule::Alg;

using test_jwt::b64url;
using test_jwt::hs256;
using test_jwt::signing_input;

std::int64_t now() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string payload(std::int64_t exp, std::string_view extra = "") {
    return "{\"sub\":\"user-42\",\"uid\":999042,\"exp\":" + std::to_string(exp) + std::string(extra) + "}";
}

struct KeyPair {
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key{nullptr, EVP_PKEY_free};
    std::string public_pem;
};

KeyPair make_keys(bool ec) {
    KeyPair kp;
    kp.key.reset(ec ? EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256")
                    : EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048)));
    BIO* bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PUBKEY(bio, kp.key.get());
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio, &data);
    kp.public_pem.assign(data, static_cast<std::size_t>(n));
    BIO_free(bio);
    return kp;
}

std::string sign(const KeyPair& kp, bool ec, std::string_view body) {
    const auto input = signing_input(ec ? "ES256" : "RS256", body);
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, kp.key.get());
    std::size_t n = 0;
    EVP_DigestSign(ctx.get(), nullptr, &n, reinterpret_cast<const unsigned char*>(input.data()), input.size());
    std::string sig(n, '\0');
    EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &n,
                   reinterpret_cast<const unsigned char*>(input.data()), input.size());
    sig.resize(n);
    if (ec) {  // DER -> JWS r || s
        const auto* p = reinterpret_cast<const unsigned char*>(sig.data());
        ECDSA_SIG* der = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(sig.size()));
        std::string raw(64, '\0');
        BN_bn2binpad(ECDSA_SIG_get0_r(der), reinterpret_cast<unsigned char*>(raw.data()), 32);
        BN_bn2binpad(ECDSA_SIG_get0_s(der), reinterpret_cast<unsigned char*>(raw.data()) + 32, 32);
        ECDSA_SIG_free(der);
        sig = raw;
    }
    return input + "." + b64url(sig);
}

TEST(PrincipalJsonField, AStringOrIntegerTopLevelFieldNamesThePrincipal) {
    EXPECT_EQ(json_field(R"({"user_id":999001,"exchange":"bybit"})", "user_id"), "999001");
    EXPECT_EQ(json_field(R"({"user_id":"u-7"})", "user_id"), "u-7");
    EXPECT_EQ(json_field(R"({"nested":{"user_id":1}})", "user_id"), std::nullopt);
    EXPECT_EQ(json_field(R"({"user_id":""})", "user_id"), std::nullopt);
    EXPECT_EQ(json_field(R"({"user_id":1.5})", "user_id"), std::nullopt);
    EXPECT_EQ(json_field(R"({"user_id":null})", "user_id"), std::nullopt);
    EXPECT_EQ(json_field(R"([{"user_id":1}])", "user_id"), std::nullopt);
    EXPECT_EQ(json_field("not json", "user_id"), std::nullopt);
    EXPECT_EQ(json_field(R"({"user_id":1)", "user_id"), std::nullopt) << "truncated";
}

TEST(PrincipalJwt, Hs256GoodBadAndExpired) {
    const JwtVerifier v(Alg::hs256, "s3cret\n");
    JwtError why{};
    EXPECT_EQ(v.verify(hs256("s3cret", payload(now() + 600)), "sub", now(), &why), "user-42");
    EXPECT_EQ(why, JwtError::none);
    EXPECT_EQ(v.verify(hs256("s3cret", payload(now() + 600)), "uid", now()), "999042") << "a named claim";
    EXPECT_EQ(v.verify(hs256("other", payload(now() + 600)), "sub", now(), &why), std::nullopt);
    EXPECT_EQ(why, JwtError::bad_signature);
    EXPECT_EQ(v.verify(hs256("s3cret", payload(now() - 1)), "sub", now(), &why), std::nullopt);
    EXPECT_EQ(why, JwtError::expired);
    EXPECT_EQ(v.verify(hs256("s3cret", payload(now() + 600, ",\"nbf\":" + std::to_string(now() + 300))), "sub", now(),
                       &why),
              std::nullopt);
    EXPECT_EQ(why, JwtError::not_yet_valid);
    EXPECT_EQ(v.verify(hs256("s3cret", payload(now() + 600)), "missing", now(), &why), std::nullopt);
    EXPECT_EQ(why, JwtError::no_claim);
}

TEST(PrincipalJwt, AChangedPayloadBreaksTheSignature) {
    const JwtVerifier v(Alg::hs256, "s3cret");
    auto token = hs256("s3cret", payload(now() + 600));
    const auto dot1 = token.find('.'), dot2 = token.rfind('.');
    token.replace(dot1 + 1, dot2 - dot1 - 1, b64url(R"({"sub":"admin","exp":9999999999})"));
    JwtError why{};
    EXPECT_EQ(v.verify(token, "sub", now(), &why), std::nullopt);
    EXPECT_EQ(why, JwtError::bad_signature);
}

TEST(PrincipalJwt, AlgNoneAndOtherAlgorithmsAreRefused) {
    const JwtVerifier v(Alg::hs256, "s3cret");
    JwtError why{};
    const auto none = signing_input("none", payload(now() + 600)) + ".";
    EXPECT_EQ(v.verify(none, "sub", now(), &why), std::nullopt);
    EXPECT_EQ(why, JwtError::alg_refused);
    EXPECT_EQ(v.verify(hs256("s3cret", payload(now() + 600), "HS512"), "sub", now(), &why), std::nullopt);
    EXPECT_EQ(why, JwtError::alg_refused);
    // RS256 configured: an HS256 token "signed" with the public key is refused (algorithm confusion).
    const auto rsa = make_keys(false);
    const JwtVerifier rs(Alg::rs256, rsa.public_pem);
    EXPECT_EQ(rs.verify(hs256(rsa.public_pem, payload(now() + 600)), "sub", now(), &why), std::nullopt);
    EXPECT_EQ(why, JwtError::alg_refused);
}

TEST(PrincipalJwt, MalformedTokensGiveNoPrincipal) {
    const JwtVerifier v(Alg::hs256, "s3cret");
    for (const char* t : {"", "abc", "a.b", "a.b.c.d", "!!.??.**", "e30.e30."}) {
        JwtError why{};
        EXPECT_EQ(v.verify(t, "sub", now(), &why), std::nullopt) << t;
        EXPECT_NE(why, JwtError::none) << t;
    }
}

TEST(PrincipalJwt, Rs256AndEs256CheckAgainstThePublicKey) {
    for (const bool ec : {false, true}) {
        SCOPED_TRACE(ec ? "ES256" : "RS256");
        const auto keys = make_keys(ec), other = make_keys(ec);
        const JwtVerifier v(ec ? Alg::es256 : Alg::rs256, keys.public_pem);
        JwtError why{};
        EXPECT_EQ(v.verify(sign(keys, ec, payload(now() + 600)), "sub", now(), &why), "user-42");
        EXPECT_EQ(v.verify(sign(other, ec, payload(now() + 600)), "sub", now(), &why), std::nullopt);
        EXPECT_EQ(why, JwtError::bad_signature);
        EXPECT_EQ(v.verify(sign(keys, ec, payload(now() - 10)), "sub", now(), &why), std::nullopt);
        EXPECT_EQ(why, JwtError::expired);
    }
}

TEST(PrincipalJwt, AKeyOfTheWrongKindIsRefusedAtStart) {
    const auto ec = make_keys(true);
    EXPECT_THROW(JwtVerifier(Alg::rs256, ec.public_pem), std::runtime_error);
    EXPECT_THROW(JwtVerifier(Alg::es256, "not a pem"), std::runtime_error);
    EXPECT_THROW(JwtVerifier(Alg::hs256, "\n"), std::runtime_error);
}

TEST(PrincipalExtractor, ReadsOnlyTheConfiguredSource) {
    rules::PrincipalRule field_rule;
    field_rule.source = rules::PrincipalRule::Source::response_field;
    const Extractor by_field(field_rule);
    EXPECT_EQ(by_field.of_answer(R"({"user_id":7})"), "7");
    EXPECT_EQ(by_field.of_credential("Bearer " + hs256("k", payload(now() + 60)), now()), std::nullopt);

    rules::PrincipalRule jwt_rule;
    jwt_rule.source = rules::PrincipalRule::Source::jwt;
    jwt_rule.key = "k";
    const Extractor by_jwt(jwt_rule);
    EXPECT_EQ(by_jwt.of_answer(R"({"user_id":7})"), std::nullopt) << "an answer never names the principal here";
    EXPECT_EQ(by_jwt.of_credential("Bearer " + hs256("k", payload(now() + 60)), now()), "user-42");

    const rules::PrincipalRule none_rule;
    const Extractor none(none_rule);
    EXPECT_FALSE(none.enabled());
    EXPECT_EQ(none.of_answer(R"({"user_id":7})"), std::nullopt);
}

TEST(PrincipalBase64url, DecodesWithOrWithoutPadding) {
    EXPECT_EQ(base64url_decode("aGk"), "hi");
    EXPECT_EQ(base64url_decode("aGk="), "hi");
    EXPECT_EQ(base64url_decode("_-8"), std::string("\xff\xef", 2));
    EXPECT_EQ(base64url_decode("a"), std::nullopt);
    EXPECT_EQ(base64url_decode("a+b/"), std::nullopt) << "base64, not base64url";
}

}  // namespace
}  // namespace cacheproxy::principal
