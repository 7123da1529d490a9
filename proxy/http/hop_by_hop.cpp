#include "http/hop_by_hop.hpp"

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/rfc7230.hpp>

#include <array>
#include <string>

namespace cacheproxy::http {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

/// Hop-by-hop by its own name: Connection, Keep-Alive, TE, Trailer, Upgrade,
/// Transfer-Encoding, and every Proxy-* (Proxy-Connection, -Authorization, ...).
bool hop_by_hop_name(bhttp::field field, std::string_view name) {
    switch (field) {
        case bhttp::field::connection:
        case bhttp::field::keep_alive:
        case bhttp::field::te:
        case bhttp::field::trailer:
        case bhttp::field::upgrade:
        case bhttp::field::transfer_encoding:
            return true;
        default:
            return name.size() >= 6 && beast::iequals(name.substr(0, 6), "proxy-");
    }
}

template <class Allocator>
void strip_hop_by_hop(bhttp::basic_fields<Allocator>& fields) {
    // Fields named by Connection (RFC 9110 7.6.1). Collect first: erasing
    // while iterating the Connection values would invalidate them.
    std::array<std::string, 8> named_small;
    std::size_t named_count = 0;
    std::vector<std::string> named_more;
    for (const auto& f : fields) {
        // Proxy-Connection goes as a field (hop_by_hop_name); its value is never a list of names.
        if (f.name() != bhttp::field::connection) continue;
        for (auto tok : bhttp::opt_token_list{f.value()}) {
            if (named_count < named_small.size())
                named_small[named_count++].assign(tok.data(), tok.size());
            else
                named_more.emplace_back(tok);
        }
    }
    auto named_by_connection = [&](std::string_view name) {
        for (std::size_t i = 0; i < named_count; ++i)
            if (beast::iequals(name, named_small[i])) return true;
        for (const auto& n : named_more)
            if (beast::iequals(name, n)) return true;
        return false;
    };
    // One walk that erases as it goes (Beast's erase by name is a tree
    // lookup each; a message has a handful of fields).
    for (auto it = fields.begin(); it != fields.end();) {
        if (hop_by_hop_name(it->name(), it->name_string()) || (named_count != 0 && named_by_connection(it->name_string())))
            it = fields.erase(it);
        else
            ++it;
    }
}

template void strip_hop_by_hop(bhttp::fields&);
template void strip_hop_by_hop(http::Fields&);

std::string_view via_token(unsigned version) {
    return version == 10 ? std::string_view{"1.0 cacheproxy"} : std::string_view{"1.1 cacheproxy"};
}

}  // namespace cacheproxy::http
