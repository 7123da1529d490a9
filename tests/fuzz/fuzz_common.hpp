#pragma once
/// What the fuzz targets share: an invariant check that aborts with a message
/// (libFuzzer then saves the input as a crash), and a small deterministic
/// generator of split points derived from the input itself, so a reproducer
/// replays exactly.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

namespace fuzz {

[[noreturn]] inline void fail(const char* file, int line, const char* what, std::string_view detail = {}) {
    std::fprintf(stderr, "\n==fuzz== invariant violated at %s:%d: %s\n", file, line, what);
    if (!detail.empty()) {
        std::fprintf(stderr, "==fuzz== detail (%zu bytes): ", detail.size());
        for (unsigned char c : detail) {
            if (c >= 0x20 && c < 0x7f && c != '\\')
                std::fputc(c, stderr);
            else
                std::fprintf(stderr, "\\x%02x", c);
        }
        std::fputc('\n', stderr);
    }
    std::fflush(stderr);
    std::abort();
}

/// True when `id` is listed in CACHEPROXY_FUZZ_KNOWN_BUGS (comma-separated):
/// the one invariant tagged with it is then not checked, so a run can go on
/// past a bug that is known and not fixed yet. Empty (every check on) unless
/// someone sets it on purpose; README.md lists the ids.
inline bool known_bug(std::string_view id) {
    static const std::string list = [] {
        const char* v = std::getenv("CACHEPROXY_FUZZ_KNOWN_BUGS");
        return std::string(",") + (v ? v : "") + ",";
    }();
    return list.find("," + std::string(id) + ",") != std::string::npos;
}

/// FNV-1a of the input: the seed of the split points.
inline std::uint64_t hash_bytes(std::string_view s) {
    std::uint64_t h = 1469598103934665603ULL;
    for (unsigned char c : s) {
        h ^= c;
        h *= 1099511628211ULL;
    }
    return h;
}

/// xorshift64*: piece sizes for streaming / segmented reads.
class Splitter {
public:
    explicit Splitter(std::uint64_t seed) : s_(seed | 1) {}
    std::uint64_t next() {
        s_ ^= s_ >> 12;
        s_ ^= s_ << 25;
        s_ ^= s_ >> 27;
        return s_ * 2685821657736338717ULL;
    }
    /// A piece size in [1, max]: mostly small, sometimes large (both matter).
    std::size_t piece(std::size_t max) {
        const auto r = next();
        const std::size_t cap = (r & 3) == 0 ? max : std::min<std::size_t>(max, 1 + (r >> 8) % 17);
        return 1 + static_cast<std::size_t>((r >> 16) % cap);
    }

private:
    std::uint64_t s_;
};

}  // namespace fuzz

#define FUZZ_CHECK(cond, ...)                                                  \
    do {                                                                       \
        if (!(cond)) ::fuzz::fail(__FILE__, __LINE__, #cond, ##__VA_ARGS__);   \
    } while (0)
