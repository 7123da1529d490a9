// Microbenchmarks of the gzip building blocks (encoding/gzip.hpp): what a cache
// fill pays to make the gzip variant, what a non-gzip hit would pay to gunzip a
// gzip-only entry, and what streaming pass-through compression costs.
//
//   micro_bench --benchmark_filter=Gzip --benchmark_min_time=0.2
//
// Counters: MB/s is uncompressed megabytes (1e6 bytes) per CPU second, ratio is
// uncompressed / compressed size, gz_bytes is the compressed size.

#include "encoding/gzip.hpp"

#include <benchmark/benchmark.h>

#include <cstdio>
#include <random>
#include <string>
#include <string_view>

namespace {

using namespace cacheproxy::encoding;

/// `count` positions objects, the shape of a positions API response.
std::string positions_json(int count, std::uint32_t seed) {
    static constexpr const char* kSymbols[] = {"AAPL", "MSFT", "NVDA", "TSLA", "AMZN", "GOOGL", "META", "BRK.B",
                                               "JPM",  "V",    "XOM",  "UNH",  "AVGO", "LLY",   "COST", "NFLX"};
    std::mt19937 rng(seed);
    std::string s = "{\"account_id\":\"acct-7f3a2c\",\"positions\":[";
    char buf[256];
    for (int i = 0; i < count; ++i) {
        const double entry = 20.0 + static_cast<double>(rng() % 90000) / 100.0;
        const double pnl = (static_cast<double>(rng() % 2000000) - 1000000.0) / 100.0;
        const int n = std::snprintf(buf, sizeof buf,
                                    "%s{\"id\":%d,\"symbol\":\"%s\",\"side\":\"%s\",\"size\":%u,"
                                    "\"entry_price\":%.2f,\"unrealized_pnl\":%.2f}",
                                    i ? "," : "", 48213 + i * 7, kSymbols[rng() % 16], rng() % 3 ? "long" : "short",
                                    1 + static_cast<unsigned>(rng() % 2500), entry, pnl);
        s.append(buf, static_cast<std::size_t>(n));
    }
    s += "],\"as_of\":\"2024-06-03T14:30:00Z\"}";
    return s;
}

const std::string& body_20k() {
    static const std::string body = positions_json(200, 1);
    return body;
}

const std::string& body_1m() {
    static const std::string body = [] {
        std::string s = positions_json(11000, 2);
        s.resize(1 << 20, ' ');  // exactly 1 MiB (trailing spaces are valid JSON whitespace)
        return s;
    }();
    return body;
}

void set_counters(benchmark::State& state, std::size_t plain, std::size_t gz) {
    state.counters["MB/s"] = benchmark::Counter(static_cast<double>(plain) / 1e6,
                                                benchmark::Counter::kIsIterationInvariantRate);
    state.counters["ratio"] = static_cast<double>(plain) / static_cast<double>(gz);
    state.counters["gz_bytes"] = static_cast<double>(gz);
    state.counters["plain_bytes"] = static_cast<double>(plain);
}

// One-shot compression of the 20 kB body: what a cache fill pays for the gzip variant.
void BM_GzipCompress20k(benchmark::State& state) {
    const std::string& in = body_20k();
    const int level = static_cast<int>(state.range(0));
    std::size_t gz = 0;
    for (auto _ : state) {
        std::string out;  // fresh, like a new cache entry
        if (!gzip_compress(in, level, out)) state.SkipWithError("gzip_compress failed");
        gz = out.size();
        benchmark::DoNotOptimize(out.data());
    }
    set_counters(state, in.size(), gz);
}
BENCHMARK(BM_GzipCompress20k)->ArgName("level")->Arg(1)->Arg(6)->Arg(9);

// One-shot decompression of the 20 kB body (level 6): what a non-gzip hit pays
// when the cache keeps the gzip variant only.
void BM_GzipDecompress20k(benchmark::State& state) {
    const std::string& in = body_20k();
    std::string gz;
    gzip_compress(in, static_cast<int>(state.range(0)), gz);
    for (auto _ : state) {
        std::string out;
        if (!gzip_decompress(gz, out, 64 << 20)) state.SkipWithError("gzip_decompress failed");
        benchmark::DoNotOptimize(out.data());
    }
    set_counters(state, in.size(), gz.size());
}
BENCHMARK(BM_GzipDecompress20k)->ArgName("level")->Arg(6);

// The identity copy a non-gzip hit would otherwise not even need (hits copy
// nothing); shown only as a yardstick for the decompression cost above.
void BM_Copy20k(benchmark::State& state) {
    const std::string& in = body_20k();
    for (auto _ : state) {
        std::string out(in);
        benchmark::DoNotOptimize(out.data());
    }
    set_counters(state, in.size(), in.size());
}
BENCHMARK(BM_Copy20k);

// Streaming pass-through: 1 MiB in 32 KiB pieces through one GzipStream,
// with or without a sync flush per piece.
void BM_GzipStream1M(benchmark::State& state) {
    const std::string& in = body_1m();
    const int level = static_cast<int>(state.range(0));
    const Flush flush = state.range(1) ? Flush::sync : Flush::none;
    constexpr std::size_t kPiece = 32 * 1024;
    GzipStream z(level);
    std::string wire;  // the per-piece send buffer, reused
    std::size_t gz = 0;
    for (auto _ : state) {
        if (!z.reset()) state.SkipWithError("reset failed");
        gz = 0;
        for (std::size_t at = 0; at < in.size(); at += kPiece) {
            wire.clear();
            if (!z.write(std::string_view(in).substr(at, kPiece), wire, flush)) state.SkipWithError("write failed");
            gz += wire.size();
            benchmark::DoNotOptimize(wire.data());
        }
        wire.clear();
        if (!z.finish(wire)) state.SkipWithError("finish failed");
        gz += wire.size();
    }
    set_counters(state, in.size(), gz);
}
BENCHMARK(BM_GzipStream1M)->ArgNames({"level", "sync"})->Args({1, 0})->Args({6, 0})->Args({6, 1});

// Streaming decompression of the same 1 MiB body (an upstream's gzip decoded
// for a client that does not accept gzip), 32 KiB compressed pieces.
void BM_GunzipStream1M(benchmark::State& state) {
    const std::string& in = body_1m();
    std::string gz;
    gzip_compress(in, 6, gz);
    constexpr std::size_t kPiece = 32 * 1024;
    std::string wire;
    for (auto _ : state) {
        GunzipStream g;
        for (std::size_t at = 0; at < gz.size(); at += kPiece) {
            wire.clear();
            if (!g.write(std::string_view(gz).substr(at, kPiece), wire, 16 << 20)) state.SkipWithError("write failed");
            benchmark::DoNotOptimize(wire.data());
        }
        if (!g.finish()) state.SkipWithError("finish failed");
    }
    set_counters(state, in.size(), gz.size());
}
BENCHMARK(BM_GunzipStream1M);

}  // namespace
