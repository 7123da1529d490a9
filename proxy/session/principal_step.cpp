#include "session/principal_step.hpp"

#include "cache/beast_header_view.hpp"
#include "cache/identity.hpp"

#include <chrono>
#include <string>

namespace cacheproxy::session {

namespace {

/// The principal as the map keys it: an HMAC, never the name itself.
cache::PrincipalHash hash_principal(const app::CacheContext& cc, std::string_view name) {
    std::string tagged = "principal:";
    tagged.append(name);
    return cc.hasher.hash(tagged);
}

std::int64_t unix_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

/// Who the answer or the credential names, if the rules say how to tell.
std::optional<std::string> principal_of(const app::CacheContext& cc, std::string_view body,
                                        std::optional<std::string_view> credential) {
    if (auto p = cc.principal.of_answer(body)) return p;
    if (credential) return cc.principal.of_credential(*credential, unix_now());
    return std::nullopt;
}

}  // namespace

std::uint64_t after_fill(app::CacheContext& cc, const cache::CacheKey& key, std::uint64_t generation,
                         std::uint64_t since, const cache::Response& res, std::optional<std::string_view> credential,
                         cache::TimePoint now) {
    const unsigned status = res.result_int();
    if (refused(status) && key.has_identity) {
        cc.cache.drop_refused(key.identity);
        return kNeverStored;
    }
    if (!cc.cache.principals_enabled() || !key.has_identity || status / 100 != 2) return generation;
    // A compressed body is not read here (fills ask for identity; one that is
    // gzipped anyway teaches nothing by its field).
    const bool encoded = res.find(boost::beast::http::field::content_encoding) != res.end();
    const auto name = principal_of(cc, encoded ? std::string_view{} : std::string_view(res.body()), credential);
    if (!name) return generation;
    return cc.cache.learn(key, generation, since, hash_principal(cc, *name), now).value_or(kNeverStored);
}

bool after_refusal(app::CacheContext& cc, unsigned status, std::optional<std::string_view> credential) {
    if (!refused(status) || !credential) return false;
    const auto identity = cc.hasher.try_hash(*credential);
    if (!identity) return false;
    cc.cache.drop_refused(*identity);
    return true;
}

bool drop_if_refused(app::CacheContext& cc, unsigned status, const http::RequestHeader& req) {
    if (!refused(status)) return false;
    // The identity source as at start (a reload that changes it is refused).
    return after_refusal(cc, status,
                         cache::extract_identity(cc.initial->rules.identity, cache::BeastHeaderView(req), req.target()));
}

bool widen_write(app::CacheContext& cc, cache::Cache::Invalidation& plan, std::string_view response_body,
                 std::string_view credential, cache::TimePoint now) {
    if (!cc.cache.principals_enabled()) return false;
    if (const auto name = principal_of(cc, response_body, credential))
        cc.cache.learn_credential(plan.identity, hash_principal(cc, *name), now);
    return cc.cache.widen(plan, now);
}

}  // namespace cacheproxy::session
