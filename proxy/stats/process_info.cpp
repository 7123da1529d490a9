#include "stats/process_info.hpp"

#include <fmt/format.h>

#include <fstream>
#include <iterator>

#include <unistd.h>

namespace cacheproxy::stats {

std::uint64_t resident_bytes() {
    std::ifstream statm("/proc/self/statm");
    std::uint64_t size_pages = 0, resident_pages = 0;
    if (!(statm >> size_pages >> resident_pages)) return 0;
    const long page = ::sysconf(_SC_PAGESIZE);
    return resident_pages * static_cast<std::uint64_t>(page > 0 ? page : 4096);
}

std::uint64_t fnv1a64(std::string_view data, std::uint64_t seed) {
    std::uint64_t h = seed;
    for (unsigned char c : data) {
        h ^= c;
        h *= 0x100000001b3ULL;
    }
    return h;
}

std::string config_version(const config::Config& cfg) {
    std::uint64_t h = fnv1a64(config::describe(cfg));
    if (!cfg.rules_path.empty()) {
        std::ifstream in(cfg.rules_path, std::ios::binary);
        const std::string rules((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        h = fnv1a64("\nrules file:\n", h);
        h = fnv1a64(rules, h);
    }
    return fmt::format("{:016x}", h);
}

}  // namespace cacheproxy::stats
