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
    explicit NamedFields(const Fields& fields) {
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

/// Dropped by its own name: hop-by-hop, framing, Expect, Via (rewritten).
bool dropped_by_name(const Fields::value_type& f) {
    switch (f.name()) {
        case bhttp::field::content_length:
        case bhttp::field::expect:
        case bhttp::field::via:
            return true;
        default:
            return hop_by_hop_name(f.name(), f.name_string());
    }
}

/// The X-Forwarded-* fields, whose fate depends on who sent them.
enum class Forwarded { no, for_, proto, host };

Forwarded forwarded_kind(std::string_view name) {
    if (name.size() < 15 || !util::iequals(name.substr(0, 12), "x-forwarded-")) return Forwarded::no;
    const auto rest = name.substr(12);
    if (util::iequals(rest, "for")) return Forwarded::for_;
    if (util::iequals(rest, "proto")) return Forwarded::proto;
    if (util::iequals(rest, "host")) return Forwarded::host;
    return Forwarded::no;
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

void append_upstream_head(const http::RequestHeader& req, const ForwardContext& ctx,
                          std::optional<std::uint64_t> body_length, std::string& out) {
    out.append(ctx.method.empty() ? std::string_view(req.method_string()) : ctx.method);
    out.push_back(' ');
    out.append(req.target());
    out.append(" HTTP/1.1\r\n");

    const NamedFields named(req);
    // Whether a field may go upstream at all, whoever sent it.
    auto passes = [&](const Fields::value_type& f) {
        if (dropped_by_name(f)) return false;
        const auto name = f.name_string();
        if (!named.empty() && named.contains(name)) return false;
        if (lookalike_name(name, ctx.identity_header)) return false;
        for (auto d : ctx.drop)
            if (util::iequals(name, d)) return false;
        return true;
    };
    bool has_host = false, has_proto = false;
    std::size_t vias = 0;  // Via fields the client sent: ours is appended to their list
    for (const auto& f : req) {
        if (f.name() == bhttp::field::via) ++vias;
        if (!passes(f)) continue;
        const Forwarded kind = forwarded_kind(f.name_string());
        if (kind == Forwarded::for_) continue;  // written below, from the peer
        // Only a trusted front knows the client's scheme and host; anyone
        // else's claim is dropped (the proto is then written below).
        if ((kind == Forwarded::proto || kind == Forwarded::host) && !ctx.trusted_peer) continue;
        if (kind == Forwarded::proto) has_proto = true;
        if (f.name() == bhttp::field::host) has_host = true;
        append_field(out, f.name_string(), f.value());
    }
    if (!has_host) append_field(out, "Host", ctx.upstream_authority);
    // A trusted front's list is kept and the front itself appended (what nginx's
    // $proxy_add_x_forwarded_for does); anyone else's claim is replaced by the peer.
    out.append("X-Forwarded-For: ");
    if (ctx.trusted_peer) {
        for (const auto& f : req) {
            if (f.value().empty() || forwarded_kind(f.name_string()) != Forwarded::for_ || !passes(f)) continue;
            out.append(f.value()).append(", ");
        }
    }
    out.append(ctx.peer_ip).append("\r\n");
    if (!has_proto) append_field(out, "X-Forwarded-Proto", "http");
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
    if (ctx.chunked && !body_length) out.append("Transfer-Encoding: chunked\r\n");
    if (!ctx.upgrade.empty()) out.append("Connection: upgrade\r\nUpgrade: ").append(ctx.upgrade).append("\r\n");
    out.append("\r\n");
}

}  // namespace cacheproxy::http
