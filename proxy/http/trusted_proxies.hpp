#pragma once
/// Which peers may speak for the client: `server.trusted_proxies`, a list of
/// addresses and CIDR blocks (IPv4 and IPv6). A request from a trusted peer (a
/// TLS front) keeps its X-Forwarded-Proto / -Host and has its X-Forwarded-For
/// appended to (http/upstream_head); from anyone else those are overwritten,
/// so a client cannot claim another address or scheme. Pure, no I/O.
///
/// Entries are literal addresses only (no host names: a name's address can
/// change under a running process, and trust must not). An IPv4-mapped IPv6
/// peer (::ffff:a.b.c.d, what a dual-stack listener reports for an IPv4
/// client) is matched as the IPv4 address it carries, so "10.0.0.0/8" covers
/// it whichever way the listener was opened.

#include <boost/asio/ip/address.hpp>

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace cacheproxy::http {

/// One block of addresses: the first `prefix` bits of `bytes` (network order;
/// IPv4 uses the first 4 bytes).
struct Network {
    std::array<std::uint8_t, 16> bytes{};
    bool v4 = true;
    unsigned prefix = 32;  ///< 0..32 for IPv4, 0..128 for IPv6

    bool contains(const boost::asio::ip::address& peer) const;
};

/// Parses "192.0.2.7", "10.0.0.0/8", "::1", "2001:db8::/32". On failure returns
/// nullopt and sets `why` (for the config error). Bits set past the prefix are
/// refused ("10.0.0.1/8"): such a typo would trust another block than meant.
std::optional<Network> parse_network(std::string_view text, std::string& why);

/// The parsed list; empty = trust no one (the default).
class TrustedProxies {
public:
    TrustedProxies() = default;
    /// From entries validate() has accepted; one that does not parse is skipped.
    explicit TrustedProxies(std::span<const std::string> entries);

    /// True when `peer` lies in one of the blocks.
    bool contains(const boost::asio::ip::address& peer) const;
    bool empty() const { return networks_.empty(); }
    std::size_t size() const { return networks_.size(); }

private:
    std::vector<Network> networks_;
};

}  // namespace cacheproxy::http
