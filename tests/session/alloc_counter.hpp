#pragma once
/// A counting replacement of the global operator new/delete (every form:
/// sized, aligned, nothrow, arrays) and of malloc/calloc/realloc, for
/// alloc_tests only (tests/session/alloc_counter.cpp; never linked into
/// another binary). Counts only on threads that asked for it
/// (count_this_thread) and only while the window is open (set_window), so a
/// test's client and origin threads do not add to the proxy's figure.
///
/// With CACHEPROXY_ALLOC_TRACE=1 in the environment, every counted
/// allocation also writes its backtrace to stderr (backtrace_symbols_fd:
/// no allocation), between "alloc-trace new <bytes>" / "alloc-trace malloc
/// <bytes>" and "alloc-trace end" lines: what to resolve with addr2line to
/// find where the allocations come from.

#include <cstdint>

namespace cacheproxy::alloc_test {

struct Counts {
    std::uint64_t news = 0;        ///< operator new / new[] calls (any form)
    std::uint64_t new_bytes = 0;   ///< bytes they asked for
    std::uint64_t mallocs = 0;     ///< malloc / calloc / realloc calls not made by operator new
    std::uint64_t malloc_bytes = 0;
};

/// From now on, allocations made on the calling thread are counted (while the window is open).
void count_this_thread();

/// Opens (true) or closes the counting window; opening it zeroes the counts.
void set_window(bool open);

/// What was counted since the window last opened.
Counts counts();

}  // namespace cacheproxy::alloc_test
