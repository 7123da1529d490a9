#pragma once
/// Making JWTs in tests (tests/principal, tests/e2e): base64url and HS256
/// signing with OpenSSL. Header only: unit_tests compiles no tests/support sources.

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace cacheproxy::test_jwt {

inline std::string b64url(std::string_view in) {
    static constexpr char table[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::string out;
    std::size_t i = 0;
    for (; i + 3 <= in.size(); i += 3) {
        const std::uint32_t v = (std::uint8_t(in[i]) << 16) | (std::uint8_t(in[i + 1]) << 8) | std::uint8_t(in[i + 2]);
        for (int s = 18; s >= 0; s -= 6) out.push_back(table[(v >> s) & 63]);
    }
    if (in.size() - i == 1) {
        const std::uint32_t v = std::uint8_t(in[i]) << 16;
        out += {table[(v >> 18) & 63], table[(v >> 12) & 63]};
    } else if (in.size() - i == 2) {
        const std::uint32_t v = (std::uint8_t(in[i]) << 16) | (std::uint8_t(in[i + 1]) << 8);
        out += {table[(v >> 18) & 63], table[(v >> 12) & 63], table[(v >> 6) & 63]};
    }
    return out;
}

inline std::string signing_input(std::string_view alg, std::string_view body) {
    return b64url("{\"alg\":\"" + std::string(alg) + "\",\"typ\":\"JWT\"}") + "." + b64url(body);
}

inline std::string hs256(std::string_view secret, std::string_view body, std::string_view alg = "HS256") {
    const auto input = signing_input(alg, body);
    unsigned char mac[32];
    unsigned int n = 0;
    HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
         reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &n);
    return input + "." + b64url(std::string_view(reinterpret_cast<const char*>(mac), n));
}


}  // namespace cacheproxy::test_jwt
