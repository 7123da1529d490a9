#pragma once
/// Who is behind a credential, from the two sources rules.principal allows
/// (never from anything else the client says): a field of the app's own JSON
/// answer, or a claim of a JWT whose signature checks against the configured
/// key. Pure functions and one verifier; no I/O; thread-safe (const).

#include "rules/route_rule.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

typedef struct evp_pkey_st EVP_PKEY;

namespace cacheproxy::principal {

/// The top-level `field` of a JSON object `body` as text: a non-empty
/// string's value, or an integer's decimal form. nullopt for anything else
/// (not JSON, not an object, no such field, another type).
std::optional<std::string> json_field(std::string_view body, std::string_view field);

/// Why a token gave no principal.
enum class JwtError { none, malformed, alg_refused, bad_signature, expired, not_yet_valid, no_claim };

/// Checks compact JWS tokens (header.payload.signature, base64url) against
/// one configured algorithm and key. `alg` in the token's header must be that
/// algorithm exactly: "none", and any other, is refused.
class JwtVerifier {
public:
    /// `key`: the HS256 secret (bytes as in the file, one trailing newline
    /// dropped), or a PEM public key (RS256: RSA, ES256: P-256). Throws
    /// std::runtime_error for a key OpenSSL cannot read or of the wrong type.
    JwtVerifier(rules::PrincipalRule::Alg alg, std::string_view key);
    ~JwtVerifier();
    JwtVerifier(const JwtVerifier&) = delete;
    JwtVerifier& operator=(const JwtVerifier&) = delete;

    /// The `claim` (a string, or an integer as decimal) of `token` when its
    /// signature is valid, its `exp` (if any) is after `now_unix` and its
    /// `nbf` (if any) not after it; else nullopt and `why`.
    std::optional<std::string> verify(std::string_view token, std::string_view claim, std::int64_t now_unix,
                                      JwtError* why = nullptr) const;

private:
    bool signature_ok(std::string_view signed_part, const std::string& signature) const;

    rules::PrincipalRule::Alg alg_;
    std::string secret_;
    EVP_PKEY* pkey_ = nullptr;
};

/// rules.principal, ready to use.
class Extractor {
public:
    /// Throws std::runtime_error as JwtVerifier does (the rules loader checks the key first).
    explicit Extractor(const rules::PrincipalRule& rule);

    bool enabled() const { return rule_.source != rules::PrincipalRule::Source::none; }
    /// The principal an answer body names (source response_field), else nullopt.
    std::optional<std::string> of_answer(std::string_view body) const;
    /// The principal a credential's verified token names (source jwt; a
    /// "Bearer " prefix is skipped), else nullopt.
    std::optional<std::string> of_credential(std::string_view credential, std::int64_t now_unix) const;

private:
    const rules::PrincipalRule& rule_;
    std::optional<JwtVerifier> jwt_;
};

/// Base64url (RFC 4648 section 5, no padding required) to bytes; nullopt on a bad character or length.
std::optional<std::string> base64url_decode(std::string_view in);

}  // namespace cacheproxy::principal
