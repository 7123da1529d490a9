/// gzip both ways (proxy/encoding/gzip.hpp).
///
/// The input is read twice:
///  1. as a gzip body: gzip_decompress (one-shot, bounded) and GunzipStream fed
///     in pieces (as session/pass_through.cpp feeds an upstream body) must agree: same
///     verdict, same bytes; a bounded decode never exceeds its bound, a failed
///     one leaves its output empty (one-shot) or untouched (stream), and a
///     bound one byte short of the body refuses it;
///  2. as a plain body: gzip_compress at a level from the first byte, and
///     GzipStream in pieces with sync flushes (pass-through compression), must
///     both decode back to the input; after every sync flush what was emitted
///     so far decodes to exactly what was written so far; two members
///     concatenated decode to the two bodies concatenated.
/// The streams are reused across inputs through reset(), as the session reuses its own.

#include "encoding/gzip.hpp"
#include "fuzz_common.hpp"

#include <cstdint>
#include <string>
#include <string_view>

using namespace cacheproxy::encoding;

namespace {

/// The most either decoder may produce here (a zip bomb is bounded, not run to the end).
constexpr std::size_t kCap = 1024 * 1024;

void check_decode(std::string_view in, fuzz::Splitter& split) {
    std::string one = "previous contents";
    const bool one_ok = gzip_decompress(in, one, kCap);
    if (!one_ok) FUZZ_CHECK(one.empty());
    if (one_ok) FUZZ_CHECK(one.size() <= kCap);

    static GunzipStream stream;  // reused, as ClientSession reuses gunzip_
    FUZZ_CHECK(stream.reset());
    FUZZ_CHECK(stream.ok());
    FUZZ_CHECK(!stream.finish());  // no input yet: not a gzip body
    std::string out;
    bool stream_ok = true;
    std::size_t pos = 0;
    while (pos < in.size()) {
        const std::size_t n = std::min(split.piece(in.size()), in.size() - pos);
        const std::size_t before = out.size();
        const bool ok = stream.write(in.substr(pos, n), out, kCap);
        pos += n;
        if (!ok) {
            FUZZ_CHECK(out.size() == before);  // a failed write leaves the output as it was
            FUZZ_CHECK(!stream.ok());
            stream_ok = false;
            break;
        }
        FUZZ_CHECK(out.size() - before <= kCap);  // the per-piece bound
        if (out.size() > kCap) break;  // past what the one-shot decoder may produce: stop comparing
    }
    if (stream_ok && pos == in.size()) {
        FUZZ_CHECK(stream.total_out() == out.size());
        stream_ok = stream.finish();
    } else {
        stream_ok = false;
    }

    if (one_ok) {
        // Every piece is at most the whole body, which fits the bound.
        FUZZ_CHECK(stream_ok, in);
        FUZZ_CHECK(out == one, in);
        FUZZ_CHECK(stream.total_in() == in.size());
        if (!one.empty()) {
            std::string short_out = "x";
            FUZZ_CHECK(!gzip_decompress(in, short_out, one.size() - 1));  // the bound is a bound
            FUZZ_CHECK(short_out.empty());
            std::string exact;
            FUZZ_CHECK(gzip_decompress(in, exact, one.size()));
            FUZZ_CHECK(exact == one);
        }
    } else if (stream_ok) {
        // The stream calls valid what the one-shot decoder refused: only a body past the bound may.
        FUZZ_CHECK(out.size() > kCap, in);
    }
}

void check_round_trip(std::string_view plain, int level, fuzz::Splitter& split) {
    std::string gz;
    FUZZ_CHECK(gzip_compress(plain, level, gz));
    std::string back;
    FUZZ_CHECK(gzip_decompress(gz, back, plain.size()), plain);
    FUZZ_CHECK(back == plain);
    if (!plain.empty()) {
        std::string short_out;
        FUZZ_CHECK(!gzip_decompress(gz, short_out, plain.size() - 1));
    }

    // Streaming, as pass-through compression does: each piece sync-flushed
    // (sometimes not), then finish(); a decoder fed what was emitted so far
    // must have produced exactly what was written so far after each sync flush.
    static GzipStream zs(level);
    static int zs_level = level;
    if (zs_level != level) {
        zs = GzipStream(level);
        zs_level = level;
    } else {
        FUZZ_CHECK(zs.reset());
    }
    FUZZ_CHECK(zs.ok());
    GunzipStream reader;
    std::string emitted, decoded;
    std::size_t fed = 0, pos = 0;
    while (pos < plain.size()) {
        const std::size_t n = std::min(split.piece(plain.size()), plain.size() - pos);
        const bool sync = (split.next() & 7) != 0;
        FUZZ_CHECK(zs.write(plain.substr(pos, n), emitted, sync ? Flush::sync : Flush::none));
        pos += n;
        FUZZ_CHECK(reader.write(std::string_view(emitted).substr(fed), decoded, kCap));
        fed = emitted.size();
        if (sync)
            FUZZ_CHECK(decoded == plain.substr(0, pos), plain);
        else
            FUZZ_CHECK(plain.substr(0, decoded.size()) == decoded);
    }
    FUZZ_CHECK(zs.finish(emitted));
    FUZZ_CHECK(!zs.ok());
    FUZZ_CHECK(zs.total_in() == plain.size());
    FUZZ_CHECK(zs.total_out() == emitted.size());
    FUZZ_CHECK(reader.write(std::string_view(emitted).substr(fed), decoded, kCap));
    FUZZ_CHECK(reader.finish());
    FUZZ_CHECK(decoded == plain);
    std::string whole;
    FUZZ_CHECK(gzip_decompress(emitted, whole, plain.size()));
    FUZZ_CHECK(whole == plain);

    // Two members back to back are one body (RFC 1952 2.2).
    const std::size_t cut = plain.empty() ? 0 : split.next() % plain.size();
    std::string a, b;
    FUZZ_CHECK(gzip_compress(plain.substr(0, cut), level, a));
    FUZZ_CHECK(gzip_compress(plain.substr(cut), level, b));
    std::string joined;
    FUZZ_CHECK(gzip_decompress(a + b, joined, plain.size()));
    FUZZ_CHECK(joined == plain);
    // ... and a member followed by garbage is not.
    std::string tail_garbage;
    FUZZ_CHECK(!gzip_decompress(a + "x", tail_garbage, kCap));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    fuzz::Splitter split(fuzz::hash_bytes(in));
    check_decode(in, split);
    const int level = size == 0 ? kDefaultLevel : (data[0] % 11) - 1;  // -1 (zlib's default) .. 9
    FUZZ_CHECK(valid_level(level));
    FUZZ_CHECK(!valid_level(10) && !valid_level(-2));
    check_round_trip(in, level, split);
    return 0;
}
