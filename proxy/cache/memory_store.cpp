#include "cache/memory_store.hpp"

#include <array>
#include <list>
#include <mutex>
#include <string_view>
#include <unordered_map>
#include <utility>

namespace cacheproxy::cache {

namespace {

/// One stored entry. Lives in the shard's LRU list; the map points at it.
struct Node {
    std::string key;          ///< CacheKey::bytes (the map's key views it)
    std::uint64_t hash = 0;   ///< CacheKey::hash
    EntryPtr entry;           ///< the shared immutable response
    std::size_t charge = 0;   ///< bytes accounted for this node
    TimePoint drop_at{};      ///< past this, useless (ttl + max stale window)
    IdentityHash identity{};  ///< for erase_identity
    bool has_identity = false;
};

using Lru = std::list<Node>;  // front = most recently used

/// The map's key: a view into Node::key plus its precomputed hash. Lookup
/// builds one from a CacheKey without allocating.
struct KeyRef {
    std::string_view bytes;
    std::uint64_t hash = 0;
};

struct KeyRefHash {
    std::size_t operator()(const KeyRef& k) const noexcept { return static_cast<std::size_t>(k.hash); }
};

struct KeyRefEq {
    bool operator()(const KeyRef& a, const KeyRef& b) const noexcept { return a.bytes == b.bytes; }
};

using Map = std::unordered_map<KeyRef, Lru::iterator, KeyRefHash, KeyRefEq>;

}  // namespace

/// One independently locked LRU.
struct MemoryStore::Shard {
    mutable std::mutex mu;
    Lru lru;                       ///< guarded by mu
    Map map;                       ///< guarded by mu
    std::size_t bytes = 0;         ///< guarded by mu: sum of Node::charge
    std::uint64_t evictions = 0;   ///< guarded by mu
    std::uint64_t expired = 0;     ///< guarded by mu
    std::size_t max_entries = 0;   ///< this shard's share of the route's bound
    std::size_t max_bytes = 0;     ///< this shard's share of the route's bound

    /// Moves `node` out of the shard into `grave` (destroyed by the caller after unlocking).
    void remove(Lru::iterator node, Lru& grave) {
        map.erase(KeyRef{node->key, node->hash});
        bytes -= node->charge;
        grave.splice(grave.end(), lru, node);
    }
};

/// One route's shards.
struct MemoryStore::Route {
    std::unique_ptr<Shard[]> shards;
    std::size_t count = 1;  ///< a power of two

