#include "cache/stored_head.hpp"

#include "cache/header_list.hpp"
#include "cache/header_tokens.hpp"

#include <array>
#include <charconv>

namespace cacheproxy::cache {

namespace {

bool unsafe(std::string_view s) {
    for (const char c : s)
        if (c == '\r' || c == '\n' || c == '\0') return true;
    return false;
}

std::string_view standard_reason(unsigned status) {
    switch (status) {
        case 200: return "OK";
        case 201: return "Created";
        case 202: return "Accepted";
        case 203: return "Non-Authoritative Information";
        case 204: return "No Content";
        case 300: return "Multiple Choices";
        case 301: return "Moved Permanently";
        case 302: return "Found";
        case 307: return "Temporary Redirect";
        case 308: return "Permanent Redirect";
        case 404: return "Not Found";
        case 410: return "Gone";
        default: return "Unknown";
    }
}

/// `name` is listed by a Connection field of `fields`.
bool named_by_connection(const HeaderList& fields, std::string_view name) {
    bool named = false;
    for_each_directive(fields, "connection", [&](const Directive& d) {
        named = iequals(d.name, name);
        return !named;
    });
    return named;
}

}  // namespace

bool never_stored(std::string_view name) {
    static constexpr std::array<std::string_view, 15> dropped = {
        "connection", "keep-alive",     "proxy-connection", "te",         "trailer",
        "upgrade",    "transfer-encoding", "content-length", "content-encoding", "age",
        "date",       "set-cookie",     "set-cookie2",      "x-cache",    "cache-status"};
    for (const auto d : dropped)
        if (iequals(name, d)) return true;
    return name.size() >= 6 && iequals(name.substr(0, 6), "proxy-");
}

std::string build_stored_head(unsigned status, std::string_view reason, std::span<const HeaderField> fields) {
    HeaderList list;
    for (const auto& f : fields) list.add(f.name, f.value);

    if (reason.empty() || unsafe(reason)) reason = standard_reason(status);
    std::array<char, 8> code{};
    const auto [end, ec] = std::to_chars(code.data(), code.data() + code.size(), status);

    std::size_t size = 9 + 4 + reason.size() + 2;
    for (const auto& f : fields) size += f.name.size() + 2 + f.value.size() + 2;
    std::string head;
    head.reserve(size);
    head.append("HTTP/1.1 ");
    head.append(code.data(), ec == std::errc{} ? end : code.data());
    head.push_back(' ');
    head.append(reason);
    head.append("\r\n");

    for (const auto& f : fields) {
        if (f.name.empty() || never_stored(f.name) || unsafe(f.name) || unsafe(f.value)) continue;
        if (named_by_connection(list, f.name)) continue;
        head.append(f.name);
        head.append(": ");
        head.append(trim_ows(f.value));
        head.append("\r\n");
    }
    return head;
}

}  // namespace cacheproxy::cache
