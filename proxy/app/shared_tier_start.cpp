#include "app/shared_tier_start.hpp"

#include "cache/cache_key.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <fstream>
#include <iterator>

#include <sys/stat.h>

namespace cacheproxy::app {

namespace {

/// How long a user's generation key must outlive its last bump: longer than
/// any entry of the rules can live, plus a fill's whole upstream time.
std::chrono::milliseconds generation_ttl(const config::Config& cfg) {
    rules::Duration longest = std::chrono::seconds(1);
    for (const auto& r : cfg.rules.routes)
        longest = std::max(longest, r.ttl + std::max(r.stale_while_revalidate, r.stale_if_error));
    return std::chrono::duration_cast<std::chrono::milliseconds>(longest + cfg.upstream.response_timeout +
                                                                 std::chrono::seconds(60));
}

/// Another instance's invalidation, applied here as the writer applied it
/// there (whole routes of the user: wider than its exact keys, never narrower).
void apply_remote(CacheContext& cc, const tier::BusMessage& m) {
    const auto snapshot = cc.current();
    cache::Cache::Invalidation plan;
    plan.identity = m.identity;
    if (m.principal) cc.cache.widen_remote(plan, *m.principal);  // this instance's other tokens of the writer
    for (const auto& name : m.routes) {
        const auto index = snapshot->route_index(name);
        if (index == static_cast<std::size_t>(-1)) continue;
        if (cache::per_user(snapshot->matcher.routes()[index])) plan.whole_routes.push_back(snapshot->slot(index));
    }
    cc.cache.invalidate(plan);
    if (m.drop_credential) cc.cache.drop_credential(m.identity);
}

}  // namespace

std::optional<std::string> read_identity_key(const std::string& path, cache::IdentityHasher::Key& out) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return "shared_tier.identity_key_file " + path + ": cannot be read";
    if ((st.st_mode & 077) != 0)
        return "shared_tier.identity_key_file " + path + ": readable by others (chmod 600 it)";
    std::ifstream in(path, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (bytes.size() == out.size()) {
        std::copy(bytes.begin(), bytes.end(), out.begin());
        return std::nullopt;
    }
    while (!bytes.empty() && (bytes.back() == '\n' || bytes.back() == '\r')) bytes.pop_back();
    if (cache::IdentityHasher::from_hex(bytes, out)) return std::nullopt;
    return "shared_tier.identity_key_file " + path + ": must hold 32 raw bytes or 64 hex characters";
}

std::optional<std::string> start_shared_tier(ServerContext& ctx) {
    const auto& t = ctx.cfg.shared_tier;
    if (!t.enabled() || !ctx.cache) return std::nullopt;
    cache::IdentityHasher::Key key{};
    if (auto err = read_identity_key(t.identity_key_file, key)) return err;
    auto& cc = *ctx.cache;
    cc.hasher.rekey(key);
    std::fill(key.begin(), key.end(), 0);
    tier::SharedTier::Hooks hooks{.apply = [&cc](const tier::BusMessage& m) { apply_remote(cc, m); },
                                  .bump_all = [&cc] { cc.cache.bump_all(); }};
    cc.tier = std::make_unique<tier::SharedTier>(
        t, cc.hasher, std::move(hooks), generation_ttl(ctx.cfg),
        std::chrono::duration_cast<std::chrono::milliseconds>(ctx.cfg.rules.coalesce_error_hold),
        cc.cache.principals_enabled());
    if (auto err = cc.tier->start(std::chrono::duration_cast<std::chrono::milliseconds>(2 * t.connect_timeout +
                                                                                         2 * t.op_timeout))) {
        cc.tier.reset();
        return err;
    }
    spdlog::info("shared tier: {} {} (instance {}), L2 {}, max_invalidation_lag {} ms, on_redis_down {}",
                 t.cluster.empty() ? "redis" : "cluster",
                 t.cluster.empty() ? t.redis : std::to_string(t.cluster.size()) + " seed(s)", cc.tier->instance_id(),
                 t.l2 ? "on" : "off",
                 std::chrono::duration_cast<std::chrono::milliseconds>(t.max_invalidation_lag).count(), t.on_redis_down);
    return std::nullopt;
}

}  // namespace cacheproxy::app
