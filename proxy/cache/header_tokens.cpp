#include "cache/header_tokens.hpp"

namespace cacheproxy::cache {

std::size_t next_directive(std::string_view list, std::size_t pos, Directive& out) {
    while (pos < list.size()) {
        // Skip separators and whitespace before an element.
        while (pos < list.size() && (list[pos] == ',' || util::is_ows(list[pos]))) ++pos;
        if (pos >= list.size()) break;

        const std::size_t name_begin = pos;
        while (pos < list.size() && list[pos] != ',' && list[pos] != '=') ++pos;
        out.name = trim_ows(list.substr(name_begin, pos - name_begin));
        out.argument = {};

        if (pos < list.size() && list[pos] == '=') {
            ++pos;
            while (pos < list.size() && util::is_ows(list[pos])) ++pos;
            const std::size_t arg_begin = pos;
            if (pos < list.size() && list[pos] == '"') {
                // quoted-string: a comma inside does not end the element.
                ++pos;
                while (pos < list.size() && list[pos] != '"') {
                    if (list[pos] == '\\' && pos + 1 < list.size()) ++pos;
                    ++pos;
                }
                if (pos < list.size()) ++pos;  // closing quote
            }
            while (pos < list.size() && list[pos] != ',') ++pos;
            out.argument = trim_ows(list.substr(arg_begin, pos - arg_begin));
        }
        if (!out.name.empty()) return pos;
    }
    return std::string_view::npos;
}

bool has_directive(const HeaderView& headers, std::string_view field, std::string_view directive) {
    bool found = false;
    for_each_directive(headers, field, [&](const Directive& d) {
        if (iequals(d.name, directive)) found = true;
        return !found;
    });
    return found;
}

}  // namespace cacheproxy::cache
