#pragma once
/// Redis key names of the shared tier. No credential: a per-user key holds
/// the identity HMAC (under the instances' shared key), which is also its
/// Cluster hash tag, so one user's entry, lease and generation keys share a
/// slot and every script touches one node. Route *names*, never indices
/// (indices change with the rules); the cache key's bytes are hashed
/// (SHA-256, 128 bits) and kept whole inside the value, so a name collision
/// can never cross keys (tier/entry_codec.hpp).
///
///   per user  cp:v1:{<id32>}:gu:<route>            the user x route generation
///             cp:v1:{<id32>}:e:<route>:<kh>        the entry
///             cp:v1:{<id32>}:l:<route>:<kh>        the fill lease
///   shared    cp:v1:{s:<route>:<kh>}:e / :l        entry and lease (never invalidated by a write)
///   bus       cp:v1:{bus}                          the sharded Pub/Sub channel
///   key check cp:v1:keycheck                       the shared key's fingerprint

#include "cache/cache_key.hpp"
#include "cache/identity.hpp"

#include <string>
#include <string_view>

namespace cacheproxy::tier {

inline constexpr std::string_view kBusChannel = "cp:v1:{bus}";
inline constexpr std::string_view kKeyCheck = "cp:v1:keycheck";

struct EntryKeys {
    std::string entry;
    std::string lease;
    std::string generation;  ///< "" on a shared route
};

/// The keys of `key` (a route named `route`; `shared`: no identity in the key).
EntryKeys keys_for(const cache::CacheKey& key, std::string_view route, bool shared);
/// The user x route generation key.
std::string generation_key(const cache::IdentityHash& identity, std::string_view route);
/// Lower-case hex of the first 16 bytes of SHA-256(bytes).
std::string hash_hex(std::string_view bytes);
/// What every instance must agree on: the HMAC (under the shared key) of a
/// fixed label. Reveals nothing of the key.
std::string key_fingerprint(const cache::IdentityHasher& hasher);
/// A 64-bit FNV-1a of a Redis run_id: the epoch a value is written under.
std::uint64_t epoch_of(std::string_view run_id);

}  // namespace cacheproxy::tier
