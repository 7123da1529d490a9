#pragma once
/// The principal steps of the cached flows (ARCHITECTURE.md, invariant 6):
/// what a fill's or a write's answer says about who is behind its credential,
/// and what a refusal (401/403) does. Never on a cache hit.

#include "cache/cache.hpp"
#include "cache/cache_key.hpp"
#include "cache/fill.hpp"
#include "core/cache_context.hpp"
#include "http/field_arena.hpp"

#include <boost/beast/http/message.hpp>

#include <cstdint>
#include <optional>
#include <string_view>

namespace cacheproxy::session {

/// A generation no lookup ever reads: an entry recording it is never stored nor served.
inline constexpr std::uint64_t kNeverStored = ~std::uint64_t{0};

/// True for the statuses that mean "this credential is refused" (401, 403).
inline bool refused(unsigned status) { return status == 401 || status == 403; }

/// After a fill of `key` (per-user or not) fetched `res`, having read
/// write_seq() as `since` before its request went upstream: a refusal drops
/// the credential's entries; a 2xx answer whose principal is known (its field,
/// or the credential's verified token) maps the credential. Returns the
/// generation the entry records: `generation`, one more (this answer mapped
/// the credential), or kNeverStored (it may predate a write of the principal).
std::uint64_t after_fill(app::CacheContext& cc, const cache::CacheKey& key, std::uint64_t generation,
                         std::uint64_t since, const cache::Response& res, std::optional<std::string_view> credential,
                         cache::TimePoint now);

/// A forwarded request carrying `credential` was answered `status`: a refusal
/// drops every entry of that credential (and its mapping). Returns true if it did.
bool after_refusal(app::CacheContext& cc, unsigned status, std::optional<std::string_view> credential);

/// after_refusal() for the credential `req` carries (the rules' identity source).
bool drop_if_refused(app::CacheContext& cc, unsigned status, const http::RequestHeader& req);

/// Before a write's invalidation: learns the writer's principal where its
/// answer or its token names it, then widens `plan` to the principal's other
/// credentials. False when the writer's principal is not known.
bool widen_write(app::CacheContext& cc, cache::Cache::Invalidation& plan, std::string_view response_body,
                 std::string_view credential, cache::TimePoint now);

}  // namespace cacheproxy::session
