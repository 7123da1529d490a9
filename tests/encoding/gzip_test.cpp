#include "encoding/gzip.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <utility>

using namespace cacheproxy::encoding;

namespace {

constexpr std::size_t kNoCap = static_cast<std::size_t>(-1);

/// A JSON body like the API's positions responses, about `target` bytes.
std::string positions_json(std::size_t target) {
    static constexpr const char* kSymbols[] = {"AAPL", "MSFT", "NVDA", "TSLA", "AMZN", "GOOG", "META", "BRK.B"};
    std::mt19937 rng(42);
    std::string s = "{\"positions\":[";
    for (int i = 0; s.size() < target; ++i) {
        if (i) s += ',';
        s += "{\"id\":" + std::to_string(100000 + i) + ",\"symbol\":\"" + kSymbols[rng() % 8] +
             "\",\"side\":\"" + (rng() % 2 ? "long" : "short") + "\",\"size\":" + std::to_string(rng() % 5000) +
             ",\"entry_price\":" + std::to_string(rng() % 100000 / 100.0) +
             ",\"unrealized_pnl\":" + std::to_string(static_cast<int>(rng() % 200000) - 100000) + "}";
    }
    return s + "]}";
}

/// Bytes that compress somewhat: random runs mixed with repeated words.
std::string random_ish(std::size_t n, std::uint32_t seed) {
    std::mt19937 rng(seed);
    std::string s;
    s.reserve(n);
    while (s.size() < n) {
        const std::size_t run = 1 + rng() % 200;
        if (rng() % 2) {
            for (std::size_t i = 0; i < run && s.size() < n; ++i) s += static_cast<char>(rng() & 0xff);
        } else {
            static constexpr std::string_view kWords[] = {"alpha ", "beta ", "gamma ",
                                                          std::string_view("\x00\x01\x02 ", 4), "delta "};
            const std::string_view w = kWords[rng() % 5];
            for (std::size_t i = 0; i < run && s.size() < n; ++i) s += w[i % w.size()];
        }
    }
    return s;
}

/// Splits `data` into random-sized pieces (1 byte up to `max_piece`).
std::vector<std::string_view> random_pieces(std::string_view data, std::size_t max_piece, std::uint32_t seed) {
    std::mt19937 rng(seed);
    std::vector<std::string_view> pieces;
    while (!data.empty()) {
        const std::size_t n = std::min<std::size_t>(data.size(), 1 + rng() % max_piece);
        pieces.push_back(data.substr(0, n));
        data.remove_prefix(n);
    }
    return pieces;
}

std::string compress(std::string_view in, int level = kDefaultLevel) {
    std::string out;
    EXPECT_TRUE(gzip_compress(in, level, out));
    return out;
}

std::string decompress(std::string_view in) {
    std::string out;
    EXPECT_TRUE(gzip_decompress(in, out, kNoCap));
    return out;
}

std::string stream_compress(std::string_view in, std::size_t max_piece, std::uint32_t seed, Flush flush) {
    GzipStream z(kDefaultLevel);
    EXPECT_TRUE(z.ok());
    std::string out;
    for (std::string_view piece : random_pieces(in, max_piece, seed)) EXPECT_TRUE(z.write(piece, out, flush));
    EXPECT_TRUE(z.finish(out));
    EXPECT_EQ(z.total_in(), in.size());
    EXPECT_EQ(z.total_out(), out.size());
    return out;
}

std::string stream_decompress(std::string_view in, std::size_t max_piece, std::uint32_t seed) {
    GunzipStream g;
    EXPECT_TRUE(g.ok());
    std::string out;
    for (std::string_view piece : random_pieces(in, max_piece, seed)) EXPECT_TRUE(g.write(piece, out, kNoCap));
    EXPECT_TRUE(g.finish());
    EXPECT_EQ(g.total_in(), in.size());
    EXPECT_EQ(g.total_out(), out.size());
    return out;
}

void round_trips(const std::string& body) {
    const std::string gz = compress(body);
    ASSERT_GE(gz.size(), 18u);  // 10-byte header, 8-byte trailer
    EXPECT_EQ(static_cast<unsigned char>(gz[0]), 0x1f);
    EXPECT_EQ(static_cast<unsigned char>(gz[1]), 0x8b);
    EXPECT_EQ(gz[2], 8);  // deflate
    EXPECT_TRUE(decompress(gz) == body);
    EXPECT_TRUE(stream_decompress(gz, 7000, 1) == body);

    // Streamed in random pieces, with and without a flush per piece: the
    // stream's bytes need not equal the one-shot's, but decode to the same body.
    EXPECT_TRUE(decompress(stream_compress(body, 50'000, 2, Flush::none)) == body);
    const std::string synced = stream_compress(body, 50'000, 3, Flush::sync);
    EXPECT_TRUE(decompress(synced) == body);
    EXPECT_TRUE(stream_decompress(synced, 3000, 4) == body);
}

}  // namespace

TEST(Gzip, RoundTripEmpty) { round_trips(""); }
TEST(Gzip, RoundTripOneByte) { round_trips("x"); }
TEST(Gzip, RoundTripJson20k) {
    const std::string json = positions_json(20'000);
    round_trips(json);
    EXPECT_LT(compress(json).size(), json.size() / 3);
}
TEST(Gzip, RoundTripRandomish5MB) { round_trips(random_ish(5'000'000, 7)); }

TEST(Gzip, EveryLevelRoundTrips) {
    const std::string json = positions_json(20'000);
    for (int level : {-1, 0, 1, 2, 5, 6, 9}) {
        std::string gz;
        ASSERT_TRUE(gzip_compress(json, level, gz)) << level;
        EXPECT_TRUE(decompress(gz) == json) << level;
    }
    EXPECT_GT(compress(json, 0).size(), json.size());  // stored blocks
    EXPECT_LE(compress(json, 9).size(), compress(json, 1).size());
}

TEST(Gzip, InvalidLevelFails) {
    std::string out = "junk";
    EXPECT_FALSE(gzip_compress("hello", 10, out));
    EXPECT_TRUE(out.empty());
    EXPECT_FALSE(gzip_compress("hello", -2, out));
    EXPECT_FALSE(GzipStream(10).ok());
    EXPECT_FALSE(GzipStream(10).write("x", out));
}

TEST(Gzip, OutputIsReplacedAndReused) {
    std::string out(100'000, 'z');
    ASSERT_TRUE(gzip_compress("hello", 6, out));
    EXPECT_EQ(decompress(out), "hello");
    std::string plain = "previous";
    ASSERT_TRUE(gzip_decompress(out, plain, 100));
    EXPECT_EQ(plain, "hello");
}

// `printf 'hello\n' | gzip -9n`: a member from another implementation.
TEST(Gzip, DecodesGnuGzip) {
    static const unsigned char kHello[] = {0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x03,
                                           0xcb, 0x48, 0xcd, 0xc9, 0xc9, 0xe7, 0x02, 0x00, 0x20, 0x30,
                                           0x3a, 0x36, 0x06, 0x00, 0x00, 0x00};
    std::string out;
    ASSERT_TRUE(gzip_decompress(std::string_view(reinterpret_cast<const char*>(kHello), sizeof kHello), out, 100));
    EXPECT_EQ(out, "hello\n");
}

TEST(Gzip, ConcatenatedMembers) {
    const std::string two = compress("hello, ") + compress("world");
    EXPECT_EQ(decompress(two), "hello, world");
    EXPECT_EQ(stream_decompress(two, 5, 9), "hello, world");
}

TEST(Gzip, CorruptInputFails) {
    const std::string json = positions_json(20'000);
    const std::string gz = compress(json);
    std::string out = "junk";

    EXPECT_FALSE(gzip_decompress("", out, kNoCap));
    EXPECT_TRUE(out.empty());
    EXPECT_FALSE(gzip_decompress("not gzip at all, just text", out, kNoCap));
    EXPECT_FALSE(gzip_decompress(json, out, kNoCap));

    // A byte flipped in the data, the CRC or the length.
    for (std::size_t at : {std::size_t{12}, gz.size() / 2, gz.size() - 6, gz.size() - 2}) {
        std::string bad = gz;
        bad[at] = static_cast<char>(bad[at] ^ 0x55);
        EXPECT_FALSE(gzip_decompress(bad, out, kNoCap)) << at;
        EXPECT_TRUE(out.empty());
    }
    // Truncated anywhere, including inside the trailer.
    for (std::size_t len : {std::size_t{1}, std::size_t{10}, gz.size() / 2, gz.size() - 1})
        EXPECT_FALSE(gzip_decompress(std::string_view(gz).substr(0, len), out, kNoCap)) << len;
    // Bytes after the member that are not another member.
    EXPECT_FALSE(gzip_decompress(gz + "trailing junk", out, kNoCap));
    EXPECT_FALSE(gzip_decompress(gz + std::string(8, '\0'), out, kNoCap));
    // A zlib (not gzip) stream.
    EXPECT_FALSE(gzip_decompress(std::string("\x78\x9c\x03\x00\x00\x00\x00\x01", 8), out, kNoCap));
}

TEST(Gzip, StreamCorruptInputFails) {
    const std::string gz = compress(positions_json(20'000));
    std::string bad = gz;
    bad[gz.size() / 2] = static_cast<char>(bad[gz.size() / 2] ^ 0x55);
    GunzipStream g;
    std::string out;
    bool ok = true;
    for (std::string_view piece : random_pieces(bad, 512, 5)) {
        const std::size_t before = out.size();
        ok = g.write(piece, out, kNoCap);
        if (!ok) {
            EXPECT_EQ(out.size(), before);  // a failed write appends nothing
            break;
        }
    }
    EXPECT_FALSE(ok && g.finish());
    EXPECT_FALSE(g.ok());
    EXPECT_FALSE(g.write("more", out, kNoCap));

    GunzipStream truncated;
    ASSERT_TRUE(truncated.write(std::string_view(gz).substr(0, gz.size() - 3), out, kNoCap));
    EXPECT_FALSE(truncated.finish());

    GunzipStream nothing;
    EXPECT_FALSE(nothing.finish());

    GunzipStream trailing;
    ASSERT_TRUE(trailing.write(gz, out, kNoCap));
    EXPECT_TRUE(trailing.finish());
    EXPECT_FALSE(trailing.write("junk", out, kNoCap));
}

TEST(Gzip, MaxOutGuard) {
    const std::string zeros(1 << 20, '\0');
    const std::string bomb = compress(zeros, 9);
    EXPECT_LT(bomb.size(), 2000u);  // ~1000:1
    std::string out;
    EXPECT_FALSE(gzip_decompress(bomb, out, zeros.size() - 1));
    EXPECT_TRUE(out.empty());
    EXPECT_FALSE(gzip_decompress(bomb, out, 0));
    ASSERT_TRUE(gzip_decompress(bomb, out, zeros.size()));  // exactly at the cap is fine
    EXPECT_TRUE(out == zeros);

    // Streaming: the cap is per call.
    GunzipStream g;
    std::string sout;
    EXPECT_FALSE(g.write(bomb, sout, 64 * 1024));
    EXPECT_TRUE(sout.empty());
    EXPECT_FALSE(g.ok());

    GunzipStream pieces;  // small pieces stay under a per-call cap of 64 KiB each
    for (std::string_view piece : random_pieces(bomb, 16, 8)) ASSERT_TRUE(pieces.write(piece, sout, 64 * 1024));
    EXPECT_TRUE(pieces.finish());
    EXPECT_TRUE(sout == zeros);
}

// Flush::sync makes everything written so far decodable at once: a streamed
// response reaches the client piece by piece, not when zlib's buffers fill.
TEST(GzipStream, SyncFlushMakesEachPieceDecodable) {
    const std::string body = positions_json(100'000);
    GzipStream z(kDefaultLevel);
    GunzipStream g;
    std::string wire;
    std::string decoded;
    std::size_t written = 0;
    for (std::string_view piece : random_pieces(body, 4096, 11)) {
        wire.clear();
        ASSERT_TRUE(z.write(piece, wire, Flush::sync));
        EXPECT_FALSE(wire.empty());
        ASSERT_TRUE(g.write(wire, decoded, kNoCap));
        written += piece.size();
        ASSERT_EQ(decoded.size(), written);
    }
    wire.clear();
    ASSERT_TRUE(z.flush(wire));  // a flush with nothing new is harmless
    ASSERT_TRUE(z.flush(wire));
    ASSERT_TRUE(z.finish(wire));
    ASSERT_TRUE(g.write(wire, decoded, kNoCap));
    EXPECT_TRUE(g.finish());
    EXPECT_TRUE(decoded == body);
}

TEST(GzipStream, WithoutFlushZlibBuffers) {
    GzipStream z(kDefaultLevel);
    std::string out;
    ASSERT_TRUE(z.write("a small piece", out));
    EXPECT_TRUE(out.empty() || out.size() == 10);  // at most the gzip header so far
    ASSERT_TRUE(z.write({}, out));                  // an empty write is a no-op
    ASSERT_TRUE(z.finish(out));
    EXPECT_EQ(decompress(out), "a small piece");
}

TEST(GzipStream, FinishEndsTheStreamUntilReset) {
    GzipStream z(1);
    std::string out;
    ASSERT_TRUE(z.write("first body", out));
    ASSERT_TRUE(z.finish(out));
    EXPECT_FALSE(z.ok());
    const std::size_t size = out.size();
    EXPECT_FALSE(z.write("more", out));
    EXPECT_FALSE(z.finish(out));
    EXPECT_EQ(out.size(), size);
    EXPECT_EQ(decompress(out), "first body");

    ASSERT_TRUE(z.reset());
    ASSERT_TRUE(z.ok());
    EXPECT_EQ(z.total_in(), 0u);
    std::string second;
    ASSERT_TRUE(z.write("second body", second));
    ASSERT_TRUE(z.finish(second));
    EXPECT_EQ(decompress(second), "second body");
}

TEST(GzipStream, Movable) {
    GzipStream a(kDefaultLevel);
    std::string out;
    ASSERT_TRUE(a.write("moved ", out));
    GzipStream b(std::move(a));
    EXPECT_FALSE(a.ok());  // NOLINT(bugprone-use-after-move): moved-from is !ok by contract
    EXPECT_FALSE(a.write("x", out));
    EXPECT_FALSE(a.reset());
    ASSERT_TRUE(b.write("stream", out));
    GzipStream c(9);
    c = std::move(b);  // c's own z_stream is released (deflateEnd) here
    ASSERT_TRUE(c.finish(out));
    EXPECT_EQ(decompress(out), "moved stream");

    GunzipStream g;
    std::string plain;
    ASSERT_TRUE(g.write(std::string_view(out).substr(0, 5), plain, kNoCap));
    GunzipStream h = std::move(g);
    EXPECT_FALSE(g.ok());  // NOLINT(bugprone-use-after-move)
    ASSERT_TRUE(h.write(std::string_view(out).substr(5), plain, kNoCap));
    EXPECT_TRUE(h.finish());
    EXPECT_EQ(plain, "moved stream");
    ASSERT_TRUE(h.reset());
    EXPECT_FALSE(h.finish());
}

TEST(GzipStream, ManyStreamsDoNotLeak) {
    // Run under ASan/valgrind to check; here it at least exercises create/destroy/move.
    std::vector<GzipStream> zs;
    std::vector<GunzipStream> gs;
    for (int i = 0; i < 64; ++i) {
        zs.emplace_back(i % 10);
        gs.emplace_back();
    }
    std::string out;
    for (auto& z : zs) ASSERT_TRUE(z.write("x", out, Flush::sync));
}
