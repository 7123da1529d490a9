#include "cache/generations.hpp"

#include <algorithm>
#include <bit>
#include <cstring>

namespace cacheproxy::cache {
namespace {

/// splitmix64's finalizer: spreads every input bit over the slot index.
std::uint64_t mix(std::uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

// Memory order. What makes a write visible to later reads is coherence plus a
// happens-before edge from the bump to the reader's load: the write's thread
// bumps, then hands its response to the socket; the client can only send the
// next GET after reading it, and that GET's lookup or fill loads the counter
// after a syscall or an asio post (a mutex) on its own thread. Given that edge,
// the load returns the bumped value or a later one. Acquire/release would do;
// seq_cst (one total order over every bump and load of both tables) costs
// nothing measurable here - a seq_cst load is a plain MOV on x86-64 and LDAR on
// ARMv8, the fetch_add a locked RMW either way, and bumps are rare - and leaves
// no subtle argument for the next reader. Correctness over a nanosecond.
constexpr auto order = std::memory_order_seq_cst;

std::unique_ptr<std::atomic<std::uint64_t>[]> zeroed(std::size_t n) {
    auto table = std::make_unique<std::atomic<std::uint64_t>[]>(n);
    for (std::size_t i = 0; i < n; ++i) table[i].store(0, std::memory_order_relaxed);
    return table;
}

}  // namespace

Generations::Generations(std::size_t slots)
    : mask_(std::bit_ceil(slots < 1 ? std::size_t{1} : slots) - 1), user_(zeroed(mask_ + 1)), exact_(zeroed(mask_ + 1)) {}

std::size_t Generations::user_slot(std::size_t route_index, const IdentityHash& identity) const {
    // The identity is an HMAC: any 8 of its bytes are already uniform.
    std::uint64_t id = 0;
    std::memcpy(&id, identity.data(), sizeof id);
    return static_cast<std::size_t>(mix(id ^ mix(route_index + 0x9e3779b97f4a7c15ULL))) & mask_;
}

std::size_t Generations::exact_slot(std::string_view key_bytes) const {
    // Case-folded: a read spelled `Bybit` and a write spelled `bybit` share a
    // slot, in case the app compares them without case. Folding is "OR 0x20"
    // on every byte, 8 at a time: it maps more than letters together, but a
    // shared slot only costs an extra refetch, so it can only widen.
    constexpr std::uint64_t fold = 0x2020202020202020ULL;
    std::uint64_t h = key_bytes.size();
    std::size_t i = 0;
    for (; i + 8 <= key_bytes.size(); i += 8) {
        std::uint64_t w;
        std::memcpy(&w, key_bytes.data() + i, 8);
        h = mix(h ^ (w | fold));
    }
    if (const std::size_t rest = key_bytes.size() - i; rest != 0) {
        std::uint64_t tail = 0;
        std::memcpy(&tail, key_bytes.data() + i, rest);
        h = mix(h ^ (tail | (fold >> (8 * (8 - rest)))));
    }
    return static_cast<std::size_t>(h) & mask_;
}

std::uint64_t Generations::current(const CacheKey& key) const {
    // Both counters only grow, so a bump of either after this read makes the sum larger.
    const auto sum = user_[user_slot(key.route_index, key.identity)].load(order) + exact_[exact_slot(key.bytes)].load(order);
    return key.has_identity ? sum + epoch_.load(order) : sum;
}

void Generations::bump_all() { epoch_.fetch_add(1, order); }

void Generations::bump_exact(const CacheKey& key) { exact_[exact_slot(key.bytes)].fetch_add(1, order); }

void Generations::bump_user(std::size_t route_index, const IdentityHash& identity) {
    user_[user_slot(route_index, identity)].fetch_add(1, order);
}

void Generations::bump_identity(const IdentityHash& identity, std::span<const std::size_t> routes) {
    // Routes per rules file are few (tens): a linear dedupe on the stack.
    constexpr std::size_t kMax = 64;
    std::size_t seen[kMax];
    std::size_t n = 0;
    for (const auto route : routes) {
        const auto slot = user_slot(route, identity);
        if (std::find(seen, seen + n, slot) != seen + n) continue;
        if (n < kMax) seen[n++] = slot;
        user_[slot].fetch_add(1, order);
    }
}

}  // namespace cacheproxy::cache
