#include "cache/principal_map.hpp"

#include <algorithm>
#include <cstring>

namespace cacheproxy::cache {

std::size_t IdentityHashHash::operator()(const IdentityHash& h) const noexcept {
    std::size_t out = 0;
    std::memcpy(&out, h.data(), sizeof out);
    return out;
}

PrincipalMap::PrincipalMap(PrincipalMapLimits limits, OnDrop on_drop)
    : limits_(limits), on_drop_(std::move(on_drop)) {
    limits_.max_credentials = std::max<std::size_t>(1, limits_.max_credentials);
    limits_.max_per_principal = std::max<std::size_t>(1, limits_.max_per_principal);
}

std::uint64_t PrincipalMap::write_seq() const { return seq_now_.load(std::memory_order_seq_cst); }

void PrincipalMap::touch(Credential& c, TimePoint now) {
    c.last_used = now;
    lru_.splice(lru_.end(), lru_, c.lru);
}

std::uint64_t PrincipalMap::last_write_of(const PrincipalHash& principal) const {
    const auto it = principals_.find(principal);
    // A principal without a record may have written before its record went:
    // assume the latest stamp ever forgotten (wider is safe).
    return it == principals_.end() ? forgotten_write_ : std::max(it->second.last_write, forgotten_write_);
}

void PrincipalMap::remove(const IdentityHash& credential, std::vector<IdentityHash>* dropped) {
    const auto it = credentials_.find(credential);
    if (it == credentials_.end()) return;
    if (dropped) {
        if (on_drop_) on_drop_(credential);  // under the lock: no write can miss it in between
        dropped->push_back(credential);
    }
    if (const auto p = principals_.find(it->second.principal); p != principals_.end()) {
        auto& list = p->second.credentials;
        list.erase(std::remove(list.begin(), list.end(), credential), list.end());
        if (list.empty()) {
            forgotten_write_ = std::max(forgotten_write_, p->second.last_write);
            principals_.erase(p);
        }
    }
    lru_.erase(it->second.lru);
    credentials_.erase(it);
}

void PrincipalMap::expire_locked(TimePoint now, std::vector<IdentityHash>& dropped) {
    while (!lru_.empty()) {
        const auto it = credentials_.find(lru_.front());
        if (it == credentials_.end() || now - it->second.last_used < limits_.idle) break;
        ++counts_.expired;
        remove(lru_.front(), &dropped);
    }
}

PrincipalMap::Learned PrincipalMap::learn(const IdentityHash& credential, const PrincipalHash& principal,
                                          std::uint64_t since, TimePoint now) {
    Learned out;
    std::lock_guard lock(mu_);
    expire_locked(now, out.dropped);
    if (const auto it = credentials_.find(credential); it != credentials_.end()) {
        if (it->second.principal == principal) {
            touch(it->second, now);
            return out;
        }
        // Reassigned: the old mapping goes (the caller drops the credential's entries).
        ++counts_.remapped;
        out.kind = Learned::Kind::remapped;
        remove(credential, nullptr);
    } else {
        ++counts_.learned;
        out.kind = Learned::Kind::fresh;
    }
    out.wrote_since = last_write_of(principal) > since;
    while (credentials_.size() >= limits_.max_credentials && !lru_.empty()) {
        ++counts_.evicted;
        remove(lru_.front(), &out.dropped);
    }
    auto& record = principals_[principal];
    if (record.credentials.size() >= limits_.max_per_principal) {
        // The principal's least recently used credential goes.
        const auto oldest = std::min_element(record.credentials.begin(), record.credentials.end(),
                                             [this](const IdentityHash& a, const IdentityHash& b) {
                                                 return credentials_.at(a).last_used < credentials_.at(b).last_used;
                                             });
        ++counts_.evicted;
        remove(*oldest, &out.dropped);
    }
    // remove() may have erased the record when it emptied: look it up again.
    principals_[principal].credentials.push_back(credential);
    lru_.push_back(credential);
    credentials_.emplace(credential, Credential{principal, now, std::prev(lru_.end())});
    return out;
}

bool PrincipalMap::note_write(const IdentityHash& credential, TimePoint now, std::vector<IdentityHash>& others,
                              PrincipalHash* principal) {
    std::lock_guard lock(mu_);
    const auto it = credentials_.find(credential);
    if (it == credentials_.end()) {
        ++counts_.unknown_writer_writes;
        return false;
    }
    ++counts_.widened_writes;
    touch(it->second, now);
    if (principal) *principal = it->second.principal;
    auto& record = principals_.at(it->second.principal);
    record.last_write = ++seq_;
    seq_now_.store(seq_, std::memory_order_seq_cst);
    for (const auto& c : record.credentials)
        if (c != credential) others.push_back(c);
    return true;
}

void PrincipalMap::note_remote_write(const PrincipalHash& principal, std::vector<IdentityHash>& credentials) {
    std::lock_guard lock(mu_);
    const auto stamp = ++seq_;
    seq_now_.store(seq_, std::memory_order_seq_cst);
    const auto it = principals_.find(principal);
    if (it == principals_.end()) {
        forgotten_write_ = std::max(forgotten_write_, stamp);
        return;
    }
    it->second.last_write = stamp;
    credentials.insert(credentials.end(), it->second.credentials.begin(), it->second.credentials.end());
}

bool PrincipalMap::forget(const IdentityHash& credential) {
    std::lock_guard lock(mu_);
    if (!credentials_.contains(credential)) return false;
    ++counts_.forgotten;
    remove(credential, nullptr);
    return true;
}

std::vector<IdentityHash> PrincipalMap::expire(TimePoint now) {
    std::vector<IdentityHash> dropped;
    std::lock_guard lock(mu_);
    expire_locked(now, dropped);
    return dropped;
}

PrincipalMapStats PrincipalMap::stats() const {
    std::lock_guard lock(mu_);
    PrincipalMapStats out = counts_;
    out.credentials = credentials_.size();
    out.principals = principals_.size();
    return out;
}

std::size_t PrincipalMap::bytes_per_credential() {
    // An unordered_map node (next pointer, key, value, cached hash), a list
    // node (two pointers, key), a bucket pointer, a slot in the principal's
    // vector; plus one principal record per credential at worst.
    constexpr std::size_t ptr = sizeof(void*);
    const std::size_t map_node = ptr + sizeof(IdentityHash) + sizeof(Credential) + sizeof(std::size_t);
    const std::size_t list_node = 2 * ptr + sizeof(IdentityHash);
    const std::size_t principal = ptr + sizeof(PrincipalHash) + sizeof(Principal) + sizeof(std::size_t) + ptr;
    return map_node + list_node + ptr + sizeof(IdentityHash) + principal;
}

}  // namespace cacheproxy::cache
