#include "http/upstream_head.hpp"

#include "http/hop_by_hop.hpp"
#include "util/ascii.hpp"

#include <boost/beast/http/rfc7230.hpp>

#include <array>
#include <charconv>
#include <cstring>
#include <vector>

namespace cacheproxy::http {

namespace bhttp = boost::beast::http;

namespace {

/// Names a look-alike may not imitate (lower case, with '-').
constexpr std::array<std::string_view, 9> kProtected = {
    "content-length", "transfer-encoding", "host",          "connection",     "upgrade",
    "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "proxy-connection"};

/// `name` equals `target` (lower case, '-') when each '_' of `name` is read as '-'.
bool reads_as(std::string_view name, std::string_view target) {
    if (name.size() != target.size()) return false;
    for (std::size_t i = 0; i < name.size(); ++i) {
        const char c = name[i] == '_' ? '-' : util::ascii_lower(name[i]);
        if (c != util::ascii_lower(target[i])) return false;
    }
    return true;
}

/// The fields Connection names, as views into the header (it is not modified).
class NamedFields {
public:
    explicit NamedFields(const bhttp::fields& fields) {
        for (const auto& f : fields) {
            if (f.name() != bhttp::field::connection) continue;
            for (auto tok : bhttp::opt_token_list{f.value()}) {
                if (count_ < small_.size())
                    small_[count_++] = tok;
                else
                    more_.emplace_back(tok);
            }
        }
    }
    bool contains(std::string_view name) const {
        for (std::size_t i = 0; i < count_; ++i)
            if (util::iequals(name, small_[i])) return true;
        for (auto n : more_)
            if (util::iequals(name, n)) return true;
        return false;
    }
    bool empty() const { return count_ == 0; }

private:
    std::array<std::string_view, 8> small_{};
    std::size_t count_ = 0;
    std::vector<std::string_view> more_;
};

/// Dropped by its own name: hop-by-hop, framing, Expect, the forwarding fields we rewrite.
bool dropped_by_name(const bhttp::fields::value_type& f) {
    switch (f.name()) {
        case bhttp::field::content_length:
        case bhttp::field::expect:
        case bhttp::field::via:
            return true;
        default:
            return hop_by_hop_name(f) || util::iequals(f.name_string(), "x-forwarded-for") ||
                   util::iequals(f.name_string(), "x-forwarded-proto");
    }
}

void append_field(std::string& out, std::string_view name, std::string_view value) {
    out.append(name);
    out.append(": ");
    out.append(value);
    out.append("\r\n");
}

}  // namespace

bool lookalike_name(std::string_view name, std::string_view identity_header) {
    if (std::memchr(name.data(), '_', name.size()) == nullptr) return false;
    for (auto p : kProtected)
        if (reads_as(name, p)) return true;
    return !identity_header.empty() && reads_as(name, identity_header);
}

void append_upstream_head(const bhttp::request_header<>& req, const ForwardContext& ctx,
                          std::optional<std::uint64_t> body_length, std::string& out) {
    out.append(ctx.method.empty() ? std::string_view(req.method_string()) : ctx.method);
    out.push_back(' ');
    out.append(req.target());
    out.append(" HTTP/1.1\r\n");

    const NamedFields named(req);
    bool has_host = false;
    std::size_t vias = 0;  // Via fields the client sent: ours is appended to their list
    for (const auto& f : req) {
        if (f.name() == bhttp::field::via) ++vias;
        if (dropped_by_name(f)) continue;
        const auto name = f.name_string();
        if (!named.empty() && named.contains(name)) continue;
        if (lookalike_name(name, ctx.identity_header)) continue;
        bool drop = false;
        for (auto d : ctx.drop) drop = drop || util::iequals(name, d);
        if (drop) continue;
        if (f.name() == bhttp::field::host) has_host = true;
        append_field(out, name, f.value());
    }
    if (!has_host) append_field(out, "Host", ctx.upstream_authority);
    append_field(out, "X-Forwarded-For", ctx.peer_ip);
    append_field(out, "X-Forwarded-Proto", "http");
    out.append("Via: ");
    if (vias != 0) {
        for (const auto& f : req) {
            if (f.name() != bhttp::field::via) continue;
            out.append(f.value()).append(", ");
        }
    }
    out.append(via_token(req.version())).append("\r\n");
    if (body_length) {
        char digits[24];
        const auto r = std::to_chars(digits, digits + sizeof digits, *body_length);
        out.append("Content-Length: ").append(digits, r.ptr).append("\r\n");
    }
    out.append("\r\n");
}

}  // namespace cacheproxy::http
