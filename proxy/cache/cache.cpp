#include "cache/cache.hpp"

#include "cache/fill.hpp"
#include "cache/memory_store.hpp"

namespace cacheproxy::cache {

namespace {

/// The longest an entry of a per-user route can be served after it was stored.
Clock::duration longest_life(const rules::RuleSet& rules) {
    Clock::duration out = std::chrono::seconds(1);
    for (const auto& r : rules.routes)
        if (per_user(r)) out = std::max<Clock::duration>(out, r.ttl + std::max(r.stale_while_revalidate, r.stale_if_error));
    return out;
}

}  // namespace

Cache::Cache(const rules::RuleSet& rules)
    : rules_(rules), store_(std::make_unique<MemoryStore>(rules)), coalescer_(rules.max_waiters, rules.max_unshared),
      per_user_slot_(std::make_unique<std::atomic<bool>[]>(MemoryStore::kMaxRoutes)) {
    for (std::size_t i = 0; i < rules.routes.size(); ++i)  // the first rules run in slots 0..n-1
        per_user_slot_[i].store(per_user(rules.routes[i]), std::memory_order_relaxed);
    slot_end_.store(rules.routes.size(), std::memory_order_release);
    if (rules.principal.source == rules::PrincipalRule::Source::none) return;
    // A mapping lives as long as the entries it serves (plus a margin); one
    // that leaves the map takes its credential's entries with it, bumped
    // under the map's lock.
    const PrincipalMapLimits limits{rules.principal.max_credentials, rules.principal.max_per_principal,
                                    longest_life(rules) + std::chrono::seconds(5)};
    principals_ = std::make_unique<PrincipalMap>(
        limits, [this](const IdentityHash& id) { generations_.bump_identity(id, per_user_routes()); });
}

std::optional<std::size_t> Cache::add_route(const rules::RouteRule& rule) {
    const auto slot = store_->add_route(rule);
    if (!slot) return slot;
    per_user_slot_[*slot].store(per_user(rule), std::memory_order_release);
    if (*slot + 1 > slot_end_.load(std::memory_order_relaxed)) slot_end_.store(*slot + 1, std::memory_order_release);
    return slot;
}

std::size_t Cache::retire_route(std::size_t route_index) {
    const auto dropped = store_->retire_route(route_index);
    if (route_index < MemoryStore::kMaxRoutes) per_user_slot_[route_index].store(false, std::memory_order_release);
    return dropped;
}

std::vector<std::size_t> Cache::per_user_routes() const {
    std::vector<std::size_t> out;
    const auto end = slot_end_.load(std::memory_order_acquire);
    for (std::size_t i = 0; i < end; ++i)
        if (per_user_slot_[i].load(std::memory_order_acquire)) out.push_back(i);
    return out;
}

Cache::Lookup Cache::lookup(const CacheKey& key, const rules::RouteRule& rule, TimePoint now, bool skip_store) {
    Lookup out;
    // Read-your-writes: the generation of this key's scope *before* the entry.
    // An entry fetched under an older one predates a write and is never served.
    out.generation = generations_.current(key);
    if (skip_store) return out;
    auto entry = store_->lookup(key, now);
    if (!entry || entry->generation() != out.generation) return out;
    out.freshness = classify(*entry, rule, now);
    out.entry = std::move(entry);
    return out;
}

Cache::Fill Cache::join(const CacheKey& key, std::uint64_t generation, TimePoint now) {
    // Coalesced on key + generation: a request after a write never joins (nor
    // is held) a fill from before it.
    return Fill{coalescer_.join(flight_key(key, generation), now), key, generation};
}

Cache::Fill Cache::lead_if_idle(const CacheKey& key, std::uint64_t generation, TimePoint now) {
    // Asked on every hit in a refresh window: the key is copied only for the one that leads.
    auto ticket = coalescer_.lead_if_idle(flight_key(key, generation), now);
    if (!ticket.leader()) return Fill{};
    return Fill{std::move(ticket), key, generation};
}

boost::asio::awaitable<std::optional<FillResult>> Cache::wait(Fill& fill, boost::asio::any_io_executor executor,
                                                             std::chrono::milliseconds timeout) {
    co_return co_await coalescer_.wait(fill.ticket, std::move(executor), timeout);
}

Cache::Published Cache::publish(Fill& fill, FillResult result, TimePoint now) {
    Published published = Published::not_stored;
    if (result.outcome == FillResult::Outcome::stored && result.entry) {
        // The second check read-your-writes rests on: a write that bumped the
        // scope since this fill read its generation makes the entry stale.
        if (generations_.current(fill.key) == fill.generation) {
            store_->insert(fill.key, result.entry, result.entry->stored_at());
            published = Published::stored;
        } else {
            published = Published::invalidated_in_flight;
        }
    }
    const auto hold = hold_until(result, rules_, now);
    coalescer_.complete(fill.ticket, std::move(result), hold);
    return published;
}

std::size_t Cache::invalidate(const Invalidation& plan) {
    std::size_t dropped = 0;
    for (const auto& key : plan.exact) {
        generations_.bump_exact(key);
        dropped += store_->erase(key) ? 1 : 0;
    }
    for (const auto index : plan.whole_routes) {
        generations_.bump_user(index, plan.identity);
        dropped += store_->erase_identity(index, plan.identity);
    }
    // The writer's principal's other credentials: their whole routes, by
    // generation only (their entries are never served again and age out; an
    // erase would scan each route once per credential).
    for (const auto& other : plan.principal_credentials) {
        for (const auto& key : plan.exact) generations_.bump_user(key.route_index, other);
        for (const auto index : plan.whole_routes) generations_.bump_user(index, other);
    }
    return dropped;
}

std::size_t Cache::purge_route(std::size_t route_index) { return store_->erase_route(route_index); }

}  // namespace cacheproxy::cache
