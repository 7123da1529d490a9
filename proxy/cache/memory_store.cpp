#include "cache/memory_store.hpp"

#include <boost/intrusive/list.hpp>
#include <boost/intrusive/unordered_set.hpp>

#include <algorithm>
#include <array>
#include <mutex>
#include <new>
#include <string_view>
#include <utility>

namespace cacheproxy::cache {

namespace {

namespace bi = boost::intrusive;
using NormalLink = bi::link_mode<bi::normal_link>;  // no hook bookkeeping on unlink

/// One stored entry: a single heap block holding the links, the handle and
/// the key bytes (right behind the struct). The index finds it, the LRU orders it.
struct Node {
    bi::list_member_hook<NormalLink> lru_hook;            ///< the shard's LRU (or a Grave)
    bi::unordered_set_member_hook<NormalLink> index_hook;  ///< the shard's hash chain
    std::uint64_t hash = 0;                                ///< CacheKey::hash
    EntryPtr entry;                                        ///< the shared immutable response
    std::uint32_t key_size = 0;                            ///< bytes of key behind the struct
    bool has_identity = false;  ///< a per-user key: its last 16 bytes are the identity (erase_identity)

    /// CacheKey::bytes, stored inline.
    std::string_view key() const noexcept { return {reinterpret_cast<const char*>(this + 1), key_size}; }

    /// A node for `entry` under `key`; null when the key is too long or the allocation fails.
    static Node* make(const CacheKey& key, EntryPtr entry) noexcept {
        if (key.bytes.size() > UINT32_MAX) return nullptr;
        void* block = ::operator new(sizeof(Node) + key.bytes.size(), std::nothrow);
        if (!block) return nullptr;
        auto* n = new (block) Node;
        n->hash = key.hash;
        n->entry = std::move(entry);
        n->key_size = static_cast<std::uint32_t>(key.bytes.size());
        n->has_identity = key.has_identity;
        key.bytes.copy(reinterpret_cast<char*>(n + 1), key.bytes.size());
        return n;
    }

    /// Frees a node made by make() (dropping its handle on the entry).
    static void destroy(Node* n) noexcept {
        n->~Node();
        ::operator delete(n);
    }
};

using Lru = bi::list<Node, bi::member_hook<Node, bi::list_member_hook<NormalLink>, &Node::lru_hook>,
                     bi::constant_time_size<true>>;  // front = most recently used

/// A search key for the index: a view of CacheKey::bytes plus its precomputed
/// hash. Lookup builds one from a CacheKey without allocating.
struct KeyRef {
    std::string_view bytes;
    std::uint64_t hash = 0;
};

struct KeyHash {
    std::size_t operator()(const Node& n) const noexcept { return static_cast<std::size_t>(n.hash); }
    std::size_t operator()(const KeyRef& k) const noexcept { return static_cast<std::size_t>(k.hash); }
};

struct KeyEq {
    bool operator()(const Node& a, const Node& b) const noexcept { return a.key() == b.key(); }
    bool operator()(const KeyRef& a, const Node& b) const noexcept { return a.bytes == b.key(); }
    bool operator()(const Node& a, const KeyRef& b) const noexcept { return a.key() == b.bytes; }
};

using Index = bi::unordered_set<Node, bi::member_hook<Node, bi::unordered_set_member_hook<NormalLink>, &Node::index_hook>,
                                bi::hash<KeyHash>, bi::equal<KeyEq>, bi::constant_time_size<false>>;

/// Nodes that left a shard, freed when the Grave goes out of scope: declared
/// before the shard's lock guard, so that happens after the lock is released.
class Grave {
public:
    Grave() = default;
    Grave(const Grave&) = delete;
    Grave& operator=(const Grave&) = delete;
    /// Frees every buried node.
    ~Grave() { nodes_.clear_and_dispose(&Node::destroy); }

