#pragma once
/// What a fill makes of an upstream response: pure decisions, no I/O.
///
/// A fill's response becomes one of the coalescer's outcomes (fill_result):
/// stored (an entry for the store), answer (an entry every waiter may get but
/// the store never holds), failed (a body that does not decode: 502 for all),
/// or not_shareable. A failure is held for coalesce.error_hold (hold_until).

#include "cache/cache_key.hpp"
#include "cache/cached_response.hpp"
#include "cache/clock.hpp"
#include "cache/fill_result.hpp"
#include "cache/storability.hpp"
#include "rules/route_rule.hpp"

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace cacheproxy::cache {

/// A whole upstream response, as a fill read it.
using Response = boost::beast::http::response<boost::beast::http::string_body>;

/// How an entry's gzip variant is made, once, when the entry is made.
struct GzipPolicy {
    bool enabled = true;
    std::size_t min_size = 1000;  ///< smaller bodies are kept identity-only
    int level = 6;
};

/// The entry for a fetched response (recording the scope generation read
/// before its fetch started): `why` is none when it may be stored, else why
/// not, and then the entry is there only when the fill's waiters may share it
/// (check_shareable); null otherwise. A body the upstream gzipped anyway is
/// stored decoded (one that does not decode: bad_encoding; `res` is changed);
/// a compressible body of at least min_size also gets its gzip variant, made
/// here, once. `length_known`: framed by Content-Length or chunked.
EntryPtr admit(const rules::RouteRule& rule, const rules::IdentitySource& identity, const GzipPolicy& compression,
               Response& res, bool length_known, bool request_had_credentials, TimePoint now,
               std::uint64_t generation, NotStorable& why);

/// What admit()'s entry and reason make of the fill for its waiters: stored,
/// answer (shared, not stored), failed (502: a body that does not decode), or
/// not_shareable.
FillResult fill_result(const EntryPtr& entry, NotStorable why);

/// When a fill's outcome is a failure (failed, or an answer with a 5xx):
/// until when the coalescer holds it (coalesce.error_hold); else none.
std::optional<TimePoint> hold_until(const FillResult& result, const rules::RuleSet& rules, TimePoint now);

/// True when `gzip` is a valid gzip stream that decodes to more than `bound`
/// bytes (false for a corrupt or truncated one).
bool decodes_past(std::string_view gzip, std::size_t bound);

/// The key fills are coalesced on: the cache key plus its scope generation,
/// so a request that comes after a write never joins a fill from before it.
CacheKey flight_key(const CacheKey& key, std::uint64_t generation);

}  // namespace cacheproxy::cache
