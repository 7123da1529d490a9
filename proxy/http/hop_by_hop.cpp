#include "http/hop_by_hop.hpp"

#include <boost/beast/core/string.hpp>
#include <boost/beast/http/rfc7230.hpp>

#include <array>
#include <string>

namespace cacheproxy::http {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;

void strip_hop_by_hop(bhttp::fields& fields) {
    // Fields named by Connection (RFC 9110 7.6.1). Collect first: erasing
    // while iterating the Connection values would invalidate them.
    std::array<std::string, 8> named_small;
    std::size_t named_count = 0;
    std::vector<std::string> named_more;
    for (const auto& f : fields) {
        if (f.name() != bhttp::field::connection && f.name() != bhttp::field::proxy_connection) continue;
        for (auto tok : bhttp::opt_token_list{f.value()}) {
            if (named_count < named_small.size())
                named_small[named_count++].assign(tok.data(), tok.size());
            else
                named_more.emplace_back(tok);
        }
    }
    for (std::size_t i = 0; i < named_count; ++i) fields.erase(named_small[i]);
    for (const auto& n : named_more) fields.erase(n);

    fields.erase(bhttp::field::connection);
    fields.erase(bhttp::field::keep_alive);
    fields.erase(bhttp::field::te);
    fields.erase(bhttp::field::trailer);
    fields.erase(bhttp::field::upgrade);
    fields.erase(bhttp::field::transfer_encoding);
    // Proxy-* (Proxy-Connection, Proxy-Authorization, Proxy-Authenticate, ...).
    for (auto it = fields.begin(); it != fields.end();) {
        const auto name = it->name_string();
        if (name.size() >= 6 && beast::iequals(name.substr(0, 6), "proxy-"))
            it = fields.erase(it);
        else
            ++it;
    }
}

void ensure_host(bhttp::fields& fields, std::string_view host, unsigned short port) {
    if (fields.count(bhttp::field::host) != 0) return;
    std::string authority(host);
    authority.push_back(':');
    authority += std::to_string(port);
    fields.set(bhttp::field::host, authority);
}

std::string_view via_token(unsigned version) {
    return version == 10 ? std::string_view{"1.0 cacheproxy"} : std::string_view{"1.1 cacheproxy"};
}

void add_forwarding_headers(bhttp::fields& fields, std::string_view peer_ip, unsigned client_version) {
    fields.set("X-Forwarded-For", peer_ip);
    fields.set("X-Forwarded-Proto", "http");
    const auto via = fields.find(bhttp::field::via);
    if (via == fields.end()) {
        fields.set(bhttp::field::via, via_token(client_version));
    } else {
        std::string joined(via->value());
        joined += ", ";
        joined += via_token(client_version);
        fields.set(bhttp::field::via, joined);
    }
}

}  // namespace cacheproxy::http
