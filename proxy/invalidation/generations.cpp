#include "invalidation/generations.hpp"

#include <bit>
#include <cstring>

namespace cacheproxy::invalidation {
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
// next GET after reading it, and that GET's fill (or lookup) loads the counter
// after a syscall or an asio post (a mutex) on the reading thread. Given that
// edge, the load returns the bumped value or a later one. Acquire/release would
// do; we use seq_cst (one total order over all bumps and loads of both tables)
// because it costs nothing here - on x86-64 the load is a plain MOV and the
// fetch_add a LOCK XADD either way, on ARMv8 LDAR and an LDADDAL/LSE loop - and
// leaves no subtle reasoning for the next reader. Correctness over a nanosecond.
constexpr auto order = std::memory_order_seq_cst;

std::unique_ptr<std::atomic<std::uint64_t>[]> zeroed(std::size_t n) {
    auto table = std::make_unique<std::atomic<std::uint64_t>[]>(n);
    for (std::size_t i = 0; i < n; ++i) table[i].store(0, std::memory_order_relaxed);
    return table;
}

}  // namespace

Generations::Generations(std::size_t slots)
    : mask_(std::bit_ceil(slots < 1 ? std::size_t{1} : slots) - 1), user_(zeroed(mask_ + 1)), exact_(zeroed(mask_ + 1)) {}

std::size_t Generations::user_slot(std::size_t route_index, const cache::IdentityHash& identity) const {
    // The identity is an HMAC: any 8 of its bytes are already uniform.
    std::uint64_t id = 0;
    std::memcpy(&id, identity.data(), sizeof id);
    return static_cast<std::size_t>(mix(id ^ mix(route_index + 0x9e3779b97f4a7c15ULL))) & mask_;
}

std::size_t Generations::exact_slot(std::uint64_t key_hash) const {
    return static_cast<std::size_t>(mix(key_hash)) & mask_;  // std::hash may be weak in its low bits
}

std::uint64_t Generations::current(const cache::CacheKey& key) const {
    // Both counters only grow, so a bump of either after this read makes the sum larger.
    return user_[user_slot(key.route_index, key.identity)].load(order) + exact_[exact_slot(key.hash)].load(order);
}

void Generations::bump_exact(const cache::CacheKey& key) { exact_[exact_slot(key.hash)].fetch_add(1, order); }

void Generations::bump_user(std::size_t route_index, const cache::IdentityHash& identity) {
    user_[user_slot(route_index, identity)].fetch_add(1, order);
}

}  // namespace cacheproxy::invalidation
