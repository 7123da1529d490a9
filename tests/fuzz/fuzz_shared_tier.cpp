/// What the shared tier reads from Redis (proxy/redis/resp.*, proxy/tier/
/// entry_codec.*, proxy/tier/bus_message.*): bytes a Redis node, or anyone
/// who can publish on the bus channel, sends us.
///
/// The whole input is each of: a RESP2 reply stream, a bus message, an L2 value.
/// Asserted:
///  - the RESP parser gives the same replies (and the same protocol error or
///    none) whether the bytes come at once or in pieces of any size;
///  - a bus message that decodes re-encodes to a message that decodes to the
///    same fields, and garbage decodes to nothing (never a crash);
///  - an L2 value that decodes for key K under generation G re-encodes (on a
///    clock moved by the entry's age) to a value that decodes to the same
///    parts, and is refused for any other key, generation or epoch.

#include "cache/cache_key.hpp"
#include "fuzz_common.hpp"
#include "redis/resp.hpp"
#include "tier/bus_message.hpp"
#include "tier/entry_codec.hpp"

#include <chrono>
#include <string>
#include <vector>

namespace {

using cacheproxy::redis::Parser;
using cacheproxy::redis::Reply;

void flatten(const Reply& r, std::string& out) {
    out += static_cast<char>('0' + static_cast<int>(r.type));
    out += std::to_string(r.integer) + ":" + std::to_string(r.str.size()) + ":" + r.str;
    out += "[" + std::to_string(r.elements.size());
    for (const auto& e : r.elements) flatten(e, out);
    out += "]";
}

/// Every reply the bytes make, flattened, then "E" on a protocol error.
std::string parse_all(std::string_view bytes, fuzz::Splitter* split) {
    Parser p;
    std::string out;
    std::size_t at = 0;
    while (at < bytes.size()) {
        const std::size_t n = split ? std::min(split->piece(bytes.size()), bytes.size() - at) : bytes.size();
        p.feed(bytes.substr(at, n));
        at += n;
        for (;;) {
            boost::system::error_code ec;
            auto r = p.next(ec);
            if (ec) return out + "E";
            if (!r) break;
            flatten(*r, out);
            out += ";";
        }
    }
    return out;
}

void check_resp(std::string_view data) {
    const auto whole = parse_all(data, nullptr);
    fuzz::Splitter split(fuzz::hash_bytes(data));
    const auto pieces = parse_all(data, &split);
    FUZZ_CHECK(whole == pieces, data);  // RESP: pieces parse differently from the whole
}

void check_bus(std::string_view data) {
    const auto m = cacheproxy::tier::decode(data);
    if (!m) return;
    const auto again = cacheproxy::tier::decode(cacheproxy::tier::encode(*m));
    FUZZ_CHECK(again.has_value(), data);  // bus: a decoded message does not re-decode
    FUZZ_CHECK(again->origin == m->origin && again->published_us == m->published_us &&
                   again->drop_credential == m->drop_credential &&
                   again->generations_unacknowledged == m->generations_unacknowledged &&
                   again->identity == m->identity && again->principal == m->principal && again->routes == m->routes, data);  // bus: the round trip changed a field
}

void check_entry(std::string_view data) {
    using namespace cacheproxy;
    cache::CacheKey key;
    key.bytes = "positions|fuzz";
    key.has_identity = true;
    const auto gen = data.substr(0, data.find('\n'));
    const auto wall = std::chrono::system_clock::time_point(std::chrono::seconds(1'800'000'000));
    const cache::TimePoint now = cache::TimePoint{} + std::chrono::hours(1000);
    cache::EntryPtr e;
    if (tier::decode_entry(data, key, gen, 1, 7, wall, now, e) != tier::Decoded::ok) return;
    FUZZ_CHECK(e && e->generation() == 7, data);  // entry: decoded without this instance's generation
    const auto v = tier::encode_entry(*e, key, gen, 1, wall, now);
    cache::EntryPtr back;
    FUZZ_CHECK(tier::decode_entry(v, key, gen, 1, 7, wall, now, back) == tier::Decoded::ok, data);  // entry: no round trip
    FUZZ_CHECK(back->head() == e->head() && back->body() == e->body() && back->gzip_body() == e->gzip_body() &&
                   back->etag() == e->etag() && back->weak_etag() == e->weak_etag() && back->status() == e->status(), data);  // entry: the round trip changed a part
    cache::CacheKey other = key;
    other.bytes += "x";
    cache::EntryPtr none;
    FUZZ_CHECK(tier::decode_entry(v, other, gen, 1, 7, wall, now, none) == tier::Decoded::key_mismatch, data);  // entry: served for another key
    FUZZ_CHECK(tier::decode_entry(v, key, std::string(gen) + "0", 1, 7, wall, now, none) != tier::Decoded::ok, data);  // entry: served under another generation
    FUZZ_CHECK(tier::decode_entry(v, key, gen, 2, 7, wall, now, none) == tier::Decoded::epoch_mismatch, data);  // entry: served under another epoch
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view bytes(reinterpret_cast<const char*>(data), size);
    check_resp(bytes);
    check_bus(bytes);
    check_entry(bytes);
    return 0;
}
