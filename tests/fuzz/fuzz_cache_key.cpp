/// The cache key and the query reading under it (proxy/cache/cache_key.hpp,
/// query_string.hpp, identity.hpp, route_matcher.hpp).
///
/// Input, '\n'-separated: the request-target, then the values of
/// Authorization, X-Tenant and Cookie (a missing line = the header is absent).
/// Every route of the shipped rules/trading.yaml, plus two made here (one keyed
/// on a header and on several parameters, one shared), is tried with the
/// identity read from a header, a cookie and a query parameter. Asserted:
///  - build_key is deterministic; hash == key_hash(bytes);
///  - a per-user key exists only with a credential and ends with 'I' + its
///    HMAC (checked against OpenSSL's own HMAC-SHA256, so the hasher's
///    per-thread cache of recent credentials cannot hand back another's hash);
///    a shared key holds no identity and does not depend on the credential;
///  - the key reads back by the layout cache_key.hpp documents: each clear
///    value is the raw value on the wire and never the credential (a value
///    equal to it is there as its HMAC), absent parameters are '!';
///  - canonicalisation: the query's '&'-separated members in another order,
///    or one more parameter the route does not key on, give the same key;
///  - read-your-writes link: a canonical key (all chosen values unreserved,
///    all present, no header keyed) is the key of the target that
///    invalidation::scope_target() writes for those values;
///  - query_string: path + '?' + query is the target; percent_encode() output
///    is valid %-encoding and decodes back as a name; a segment's own name is found;
///  - route match ignores the query and answers HEAD as GET.

#include "cache/cache_key.hpp"
#include "cache/header_list.hpp"
#include "cache/identity.hpp"
#include "cache/query_string.hpp"
#include "cache/route_matcher.hpp"
#include "fuzz_common.hpp"
#include "invalidation/write_outcome.hpp"
#include "rules/rules_loader.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

using namespace cacheproxy;

namespace {

constexpr cache::IdentityHasher::Key kKey = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                            17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

struct World {
    rules::RuleSet rules;
    std::vector<rules::IdentitySource> identities;
    cache::IdentityHasher hasher{kKey};
    std::unique_ptr<cache::RouteMatcher> matcher;
};

World& world() {
    static World* w = [] {
        auto* w = new World;
        const std::string path = std::string(CACHEPROXY_SOURCE_DIR) + "/rules/trading.yaml";
        if (auto err = rules::load_rules(path, w->rules)) {
            std::fprintf(stderr, "cannot load %s: %s\n", path.c_str(), err->to_string().c_str());
            std::abort();
        }
        rules::RouteRule user;
        user.name = "syn_user";
        user.path = "/syn/user";
        user.key.identity = true;
        user.key.query = {"a", "b c", "tok", "symbol"};
        user.key.headers = {"x-tenant"};
        w->rules.routes.push_back(user);
        rules::RouteRule shared;
        shared.name = "syn_shared";
        shared.path = "/syn/shared";
        shared.shared = true;
        shared.key.query = {"a", "exchange"};
        w->rules.routes.push_back(shared);
        w->identities = {{rules::IdentitySource::Kind::header, "Authorization"},
                         {rules::IdentitySource::Kind::cookie, "sid"},
                         {rules::IdentitySource::Kind::query, "tok"}};
        w->matcher = std::make_unique<cache::RouteMatcher>(w->rules);
        return w;
    }();
    return *w;
}

/// HMAC-SHA256(kKey, s) truncated to 128 bits, computed by OpenSSL directly.
cache::IdentityHash reference_hmac(std::string_view s) {
    unsigned char out[EVP_MAX_MD_SIZE];
    std::size_t n = 0;
    if (!EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, kKey.data(), kKey.size(),
                   reinterpret_cast<const unsigned char*>(s.data()), s.size(), out, sizeof out, &n) ||
        n < 16)
        std::abort();
    cache::IdentityHash h{};
    std::copy(out, out + 16, h.begin());
    return h;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
    std::vector<std::string_view> out;
    for (;;) {
        const auto at = s.find(sep);
        out.push_back(s.substr(0, at));
        if (at == std::string_view::npos) return out;
        s.remove_prefix(at + 1);
    }
}

