#include "cache/cached_response.hpp"

#include <algorithm>

namespace cacheproxy::cache {

namespace {

/// libstdc++'s std::string keeps up to 15 characters inline.
constexpr std::size_t kInlineChars = 15;
/// make_shared's control block in front of the object (two counts + vtable).
constexpr std::size_t kControlBlock = 16;

}  // namespace

std::size_t heap_bytes(const std::string& s) {
    return s.capacity() > kInlineChars ? malloc_chunk(s.capacity() + 1) : 0;
}

std::size_t CachedResponse::charge() const {
    return malloc_chunk(kControlBlock + sizeof(CachedResponse)) + heap_bytes(head) + heap_bytes(body) +
           heap_bytes(gzip_body) + heap_bytes(etag) + heap_bytes(weak_etag);
}

TimePoint CachedResponse::drop_at() const {
    return stored_at + ttl + std::max(stale_while_revalidate, stale_if_error);
}

}  // namespace cacheproxy::cache
