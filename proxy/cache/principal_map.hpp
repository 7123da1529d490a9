#pragma once
/// Which principal (user) is behind a credential, as far as invalidation goes.
/// Holds only HMACs: a credential is its IdentityHash, a principal the HMAC of
/// its name (same IdentityHasher), so no token and no user id is ever kept.
///
/// Bounded: at most max_credentials credentials (least recently used go
/// first), max_per_principal per principal, and a mapping idle for `idle` (the
/// longest an entry it serves can live) expires. A credential leaving the map
/// is handed to `on_drop` under the map's lock (the cache bumps its
/// generations there, so no write can miss it in between) and listed for the
/// caller to erase its entries.
///
/// Thread-safe; one mutex. Never touched by a cache hit: only fills (misses),
/// writes and refusals (401/403) come here.

#include "cache/clock.hpp"
#include "cache/identity.hpp"

#include <cstddef>
#include <cstdint>
#include <atomic>
#include <functional>
#include <list>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

namespace cacheproxy::cache {

/// A principal as the map knows it: HMAC-SHA256(process key, name), 128 bits.
using PrincipalHash = IdentityHash;

/// Hash functor for IdentityHash keys (the bytes are an HMAC: already uniform).
struct IdentityHashHash {
    std::size_t operator()(const IdentityHash& h) const noexcept;
};

struct PrincipalMapLimits {
    std::size_t max_credentials = 100000;
    std::size_t max_per_principal = 256;
    Clock::duration idle = std::chrono::minutes(2);
};

/// For /stats: counts only, no principal or credential.
struct PrincipalMapStats {
    std::size_t credentials = 0;    ///< mapped now
    std::size_t principals = 0;     ///< distinct principals now
    std::uint64_t learned = 0;      ///< new mappings
    std::uint64_t remapped = 0;     ///< a credential found to belong to another principal
    std::uint64_t evicted = 0;      ///< dropped for room (max_credentials, max_per_principal)
    std::uint64_t expired = 0;      ///< dropped after `idle` without use
    std::uint64_t forgotten = 0;    ///< dropped on a refusal (401/403) or a logout
    std::uint64_t widened_writes = 0;        ///< writes whose writer's principal was known
    std::uint64_t unknown_writer_writes = 0; ///< writes whose writer's principal was not known
};

class PrincipalMap {
public:
    using OnDrop = std::function<void(const IdentityHash&)>;
    PrincipalMap(PrincipalMapLimits limits, OnDrop on_drop);

    /// The write sequence now: a fill reads it before its request goes upstream.
    std::uint64_t write_seq() const;

    /// What learn() found.
    struct Learned {
        enum class Kind { same, fresh, remapped } kind = Kind::same;
        /// The principal (newly mapped to) had a write stamped after `since`,
        /// or might have (its stamp was forgotten): the answer may predate it.
        bool wrote_since = false;
        std::vector<IdentityHash> dropped;  ///< credentials that left the map (entries to erase)
    };
    /// `credential` belongs to `principal`, as an answer fetched after write_seq()
    /// was `since` says.
    Learned learn(const IdentityHash& credential, const PrincipalHash& principal, std::uint64_t since,
                  TimePoint now);

    /// A write by `credential`: when its principal is known, stamps the
    /// principal with a new write sequence and appends its other credentials to
    /// `others`; returns false (counted) when it is not known.
    bool note_write(const IdentityHash& credential, TimePoint now, std::vector<IdentityHash>& others,
                    PrincipalHash* principal = nullptr);
    /// A write by `principal` made through another instance (the shared
    /// tier's bus): stamps it as note_write does and lists the credentials
    /// this instance maps to it. A principal without a record here gets the
    /// stamp as "forgotten" (every unknown principal then counts as written
    /// since: wider is safe).
    void note_remote_write(const PrincipalHash& principal, std::vector<IdentityHash>& credentials);

    /// Forgets `credential` (a refusal, a logout); true if it was mapped. on_drop is not called.
    bool forget(const IdentityHash& credential);

    /// Drops mappings idle past `idle` (also done by learn()); returns them.
    std::vector<IdentityHash> expire(TimePoint now);

    PrincipalMapStats stats() const;
    /// Bytes one mapping costs (its nodes, as allocated), for the bench and docs.
    static std::size_t bytes_per_credential();

private:
    struct Credential {
        PrincipalHash principal{};
        TimePoint last_used{};
        std::list<IdentityHash>::iterator lru;  ///< its place in lru_ (front: least recent)
    };
    struct Principal {
        std::vector<IdentityHash> credentials;
        std::uint64_t last_write = 0;
    };

    // All under mu_.
    void touch(Credential& c, TimePoint now);
    void remove(const IdentityHash& credential, std::vector<IdentityHash>* dropped);
    void expire_locked(TimePoint now, std::vector<IdentityHash>& dropped);
    std::uint64_t last_write_of(const PrincipalHash& principal) const;

    PrincipalMapLimits limits_;
    OnDrop on_drop_;
    mutable std::mutex mu_;
    std::unordered_map<IdentityHash, Credential, IdentityHashHash> credentials_;
    std::unordered_map<PrincipalHash, Principal, IdentityHashHash> principals_;
    std::list<IdentityHash> lru_;
    std::uint64_t seq_ = 0;             ///< write sequence (under mu_; mirrored in seq_now_)
    std::atomic<std::uint64_t> seq_now_{0};
    std::uint64_t forgotten_write_ = 0; ///< the latest stamp of a principal record that was dropped
    PrincipalMapStats counts_;
};

}  // namespace cacheproxy::cache