    /// Takes a node that is in no container.
    void bury(Node& node) noexcept { nodes_.push_back(node); }
    /// Takes every node of `lru`.
    void bury_all(Lru& lru) noexcept { nodes_.splice(nodes_.end(), lru); }

private:
    Lru nodes_;
};

}  // namespace

/// One independently locked LRU.
struct MemoryStore::Shard {
    /// An empty shard with these bounds; its index has one bucket per entry it may hold (load factor <= 1).
    Shard(std::size_t max_entries_share, std::size_t max_bytes_share)
        : max_entries(max_entries_share),
          max_bytes(max_bytes_share),
          bucket_count(std::max<std::size_t>(max_entries_share, 1)),
          buckets(std::make_unique<Index::bucket_type[]>(bucket_count)),
          index(Index::bucket_traits(buckets.get(), bucket_count)) {}

    /// Frees every node (shared entries live on with their last holder).
    ~Shard() {
        index.clear();
        lru.clear_and_dispose(&Node::destroy);
    }

    const std::size_t max_entries;  ///< this shard's share of the route's bound
    const std::size_t max_bytes;    ///< this shard's share of the route's bound
    const std::size_t bucket_count;
    const std::unique_ptr<Index::bucket_type[]> buckets;  ///< the index's, allocated once: no rehash on the hot path
    mutable std::mutex mu;
    Index index;                  ///< guarded by mu
    Lru lru;                      ///< guarded by mu
    std::size_t bytes = 0;        ///< guarded by mu: sum of charge_of over the nodes
    std::uint64_t evictions = 0;  ///< guarded by mu
    std::uint64_t expired = 0;    ///< guarded by mu

    /// Bytes accounted for `node`.
    static std::size_t charge(const Node& node) {
        return node.entry->charge() + MemoryStore::node_overhead(node.key_size);
    }

    /// Takes `node` out of the shard into `grave` (freed by the caller after unlocking).
    void remove(Node& node, Grave& grave) {
        index.erase(index.iterator_to(node));
        lru.erase(lru.iterator_to(node));
        bytes -= charge(node);
        grave.bury(node);
    }

    /// Makes `node` the most recently used.
    void touch(Node& node) {
        const auto it = lru.iterator_to(node);
        if (it != lru.begin()) lru.splice(lru.begin(), lru, it);
    }
};

/// One route's shards.
struct MemoryStore::Route {
    std::vector<std::unique_ptr<Shard>> shards;
    std::size_t count = 1;  ///< a power of two
    /// ttl + max(stale windows) of the route's current rule (a reload may
    /// change it: retune_route); read relaxed, written by the reload alone.
    std::atomic<Clock::rep> keep{0};
    /// Re-keyed or removed by a reload: nothing found, nothing stored.
    std::atomic<bool> retired{false};

    Shard& shard_for(std::uint64_t hash) const { return *shards[(hash >> 32) & (count - 1)]; }

