#include "principal/principal.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include <memory>
#include <stdexcept>

namespace cacheproxy::principal {

using Alg = rules::PrincipalRule::Alg;

namespace {

std::optional<boost::json::object> parse_object(std::string_view text) {
    boost::system::error_code ec;
    boost::json::value v = boost::json::parse(text, ec);
    if (ec || !v.is_object()) return std::nullopt;
    return std::move(v.as_object());
}

/// A string (non-empty) or an integer, as text.
std::optional<std::string> scalar(const boost::json::value* v) {
    if (!v) return std::nullopt;
    if (v->is_string() && !v->as_string().empty()) return std::string(v->as_string());
    if (v->is_int64()) return std::to_string(v->as_int64());
    if (v->is_uint64()) return std::to_string(v->as_uint64());
    return std::nullopt;
}

std::optional<std::int64_t> number(const boost::json::value* v) {
    if (!v) return std::nullopt;
    if (v->is_int64()) return v->as_int64();
    if (v->is_uint64()) return static_cast<std::int64_t>(std::min<std::uint64_t>(v->as_uint64(), INT64_MAX));
    if (v->is_double()) return static_cast<std::int64_t>(v->as_double());
    return std::nullopt;
}

std::string_view alg_name(Alg alg) {
    switch (alg) {
        case Alg::hs256: return "HS256";
        case Alg::rs256: return "RS256";
        case Alg::es256: return "ES256";
    }
    return "";
}

/// JWS ES256's r || s (32 bytes each) as the DER ECDSA-Sig-Value OpenSSL verifies.
std::optional<std::string> es256_der(const std::string& raw) {
    if (raw.size() != 64) return std::nullopt;
    ECDSA_SIG* sig = ECDSA_SIG_new();
    if (!sig) return std::nullopt;
    BIGNUM* r = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()), 32, nullptr);
    BIGNUM* s = BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()) + 32, 32, nullptr);
    if (!r || !s || ECDSA_SIG_set0(sig, r, s) != 1) {
        BN_free(r);
        BN_free(s);
        ECDSA_SIG_free(sig);
        return std::nullopt;
    }
    unsigned char* der = nullptr;
    const int n = i2d_ECDSA_SIG(sig, &der);
    ECDSA_SIG_free(sig);
    if (n <= 0) return std::nullopt;
    std::string out(reinterpret_cast<const char*>(der), static_cast<std::size_t>(n));
    OPENSSL_free(der);
    return out;
}

}  // namespace

std::optional<std::string> json_field(std::string_view body, std::string_view field) {
    const auto object = parse_object(body);
    if (!object) return std::nullopt;
    return scalar(object->if_contains(field));
}

std::optional<std::string> base64url_decode(std::string_view in) {
    auto value = [](char c) -> int {
        if (c >= 'A' && c <= 'Z') return c - 'A';
        if (c >= 'a' && c <= 'z') return c - 'a' + 26;
        if (c >= '0' && c <= '9') return c - '0' + 52;
        if (c == '-') return 62;
        if (c == '_') return 63;
        return -1;
    };
    while (!in.empty() && in.back() == '=') in.remove_suffix(1);
    if (in.size() % 4 == 1) return std::nullopt;
    std::string out;
    out.reserve(in.size() * 3 / 4);
    std::uint32_t acc = 0;
    int bits = 0;
    for (const char c : in) {
        const int v = value(c);
        if (v < 0) return std::nullopt;
        acc = (acc << 6) | static_cast<std::uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<char>((acc >> bits) & 0xff));
        }
    }
    return out;
}

JwtVerifier::JwtVerifier(Alg alg, std::string_view key) : alg_(alg) {
    if (alg == Alg::hs256) {
        secret_.assign(key);
        if (!secret_.empty() && secret_.back() == '\n') secret_.pop_back();
        if (secret_.empty()) throw std::runtime_error("empty HS256 secret");
        return;
    }
    BIO* bio = BIO_new_mem_buf(key.data(), static_cast<int>(key.size()));
    if (!bio) throw std::runtime_error("out of memory");
    pkey_ = PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr);
    BIO_free(bio);
    if (!pkey_) throw std::runtime_error("not a PEM public key");
    const bool fits = alg == Alg::rs256 ? EVP_PKEY_is_a(pkey_, "RSA") : EVP_PKEY_is_a(pkey_, "EC");
    if (!fits) {
        EVP_PKEY_free(pkey_);
        pkey_ = nullptr;
        throw std::runtime_error(alg == Alg::rs256 ? "RS256 needs an RSA public key" : "ES256 needs an EC public key");
    }
}

