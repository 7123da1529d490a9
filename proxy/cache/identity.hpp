#pragma once
/// Who the caller is, as far as the cache key goes. The credential itself is
/// never kept: the key holds HMAC-SHA256(per-process random key, credential)
/// truncated to 128 bits, so neither memory dumps of keys, nor stats, nor a
/// later shared tier ever see a token, and two users never share an entry.

#include "cache/header_view.hpp"
#include "rules/route_rule.hpp"

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

typedef struct evp_mac_st EVP_MAC;

namespace cacheproxy::cache {

/// A caller's identity in a cache key: 128 bits of HMAC-SHA256.
using IdentityHash = std::array<std::uint8_t, 16>;

/// Keyed hashing of credentials. One per process, made at start-up; thread-safe.
class IdentityHasher {
public:
    /// The HMAC key.
    using Key = std::array<std::uint8_t, 32>;

    /// A fresh random key from RAND_bytes. Start-up only: throws std::runtime_error
    /// when the CSPRNG or the HMAC implementation is unavailable.
    IdentityHasher();
    /// A fixed key (tests). Throws std::runtime_error when HMAC is unavailable.
    explicit IdentityHasher(const Key& key);
    /// Wipes the key.
    ~IdentityHasher();
    /// Replaces the key (the shared tier's file). Start-up only, before any
    /// thread hashes: not thread-safe.
    void rekey(const Key& key);
    IdentityHasher(const IdentityHasher&) = delete;
    IdentityHasher& operator=(const IdentityHasher&) = delete;

    /// HMAC-SHA256(key, credential) truncated to 128 bits; nullopt only when
    /// OpenSSL fails (out of memory): the caller then does not cache.
    std::optional<IdentityHash> try_hash(std::string_view credential) const;

    /// As try_hash; terminates the process if OpenSSL fails (never returns a
    /// hash that could be shared by two credentials).
    IdentityHash hash(std::string_view credential) const;

    /// Lower-case hex of a hash (32 characters), for logs and stats.
    static std::string hex(const IdentityHash& hash);
    /// The bytes `text` spells in hex (either case), exactly out.size() of
    /// them; false (out unspecified) for any other length or a non-hex digit.
    static bool from_hex(std::string_view text, std::span<std::uint8_t> out);

private:
    Key key_{};
    EVP_MAC* mac_ = nullptr;  ///< fetched once; a context per call
    std::uint64_t id_;        ///< tells this hasher's entries in the per-thread recent cache apart
};

/// The credential a request carries for `source`, or nullopt for "no identity":
/// absent, empty or whitespace-only, or given more than once (a repeated header,
/// a cookie or query parameter named twice). Header values are returned
/// trimmed; query values raw (never decoded). `target` is the raw request-target.
std::optional<std::string_view> extract_identity(const rules::IdentitySource& source, const HeaderView& headers,
                                                 std::string_view target);

}  // namespace cacheproxy::cache
