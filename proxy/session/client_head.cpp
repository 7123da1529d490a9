#include "session/client_head.hpp"

#include "encoding/accept_encoding.hpp"
#include "encoding/compressible.hpp"
#include "encoding/weak_etag.hpp"
#include "http/hop_by_hop.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <span>
#include <string>
#include <string_view>

namespace cacheproxy::session {

namespace {

bool status_has_no_body(unsigned s) { return (s >= 100 && s < 200) || s == 204 || s == 304; }

/// Rewrites a non-canonical Content-Length ("010") as the parsed `length`.
void canonical_content_length(http::ResponseHeader& res, std::uint64_t length) {
    for (const auto& f : res) {
        if (f.name() != bhttp::field::content_length) continue;
        const auto v = f.value();
        const bool canonical = !v.empty() && v.size() <= 20 && (v.size() == 1 || v.front() != '0') &&
                               std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; });
        if (!canonical) res.set(bhttp::field::content_length, std::to_string(length));
        return;
    }
}

/// Drops Content-Length and weakens the ETag of a body that changes size:
/// its ETag names the other representation, so it can only be weak.
void changes_representation(http::ResponseHeader& res, Transform t) {
    res.erase(bhttp::field::content_length);
    if (const auto etag = res[bhttp::field::etag]; !etag.empty()) {
        const auto weak = encoding::weaken_etag(etag);
        if (weak.empty())
            res.erase(bhttp::field::etag);
        else
            res.set(bhttp::field::etag, weak);
    }
    if (t == Transform::gzip)
        res.set(bhttp::field::content_encoding, "gzip");
    else
        res.erase(bhttp::field::content_encoding);
}

}  // namespace

bool accepts_gzip(const http::RequestHeader& req) {
    std::array<std::string_view, 4> lines;
    std::size_t n = 0;
    for (const auto& f : req)  // a walk: cheaper than Beast's name index for a request's few fields
        if (f.name() == bhttp::field::accept_encoding && n < lines.size()) lines[n++] = f.value();
    return encoding::accepts_gzip(std::span<const std::string_view>(lines.data(), n));
}

Transform choose_transform(http::ResponseHeader& res, const http::RequestHeader& req,
                           const config::CompressionConfig& compression) {
    const unsigned status = res.result_int();
    if (!compression.enabled || status < 200 || status == 204 || status == 206 || status == 304)
        return Transform::none;
    // One walk for the fields this needs (the first of each), rather than a
    // tree lookup per field.
    bool ranged = false;
    std::optional<std::string_view> coding, content_length, content_type, vary_field;
    for (const auto& f : res) {
        switch (f.name()) {
            case bhttp::field::content_range: ranged = true; break;
            case bhttp::field::content_encoding: if (!coding) coding = f.value(); break;
            case bhttp::field::content_length: if (!content_length) content_length = f.value(); break;
            case bhttp::field::content_type: if (!content_type) content_type = f.value(); break;
            case bhttp::field::vary: if (!vary_field) vary_field = f.value(); break;
            default: break;
        }
    }
    if (ranged) return Transform::none;
    const bool client_gzip = accepts_gzip(req);
    const auto applied = encoding::applied_coding(coding.value_or(std::string_view{}));
    // An upstream's gzip reaches a client that cannot read it decoded; any
    // other coding of the upstream's is never touched.
    if (applied == encoding::Applied::gzip) return client_gzip ? Transform::none : Transform::gunzip;
    if (applied != encoding::Applied::identity) return Transform::none;
    std::optional<std::size_t> length;
    if (const auto cl = content_length.value_or(std::string_view{}); !cl.empty()) {
        std::size_t v = 0;
        if (std::from_chars(cl.data(), cl.data() + cl.size(), v).ec == std::errc{}) length = v;
    }
    if (!encoding::worth_compressing(content_type.value_or(std::string_view{}), length, compression.min_size))
        return Transform::none;
    // It varies with Accept-Encoding whichever client asks.
    const auto vary = vary_field.value_or(std::string_view{});
    if (vary.empty())
        res.set(bhttp::field::vary, "Accept-Encoding");
    else if (vary.find("ccept-") == std::string_view::npos)
        res.set(bhttp::field::vary, std::string(vary) + ", Accept-Encoding");
    if (!client_gzip || req.version() != 11) return Transform::none;  // HTTP/1.0: no chunked framing
    return Transform::gzip;
}

ClientHead prepare_client_head(bhttp::response<bhttp::buffer_body, http::Fields>& res, const ClientHeadInput& in, bool keep_alive) {
    ClientHead out;
    const unsigned client_version = in.req.version();
    const bool head = in.req.method() == bhttp::verb::head;
    const bool no_body_status = status_has_no_body(res.result_int());
    out.has_body = !head && !no_body_status;
    http::strip_hop_by_hop(res);
    // Framing the client sees comes from the parse: a Content-Length such
    // as "010" goes on canonical (a HEAD's too: it is its GET's length).
    if (in.content_length && !no_body_status) canonical_content_length(res, *in.content_length);
    // A HEAD is decided as its GET (the same fields: Content-Length, type,
    // Accept-Encoding) and labelled the same; only its empty body is not run
    // through the transform.
    const auto transform = choose_transform(res, in.req, in.compression);
    if (transform != Transform::none) changes_representation(res, transform);
    out.transform = out.has_body ? transform : Transform::none;
    if (out.has_body && (!in.content_length || transform != Transform::none)) {
        // Chunked or close-delimited upstream body: chunk it for an
        // HTTP/1.1 client, close-delimit it for an HTTP/1.0 one.
        if (client_version == 11)
            res.chunked(true);
        else
            keep_alive = false;
    }
    if (!in.date.empty()) res.set(bhttp::field::date, in.date);
    const auto via = res.find(bhttp::field::via);
    if (via == res.end()) {
        res.set(bhttp::field::via, http::via_token(11));
    } else {
        std::string joined(via->value());
        joined.append(", ").append(http::via_token(11));
        res.set(bhttp::field::via, joined);
    }
    if (const auto text = text_of(in.label); !text.x_cache.empty()) {
        res.set("X-Cache", text.x_cache);
        res.set("Cache-Status", text.cache_status);
    }
    res.version(client_version);
    res.keep_alive(keep_alive);
    out.keep_alive = keep_alive;
    return out;
}

}  // namespace cacheproxy::session