JwtVerifier::~JwtVerifier() {
    if (!secret_.empty()) OPENSSL_cleanse(secret_.data(), secret_.size());
    EVP_PKEY_free(pkey_);
}

bool JwtVerifier::signature_ok(std::string_view signed_part, const std::string& signature) const {
    if (alg_ == Alg::hs256) {
        unsigned char mac[EVP_MAX_MD_SIZE];
        unsigned int n = 0;
        if (!HMAC(EVP_sha256(), secret_.data(), static_cast<int>(secret_.size()),
                  reinterpret_cast<const unsigned char*>(signed_part.data()), signed_part.size(), mac, &n))
            return false;
        return n == signature.size() && CRYPTO_memcmp(mac, signature.data(), n) == 0;
    }
    std::string der;
    if (alg_ == Alg::es256) {
        auto converted = es256_der(signature);
        if (!converted) return false;
        der = std::move(*converted);
    }
    const std::string& sig = alg_ == Alg::es256 ? der : signature;
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, pkey_) != 1) return false;
    return EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                            reinterpret_cast<const unsigned char*>(signed_part.data()), signed_part.size()) == 1;
}

std::optional<std::string> JwtVerifier::verify(std::string_view token, std::string_view claim, std::int64_t now_unix,
                                               JwtError* why) const {
    JwtError ignored;
    JwtError& error = why ? *why : ignored;
    error = JwtError::malformed;
    const auto dot1 = token.find('.');
    const auto dot2 = dot1 == token.npos ? token.npos : token.find('.', dot1 + 1);
    if (dot2 == token.npos || token.find('.', dot2 + 1) != token.npos) return std::nullopt;
    const auto header_text = base64url_decode(token.substr(0, dot1));
    const auto payload_text = base64url_decode(token.substr(dot1 + 1, dot2 - dot1 - 1));
    const auto signature = base64url_decode(token.substr(dot2 + 1));
    if (!header_text || !payload_text || !signature) return std::nullopt;
    const auto header = parse_object(*header_text);
    const auto payload = parse_object(*payload_text);
    if (!header || !payload) return std::nullopt;
    // Only the configured algorithm: never "none", never an HS/RS confusion.
    const auto* alg = header->if_contains("alg");
    if (!alg || !alg->is_string() || alg->as_string() != alg_name(alg_)) {
        error = JwtError::alg_refused;
        return std::nullopt;
    }
    if (!signature_ok(token.substr(0, dot2), *signature)) {
        error = JwtError::bad_signature;
        return std::nullopt;
    }
    if (const auto* exp = payload->if_contains("exp")) {
        const auto t = number(exp);
        if (!t || *t <= now_unix) {
            error = JwtError::expired;
            return std::nullopt;
        }
    }
    if (const auto* nbf = payload->if_contains("nbf")) {
        const auto t = number(nbf);
        if (!t || *t > now_unix) {
            error = JwtError::not_yet_valid;
            return std::nullopt;
        }
    }
    auto principal = scalar(payload->if_contains(claim));
    error = principal ? JwtError::none : JwtError::no_claim;
    return principal;
}

Extractor::Extractor(const rules::PrincipalRule& rule) : rule_(rule) {
    if (rule.source == rules::PrincipalRule::Source::jwt) jwt_.emplace(rule.alg, rule.key);
}

std::optional<std::string> Extractor::of_answer(std::string_view body) const {
    if (rule_.source != rules::PrincipalRule::Source::response_field) return std::nullopt;
    return json_field(body, rule_.field);
}

std::optional<std::string> Extractor::of_credential(std::string_view credential, std::int64_t now_unix) const {
    if (!jwt_) return std::nullopt;
    if (credential.size() > 7 && (credential.substr(0, 7) == "Bearer " || credential.substr(0, 7) == "bearer "))
        credential.remove_prefix(7);
    return jwt_->verify(credential, rule_.claim, now_unix);
}

}  // namespace cacheproxy::principal
