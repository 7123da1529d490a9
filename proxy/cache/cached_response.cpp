#include "cache/cached_response.hpp"

#include <algorithm>
#include <cstring>
#include <new>

namespace cacheproxy::cache {

static_assert(alignof(CachedResponse) <= alignof(std::max_align_t), "operator new must align the block");

EntryPtr CachedResponse::make(const EntryParts& parts) noexcept {
    const std::array<std::string_view, kParts> views{parts.head, parts.body, parts.gzip_body, parts.etag,
                                                     parts.weak_etag};
    std::size_t total = 0;
    for (const auto v : views) {
        if (v.size() > kMaxPartBytes) return nullptr;
        total += v.size();
    }
    if (parts.status > UINT16_MAX) return nullptr;
    void* block = ::operator new(sizeof(CachedResponse) + total, std::nothrow);
    if (!block) return nullptr;
    auto* e = new (block) CachedResponse(parts);
    char* out = reinterpret_cast<char*>(e + 1);
    for (std::size_t i = 0; i < kParts; ++i) {
        e->sizes_[i] = static_cast<std::uint32_t>(views[i].size());
        if (!views[i].empty()) std::memcpy(out, views[i].data(), views[i].size());
        out += views[i].size();
    }
    return EntryPtr(e);
}

CachedResponse::CachedResponse(const EntryParts& parts) noexcept
    : status_(static_cast<std::uint16_t>(parts.status)),
      stored_at_(parts.stored_at),
      ttl_(parts.ttl),
      stale_while_revalidate_(parts.stale_while_revalidate),
      stale_if_error_(parts.stale_if_error),
      generation_(parts.generation) {}

void intrusive_ptr_release(const CachedResponse* e) noexcept {
    if (e->refs_.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    e->~CachedResponse();
    ::operator delete(const_cast<CachedResponse*>(e));
}

std::string_view CachedResponse::part(Part p) const noexcept {
    std::size_t offset = 0;
    for (std::size_t i = 0; i < p; ++i) offset += sizes_[i];
    return {bytes() + offset, sizes_[p]};
}

std::size_t CachedResponse::byte_count() const noexcept {
    std::size_t n = 0;
    for (const auto s : sizes_) n += s;
    return n;
}

std::size_t CachedResponse::charge() const noexcept { return malloc_chunk(sizeof(CachedResponse) + byte_count()); }

TimePoint CachedResponse::drop_at() const noexcept {
    return stored_at_ + ttl_ + std::max(stale_while_revalidate_, stale_if_error_);
}

}  // namespace cacheproxy::cache
