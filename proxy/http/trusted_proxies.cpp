#include "http/trusted_proxies.hpp"

#include <charconv>

namespace cacheproxy::http {

namespace asio = boost::asio;

namespace {

/// `a` as an IPv4 address when it is one or carries one (::ffff:a.b.c.d).
asio::ip::address normalized(const asio::ip::address& a) {
    if (a.is_v6() && a.to_v6().is_v4_mapped()) return asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
    return a;
}

Network network_of(const asio::ip::address& a, unsigned prefix) {
    Network n;
    n.v4 = a.is_v4();
    n.prefix = prefix;
    if (n.v4) {
        const auto b = a.to_v4().to_bytes();
        std::copy(b.begin(), b.end(), n.bytes.begin());
    } else {
        n.bytes = a.to_v6().to_bytes();
    }
    return n;
}

/// True when the first `prefix` bits of `a` and `b` agree.
bool same_prefix(const std::uint8_t* a, const std::uint8_t* b, unsigned prefix) {
    const unsigned whole = prefix / 8, rest = prefix % 8;
    for (unsigned i = 0; i < whole; ++i)
        if (a[i] != b[i]) return false;
    if (rest == 0) return true;
    const auto mask = static_cast<std::uint8_t>(0xFF << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

/// True when a bit past `prefix` is set in the first `size` bytes of `a`.
bool host_bits_set(const std::uint8_t* a, std::size_t size, unsigned prefix) {
    for (std::size_t bit = prefix; bit < size * 8; ++bit)
        if (a[bit / 8] & (0x80 >> (bit % 8))) return true;
    return false;
}

}  // namespace

bool Network::contains(const asio::ip::address& peer) const {
    const auto p = normalized(peer);
    if (p.is_v4() != v4) return false;
    if (v4) {
        const auto b = p.to_v4().to_bytes();
        return same_prefix(bytes.data(), b.data(), prefix);
    }
    const auto b = p.to_v6().to_bytes();
    return same_prefix(bytes.data(), b.data(), prefix);
}

std::optional<Network> parse_network(std::string_view text, std::string& why) {
    const auto slash = text.find('/');
    const std::string_view addr_text = text.substr(0, slash);
    if (addr_text.find('%') != std::string_view::npos) {
        why = "\"" + std::string(text) + "\": a zone index (%...) is not allowed";
        return std::nullopt;
    }
    boost::system::error_code ec;
    auto addr = asio::ip::make_address(std::string(addr_text), ec);
    if (ec || addr_text.empty()) {
        why = "\"" + std::string(text) + "\" is not an IPv4 or IPv6 address (host names are not allowed)";
        return std::nullopt;
    }
    // "::ffff:10.0.0.0/104" is the IPv4 block 10.0.0.0/8, which is how peers are matched.
    unsigned prefix_offset = 0;
    if (addr.is_v6() && addr.to_v6().is_v4_mapped()) {
        addr = normalized(addr);
        prefix_offset = 96;
    }
    const unsigned max_prefix = addr.is_v4() ? 32 : 128;
    unsigned prefix = max_prefix;
    if (slash != std::string_view::npos) {
        const std::string_view len = text.substr(slash + 1);
        const auto r = std::from_chars(len.data(), len.data() + len.size(), prefix);
        if (len.empty() || len.size() > 3 || r.ec != std::errc{} || r.ptr != len.data() + len.size() ||
            prefix < prefix_offset || prefix - prefix_offset > max_prefix) {
            why = "\"" + std::string(text) + "\": the prefix length must be " + std::to_string(prefix_offset) +
                  ".." + std::to_string(max_prefix + prefix_offset);
            return std::nullopt;
        }
        prefix -= prefix_offset;
    }
    Network n = network_of(addr, prefix);
    if (host_bits_set(n.bytes.data(), n.v4 ? 4 : 16, prefix)) {
        why = "\"" + std::string(text) + "\": bits are set past the prefix length (write the block's first address)";
        return std::nullopt;
    }
    return n;
}

TrustedProxies::TrustedProxies(std::span<const std::string> entries) {
    for (const auto& e : entries) {
        std::string why;
        if (auto n = parse_network(e, why)) networks_.push_back(*n);
    }
}

bool TrustedProxies::contains(const asio::ip::address& peer) const {
    for (const auto& n : networks_)
        if (n.contains(peer)) return true;
    return false;
}

}  // namespace cacheproxy::http
