#include "cache/identity.hpp"

#include "cache/header_tokens.hpp"
#include "cache/query_string.hpp"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include <atomic>
#include <charconv>
#include <exception>
#include <functional>
#include <stdexcept>

namespace cacheproxy::cache {

namespace {

bool blank(std::string_view s) { return trim_ows(s).empty(); }

/// The value of cookie `name` across every Cookie field; nullopt when absent,
/// repeated or blank.
std::optional<std::string_view> find_cookie(const HeaderView& headers, std::string_view name) {
    std::optional<std::string_view> found;
    std::size_t seen = 0;
    const std::size_t fields = headers.count("cookie");
    for (std::size_t i = 0; i < fields; ++i) {
        std::string_view list = headers.value("cookie", i);
        while (!list.empty()) {
            const std::size_t semi = list.find(';');
            const std::string_view pair = trim_ows(list.substr(0, semi));
            list = semi == std::string_view::npos ? std::string_view{} : list.substr(semi + 1);
            const std::size_t eq = pair.find('=');
            if (eq == std::string_view::npos) continue;
            if (trim_ows(pair.substr(0, eq)) != name) continue;  // cookie names are case-sensitive
            ++seen;
            found = trim_ows(pair.substr(eq + 1));
        }
    }
    if (seen != 1 || blank(*found)) return std::nullopt;
    return found;
}

/// Hashers get distinct ids, so a recent-cache slot is never read under another key.
std::atomic<std::uint64_t> next_hasher_id{1};

/// One slot of the per-thread cache of recently hashed credentials.
struct RecentCredential {
    std::uint64_t owner = 0;  ///< the hasher id; 0 = empty
    std::string credential;
    IdentityHash hash{};
};

/// Per thread, direct-mapped: a user's repeated requests on one worker skip
/// the HMAC (about 1.5 us, the largest single cost of a hit). Credentials only
/// live here in memory, as they already do in request buffers.
constexpr std::size_t kRecentSlots = 64;
constexpr std::size_t kMaxCachedCredential = 512;

}  // namespace

IdentityHasher::IdentityHasher() : id_(next_hasher_id.fetch_add(1)) {
    if (RAND_bytes(key_.data(), static_cast<int>(key_.size())) != 1)
        throw std::runtime_error("identity: RAND_bytes failed");
    mac_ = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
    if (mac_ == nullptr) throw std::runtime_error("identity: HMAC unavailable");
}

IdentityHasher::IdentityHasher(const Key& key) : key_(key), id_(next_hasher_id.fetch_add(1)) {
    mac_ = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
    if (mac_ == nullptr) throw std::runtime_error("identity: HMAC unavailable");
}

void IdentityHasher::rekey(const Key& key) {
    OPENSSL_cleanse(key_.data(), key_.size());
    key_ = key;
    id_ = next_hasher_id.fetch_add(1);  // nothing hashed under the old key is found again
}

IdentityHasher::~IdentityHasher() {
    OPENSSL_cleanse(key_.data(), key_.size());
    EVP_MAC_free(mac_);
}

std::optional<IdentityHash> IdentityHasher::try_hash(std::string_view credential) const {
    thread_local std::array<RecentCredential, kRecentSlots> recent;
    auto& slot = recent[std::hash<std::string_view>{}(credential) % kRecentSlots];
    if (slot.owner == id_ && slot.credential == credential) return slot.hash;

    EVP_MAC_CTX* ctx = EVP_MAC_CTX_new(mac_);
    if (ctx == nullptr) return std::nullopt;
    char digest[] = "SHA256";
    const OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                                 OSSL_PARAM_construct_end()};
    std::array<unsigned char, 32> full{};
    std::size_t len = 0;
    const bool ok = EVP_MAC_init(ctx, key_.data(), key_.size(), params) == 1 &&
                    EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>(credential.data()),
                                   credential.size()) == 1 &&
                    EVP_MAC_final(ctx, full.data(), &len, full.size()) == 1 && len == full.size();
    EVP_MAC_CTX_free(ctx);
    if (!ok) return std::nullopt;
    IdentityHash out{};
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = full[i];
    OPENSSL_cleanse(full.data(), full.size());
    if (credential.size() <= kMaxCachedCredential) {
        slot.owner = id_;
        slot.credential.assign(credential);
        slot.hash = out;
    }
    return out;
}

IdentityHash IdentityHasher::hash(std::string_view credential) const {
    auto h = try_hash(credential);
    if (!h) std::terminate();
    return *h;
}

std::string IdentityHasher::hex(const IdentityHash& hash) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out(hash.size() * 2, '0');
    for (std::size_t i = 0; i < hash.size(); ++i) {
        out[2 * i] = digits[hash[i] >> 4];
        out[2 * i + 1] = digits[hash[i] & 0x0f];
    }
    return out;
}

bool IdentityHasher::from_hex(std::string_view text, std::span<std::uint8_t> out) {
    if (text.size() != out.size() * 2) return false;
    for (std::size_t i = 0; i < out.size(); ++i) {
        unsigned v = 0;
        const char* p = text.data() + 2 * i;
        const auto r = std::from_chars(p, p + 2, v, 16);
        if (r.ec != std::errc() || r.ptr != p + 2) return false;
        out[i] = static_cast<std::uint8_t>(v);
    }
    return true;
}

std::optional<std::string_view> extract_identity(const rules::IdentitySource& source, const HeaderView& headers,
                                                 std::string_view target) {
    switch (source.kind) {
        case rules::IdentitySource::Kind::header: {
            if (headers.count(source.name) != 1) return std::nullopt;  // absent, or repeated: no identity
            const std::string_view v = trim_ows(headers.first(source.name));
            if (v.empty()) return std::nullopt;
            return v;
        }
        case rules::IdentitySource::Kind::cookie:
            return find_cookie(headers, source.name);
        case rules::IdentitySource::Kind::query: {
            const ParamLookup p = find_param(query_of(target), source.name);
            if (p.count != 1 || p.ambiguous || blank(p.raw_value)) return std::nullopt;
            return p.raw_value;
        }
    }
    return std::nullopt;
}

}  // namespace cacheproxy::cache
