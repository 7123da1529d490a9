#pragma once
/// What a watched write tells the other instances, on the bus channel.
/// Lines: "v1", the origin instance's id, the publish time (unix
/// microseconds, for the lag figure only), flags ("d": the credential logged
/// out; "n": the global generations were not acknowledged, so receivers must
/// not trust the user's L2 entries for a while), the identity (32 hex), the
/// writer's principal (32 hex, or "-" when not known), then one route name
/// per line. A receiver drops that user's entries of those
/// routes (whole routes: wider than the writer's exact keys, never narrower).

#include "cache/identity.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cacheproxy::tier {

struct BusMessage {
    std::string origin;                ///< the publishing instance's id
    std::int64_t published_us = 0;     ///< its system clock, unix microseconds
    bool drop_credential = false;      ///< a logout: every per-user route of the identity
    bool generations_unacknowledged = false;
    cache::IdentityHash identity{};
    /// The writer's principal (rules.principal): each receiver also drops the
    /// entries of the credentials it maps to it.
    std::optional<cache::IdentityHash> principal;
    std::vector<std::string> routes;   ///< route names
};

std::string encode(const BusMessage& m);
/// nullopt for anything that is not a well-formed v1 message.
std::optional<BusMessage> decode(std::string_view text);
/// 32 hex characters -> hash.
std::optional<cache::IdentityHash> identity_from_hex(std::string_view hex);

}  // namespace cacheproxy::tier
