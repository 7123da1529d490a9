#include "cache/freshness.hpp"

namespace cacheproxy::cache {

namespace {

/// now - stored_at, never negative (an entry stored by another thread "after" our now).
Clock::duration age_of(TimePoint stored_at, TimePoint now) {
    return now > stored_at ? now - stored_at : Clock::duration::zero();
}

}  // namespace

const char* to_string(Freshness f) {
    switch (f) {
        case Freshness::fresh: return "fresh";
        case Freshness::fresh_refresh_ahead: return "fresh_refresh_ahead";
        case Freshness::stale_revalidate: return "stale_revalidate";
        case Freshness::stale_if_error_only: return "stale_if_error_only";
        case Freshness::expired: return "expired";
    }
    return "unknown";
}

Freshness classify(const CachedResponse& entry, const rules::RouteRule& rule, TimePoint now) {
    const Clock::duration age = age_of(entry.stored_at(), now);
    const Clock::duration ttl = rule.ttl;
    if (age < ttl) {
        const Clock::duration remaining = ttl - age;
        if (rule.refresh_ahead > rules::Duration::zero() && remaining < rule.refresh_ahead)
            return Freshness::fresh_refresh_ahead;
        return Freshness::fresh;
    }
    const Clock::duration stale = age - ttl;
    if (stale < rule.stale_while_revalidate) return Freshness::stale_revalidate;
    if (stale < rule.stale_if_error) return Freshness::stale_if_error_only;
    return Freshness::expired;
}

std::uint64_t age_seconds(TimePoint stored_at, TimePoint now) {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(age_of(stored_at, now)).count());
}

rules::Duration remaining_ttl(const CachedResponse& entry, const rules::RouteRule& rule, TimePoint now) {
    const Clock::duration age = age_of(entry.stored_at(), now);
    if (age >= rule.ttl) return rules::Duration::zero();
    return std::chrono::ceil<rules::Duration>(Clock::duration(rule.ttl) - age);  // never 0 while fresh
}

}  // namespace cacheproxy::cache
