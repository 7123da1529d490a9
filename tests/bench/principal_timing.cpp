// The principal scope's costs (scripts/bench/principal.sh): the invalidation
// step of a watched write (Cache::widen + Cache::invalidate, what
// session/watched_write.cpp times) with 1, 10 and 100 credentials per
// principal, and the map's memory per credential. Loops bounded in count;
// prints figures, asserts nothing.
//
//   principal_timing [--reps 500] [--credentials 100000]

#include "cache/cache.hpp"
#include "cache/header_list.hpp"

#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

using namespace cacheproxy;

namespace {

rules::RouteRule route(const char* name) {
    rules::RouteRule r;
    r.name = name;
    r.path = std::string("/api/trading/") + name;
    r.ttl = std::chrono::seconds(60);
    r.max_entries = 200000;
    r.key.identity = true;
    r.key.query = {"exchange", "account_type"};
    return r;
}

rules::RuleSet trading_rules() {
    rules::RuleSet rules;
    rules.routes = {route("positions"), route("balance"), route("orders")};
    rules.principal.source = rules::PrincipalRule::Source::response_field;
    rules.principal.max_credentials = 1000000;
    rules.principal.max_per_principal = 1000;
    return rules;
}

const auto now = cache::TimePoint{} + std::chrono::hours(1);

cache::CacheKey key(const rules::RuleSet& rules, const cache::IdentityHasher& hasher, std::size_t route_index,
                    const std::string& credential) {
    const auto& r = rules.routes[route_index];
    return *cache::build_key(r, route_index, r.path + "?exchange=bybit&account_type=demo", credential, hasher,
                             cache::HeaderList{});
}

/// Maps `n` credentials to one principal, each with an entry in every route.
std::vector<std::string> map_credentials(cache::Cache& cache, const rules::RuleSet& rules,
                                         const cache::IdentityHasher& hasher, std::size_t n, const std::string& who) {
    std::vector<std::string> creds;
    const auto principal = hasher.hash("principal:" + who);
    for (std::size_t i = 0; i < n; ++i) {
        creds.push_back("Bearer " + who + "-tok-" + std::to_string(i));
        for (std::size_t r = 0; r < rules.routes.size(); ++r) {
            const auto k = key(rules, hasher, r, creds.back());
            const auto found = cache.lookup(k, rules.routes[r], now);
            auto fill = cache.join(k, found.generation, now);
            fill.generation = cache.learn(k, fill.generation, cache.write_seq(), principal, now).value_or(~0ULL);
            cache::EntryParts parts;
            parts.head = "HTTP/1.1 200 OK\r\n";
            parts.body = R"({"user_id":1,"positions":[]})";
            parts.stored_at = now;
            parts.ttl = std::chrono::seconds(60);
            parts.generation = fill.generation;
            cache.publish(fill, {cache::CachedResponse::make(parts), cache::FillResult::Outcome::stored, 200, ""}, now);
        }
    }
    return creds;
}

void time_invalidation(std::size_t per_principal, int reps) {
    const auto rules = trading_rules();
    cache::IdentityHasher hasher;
    cache::Cache cache(rules);
    // Some other users around, so the store is not empty of others.
    for (int u = 0; u < 50; ++u) map_credentials(cache, rules, hasher, 2, "other" + std::to_string(u));
    const auto creds = map_credentials(cache, rules, hasher, per_principal, "writer");
    std::vector<double> us;
    us.reserve(static_cast<std::size_t>(reps));
    for (int i = 0; i < reps; ++i) {
        // The plan watched_write builds for an order: exact keys of the writer's three routes.
        cache::Cache::Invalidation plan;
        plan.identity = hasher.hash(creds[0]);
        for (std::size_t r = 0; r < rules.routes.size(); ++r) plan.exact.push_back(key(rules, hasher, r, creds[0]));
        const auto t0 = std::chrono::steady_clock::now();
        cache.widen(plan, now);
        cache.invalidate(plan);
        us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
        if (plan.principal_credentials.size() + 1 != per_principal) {
            std::fprintf(stderr, "widened to %zu credentials, expected %zu\n", plan.principal_credentials.size() + 1,
                         per_principal);
            std::exit(1);
        }
    }
    std::sort(us.begin(), us.end());
    std::printf("invalidation step, %3zu credential(s) per principal: median %.2f us, max %.2f us (%d writes)\n",
                per_principal, us[us.size() / 2], us.back(), reps);
}

void map_memory(std::size_t n) {
    rules::RuleSet rules = trading_rules();
    rules.principal.max_credentials = n;
    cache::IdentityHasher hasher;
    cache::PrincipalMap map({.max_credentials = n, .max_per_principal = 4, .idle = std::chrono::hours(1)}, nullptr);
    const auto before = mallinfo2().uordblks;
    for (std::size_t i = 0; i < n; ++i)
        map.learn(hasher.hash("tok-" + std::to_string(i)), hasher.hash("principal:" + std::to_string(i / 2)), 0, now);
    const auto after = mallinfo2().uordblks;
    std::printf("map memory: %zu credentials (2 per principal): %.0f bytes per credential measured (malloc), "
                "%zu estimated\n",
                map.stats().credentials, static_cast<double>(after - before) / static_cast<double>(n),
                cache::PrincipalMap::bytes_per_credential());
}

}  // namespace

int main(int argc, char** argv) {
    int reps = 500;
    std::size_t credentials = 100000;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!std::strcmp(argv[i], "--reps")) reps = std::max(1, std::atoi(argv[i + 1]));
        if (!std::strcmp(argv[i], "--credentials")) credentials = std::max(1, std::atoi(argv[i + 1]));
    }
    reps = std::min(reps, 100000);
    for (const std::size_t n : {1u, 10u, 100u}) time_invalidation(n, reps);
    map_memory(std::min<std::size_t>(credentials, 2000000));
    return 0;
}
