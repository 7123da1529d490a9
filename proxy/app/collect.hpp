#pragma once
/// collect(): the stats report gathered from the workers and the shared
/// state (it reads every worker, so it sits above core/ and stats/).

#include "core/worker.hpp"
#include "stats/report.hpp"

#include <memory>
#include <vector>

namespace cacheproxy::app {

/// Gathers the report: reads every worker's stats, counters and pool (relaxed
/// atomics, no lock taken on their behalf), the admin's purge counts, the
/// store and the coalescer. Any thread.
stats::Report collect(const ServerContext& ctx, const std::vector<std::unique_ptr<Worker>>& workers);

}  // namespace cacheproxy::app
