#pragma once
/// One stored response: immutable once built, shared by every hit
/// (EntryPtr), written to sockets straight from these strings without a copy.

#include "cache/clock.hpp"
#include "rules/route_rule.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace cacheproxy::cache {

/// An immutable cache entry.
struct CachedResponse {
    unsigned status = 200;  ///< the stored status
    /// "HTTP/1.1 200 OK\r\n" + stored end-to-end fields, each "Name: value\r\n"; no
    /// final blank line (build_stored_head). Never Age, Date, Connection,
    /// Keep-Alive, Transfer-Encoding, Set-Cookie, X-Cache, Cache-Status; no
    /// Content-Length / Content-Encoding either: the writer adds those per
    /// variant (identity or gzip), then the blank line, then the body.
    std::string head;
    std::string body;       ///< identity body
    std::string gzip_body;  ///< gzip variant, made once at fill time; empty = none (small or not compressible)
    std::string etag;       ///< the upstream's ETag, kept out of `head`: the gzip variant sends it weak
    std::string weak_etag;  ///< the ETag for the gzip variant
    TimePoint stored_at{};  ///< when the response arrived (the fake clock in tests)
    rules::Duration ttl{0};                     ///< fresh for this long after stored_at
    rules::Duration stale_while_revalidate{0};  ///< then served stale while one refresh runs
    rules::Duration stale_if_error{0};          ///< then served only when the upstream fails
    std::uint64_t generation = 0;               ///< invalidation generation (a later issue uses it)

    /// Bytes this entry costs in memory: the object in its make_shared block,
    /// plus the heap blocks of head, body and gzip_body (glibc malloc chunk
    /// sizes). The store adds the key and its own node overhead on top.
    std::size_t charge() const;

    /// When the entry is of no use at all: stored_at + ttl + max(stale windows).
    TimePoint drop_at() const;
};

/// Shared, immutable entry.
using EntryPtr = std::shared_ptr<const CachedResponse>;

/// glibc malloc's chunk size for a request of `n` bytes (n + 8 rounded to 16, at least 32).
constexpr std::size_t malloc_chunk(std::size_t n) {
    const std::size_t c = (n + 8 + 15) & ~static_cast<std::size_t>(15);
    return c < 32 ? 32 : c;
}

/// Heap bytes behind a std::string (0 while it fits the small-string buffer).
std::size_t heap_bytes(const std::string& s);

}  // namespace cacheproxy::cache
