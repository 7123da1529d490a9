#include "cache/fill.hpp"

#include "cache/beast_header_view.hpp"
#include "cache/stored_head.hpp"
#include "encoding/accept_encoding.hpp"
#include "encoding/compressible.hpp"
#include "encoding/gzip.hpp"
#include "encoding/weak_etag.hpp"

#include <boost/beast/core/string.hpp>

#include <cstdint>

namespace cacheproxy::cache {

namespace bhttp = boost::beast::http;

EntryPtr admit(const rules::RouteRule& rule, const rules::IdentitySource& identity, const GzipPolicy& compression,
               Response& res, bool length_known, bool request_had_credentials, TimePoint now,
               std::uint64_t generation, NotStorable& why) {
    // An upstream that gzips whatever the request said: store the identity
    // bytes (bounded like any entry), so every client can be served.
    if (encoding::applied_coding(res[bhttp::field::content_encoding]) == encoding::Applied::gzip) {
        std::string plain;
        if (!encoding::gzip_decompress(res.body(), plain, rule.max_object_bytes)) {
            // Over the bound is a large answer; anything else is a broken one,
            // which no client of the fill may get as if it were whole.
            why = decodes_past(res.body(), rule.max_object_bytes) ? NotStorable::too_large
                                                                   : NotStorable::bad_encoding;
            return nullptr;
        }
        res.body() = std::move(plain);
        res.erase(bhttp::field::content_encoding);
    }
    ResponseFacts facts;
    facts.status = res.result_int();
    facts.request_had_credentials = request_had_credentials;
    facts.length_known = length_known;
    facts.complete = true;
    facts.body_bytes = res.body().size();
    if (identity.kind == rules::IdentitySource::Kind::header && !rule.shared) facts.identity_header = identity.name;
    const BeastHeaderView headers(res.base());
    why = check_storable(rule, facts, headers);
    // An answer the waiters may share is made into an entry as well, never stored.
    if (why != NotStorable::none) {
        if (const auto unsafe = check_shareable(rule, facts, headers); unsafe != NotStorable::none) {
            why = unsafe;
            return nullptr;
        }
    }

    auto fields = headers.list();
    // ETag and Vary: Accept-Encoding are written per variant at hit time.
    std::erase_if(fields, [](const HeaderField& f) {
        return boost::beast::iequals(f.name, "etag") ||
               (boost::beast::iequals(f.name, "vary") && boost::beast::iequals(f.value, "accept-encoding"));
    });
    const std::string head = build_stored_head(facts.status, res.reason(), fields);
    const std::string_view etag = res[bhttp::field::etag];
    const std::string weak_etag = etag.empty() ? std::string() : encoding::weaken_etag(etag);
    const std::string_view body = res.body();
    std::string gz;
    if (compression.enabled &&
        encoding::worth_compressing(res[bhttp::field::content_type], body.size(), compression.min_size)) {
        // A failure, or no gain, leaves the entry identity-only: never a failed request.
        if (!encoding::gzip_compress(body, compression.level, gz) || gz.size() >= body.size()) gz.clear();
    }
    // One block for the whole entry: the head, the bodies and the ETags are copied into it once, here.
    auto entry = CachedResponse::make({.status = facts.status,
                                              .head = head,
                                              .body = body,
                                              .gzip_body = gz,
                                              .etag = etag,
                                              .weak_etag = weak_etag,
                                              .stored_at = now,
                                              .ttl = rule.ttl,
                                              .stale_while_revalidate = rule.stale_while_revalidate,
                                              .stale_if_error = rule.stale_if_error,
                                              .generation = generation});
    if (!entry) why = NotStorable::too_large;  // a part over 4 GiB, or out of memory
    return entry;
}

bool decodes_past(std::string_view gzip, std::size_t bound) {
    // Decoded piece by piece into a scratch buffer, never held whole; the work
    // is bounded too (64 times the bound at most, then it counts as past it).
    encoding::GunzipStream stream;
    std::string scratch;
    constexpr std::size_t piece = 16 * 1024;
    const std::size_t work_limit = bound > SIZE_MAX / 64 ? SIZE_MAX : bound * 64;
    for (std::size_t at = 0; at < gzip.size(); at += piece) {
        scratch.clear();
        if (!stream.write(gzip.substr(at, piece), scratch, work_limit)) return stream.total_out() > bound;
        if (stream.total_out() > bound) return true;
    }
    return false;
}

FillResult fill_result(const EntryPtr& entry, NotStorable why) {
    using Outcome = FillResult::Outcome;
    if (why == NotStorable::bad_encoding) return {nullptr, Outcome::failed, 502, "bad-encoding"};
    if (!entry) return {nullptr, Outcome::not_shareable, 502, to_string(why)};
    if (why == NotStorable::none) return {entry, Outcome::stored, 0, ""};
    return {entry, Outcome::answer, 0, to_string(why)};
}

std::optional<TimePoint> hold_until(const FillResult& result, const rules::RuleSet& rules,
                                           TimePoint now) {
    if (rules.coalesce_error_hold <= std::chrono::milliseconds::zero()) return std::nullopt;
    const bool failure = result.outcome == FillResult::Outcome::failed ||
                         (result.outcome == FillResult::Outcome::answer && result.entry->status() >= 500);
    if (!failure) return std::nullopt;
    return now + rules.coalesce_error_hold;
}

CacheKey flight_key(const CacheKey& key, std::uint64_t generation) {
    CacheKey k = key;
    k.bytes.push_back('\0');
    k.bytes.append(reinterpret_cast<const char*>(&generation), sizeof generation);
    k.hash = key_hash(k.bytes);
    return k;
}

}  // namespace cacheproxy::cache