bool same_key(const std::optional<cache::CacheKey>& a, const std::optional<cache::CacheKey>& b) {
    if (a.has_value() != b.has_value()) return false;
    if (!a) return true;
    return a->bytes == b->bytes && a->hash == b->hash && a->route_index == b->route_index &&
           a->has_identity == b->has_identity && a->identity == b->identity &&
           a->canonical_values == b->canonical_values;
}

void check_query_string(std::string_view target) {
    const auto path = cache::path_of(target);
    const auto query = cache::query_of(target);
    if (target.find('?') == std::string_view::npos) {
        FUZZ_CHECK(path == target && query.empty());
    } else {
        FUZZ_CHECK(std::string(path) + "?" + std::string(query) == target, target);
    }
    for (auto segment : split(query, '&')) {
        if (segment.empty()) continue;
        const auto raw_name = segment.substr(0, segment.find('='));
        const std::string encoded = invalidation::percent_encode(raw_name);
        FUZZ_CHECK(cache::valid_percent_encoding(encoded));
        FUZZ_CHECK(cache::decoded_name_equals(encoded, raw_name), raw_name);
        FUZZ_CHECK(!cache::decoded_name_equals(encoded + "x", raw_name));
        if (raw_name.find_first_of("%+") == std::string_view::npos) {
            FUZZ_CHECK(cache::decoded_name_equals(raw_name, raw_name));
            const auto p = cache::find_param(query, raw_name);
            FUZZ_CHECK(p.count >= 1, target);
        }
    }
    for (std::string_view name : {"a", "exchange", "b c", "tok"}) {
        const auto p = cache::find_param(query, name);
        if (p.count == 0) FUZZ_CHECK(!p.has_equals && p.raw_value.empty());
        if (!p.has_equals) FUZZ_CHECK(p.raw_value.empty());
    }
}

