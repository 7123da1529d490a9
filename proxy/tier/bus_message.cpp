#include "tier/bus_message.hpp"

#include <charconv>

namespace cacheproxy::tier {

std::string encode(const BusMessage& m) {
    std::string out = "v1\n";
    out += m.origin;
    out += '\n';
    out += std::to_string(m.published_us);
    out += '\n';
    out += m.drop_credential ? "d" : "";
    out += m.generations_unacknowledged ? "n" : "";
    out += "-\n";
    out += cache::IdentityHasher::hex(m.identity);
    out += '\n';
    out += m.principal ? cache::IdentityHasher::hex(*m.principal) : "-";
    for (const auto& r : m.routes) {
        out += '\n';
        out += r;
    }
    return out;
}

std::optional<cache::IdentityHash> identity_from_hex(std::string_view hex) {
    cache::IdentityHash out{};
    if (!cache::IdentityHasher::from_hex(hex, out)) return std::nullopt;
    return out;
}

std::optional<BusMessage> decode(std::string_view text) {
    std::vector<std::string_view> lines;
    while (true) {
        const auto nl = text.find('\n');
        lines.push_back(text.substr(0, nl));
        if (nl == std::string_view::npos) break;
        text.remove_prefix(nl + 1);
    }
    if (lines.size() < 6 || lines[0] != "v1" || lines[1].empty()) return std::nullopt;
    BusMessage m;
    m.origin = lines[1];
    const auto r = std::from_chars(lines[2].data(), lines[2].data() + lines[2].size(), m.published_us);
    if (r.ec != std::errc() || r.ptr != lines[2].data() + lines[2].size()) return std::nullopt;
    const auto flags = lines[3];
    if (flags.empty() || flags.back() != '-') return std::nullopt;
    for (const char c : flags.substr(0, flags.size() - 1)) {
        if (c == 'd') m.drop_credential = true;
        else if (c == 'n') m.generations_unacknowledged = true;
        else return std::nullopt;
    }
    const auto id = identity_from_hex(lines[4]);
    if (!id) return std::nullopt;
    m.identity = *id;
    if (lines[5] != "-") {
        m.principal = identity_from_hex(lines[5]);
        if (!m.principal) return std::nullopt;
    }
    for (std::size_t i = 6; i < lines.size(); ++i) {
        if (lines[i].empty()) return std::nullopt;
        m.routes.emplace_back(lines[i]);
    }
    return m;
}

}  // namespace cacheproxy::tier
