#pragma once
/// Starting the shared tier (tier/shared_tier.hpp) when the config has one:
/// the identity key from its file (every instance must hash credentials
/// alike), the hooks that apply other instances' invalidations to this
/// instance's cache, and the first key check against Redis.

#include "core/worker.hpp"

#include <optional>
#include <string>

namespace cacheproxy::app {

/// Reads shared_tier.identity_key_file: 32 raw bytes, or 64 hex characters
/// (a final newline allowed), in a file no one but its owner may read.
std::optional<std::string> read_identity_key(const std::string& path, cache::IdentityHasher::Key& out);

/// Sets ctx.cache->tier up and starts it; an error when the key file is bad
/// or Redis holds another key's fingerprint. Nothing when shared_tier is off
/// or nothing is cached.
std::optional<std::string> start_shared_tier(ServerContext& ctx);

}  // namespace cacheproxy::app
