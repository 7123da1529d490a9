#include "yaml/units.hpp"

#include "util/ascii.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdint>
#include <limits>

namespace cacheproxy::config {
namespace {

/// A unit suffix and how many base units (ms or bytes) it stands for.
struct Unit {
    std::string_view suffix;
    std::uint64_t factor;
};

constexpr std::array<Unit, 4> duration_units{{
    {"h", 3'600'000}, {"m", 60'000}, {"s", 1'000}, {"ms", 1}}};

/// Largest factor first, so format_size() picks the shortest exact form.
constexpr std::array<Unit, 8> size_units{{
    {"GiB", 1ULL << 30}, {"GB", 1'000'000'000}, {"MiB", 1ULL << 20}, {"MB", 1'000'000},
    {"KiB", 1ULL << 10}, {"KB", 1'000}, {"B", 1}, {"", 1}}};

/// Splits "<digits><suffix>"; false when there are no leading digits or they overflow.
bool split_number(std::string_view text, std::uint64_t& value, std::string_view& suffix) {
    if (text.empty() || text.front() < '0' || text.front() > '9') return false;
    const char* end = text.data() + text.size();
    auto [ptr, ec] = std::from_chars(text.data(), end, value);
    if (ec != std::errc{}) return false;
    suffix = std::string_view(ptr, static_cast<std::size_t>(end - ptr));
    return true;
}

/// "<digits><unit>" scaled to base units, if the unit is known and it fits in `max`.
template <std::size_t N>
std::optional<std::uint64_t> parse_scaled(std::string_view text, const std::array<Unit, N>& units,
                                          std::uint64_t max) {
    std::uint64_t value = 0;
    std::string_view suffix;
    if (!split_number(text, value, suffix)) return std::nullopt;
    auto unit = std::find_if(units.begin(), units.end(),
                             [&](const Unit& u) { return u.suffix == suffix; });
    if (unit == units.end() || value > max / unit->factor) return std::nullopt;
    return value * unit->factor;
}

/// `value` in the largest unit that divides it exactly.
template <std::size_t N>
std::string format_scaled(std::uint64_t value, const std::array<Unit, N>& units) {
    for (const Unit& u : units)
        if (value % u.factor == 0) return std::to_string(value / u.factor) + std::string(u.suffix);
    return std::to_string(value);  // unreachable: the last unit has factor 1
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alnum(char c) { return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_hex(char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

/// A DNS name or an IPv4 address: letters, digits, '.', '-', '_'.
bool valid_host_name(std::string_view host) {
    return !host.empty() && std::all_of(host.begin(), host.end(), [](char c) {
        return is_alnum(c) || c == '.' || c == '-' || c == '_';
    });
}

/// The inside of "[...]": hex digits, ':' and '.' (for ::ffff:1.2.3.4), with at least one ':'.
bool valid_ipv6(std::string_view host) {
    return host.find(':') != std::string_view::npos &&
           std::all_of(host.begin(), host.end(),
                       [](char c) { return is_hex(c) || c == ':' || c == '.'; });
}

/// A port number 0..65535 written in decimal digits only.
std::optional<std::uint16_t> parse_port(std::string_view text) {
    if (text.empty() || text.size() > 5 || !std::all_of(text.begin(), text.end(), is_digit))
        return std::nullopt;
    unsigned value = 0;
    std::from_chars(text.data(), text.data() + text.size(), value);
    if (value > 65535) return std::nullopt;
    return static_cast<std::uint16_t>(value);
}

std::string quoted(std::string_view s) { return "\"" + std::string(s) + "\""; }

}  // namespace

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
    constexpr auto max = static_cast<std::uint64_t>(std::numeric_limits<std::chrono::milliseconds::rep>::max());
    auto ms = parse_scaled(text, duration_units, max);
    if (!ms) return std::nullopt;
    return std::chrono::milliseconds(static_cast<std::chrono::milliseconds::rep>(*ms));
}

std::optional<std::size_t> parse_size(std::string_view text) {
    auto bytes = parse_scaled(text, size_units, std::numeric_limits<std::size_t>::max());
    if (!bytes) return std::nullopt;
    return static_cast<std::size_t>(*bytes);
}

std::string format_duration(std::chrono::milliseconds d) {
    if (d.count() < 0) return std::to_string(d.count()) + "ms";  // never parsed; shown as is
    if (d.count() == 0) return "0s";
    return format_scaled(static_cast<std::uint64_t>(d.count()), duration_units);
}

std::string format_size(std::size_t bytes) { return bytes == 0 ? "0B" : format_scaled(bytes, size_units); }

std::optional<std::string> parse_host_port(std::string_view text, HostPort& out) {
    constexpr std::string_view expected = " (expected HOST:PORT, e.g. 127.0.0.1:8080 or [::1]:8080)";
    std::string_view host, port;
    if (!text.empty() && text.front() == '[') {
        auto close = text.find(']');
        if (close == std::string_view::npos) return "missing ']' after the IPv6 address" + std::string(expected);
        host = text.substr(1, close - 1);
        auto rest = text.substr(close + 1);
        if (rest.empty() || rest.front() != ':') return "missing :PORT" + std::string(expected);
        port = rest.substr(1);
        if (!valid_ipv6(host)) return "bad IPv6 address " + quoted(host);
    } else {
        auto colon = text.rfind(':');
        if (colon == std::string_view::npos) return "missing :PORT" + std::string(expected);
        host = text.substr(0, colon);
        port = text.substr(colon + 1);
        if (host.find(':') != std::string_view::npos)
            return "an IPv6 address goes in brackets, e.g. [::1]:8080";
        if (host.empty()) return "missing host (0.0.0.0 means every interface)" + std::string(expected);
        if (!valid_host_name(host)) return "bad host " + quoted(host) + std::string(expected);
    }
    auto number = parse_port(port);
    if (!number) return "bad port " + quoted(port) + " (expected 0..65535)";
    out.host = std::string(host);
    out.port = *number;
    return std::nullopt;
}

std::string format_host_port(const HostPort& hp) {
    if (hp.host.find(':') != std::string::npos) return "[" + hp.host + "]:" + std::to_string(hp.port);
    return hp.host + ":" + std::to_string(hp.port);
}

std::optional<std::string> parse_http_url(std::string_view text, HostPort& out) {
    constexpr std::string_view expected = " (expected http://HOST:PORT, e.g. http://127.0.0.1:8765)";
    auto sep = text.find("://");
    if (sep == std::string_view::npos) return "not a URL" + std::string(expected);
    auto scheme = text.substr(0, sep);
    if (util::iequals(scheme, "https"))
        return "https is not supported: the proxy speaks plain http to its upstream" + std::string(expected);
    if (!util::iequals(scheme, "http")) return "unsupported scheme " + quoted(scheme) + std::string(expected);

    auto rest = text.substr(sep + 3);
    auto authority = rest.substr(0, rest.find_first_of("/?#"));
    auto tail = rest.substr(authority.size());
    if (!tail.empty() && tail != "/")
        return "a path, query or fragment (" + quoted(tail) + ") is not allowed" + std::string(expected);
    if (authority.find('@') != std::string_view::npos)
        return "credentials in the URL are not supported" + std::string(expected);

    // No explicit port -> 80. After a ']' or, without brackets, after the last ':'.
    auto close = authority.rfind(']');
    auto colon = authority.rfind(':');
    bool has_port = colon != std::string_view::npos && (close == std::string_view::npos || colon > close);
    std::string hostport(authority);
    if (!has_port) hostport += ":80";

    HostPort parsed;
    if (auto why = parse_host_port(hostport, parsed)) return why;
    if (parsed.port == 0) return "port must be 1..65535";
    out = parsed;
    return std::nullopt;
}

bool is_loopback_host(std::string_view host) {
    return util::iequals(host, "localhost") || host == "::1" || host.rfind("127.", 0) == 0 ||
           host.rfind("::ffff:127.", 0) == 0;
}

}  // namespace cacheproxy::config
