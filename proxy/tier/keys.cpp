#include "tier/keys.hpp"

#include <openssl/evp.h>

#include <array>

namespace cacheproxy::tier {

std::string hash_hex(std::string_view bytes) {
    std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
    unsigned int n = 0;
    EVP_Digest(bytes.data(), bytes.size(), md.data(), &n, EVP_sha256(), nullptr);
    cache::IdentityHash first{};
    for (std::size_t i = 0; i < first.size(); ++i) first[i] = md[i];
    return cache::IdentityHasher::hex(first);
}

std::string generation_key(const cache::IdentityHash& identity, std::string_view route) {
    std::string k = "cp:v1:{";
    k += cache::IdentityHasher::hex(identity);
    k += "}:gu:";
    k += route;
    return k;
}

EntryKeys keys_for(const cache::CacheKey& key, std::string_view route, bool shared) {
    const auto kh = hash_hex(key.bytes);
    EntryKeys out;
    if (shared) {
        std::string tag = "cp:v1:{s:";
        tag.append(route).append(":").append(kh).append("}");
        out.entry = tag + ":e";
        out.lease = tag + ":l";
        return out;
    }
    const auto id = cache::IdentityHasher::hex(key.identity);
    std::string prefix = "cp:v1:{" + id + "}:";
    out.entry = prefix + "e:" + std::string(route) + ":" + kh;
    out.lease = prefix + "l:" + std::string(route) + ":" + kh;
    out.generation = generation_key(key.identity, route);
    return out;
}

std::string key_fingerprint(const cache::IdentityHasher& hasher) {
    return cache::IdentityHasher::hex(hasher.hash("cacheproxy shared tier key check v1"));
}

std::uint64_t epoch_of(std::string_view run_id) {
    std::uint64_t h = 0xcbf29ce484222325ULL;
    for (const unsigned char c : run_id) {
        h ^= c;
        h *= 0x100000001b3ULL;
    }
    return h;
}

}  // namespace cacheproxy::tier