/// Reads `key.bytes` back by the layout cache_key.hpp documents; checks
/// each part against the request.
void check_layout(const rules::RouteRule& route, std::string_view target, std::optional<std::string_view> credential,
                  const cache::CacheKey& key, std::string_view input) {
    std::string_view b = key.bytes;
    auto take = [&](std::size_t n) {
        FUZZ_CHECK(b.size() >= n, input);
        const auto part = b.substr(0, n);
        b.remove_prefix(n);
        return part;
    };
    FUZZ_CHECK(take(route.name.size() + 1) == route.name + std::string(1, '\0'));
    for (const auto& name : route.key.query) {
        FUZZ_CHECK(take(name.size()) == name, input);
        const auto p = cache::find_param(cache::query_of(target), name);
        const char mark = take(1)[0];
        if (mark == '!') {
            FUZZ_CHECK(p.count == 0, input);
            continue;
        }
        FUZZ_CHECK(mark == '=' && p.count == 1, input);
        const auto len_bytes = take(4);
        std::uint32_t len = 0;
        for (unsigned char c : len_bytes) len = len << 8 | c;
        if (len & 0x80000000u) {
            // The value is the credential: its HMAC stands in for it.
            FUZZ_CHECK((len & 0x7fffffffu) == 16, input);
            FUZZ_CHECK(credential && p.raw_value == *credential, input);
            const auto h = reference_hmac(p.raw_value);
            FUZZ_CHECK(take(16) == std::string_view(reinterpret_cast<const char*>(h.data()), 16), input);
        } else {
            FUZZ_CHECK(take(len) == p.raw_value, input);
            FUZZ_CHECK(!credential || p.raw_value != *credential, input);  // never the credential in clear
        }
    }
    for (const auto& name : route.key.headers) {
        FUZZ_CHECK(take(1) == "H");
        FUZZ_CHECK(take(name.size()) == name);
        const char mark = take(1)[0];
        if (mark == '!') continue;
        FUZZ_CHECK(mark == '=', input);
        take(16);
    }
    if (cache::per_user(route)) {
        FUZZ_CHECK(take(1) == "I");
        take(16);
    }
    FUZZ_CHECK(b.empty(), input);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    World& w = world();
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    const auto lines = split(in, '\n');
    const std::string_view target = lines[0];
    cache::HeaderList headers;
    if (lines.size() > 1) headers.add("Authorization", lines[1]);
    if (lines.size() > 2) headers.add("X-Tenant", lines[2]);
    if (lines.size() > 3) headers.add("Cookie", lines[3]);

    check_query_string(target);

    // Route matching: exact path, the query ignored, HEAD as GET.
    const auto* by_target = w.matcher->match("GET", target);
    FUZZ_CHECK(w.matcher->match("GET", cache::path_of(target)) == by_target);
    FUZZ_CHECK(w.matcher->match("HEAD", target) == by_target);
    if (by_target) FUZZ_CHECK(by_target->path == cache::path_of(target), target);
    FUZZ_CHECK(w.matcher->match("get", target) == nullptr);

    // The same query with its '&' members reversed, and with a parameter no route keys on.
    std::string reversed, extended;
    const auto qmark = target.find('?');
    if (qmark != std::string_view::npos) {
        auto members = split(cache::query_of(target), '&');
        std::reverse(members.begin(), members.end());
        reversed = std::string(target.substr(0, qmark + 1));
        for (std::size_t i = 0; i < members.size(); ++i) {
            if (i) reversed.push_back('&');
            reversed.append(members[i]);
        }
        extended = std::string(target) + "&zz_unkeyed=1";
    } else {
        reversed = std::string(target);
        extended = std::string(target) + "?zz_unkeyed=1";
    }

    for (std::size_t ri = 0; ri < w.rules.routes.size(); ++ri) {
        const rules::RouteRule& route = w.rules.routes[ri];
        for (const auto& source : w.identities) {
            const auto credential = cache::extract_identity(source, headers, target);
            if (credential) FUZZ_CHECK(!credential->empty());
            const auto key = cache::build_key(route, ri, target, credential, w.hasher, headers);
            FUZZ_CHECK(same_key(key, cache::build_key(route, ri, target, credential, w.hasher, headers)), in);
            if (key) {
                FUZZ_CHECK(key->hash == cache::key_hash(key->bytes));
                FUZZ_CHECK(key->route_index == ri);
                FUZZ_CHECK(target.find('#') == std::string_view::npos);
                FUZZ_CHECK(key->bytes.starts_with(route.name + std::string(1, '\0')));
            }
            if (cache::per_user(route)) {
                if (!credential) FUZZ_CHECK(!key, in);
                if (key) {
                    FUZZ_CHECK(key->has_identity);
                    const auto expected = reference_hmac(*credential);
                    FUZZ_CHECK(key->identity == expected, in);
                    FUZZ_CHECK(w.hasher.hash(*credential) == expected, in);
                    FUZZ_CHECK(cache::ends_with_identity(key->bytes, expected), in);
                }
            } else if (key) {
                FUZZ_CHECK(!key->has_identity);
                // A shared key does not depend on who asks (unless a keyed value is the credential itself).
                const std::string other = "fuzz-other-credential-\x01";
                bool keyed_value_is_other = false;
                for (const auto& name : route.key.query)
                    if (cache::find_param(cache::query_of(target), name).raw_value == other) keyed_value_is_other = true;
                if (!credential && !keyed_value_is_other) {
                    FUZZ_CHECK(same_key(key, cache::build_key(route, ri, target, other, w.hasher, headers)), in);
                }
            }

            // The layout is the documented one, every clear value is the raw
            // value on the wire, and none is the credential.
            if (key) check_layout(route, target, credential, *key, in);

            // Canonicalisation: order of members, unkeyed parameters.
            const auto cred_reversed = cache::extract_identity(source, headers, reversed);
            FUZZ_CHECK(cred_reversed == credential, in);
            FUZZ_CHECK(same_key(key, cache::build_key(route, ri, reversed, credential, w.hasher, headers)), in);
            const auto cred_extended = cache::extract_identity(source, headers, extended);
            FUZZ_CHECK(cred_extended == credential, in);
            FUZZ_CHECK(same_key(key, cache::build_key(route, ri, extended, credential, w.hasher, headers)), in);

            // What a write's scope names reaches this very entry.
            if (key && key->canonical_values && route.key.headers.empty()) {
                invalidation::Scope scope;
                bool all_present = true;
                for (const auto& name : route.key.query) {
                    const auto p = cache::find_param(cache::query_of(target), name);
                    if (p.count != 1) all_present = false;
                    scope.params.emplace_back(name, std::string(p.raw_value));
                }
                if (all_present) {
                    const std::string written = invalidation::scope_target(route, scope);
                    FUZZ_CHECK(!written.empty());
                    const cache::HeaderList none;
                    const auto scoped = cache::build_key(route, ri, written, credential, w.hasher, none);
                    FUZZ_CHECK(scoped && scoped->bytes == key->bytes, written);
                }
            }
        }
    }
    return 0;
}
