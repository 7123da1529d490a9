#include "stats/worker_stats.hpp"

#include <algorithm>

namespace cacheproxy::stats {

std::string_view status_class_name(std::size_t i) {
    static constexpr std::array<std::string_view, kStatusClasses> names{"other", "1xx", "2xx", "3xx", "4xx", "5xx"};
    return i < names.size() ? names[i] : "other";
}

std::string_view cache_label_name(std::size_t i) {
    static constexpr std::array<std::string_view, kCacheLabels> names{"none", "HIT", "MISS", "STALE", "BYPASS"};
    return i < names.size() ? names[i] : "none";
}

// ------------------------------------------------------------------ Layout

Layout::Layout() { slots_.push_back(Slot{SlotKind::passthrough, "passthrough", {}, 0}); }

Layout::Layout(const std::vector<std::string_view>& routes, const std::vector<std::string_view>& triggers)
    : Layout() {
    auto unique_label = [this](std::string_view name) {
        std::string label(name);
        for (int n = 2;; ++n) {
            const bool taken = std::any_of(slots_.begin(), slots_.end(), [&](const Slot& s) { return s.label == label; });
            if (!taken) return label;
            label = std::string(name) + "_" + std::to_string(n);
        }
    };
    const std::size_t own = kMaxSlots - 1;  // slots left after pass-through
    const bool overflow = routes.size() + triggers.size() > own;
    const std::size_t named = overflow ? own - 1 : own;  // the last one becomes "other"
    auto add = [&](SlotKind kind, std::string_view name, std::size_t index) {
        if (slots_.size() - 1 < named) slots_.push_back(Slot{kind, unique_label(name), name, index});
    };
    for (std::size_t i = 0; i < routes.size(); ++i) add(SlotKind::route, routes[i], i);
    for (std::size_t i = 0; i < triggers.size(); ++i) add(SlotKind::trigger, triggers[i], i);
    if (overflow) slots_.push_back(Slot{SlotKind::route, unique_label("other"), {}, routes.size()});
    routes_ = routes.size();
    triggers_ = triggers.size();
}

std::size_t Layout::slot_for(std::string_view rule_name) const {
    // The session's name is a view of the rule's own name: match the address first.
    for (std::size_t i = 1; i < slots_.size(); ++i)
        if (slots_[i].rule.data() == rule_name.data() && slots_[i].rule.size() == rule_name.size() &&
            !rule_name.empty())
            return i;
    for (std::size_t i = 1; i < slots_.size(); ++i)
        if (!slots_[i].rule.empty() && slots_[i].rule == rule_name) return i;
    if (slots_.size() == kMaxSlots && rule_name != "-" && !rule_name.empty()) return slots_.size() - 1;  // "other"
    return 0;
}

// ------------------------------------------------------------------ merged numbers

Histogram& Histogram::operator+=(const Histogram& o) {
    for (std::size_t i = 0; i < kBuckets; ++i) buckets[i] += o.buckets[i];
    count += o.count;
    sum_us += o.sum_us;
    return *this;
}

double Histogram::quantile_ms(double q) const {
    if (count == 0) return 0;
    q = std::clamp(q, 0.0, 1.0);
    const double rank = q * static_cast<double>(count);
    double seen = 0;
    for (std::size_t i = 0; i < kBuckets; ++i) {
        const auto n = static_cast<double>(buckets[i]);
        if (n > 0 && seen + n >= rank) {
            if (i == kBucketBoundsUs.size()) return static_cast<double>(kBucketBoundsUs.back()) / 1000.0;
            const double lo = i == 0 ? 0.0 : static_cast<double>(kBucketBoundsUs[i - 1]);
            const double hi = static_cast<double>(kBucketBoundsUs[i]);
            const double frac = std::clamp((rank - seen) / n, 0.0, 1.0);
            return (lo + (hi - lo) * frac) / 1000.0;
        }
        seen += n;
    }
    return static_cast<double>(kBucketBoundsUs.back()) / 1000.0;
}

SlotTotals& SlotTotals::operator+=(const SlotTotals& o) {
    for (std::size_t s = 0; s < kStatusClasses; ++s) {
        for (std::size_t l = 0; l < kCacheLabels; ++l) requests[s][l] += o.requests[s][l];
        latency[s] += o.latency[s];
    }
    return *this;
}

std::uint64_t SlotTotals::total() const {
    std::uint64_t n = 0;
    for (const auto& row : requests)
        for (auto v : row) n += v;
    return n;
}

std::uint64_t SlotTotals::by_status(std::size_t sc) const {
    std::uint64_t n = 0;
    if (sc < kStatusClasses)
        for (auto v : requests[sc]) n += v;
    return n;
}

std::uint64_t SlotTotals::by_cache(CacheLabel label) const {
    std::uint64_t n = 0;
    for (const auto& row : requests) n += row[static_cast<std::size_t>(label)];
    return n;
}

Histogram SlotTotals::all_latency() const {
    Histogram h;
    for (const auto& l : latency) h += l;
    return h;
}

// ------------------------------------------------------------------ WorkerStats

WorkerStats::WorkerStats(const Layout& layout)
    : layout_(layout), slots_(std::max<std::size_t>(1, layout.size())), cells_(std::make_unique<Cell[]>(slots_)) {}

namespace {
const Layout& no_layout() {
    static const Layout layout;
    return layout;
}
}  // namespace

WorkerStats::WorkerStats(std::size_t cells)
    : layout_(no_layout()), slots_(std::max<std::size_t>(1, cells)), cells_(std::make_unique<Cell[]>(slots_)) {}

void WorkerStats::merge_into(std::vector<SlotTotals>& out) const {
    const std::size_t n = std::min(out.size(), slots_);
    for (std::size_t i = 0; i < n; ++i) add_cell(i, out[i]);
}

void WorkerStats::add_cell(std::size_t cell, SlotTotals& t) const {
    if (cell >= slots_) return;
    const Cell& c = cells_[cell];
    for (std::size_t s = 0; s < kStatusClasses; ++s) {
        for (std::size_t l = 0; l < kCacheLabels; ++l)
            t.requests[s][l] += c.requests[s][l].load(std::memory_order_relaxed);
        Histogram& h = t.latency[s];
        for (std::size_t b = 0; b < kBuckets; ++b) {
            const auto v = c.latency[s].buckets[b].load(std::memory_order_relaxed);
            h.buckets[b] += v;
            h.count += v;
        }
        h.sum_us += c.latency[s].sum_us.load(std::memory_order_relaxed);
    }
}

}  // namespace cacheproxy::stats
