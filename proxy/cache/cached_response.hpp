#pragma once
/// One stored response: immutable once built, shared by every hit
/// (EntryPtr), written to sockets straight from its bytes without a copy.
///
/// Layout: one heap block per entry. The fixed fields (reference count,
/// status, the five lengths, the times, the generation) come first; the bytes
/// of head, body, gzip_body, etag and weak_etag follow back to back. The
/// accessors return views into that block, valid while any EntryPtr to the
/// entry lives. Why not five std::strings in a make_shared block: that costs
/// a control block, 160 bytes of string objects, and one more heap block per
/// string that outgrows the small-string buffer (the stored head and the body
/// always do): about 250 bytes per entry beyond the bytes themselves.

#include "cache/clock.hpp"
#include "rules/route_rule.hpp"

#include <boost/smart_ptr/intrusive_ptr.hpp>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace cacheproxy::cache {

class CachedResponse;

/// Shared, immutable entry: an intrusive handle (one pointer, no control
/// block); the count lives in the entry and is atomic, so handles may be
/// copied and dropped on any thread.
using EntryPtr = boost::intrusive_ptr<const CachedResponse>;

/// What an entry is made of. The views are copied into the entry's own block:
/// they need to live only during CachedResponse::make.
struct EntryParts {
    unsigned status = 200;  ///< the stored status (100..999)
    /// "HTTP/1.1 200 OK\r\n" + stored end-to-end fields, each "Name: value\r\n"; no
    /// final blank line (build_stored_head). Never Age, Date, Connection,
    /// Keep-Alive, Transfer-Encoding, Set-Cookie, X-Cache, Cache-Status; no
    /// Content-Length / Content-Encoding either: the writer adds those per
    /// variant (identity or gzip), then the blank line, then the body.
    std::string_view head{};
    std::string_view body{};       ///< identity body
    std::string_view gzip_body{};  ///< gzip variant, made once at fill time; empty = none (small or not compressible)
    std::string_view etag{};       ///< the upstream's ETag, kept out of `head`: the gzip variant sends it weak
    std::string_view weak_etag{};  ///< the ETag for the gzip variant
    TimePoint stored_at{};       ///< when the response arrived (the fake clock in tests)
    rules::Duration ttl{0};                     ///< fresh for this long after stored_at
    rules::Duration stale_while_revalidate{0};  ///< then served stale while one refresh runs
    rules::Duration stale_if_error{0};          ///< then served only when the upstream fails
    std::uint64_t generation = 0;               ///< invalidation generation at fetch start
};

/// An immutable cache entry. Made only by make(), owned only through EntryPtr.
class CachedResponse {
public:
    /// Largest head, body, gzip_body, etag or weak_etag an entry can hold.
    static constexpr std::size_t kMaxPartBytes = UINT32_MAX;

    /// One block holding `parts`. Null when a part is larger than
    /// kMaxPartBytes or the allocation fails (never throws).
    static EntryPtr make(const EntryParts& parts) noexcept;

    CachedResponse(const CachedResponse&) = delete;
    CachedResponse& operator=(const CachedResponse&) = delete;

    /// The stored status.
    unsigned status() const noexcept { return status_; }
    /// The stored status line and fields (see EntryParts::head).
    std::string_view head() const noexcept { return part(kHead); }
    /// The identity body.
    std::string_view body() const noexcept { return part(kBody); }
    /// The gzip variant; empty when there is none.
    std::string_view gzip_body() const noexcept { return part(kGzipBody); }
    /// The upstream's ETag; empty when it sent none.
    std::string_view etag() const noexcept { return part(kEtag); }
    /// The ETag sent with the gzip variant; empty when there is no ETag.
    std::string_view weak_etag() const noexcept { return part(kWeakEtag); }
    /// When the response arrived.
    TimePoint stored_at() const noexcept { return stored_at_; }
    /// Fresh for this long after stored_at.
    rules::Duration ttl() const noexcept { return ttl_; }
    /// Then served stale while one refresh runs.
    rules::Duration stale_while_revalidate() const noexcept { return stale_while_revalidate_; }
    /// Then served only when the upstream fails.
    rules::Duration stale_if_error() const noexcept { return stale_if_error_; }
    /// The invalidation generation at fetch start.
    std::uint64_t generation() const noexcept { return generation_; }

    /// Bytes this entry costs in memory: its one block (glibc malloc chunk
    /// size). The store adds its node and key on top.
    std::size_t charge() const noexcept;

    /// When the entry is of no use at all: stored_at + ttl + max(stale windows).
    TimePoint drop_at() const noexcept;

    /// How many EntryPtr share this entry right now (tests, diagnostics).
    std::uint32_t use_count() const noexcept { return refs_.load(std::memory_order_relaxed); }

    /// EntryPtr's hooks: one more handle.
    friend void intrusive_ptr_add_ref(const CachedResponse* e) noexcept {
        e->refs_.fetch_add(1, std::memory_order_relaxed);
    }
    /// EntryPtr's hooks: one handle fewer; the last one frees the block.
    friend void intrusive_ptr_release(const CachedResponse* e) noexcept;

private:
    enum Part : std::size_t { kHead, kBody, kGzipBody, kEtag, kWeakEtag, kParts };

    explicit CachedResponse(const EntryParts& parts) noexcept;
    ~CachedResponse() = default;

    /// The bytes behind the fixed fields.
    const char* bytes() const noexcept { return reinterpret_cast<const char*>(this + 1); }
    std::string_view part(Part p) const noexcept;
    std::size_t byte_count() const noexcept;

    mutable std::atomic<std::uint32_t> refs_{0};
    std::array<std::uint32_t, kParts> sizes_{};  ///< head, body, gzip_body, etag, weak_etag, stored in this order
    std::uint16_t status_ = 0;
    TimePoint stored_at_{};
    rules::Duration ttl_{0};
    rules::Duration stale_while_revalidate_{0};
    rules::Duration stale_if_error_{0};
    std::uint64_t generation_ = 0;
};

/// glibc malloc's chunk size for a request of `n` bytes (n + 8 rounded to 16, at least 32).
constexpr std::size_t malloc_chunk(std::size_t n) {
    const std::size_t c = (n + 8 + 15) & ~static_cast<std::size_t>(15);
    return c < 32 ? 32 : c;
}

}  // namespace cacheproxy::cache
