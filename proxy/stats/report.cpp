#include "stats/report.hpp"

#include <algorithm>

namespace cacheproxy::stats {

SlotTotals Report::totals() const {
    SlotTotals t;
    for (const auto& s : slots) t += s;
    return t;
}

double hit_ratio(const SlotTotals& slot) {
    const auto n = slot.total();
    if (n == 0) return 0;
    const auto served = slot.by_cache(CacheLabel::hit) + slot.by_cache(CacheLabel::stale);
    return std::min(1.0, static_cast<double>(served) / static_cast<double>(n));
}

}  // namespace cacheproxy::stats
