#pragma once
/// Per-request counters and latency histograms, one set per worker thread
/// (Proxygen's per-thread stats, merged when read).
///
/// Only the owning worker thread writes a WorkerStats; it does so with a
/// relaxed load + store (no lock, no read-modify-write, no allocation, no
/// formatting), so the admin thread can read every cell at any time without a
/// data race. A reader sees each counter exactly or slightly behind; it never
/// sees a torn value. Readers merge all workers into a SlotTotals per slot.
///
/// Slots: 0 = pass-through (no rule matched), then the cached routes in rules
/// order, then the invalidation triggers in rules order (Layout).
///
/// Compile-time switch: -DCACHEPROXY_NO_STATS makes record() a no-op (for
/// measuring what counting costs; /stats then shows no per-request numbers).

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace cacheproxy::stats {

/// At most this many slots are counted apart; further rules share the last slot.
inline constexpr std::size_t kMaxSlots = 64;

/// The status classes counted: 0 = anything outside 100..599, then 1xx..5xx.
inline constexpr std::size_t kStatusClasses = 6;
/// Label of status class i ("other", "1xx", ... "5xx").
std::string_view status_class_name(std::size_t i);
/// The status class of `status` (0 for no/invalid status).
constexpr std::size_t status_class(unsigned status) {
    return status >= 100 && status < 600 ? status / 100 : 0;
}

/// The cache labels counted (the X-Cache value, or none outside cached routes).
enum class CacheLabel : std::uint8_t { none, hit, miss, stale, bypass };
inline constexpr std::size_t kCacheLabels = 5;
/// "none", "HIT", "MISS", "STALE", "BYPASS".
std::string_view cache_label_name(std::size_t i);
/// The label of an X-Cache value as the session records it ("HIT", "MISS", "STALE", "BYPASS", "-").
constexpr CacheLabel cache_label(std::string_view x_cache) {
    if (x_cache.empty()) return CacheLabel::none;
    switch (x_cache.front()) {
        case 'H': return CacheLabel::hit;
        case 'M': return CacheLabel::miss;
        case 'S': return CacheLabel::stale;
        case 'B': return CacheLabel::bypass;
        default: return CacheLabel::none;
    }
}

/// Upper bounds of the latency buckets, in microseconds (a 1-2-5 log scale from
/// 50 us to 60 s); one more bucket (+Inf) follows the last.
inline constexpr std::array<std::uint64_t, 20> kBucketBoundsUs = {
    50,      100,     200,     500,     1'000,    2'000,    5'000,    10'000,    20'000,    50'000,
    100'000, 200'000, 500'000, 1'000'000, 2'000'000, 5'000'000, 10'000'000, 20'000'000, 30'000'000, 60'000'000};
inline constexpr std::size_t kBuckets = kBucketBoundsUs.size() + 1;

/// The bucket of a duration in microseconds.
constexpr std::size_t bucket_of(std::uint64_t us) {
    std::size_t i = 0;
    while (i < kBucketBoundsUs.size() && us > kBucketBoundsUs[i]) ++i;
    return i;
}

/// What a slot stands for.
enum class SlotKind : std::uint8_t { passthrough, route, trigger };

/// One slot: its kind, its unique label, and the rule name it matches.
struct Slot {
    SlotKind kind = SlotKind::passthrough;
    std::string label;         ///< unique among slots: safe as a metric label value
    std::string_view rule;     ///< the rule's own name (points into the rules), "" for pass-through
    std::size_t index = 0;     ///< index among the routes or among the triggers
};

/// The slots, fixed at start-up from the rules (routes, then triggers).
class Layout {
public:
    /// Only the pass-through slot.
    Layout();
    /// Pass-through, then one slot per route name, then one per trigger name.
    /// The names must stay alive (and in place) as long as the layout: pass the
    /// names the matchers hold, so slot_for() can match them by address first.
    Layout(const std::vector<std::string_view>& routes, const std::vector<std::string_view>& triggers);

    std::size_t size() const { return slots_.size(); }
    const Slot& operator[](std::size_t i) const { return slots_[i]; }
    const std::vector<Slot>& slots() const { return slots_; }
    std::size_t routes() const { return routes_; }
    std::size_t triggers() const { return triggers_; }
    /// The slot of route i / trigger i (the last slot when there are too many).
    std::size_t route_slot(std::size_t i) const { return clamp(1 + i); }
    std::size_t trigger_slot(std::size_t i) const { return clamp(1 + routes_ + i); }

    /// The slot a request counts in, from the rule name the session holds
    /// (pass-through for "-" or an unknown name). A short scan: first by the
    /// name's address (exact even when a route and a trigger share a name),
    /// then by content. No allocation.
    std::size_t slot_for(std::string_view rule_name) const;

private:
    std::size_t clamp(std::size_t s) const { return s < slots_.size() ? s : slots_.size() - 1; }
    std::vector<Slot> slots_;
    std::size_t routes_ = 0;
    std::size_t triggers_ = 0;
};

/// A latency histogram, merged (plain numbers).
struct Histogram {
    std::array<std::uint64_t, kBuckets> buckets{};  ///< per bucket (not cumulative)
    std::uint64_t count = 0;
    std::uint64_t sum_us = 0;

    Histogram& operator+=(const Histogram& o);
    /// The q-quantile (0..1) in milliseconds, interpolated linearly inside its
    /// bucket; 0 when empty. The +Inf bucket answers the last finite bound.
    double quantile_ms(double q) const;
    double mean_ms() const { return count ? static_cast<double>(sum_us) / 1000.0 / static_cast<double>(count) : 0; }
};

/// One slot's numbers, merged over the workers (plain numbers).
struct SlotTotals {
    /// Requests by [status class][cache label].
    std::array<std::array<std::uint64_t, kCacheLabels>, kStatusClasses> requests{};
    /// Latency by status class.
    std::array<Histogram, kStatusClasses> latency{};

    SlotTotals& operator+=(const SlotTotals& o);
    std::uint64_t total() const;
    std::uint64_t by_status(std::size_t status_class) const;
    std::uint64_t by_cache(CacheLabel label) const;
    /// All status classes together.
    Histogram all_latency() const;
};

/// One worker thread's counters. Written by that thread only.
class WorkerStats {
public:
    /// One cell per slot of `layout` (which must outlive it); record() by
    /// rule name finds the slot in it.
    explicit WorkerStats(const Layout& layout);
    /// `cells` cells, addressed by number only (record(slot, ...)): a
    /// worker's, whose cells stay put while the rules change (app::RuleSnapshot::route_cell).
    explicit WorkerStats(std::size_t cells);
    WorkerStats(const WorkerStats&) = delete;
    WorkerStats& operator=(const WorkerStats&) = delete;

    /// Counts one finished request. Hot path: no lock, allocation or formatting.
    void record(std::size_t slot, unsigned status, CacheLabel label, std::chrono::nanoseconds elapsed) noexcept {
#ifndef CACHEPROXY_NO_STATS
        Cell& c = cells_[slot < slots_ ? slot : slots_ - 1];
        const std::size_t sc = status_class(status);
        bump(c.requests[sc][static_cast<std::size_t>(label)]);
        const auto us = static_cast<std::uint64_t>(elapsed.count() > 0 ? elapsed.count() / 1000 : 0);
        auto& h = c.latency[sc];
        bump(h.buckets[bucket_of(us)]);
        h.sum_us.store(h.sum_us.load(std::memory_order_relaxed) + us, std::memory_order_relaxed);
        if (status == 504) bump(gateway_timeouts_);
#else
        (void)slot, (void)status, (void)label, (void)elapsed;
#endif
    }

    /// As above, with the slot found from the rule name and the X-Cache value
    /// the session's access-log record holds.
    void record(std::string_view rule_name, unsigned status, std::string_view x_cache,
                std::chrono::nanoseconds elapsed) noexcept {
        record(layout_.slot_for(rule_name), status, cache_label(x_cache), elapsed);
    }

    /// As above, timing the request from `started` to now. With
    /// CACHEPROXY_NO_STATS the clock is not even read.
    void record(std::string_view rule_name, unsigned status, std::string_view x_cache,
                std::chrono::steady_clock::time_point started) noexcept {
#ifndef CACHEPROXY_NO_STATS
        record(rule_name, status, x_cache, std::chrono::steady_clock::now() - started);
#else
        (void)rule_name, (void)status, (void)x_cache, (void)started;
#endif
    }

    const Layout& layout() const { return layout_; }
    std::size_t cells() const { return slots_; }

    /// Adds this worker's numbers to `out` (sized like the layout): cell i to out[i]. Any thread.
    void merge_into(std::vector<SlotTotals>& out) const;
    /// Adds cell `cell`'s numbers to `out` (nothing past the last cell). Any thread.
    void add_cell(std::size_t cell, SlotTotals& out) const;
    /// Requests this worker answered 504 Gateway Timeout. Any thread.
    std::uint64_t gateway_timeouts() const { return gateway_timeouts_.load(std::memory_order_relaxed); }

private:
    using Counter = std::atomic<std::uint64_t>;
    /// Single writer: a relaxed load and store, never a locked read-modify-write.
    static void bump(Counter& c) noexcept { c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed); }

    struct AtomicHistogram {
        std::array<Counter, kBuckets> buckets{};
        Counter sum_us{0};
    };
    /// One slot; aligned so that two workers' cells never share a cache line.
    struct alignas(64) Cell {
        std::array<std::array<Counter, kCacheLabels>, kStatusClasses> requests{};
        std::array<AtomicHistogram, kStatusClasses> latency{};
    };

    const Layout& layout_;
    std::size_t slots_;
    std::unique_ptr<Cell[]> cells_;
    alignas(64) Counter gateway_timeouts_{0};
};

/// Merges every worker's numbers: one SlotTotals per slot of `layout`.
template <typename Range>
std::vector<SlotTotals> merge(const Layout& layout, const Range& workers_stats) {
    std::vector<SlotTotals> out(layout.size());
    for (const WorkerStats* w : workers_stats) w->merge_into(out);
    return out;
}

}  // namespace cacheproxy::stats
