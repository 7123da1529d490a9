// Cache's principal scope (cache.hpp; ARCHITECTURE.md, invariant 6): keys and
// generations stay per credential, the map only says which credentials a
// write of one principal reaches, and when a credential joins a principal its
// older entries are made stale by one bump of its generations.

#include "cache/cache.hpp"

namespace cacheproxy::cache {

std::optional<std::uint64_t> Cache::learn(const CacheKey& key, std::uint64_t generation, std::uint64_t since,
                                          const PrincipalHash& principal, TimePoint now) {
    if (!principals_ || !key.has_identity) return generation;
    auto learned = principals_->learn(key.identity, principal, since, now);
    for (const auto& gone : learned.dropped) drop_entries(gone);  // already bumped under the map's lock
    if (learned.kind == PrincipalMap::Learned::Kind::same) return generation;

    // Newly mapped (or remapped): entries of this credential fetched before
    // now missed every write of the principal by its other credentials, so
    // they all go stale: one bump of each of its per-user slots. This
    // answer survives only if nothing moved its own generation before that
    // bump (then the bump moved it by exactly one) and the principal has no
    // write stamped since the fetch started.
    const bool unchanged = generations_.current(key) == generation;
    generations_.bump_identity(key.identity, per_user_routes());
    if (learned.wrote_since || !unchanged) return std::nullopt;
    return generation + 1;
}

void Cache::learn_credential(const IdentityHash& identity, const PrincipalHash& principal, TimePoint now) {
    if (!principals_) return;
    auto learned = principals_->learn(identity, principal, principals_->write_seq(), now);
    for (const auto& gone : learned.dropped) drop_entries(gone);
    if (learned.kind != PrincipalMap::Learned::Kind::same) generations_.bump_identity(identity, per_user_routes());
}

bool Cache::widen(Invalidation& plan, TimePoint now) {
    if (!principals_) return false;
    PrincipalHash principal{};
    if (!principals_->note_write(plan.identity, now, plan.principal_credentials, &principal)) return false;
    plan.principal = principal;
    return true;
}

void Cache::widen_remote(Invalidation& plan, const PrincipalHash& principal) {
    if (principals_) principals_->note_remote_write(principal, plan.principal_credentials);
}

std::size_t Cache::drop_credential(const IdentityHash& identity) {
    generations_.bump_identity(identity, per_user_routes());  // first, as for a write
    if (principals_) principals_->forget(identity);
    return drop_entries(identity);
}

std::size_t Cache::drop_entries(const IdentityHash& identity) {
    const auto routes = per_user_routes();
    generations_.bump_identity(identity, routes);  // first: nothing older is served or stored
    std::size_t dropped = 0;
    for (const auto index : routes) dropped += store_->erase_identity(index, identity);
    return dropped;
}

}  // namespace cacheproxy::cache
