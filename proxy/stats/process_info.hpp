#pragma once
/// Facts about the process for /stats and /metrics: resident memory and the
/// configuration's version. Read when asked, never on the request path.

#include "config/config.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace cacheproxy::stats {

/// Resident set size in bytes, from /proc/self/statm (0 if unreadable).
std::uint64_t resident_bytes();

/// 64-bit FNV-1a of `data` (not cryptographic: a change detector).
std::uint64_t fnv1a64(std::string_view data, std::uint64_t seed = 0xcbf29ce484222325ULL);

/// The configuration's version: 16 hex digits of FNV-1a-64 over the config as
/// understood (config::describe(), where the admin token shows as "***") and
/// the rules file's bytes as loaded. Equal configurations give equal versions;
/// any change to a setting or a rule gives a new one. The admin token never
/// enters it, so the version reveals nothing about the token.
std::string config_version(const config::Config& cfg);

}  // namespace cacheproxy::stats
