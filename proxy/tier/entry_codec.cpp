#include "tier/entry_codec.hpp"

#include <algorithm>
#include <array>
#include <cstring>

namespace cacheproxy::tier {
namespace {

using std::chrono::duration_cast;
using std::chrono::milliseconds;

constexpr std::string_view kMagic = "CPE1";
constexpr std::size_t kParts = 6;
constexpr std::size_t kFixed = 4 + 2 + 2 + 8 + 8 + 3 * 4 + kParts * 4;

template <typename T>
void put(std::string& out, T v) {
    char b[sizeof(T)];
    std::memcpy(b, &v, sizeof v);  // little-endian hosts only (x86-64, arm64)
    out.append(b, sizeof b);
}

template <typename T>
T get(const char*& p) {
    T v;
    std::memcpy(&v, p, sizeof v);
    p += sizeof v;
    return v;
}

std::uint32_t ms32(rules::Duration d) {
    return static_cast<std::uint32_t>(std::clamp<std::int64_t>(duration_cast<milliseconds>(d).count(), 0, UINT32_MAX));
}

}  // namespace

const char* to_string(Decoded d) {
    switch (d) {
        case Decoded::ok: return "ok";
        case Decoded::malformed: return "malformed";
        case Decoded::key_mismatch: return "key";
        case Decoded::generation_mismatch: return "generation";
        case Decoded::epoch_mismatch: return "epoch";
        case Decoded::expired: return "expired";
        case Decoded::before_gap: return "before-bus-gap";
    }
    return "?";
}

std::string encode_entry(const cache::CachedResponse& entry, const cache::CacheKey& key, std::string_view generation,
                         std::uint64_t epoch, std::chrono::system_clock::time_point system_now, cache::TimePoint now) {
    const std::array<std::string_view, kParts> parts{key.bytes,         entry.head(), entry.body(),
                                                     entry.gzip_body(), entry.etag(), entry.weak_etag()};
    std::size_t total = generation.size() + 1 + kFixed;
    for (const auto p : parts) total += p.size();
    const auto stored_sys = system_now - duration_cast<std::chrono::system_clock::duration>(now - entry.stored_at());
    const auto stored_ms = duration_cast<milliseconds>(stored_sys.time_since_epoch()).count();
    const auto fresh_until = std::to_string(stored_ms + duration_cast<milliseconds>(entry.ttl()).count());
    std::string out;
    out.reserve(total + fresh_until.size() + 1);
    out.append(generation).push_back('\n');
    out.append(fresh_until).push_back('\n');
    out.append(kMagic);
    put<std::uint16_t>(out, static_cast<std::uint16_t>(entry.status()));
    put<std::uint16_t>(out, key.has_identity ? 0 : 1);
    put<std::uint64_t>(out, epoch);
    // stored_at on the system clock: the same instant, however old the entry is.
    put<std::int64_t>(out, stored_ms);
    put<std::uint32_t>(out, ms32(entry.ttl()));
    put<std::uint32_t>(out, ms32(entry.stale_while_revalidate()));
    put<std::uint32_t>(out, ms32(entry.stale_if_error()));
    for (const auto p : parts) put<std::uint32_t>(out, static_cast<std::uint32_t>(p.size()));
    for (const auto p : parts) out.append(p);
    return out;
}

Decoded decode_entry(std::string_view value, const cache::CacheKey& key, std::string_view generation,
                     std::uint64_t epoch, std::uint64_t local_generation, std::chrono::system_clock::time_point system_now,
                     cache::TimePoint now, cache::EntryPtr& out, std::int64_t not_before_ms) {
    const auto nl = value.find('\n');
    if (nl == std::string_view::npos) return Decoded::malformed;
    if (value.substr(0, nl) != generation) return Decoded::generation_mismatch;
    value.remove_prefix(nl + 1);
    const auto nl2 = value.find('\n');  // fresh-until: for the scripts; the header below is what counts
    if (nl2 == std::string_view::npos || nl2 > 20) return Decoded::malformed;
    value.remove_prefix(nl2 + 1);
    if (value.size() < kFixed || value.substr(0, kMagic.size()) != kMagic) return Decoded::malformed;
    const char* p = value.data() + kMagic.size();
    const auto status = get<std::uint16_t>(p);
    get<std::uint16_t>(p);  // flags
    const auto value_epoch = get<std::uint64_t>(p);
    const auto stored_ms = get<std::int64_t>(p);
    const auto ttl = get<std::uint32_t>(p), swr = get<std::uint32_t>(p), sie = get<std::uint32_t>(p);
    std::array<std::uint32_t, kParts> len{};
    std::uint64_t sum = 0;
    for (auto& l : len) sum += (l = get<std::uint32_t>(p));
    // stored_at within 1970..2200: any later one (a hostile or broken value) would overflow the
    // nanosecond clock (it ends in 2262).
    constexpr std::int64_t kYear2200Ms = 7'258'118'400'000;
    if (sum != value.size() - kFixed || status < 100 || status > 999 || stored_ms < 0 || stored_ms > kYear2200Ms)
        return Decoded::malformed;
    std::array<std::string_view, kParts> part{};
    for (std::size_t i = 0; i < kParts; ++i) {
        part[i] = {p, len[i]};
        p += len[i];
    }
    if (part[0] != key.bytes) return Decoded::key_mismatch;
    if (value_epoch != epoch) return Decoded::epoch_mismatch;
    if (stored_ms < not_before_ms) return Decoded::before_gap;
    // The same instant on this instance's clock; never in its future.
    const auto stored_sys = std::chrono::system_clock::time_point(milliseconds(stored_ms));
    const auto age = std::max(std::chrono::system_clock::duration::zero(), system_now - stored_sys);
    const auto stored_at = now - duration_cast<cache::Clock::duration>(age);
    cache::EntryParts parts{.status = status,
                            .head = part[1],
                            .body = part[2],
                            .gzip_body = part[3],
                            .etag = part[4],
                            .weak_etag = part[5],
                            .stored_at = stored_at,
                            .ttl = milliseconds(ttl),
                            .stale_while_revalidate = milliseconds(swr),
                            .stale_if_error = milliseconds(sie),
                            .generation = local_generation};
    if (now >= stored_at + milliseconds(ttl) + milliseconds(std::max(swr, sie))) return Decoded::expired;
    out = cache::CachedResponse::make(parts);
    return out ? Decoded::ok : Decoded::malformed;
}

std::int64_t value_px(const cache::CachedResponse& entry, cache::TimePoint now) {
    return std::max<std::int64_t>(1, duration_cast<milliseconds>(entry.drop_at() - now).count());
}

}  // namespace cacheproxy::tier