    Shard& shard_for(std::uint64_t hash) const { return shards[(hash >> 32) & (count - 1)]; }
};

MemoryStore::MemoryStore(const rules::RuleSet& rules) {
    routes_.reserve(rules.routes.size());
    for (const auto& rule : rules.routes) {
        auto route = std::make_unique<Route>();
        route->count = shards_for(rule);
        route->shards = std::make_unique<Shard[]>(route->count);
        for (std::size_t i = 0; i < route->count; ++i) {
            Shard& s = route->shards[i];
            s.max_entries = rule.max_entries / route->count;
            s.max_bytes = rule.max_bytes / route->count;
            s.map.reserve(s.max_entries);  // no rehash under the lock on the hot path
        }
        routes_.push_back(std::move(route));
    }
}

MemoryStore::~MemoryStore() = default;

std::size_t MemoryStore::shards_for(const rules::RouteRule& rule) {
    std::size_t n = kMaxShards;
    while (n > 1 && (rule.max_entries / n < kMinEntriesPerShard || rule.max_bytes / n < 4 * rule.max_object_bytes))
        n /= 2;
    return n;
}

std::size_t MemoryStore::node_overhead() {
    // std::list node: two links + Node; unordered_map node: next link + value + cached hash;
    // one bucket pointer per entry (the map is reserved to max_entries, load factor 1).
    constexpr std::size_t list_node = 2 * sizeof(void*) + sizeof(Node);
    constexpr std::size_t map_node = sizeof(void*) + sizeof(Map::value_type) + sizeof(std::size_t);
    return malloc_chunk(list_node) + malloc_chunk(map_node) + sizeof(void*);
}

std::size_t MemoryStore::charge_of(const CacheKey& key, const CachedResponse& entry) {
    const std::size_t key_heap = key.bytes.size() > 15 ? malloc_chunk(key.bytes.size() + 1) : 0;
    return entry.charge() + key_heap + node_overhead();
}

std::size_t MemoryStore::shard_count(std::size_t route_index) const {
    return route_index < routes_.size() ? routes_[route_index]->count : 0;
}

EntryPtr MemoryStore::lookup(const CacheKey& key, TimePoint now) {
    if (key.route_index >= routes_.size()) return nullptr;
    Shard& s = routes_[key.route_index]->shard_for(key.hash);
    Lru grave;  // declared before the lock: destroyed after it is released
    std::lock_guard lock(s.mu);
    const auto it = s.map.find(KeyRef{key.bytes, key.hash});
    if (it == s.map.end()) return nullptr;
    const Lru::iterator node = it->second;
    if (node->drop_at <= now) {
        ++s.expired;
        s.remove(node, grave);
        return nullptr;
    }
    if (node != s.lru.begin()) s.lru.splice(s.lru.begin(), s.lru, node);
    return node->entry;
}

void MemoryStore::insert(const CacheKey& key, EntryPtr entry, TimePoint now) {
    if (key.route_index >= routes_.size() || !entry) return;
    const TimePoint drop_at = entry->drop_at();
    if (drop_at <= now) return;  // already useless
    Shard& s = routes_[key.route_index]->shard_for(key.hash);
    const std::size_t charge = charge_of(key, *entry);
    if (s.max_entries == 0 || charge > s.max_bytes) return;  // can never fit

    // Build the node outside the lock (the key copy and the list node allocate here).
    Lru fresh;
    fresh.push_back(Node{key.bytes, key.hash, std::move(entry), charge, drop_at, key.identity, key.has_identity});

    Lru grave;       // nodes leaving the store, freed after the lock is released
    EntryPtr old;    // a replaced entry, released after the lock too
    std::lock_guard lock(s.mu);

    const auto found = s.map.find(KeyRef{key.bytes, key.hash});
    if (found != s.map.end()) {
        // Replace in place: the node keeps its key (and the map its view of it).
        const Lru::iterator node = found->second;
        if (node->entry && node->entry->stored_at() > fresh.front().entry->stored_at()) {
            // Fills finishing out of order: an older response never replaces a newer one.
            grave.splice(grave.end(), fresh);
            return;
        }
        s.bytes -= node->charge;
        old = std::move(node->entry);
        node->entry = std::move(fresh.front().entry);
        node->charge = charge;
        node->drop_at = drop_at;
        s.bytes += charge;
        if (node != s.lru.begin()) s.lru.splice(s.lru.begin(), s.lru, node);
        grave.splice(grave.end(), fresh);  // the unused fresh node (its key copy) dies outside the lock
        while (s.bytes > s.max_bytes && s.lru.size() > 1) {
            ++s.evictions;
            s.remove(std::prev(s.lru.end()), grave);
        }
        return;
    }

    // Reclaim expired entries among the last kReclaimPerInsert of the LRU: bounded work, no sweep.
    std::array<Lru::iterator, kReclaimPerInsert> expired;
    std::size_t n_expired = 0;
    auto it = s.lru.end();
    for (std::size_t i = 0; i < kReclaimPerInsert && it != s.lru.begin(); ++i) {
        --it;
        if (it->drop_at <= now) expired[n_expired++] = it;
    }
    for (std::size_t i = 0; i < n_expired; ++i) {  // removing one node leaves the other iterators valid
        ++s.expired;
        s.remove(expired[i], grave);
    }

    // Evict least recently used until the new node fits.
    while (!s.lru.empty() && (s.lru.size() + 1 > s.max_entries || s.bytes + charge > s.max_bytes)) {
        ++s.evictions;
        s.remove(std::prev(s.lru.end()), grave);
    }

    s.lru.splice(s.lru.begin(), fresh);
    const Lru::iterator node = s.lru.begin();
    s.map.emplace(KeyRef{node->key, node->hash}, node);
    s.bytes += charge;
}

bool MemoryStore::erase(const CacheKey& key) {
    if (key.route_index >= routes_.size()) return false;
    Shard& s = routes_[key.route_index]->shard_for(key.hash);
    Lru grave;
    std::lock_guard lock(s.mu);
    const auto it = s.map.find(KeyRef{key.bytes, key.hash});
    if (it == s.map.end()) return false;
    s.remove(it->second, grave);
    return true;
}

std::size_t MemoryStore::erase_route(std::size_t route_index) {
    if (route_index >= routes_.size()) return 0;
    const Route& r = *routes_[route_index];
    std::size_t removed = 0;
    for (std::size_t i = 0; i < r.count; ++i) {
        Shard& s = r.shards[i];
        Lru grave;
        std::lock_guard lock(s.mu);
        removed += s.lru.size();
        s.map.clear();
        s.bytes = 0;
        grave.splice(grave.end(), s.lru);
    }
    return removed;
}

std::size_t MemoryStore::erase_identity(std::size_t route_index, const IdentityHash& identity) {
    if (route_index >= routes_.size()) return 0;
    const Route& r = *routes_[route_index];
    std::size_t removed = 0;
    for (std::size_t i = 0; i < r.count; ++i) {
        Shard& s = r.shards[i];
        Lru grave;
        std::lock_guard lock(s.mu);
        for (auto it = s.lru.begin(); it != s.lru.end();) {
            const auto next = std::next(it);
            if (it->has_identity && it->identity == identity) {
                s.remove(it, grave);
                ++removed;
            }
            it = next;
        }
    }
    return removed;
}

std::size_t MemoryStore::clear() {
    std::size_t removed = 0;
    for (std::size_t i = 0; i < routes_.size(); ++i) removed += erase_route(i);
    return removed;
}

RouteStoreStats MemoryStore::stats(std::size_t route_index) const {
    RouteStoreStats out;
    if (route_index >= routes_.size()) return out;
    const Route& r = *routes_[route_index];
    for (std::size_t i = 0; i < r.count; ++i) {
        const Shard& s = r.shards[i];
        std::lock_guard lock(s.mu);
        out.entries += s.lru.size();
        out.bytes += s.bytes;
        out.evictions += s.evictions;
        out.expired_reclaimed += s.expired;
    }
    return out;
}

}  // namespace cacheproxy::cache
