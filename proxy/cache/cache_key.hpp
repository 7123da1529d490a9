#pragma once
/// The cache key: everything that decides whether two requests may share an
/// entry or a fill. Equality is always on the full `bytes`; `hash` only picks
/// a shard and a bucket.
///
/// Layout of `bytes` (injective: every variable part is length-prefixed or of
/// fixed size, so no two different requests produce the same bytes):
///   route name, NUL,
///   per chosen query parameter (rule order): name, then '=' + u32 length + raw value,
///     or '!' when absent,
///   per chosen request header (rule order): 'H' + name, then '=' + HMAC128(value),
///     or '!' when absent,
///   'I' + HMAC128(credential) on a per-user route: always the last 17 bytes
///     (a store may keep only the bytes and read the identity back from them).
/// The method and path are implied by the route (exact path; HEAD shares GET's
/// entries). A credential never appears in `bytes`: header values are always
/// HMAC'd, and a query value equal to the credential is replaced by its HMAC.

#include "cache/header_view.hpp"
#include "cache/identity.hpp"
#include "rules/route_rule.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace cacheproxy::cache {

/// One request's cache key.
struct CacheKey {
    std::string bytes;            ///< what equality is decided on (see the layout above)
    std::uint64_t hash = 0;       ///< key_hash(bytes): sharding and buckets only, never identity separation
    std::size_t route_index = 0;  ///< the route's index in the RuleSet (a store partition)
    IdentityHash identity{};      ///< the caller's identity hash (per-user routes)
    bool has_identity = false;    ///< false on shared routes
    /// Every chosen query value is spelled with unreserved characters only
    /// (RFC 3986 2.3): no %-escape, no '+'. A write's scope reaches an entry
    /// through the canonical spelling, so a per-user read spelled otherwise is
    /// not cached (the session checks this).
    bool canonical_values = true;

    /// Same route and same bytes.
    bool operator==(const CacheKey& other) const {
        return route_index == other.route_index && bytes == other.bytes;
    }
};

/// 64-bit hash of key bytes (std::hash of the bytes), for sharding.
std::uint64_t key_hash(std::string_view bytes);

/// True when `bytes` end with 'I' + `identity`, as a per-user route's key does.
bool ends_with_identity(std::string_view bytes, const IdentityHash& identity);

/// True when the route keys on the caller: `key.identity`, or not `shared`
/// (a route that is neither is treated as per-user: never cross identities).
bool per_user(const rules::RouteRule& rule);

/// Builds the key of a request on `rule`, or nullopt when the request must not
/// be cached (forwarded, never stored, never served, never coalesced):
/// a per-user route without a credential; a chosen query parameter given twice
/// or ambiguously; a malformed %-escape in a chosen parameter; a chosen request
/// header given twice; a '#' in the target; a failure of the HMAC.
/// `target` is the raw request-target; `credential` comes from extract_identity.
std::optional<CacheKey> build_key(const rules::RouteRule& rule, std::size_t route_index, std::string_view target,
                                  std::optional<std::string_view> credential, const IdentityHasher& hasher,
                                  const HeaderView& request_headers);

/// build_key into `out`, reusing the capacity of its bytes (a connection
/// keeps one key from request to request: no allocation per hit). False where
/// build_key gives nullopt; `out` is then a partial key, never to be used.
bool build_key_into(CacheKey& out, const rules::RouteRule& rule, std::size_t route_index, std::string_view target,
                    std::optional<std::string_view> credential, const IdentityHasher& hasher,
                    const HeaderView& request_headers);

}  // namespace cacheproxy::cache
