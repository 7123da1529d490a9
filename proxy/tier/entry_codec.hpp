#pragma once
/// A cached entry as an L2 value, and back. Pure: no I/O, no clock of its own.
///
///   "<generation>\n"       the global generation read before the fetch (decimal;
///                          "0" on a shared route): the Lua scripts compare it
///                          with the generation key without decoding the rest
///   "<fresh until>\n"      unix ms (stored_at + ttl): a lookup serves only a
///                          fresh value; one past it is a fallback for a failed fetch
///   "CPE1"                 magic + version
///   u16 status, u16 flags
///   u64 epoch              epoch_of(run_id) of the node it was written to
///   i64 stored_at          unix milliseconds (system clock)
///   u32 ttl, swr, sie      milliseconds
///   u32 lengths of key bytes, head, body, gzip body, etag, weak etag
///   the six parts, back to back
/// Little-endian. A value is refused unless every length adds up exactly, the
/// key bytes equal the key asked for (so a hash collision of names can never
/// cross keys), and the epoch is the node's current one (so a restart from an
/// old snapshot, or a failover that lost writes, cannot bring an entry back).

#include "cache/cache_key.hpp"
#include "cache/cached_response.hpp"
#include "cache/clock.hpp"

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace cacheproxy::tier {

/// The value for `entry` of `key`, fetched under global generation `generation`.
std::string encode_entry(const cache::CachedResponse& entry, const cache::CacheKey& key, std::string_view generation,
                         std::uint64_t epoch, std::chrono::system_clock::time_point system_now, cache::TimePoint now);

enum class Decoded { ok, malformed, key_mismatch, generation_mismatch, epoch_mismatch, expired, before_gap };
const char* to_string(Decoded d);

/// Decodes `value` for `key`: ok only if it is well formed, for `key`,
/// written under `generation` and `epoch`, and not past its lifetime. The
/// entry made records `local_generation` (this instance's generation of the
/// key, read before the lookup) and a stored_at moved onto this instance's
/// clock (`now` / `system_now` are the same instant on the two clocks).
/// `not_before_ms`: a value stored before this (unix ms) is refused as
/// before_gap (a per-user value from before this instance's last bus gap: a
/// write made during it may not have bumped the global generation).
Decoded decode_entry(std::string_view value, const cache::CacheKey& key, std::string_view generation,
                     std::uint64_t epoch, std::uint64_t local_generation, std::chrono::system_clock::time_point system_now,
                     cache::TimePoint now, cache::EntryPtr& out, std::int64_t not_before_ms = 0);

/// Milliseconds a value for `entry` should live in Redis: what is left of its
/// TTL and stale windows (at least 1).
std::int64_t value_px(const cache::CachedResponse& entry, cache::TimePoint now);

}  // namespace cacheproxy::tier