    /// Of no use at `now`: past the windows it was stored with and past the route's current ones.
    bool useless(const CachedResponse& e, TimePoint now) const {
        return e.drop_at() <= now && e.stored_at() + Clock::duration(keep.load(std::memory_order_relaxed)) <= now;
    }
    void set_keep(const rules::RouteRule& rule) {
        const auto keep_for = rule.ttl + std::max(rule.stale_while_revalidate, rule.stale_if_error);
        keep.store(std::chrono::duration_cast<Clock::duration>(keep_for).count(), std::memory_order_relaxed);
    }
};

std::unique_ptr<MemoryStore::Route> MemoryStore::make_route(const rules::RouteRule& rule) {
    auto route = std::make_unique<Route>();
    route->count = shards_for(rule);
    route->shards.reserve(route->count);
    for (std::size_t i = 0; i < route->count; ++i)
        route->shards.push_back(std::make_unique<Shard>(rule.max_entries / route->count, rule.max_bytes / route->count));
    route->set_keep(rule);
    return route;
}

MemoryStore::MemoryStore(const rules::RuleSet& rules) : slots_(std::make_unique<std::atomic<Route*>[]>(kMaxRoutes)) {
    for (std::size_t i = 0; i < kMaxRoutes; ++i) slots_[i].store(nullptr, std::memory_order_relaxed);
    for (const auto& rule : rules.routes) add_route(rule);
}

std::optional<std::size_t> MemoryStore::add_route(const rules::RouteRule& rule) {
    std::lock_guard lock(grow_mu_);
    if (used_ >= kMaxRoutes) return std::nullopt;
    owned_.push_back(make_route(rule));
    slots_[used_].store(owned_.back().get(), std::memory_order_release);
    return used_++;
}

void MemoryStore::retune_route(std::size_t route_index, const rules::RouteRule& rule) {
    if (Route* r = route(route_index)) r->set_keep(rule);
}

std::size_t MemoryStore::retire_route(std::size_t route_index) {
    Route* r = route(route_index);
    if (!r) return 0;
    // The flag first: an insert that takes a shard lock after erase_route
    // has emptied that shard sees it, and a lookup from then on finds nothing.
    r->retired.store(true, std::memory_order_seq_cst);
    return erase_route(route_index);
}

MemoryStore::~MemoryStore() = default;

std::size_t MemoryStore::shards_for(const rules::RouteRule& rule) {
    std::size_t n = kMaxShards;
    while (n > 1 && (rule.max_entries / n < kMinEntriesPerShard || rule.max_bytes / n < 4 * rule.max_object_bytes))
        n /= 2;
    return n;
}

std::size_t MemoryStore::node_overhead(std::size_t key_bytes) {
    // The node block with the key inline, and one bucket slot (the index has one per entry it may hold).
    return malloc_chunk(sizeof(Node) + key_bytes) + sizeof(Index::bucket_type);
}

std::size_t MemoryStore::charge_of(const CacheKey& key, const CachedResponse& entry) {
    return entry.charge() + node_overhead(key.bytes.size());
}

std::size_t MemoryStore::shard_count(std::size_t route_index) const {
    const Route* r = route(route_index);
    return r ? r->count : 0;
}

EntryPtr MemoryStore::lookup(const CacheKey& key, TimePoint now) {
    const Route* r = route(key.route_index);
    if (!r || r->retired.load(std::memory_order_seq_cst)) return nullptr;
    Shard& s = r->shard_for(key.hash);
    Grave grave;  // declared before the lock: freed after it is released
    std::lock_guard lock(s.mu);
    const auto it = s.index.find(KeyRef{key.bytes, key.hash}, KeyHash{}, KeyEq{});
    if (it == s.index.end()) return nullptr;
    Node& node = *it;
    if (r->useless(*node.entry, now)) {
        ++s.expired;
        s.remove(node, grave);
        return nullptr;
    }
    s.touch(node);
    return node.entry;
}

void MemoryStore::insert(const CacheKey& key, EntryPtr entry, TimePoint now) {
    const Route* r = route(key.route_index);
    if (!r || !entry) return;
    if (r->useless(*entry, now)) return;  // already useless
    // erase_identity reads the identity back from the key bytes: a key that does not end with it is never stored.
    if (key.has_identity && !ends_with_identity(key.bytes, key.identity)) return;
    Shard& s = r->shard_for(key.hash);
    const std::size_t charge = charge_of(key, *entry);
    if (s.max_entries == 0 || charge > s.max_bytes) return;  // can never fit

    // Build the node outside the lock (its one allocation happens here).
    Node* const fresh = Node::make(key, std::move(entry));
    if (!fresh) return;

    Grave grave;   // nodes leaving the store, freed after the lock is released
    EntryPtr old;  // a replaced entry, released after the lock too
    std::lock_guard lock(s.mu);
    if (r->retired.load(std::memory_order_seq_cst)) {  // under the lock: retire_route empties this shard after
        grave.bury(*fresh);
        return;
    }

    const auto found = s.index.find(KeyRef{key.bytes, key.hash}, KeyHash{}, KeyEq{});
    if (found != s.index.end()) {
        // Replace in place: the node keeps its key and its place in the index.
        Node& node = *found;
        if (node.entry->stored_at() > fresh->entry->stored_at()) {
            // Fills finishing out of order: an older response never replaces a newer one.
            grave.bury(*fresh);
            return;
        }
        s.bytes -= Shard::charge(node);
        old = std::move(node.entry);
        node.entry = std::move(fresh->entry);
        s.bytes += charge;
        s.touch(node);
        grave.bury(*fresh);  // the unused fresh node dies outside the lock
        while (s.bytes > s.max_bytes && s.lru.size() > 1) {
            ++s.evictions;
            s.remove(s.lru.back(), grave);
        }
        return;
    }

    // Reclaim expired entries among the last kReclaimPerInsert of the LRU: bounded work, no sweep.
    std::array<Node*, kReclaimPerInsert> expired;
    std::size_t n_expired = 0;
    auto it = s.lru.end();
    for (std::size_t i = 0; i < kReclaimPerInsert && it != s.lru.begin(); ++i) {
        --it;
        if (r->useless(*it->entry, now)) expired[n_expired++] = &*it;
    }
    for (std::size_t i = 0; i < n_expired; ++i) {  // removing one node leaves the others linked
        ++s.expired;
        s.remove(*expired[i], grave);
    }

    // Evict least recently used until the new node fits.
    while (!s.lru.empty() && (s.lru.size() + 1 > s.max_entries || s.bytes + charge > s.max_bytes)) {
        ++s.evictions;
        s.remove(s.lru.back(), grave);
    }

    s.lru.push_front(*fresh);
    s.index.insert(*fresh);
    s.bytes += charge;
}

bool MemoryStore::erase(const CacheKey& key) {
    const Route* r = route(key.route_index);
    if (!r) return false;
    Shard& s = r->shard_for(key.hash);
    Grave grave;
    std::lock_guard lock(s.mu);
    const auto it = s.index.find(KeyRef{key.bytes, key.hash}, KeyHash{}, KeyEq{});
    if (it == s.index.end()) return false;
    s.remove(*it, grave);
    return true;
}

std::size_t MemoryStore::erase_route(std::size_t route_index) {
    const Route* found = route(route_index);
    if (!found) return 0;
    const Route& r = *found;
    std::size_t removed = 0;
    for (std::size_t i = 0; i < r.count; ++i) {
        Shard& s = *r.shards[i];
        Grave grave;
        std::lock_guard lock(s.mu);
        removed += s.lru.size();
        s.index.clear();
        s.bytes = 0;
        grave.bury_all(s.lru);
    }
    return removed;
}

std::size_t MemoryStore::erase_identity(std::size_t route_index, const IdentityHash& identity) {
    const Route* found = route(route_index);
    if (!found) return 0;
    const Route& r = *found;
    std::size_t removed = 0;
    for (std::size_t i = 0; i < r.count; ++i) {
        Shard& s = *r.shards[i];
        Grave grave;
        std::lock_guard lock(s.mu);
        for (auto it = s.lru.begin(); it != s.lru.end();) {
            Node& node = *it++;
            if (node.has_identity && ends_with_identity(node.key(), identity)) {
                s.remove(node, grave);
                ++removed;
            }
        }
    }
    return removed;
}

std::size_t MemoryStore::clear() {
    std::size_t removed = 0;
    for (std::size_t i = 0; route(i); ++i) removed += erase_route(i);
    return removed;
}

RouteStoreStats MemoryStore::stats(std::size_t route_index) const {
    RouteStoreStats out;
    const Route* found = route(route_index);
    if (!found) return out;
    const Route& r = *found;
    for (std::size_t i = 0; i < r.count; ++i) {
        const Shard& s = *r.shards[i];
        std::lock_guard lock(s.mu);
        out.entries += s.lru.size();
        out.bytes += s.bytes;
        out.evictions += s.evictions;
        out.expired_reclaimed += s.expired;
    }
    return out;
}

}  // namespace cacheproxy::cache
