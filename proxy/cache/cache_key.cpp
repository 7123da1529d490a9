#include "cache/cache_key.hpp"

#include "cache/query_string.hpp"

#include <functional>

namespace cacheproxy::cache {

namespace {

void append_u32(std::string& out, std::size_t n) {
    const auto v = static_cast<std::uint32_t>(n);
    out.push_back(static_cast<char>(v >> 24));
    out.push_back(static_cast<char>(v >> 16));
    out.push_back(static_cast<char>(v >> 8));
    out.push_back(static_cast<char>(v));
}

void append_hash(std::string& out, const IdentityHash& h) {
    out.append(reinterpret_cast<const char*>(h.data()), h.size());
}

/// RFC 3986 unreserved characters only: ALPHA DIGIT '-' '.' '_' '~'.
bool unreserved_only(std::string_view s) {
    for (const unsigned char c : s) {
        const bool unreserved = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                                c == '-' || c == '.' || c == '_' || c == '~';
        if (!unreserved) return false;
    }
    return true;
}

}  // namespace

std::uint64_t key_hash(std::string_view bytes) { return std::hash<std::string_view>{}(bytes); }

bool ends_with_identity(std::string_view bytes, const IdentityHash& identity) {
    const std::string_view tail(reinterpret_cast<const char*>(identity.data()), identity.size());
    return bytes.size() > tail.size() && bytes.ends_with(tail) && bytes[bytes.size() - tail.size() - 1] == 'I';
}

bool per_user(const rules::RouteRule& rule) { return rule.key.identity || !rule.shared; }

std::optional<CacheKey> build_key(const rules::RouteRule& rule, std::size_t route_index, std::string_view target,
                                  std::optional<std::string_view> credential, const IdentityHasher& hasher,
                                  const HeaderView& request_headers) {
    CacheKey key;
    if (!build_key_into(key, rule, route_index, target, credential, hasher, request_headers)) return std::nullopt;
    return key;
}

bool build_key_into(CacheKey& key, const rules::RouteRule& rule, std::size_t route_index, std::string_view target,
                    std::optional<std::string_view> credential, const IdentityHasher& hasher,
                    const HeaderView& request_headers) {
    if (target.find('#') != std::string_view::npos) return false;

    key.bytes.clear();  // its capacity stays
    key.hash = 0;
    key.route_index = route_index;
    key.identity = {};
    key.has_identity = false;
    key.canonical_values = true;

    const bool user = per_user(rule);
    if (user) {
        if (!credential || credential->empty()) return false;  // per-user route, no identity
        const auto h = hasher.try_hash(*credential);
        if (!h) return false;
        key.identity = *h;
        key.has_identity = true;
    }

    const std::string_view query = query_of(target);
    std::size_t reserve = rule.name.size() + 1 + (user ? 17 : 0);
    for (const auto& name : rule.key.query) reserve += name.size() + 5 + 32;
    for (const auto& name : rule.key.headers) reserve += name.size() + 2 + 16;
    key.bytes.reserve(reserve);

    key.bytes.append(rule.name);
    key.bytes.push_back('\0');

    for (const auto& name : rule.key.query) {
        const ParamLookup p = find_param(query, name);
        if (p.count > 1 || p.ambiguous) return false;  // given twice: which one upstream uses is not ours to guess
        key.bytes.append(name);
        if (p.count == 0) {
            key.bytes.push_back('!');
            continue;
        }
        if (!valid_percent_encoding(p.raw_value)) return false;
        if (key.canonical_values) key.canonical_values = unreserved_only(p.raw_value);
        key.bytes.push_back('=');
        if (credential && !credential->empty() && p.raw_value == *credential) {
            // The identity travels in this parameter: key on its HMAC, never the bytes.
            const auto h = hasher.try_hash(p.raw_value);
            if (!h) return false;
            append_u32(key.bytes, h->size() | 0x80000000u);
            append_hash(key.bytes, *h);
        } else {
            append_u32(key.bytes, p.raw_value.size());
            key.bytes.append(p.raw_value);
        }
    }

    for (const auto& name : rule.key.headers) {
        const std::size_t n = request_headers.count(name);
        if (n > 1) return false;
        key.bytes.push_back('H');
        key.bytes.append(name);
        if (n == 0) {
            key.bytes.push_back('!');
            continue;
        }
        // Header values may carry credentials (Authorization, Cookie listed by mistake): HMAC them.
        const auto h = hasher.try_hash(request_headers.first(name));
        if (!h) return false;
        key.bytes.push_back('=');
        append_hash(key.bytes, *h);
    }

    if (user) {
        key.bytes.push_back('I');
        append_hash(key.bytes, key.identity);
    }

    key.hash = key_hash(key.bytes);
    return true;
}

}  // namespace cacheproxy::cache
