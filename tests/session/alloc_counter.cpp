#include "session/alloc_counter.hpp"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

#include <execinfo.h>
#include <unistd.h>

extern "C" {
void* __libc_malloc(std::size_t);
void* __libc_calloc(std::size_t, std::size_t);
void* __libc_realloc(void*, std::size_t);
void __libc_free(void*);
}

namespace cacheproxy::alloc_test {
namespace {

// Initial-exec TLS with no constructor: safe to read inside malloc.
constinit thread_local bool t_counted __attribute__((tls_model("initial-exec"))) = false;
constinit thread_local bool t_in_hook __attribute__((tls_model("initial-exec"))) = false;

std::atomic<bool> g_window{false};
std::atomic<bool> g_trace{false};
std::atomic<std::uint64_t> g_news{0}, g_new_bytes{0}, g_mallocs{0}, g_malloc_bytes{0};

void write_line(const char* kind, std::size_t bytes) {
    char line[64];
    const int n = std::snprintf(line, sizeof line, "alloc-trace %s %zu\n", kind, bytes);
    if (n > 0) (void)!::write(2, line, static_cast<std::size_t>(n));
}

/// Counts one allocation when this thread and the window say so; traces it when asked.
void note(bool is_new, std::size_t bytes) {
    if (!t_counted || t_in_hook || !g_window.load(std::memory_order_relaxed)) return;
    (is_new ? g_news : g_mallocs).fetch_add(1, std::memory_order_relaxed);
    (is_new ? g_new_bytes : g_malloc_bytes).fetch_add(bytes, std::memory_order_relaxed);
    if (!g_trace.load(std::memory_order_relaxed)) return;
    t_in_hook = true;
    void* frames[48];
    const int depth = ::backtrace(frames, 48);
    write_line(is_new ? "new" : "malloc", bytes);
    ::backtrace_symbols_fd(frames, depth, 2);
    (void)!::write(2, "alloc-trace end\n", 16);
    t_in_hook = false;
}

void* counted_new(std::size_t size) {
    note(true, size);
    t_in_hook = true;  // the malloc below is this new's, not a second allocation
    void* p = __libc_malloc(size ? size : 1);
    t_in_hook = false;
    return p;
}

void* counted_aligned_new(std::size_t size, std::align_val_t align) {
    note(true, size);
    const auto a = static_cast<std::size_t>(align);
    void* p = nullptr;
    t_in_hook = true;
    if (::posix_memalign(&p, a < sizeof(void*) ? sizeof(void*) : a, size ? size : 1) != 0) p = nullptr;
    t_in_hook = false;
    return p;
}

void* or_throw(void* p) {
    if (!p) throw std::bad_alloc();
    return p;
}

}  // namespace

void count_this_thread() { t_counted = true; }

void set_window(bool open) {
    if (open) {
        static const bool trace = [] {
            const char* v = std::getenv("CACHEPROXY_ALLOC_TRACE");
            void* warm[2];
            ::backtrace(warm, 2);  // its first call loads libgcc (allocates): not in the window
            return v && std::strcmp(v, "1") == 0;
        }();
        g_trace = trace;
        g_news = 0;
        g_new_bytes = 0;
        g_mallocs = 0;
        g_malloc_bytes = 0;
    }
    g_window.store(open);
}

Counts counts() { return {g_news.load(), g_new_bytes.load(), g_mallocs.load(), g_malloc_bytes.load()}; }

}  // namespace cacheproxy::alloc_test

namespace at = cacheproxy::alloc_test;

// The C allocator, counted: OpenSSL, spdlog's fmt and the C library allocate here.
extern "C" {
void* malloc(std::size_t size) {
    at::note(false, size);
    return __libc_malloc(size);
}
void* calloc(std::size_t n, std::size_t size) {
    at::note(false, n * size);
    return __libc_calloc(n, size);
}
void* realloc(void* p, std::size_t size) {
    at::note(false, size);
    return __libc_realloc(p, size);
}
void free(void* p) { __libc_free(p); }
}

void* operator new(std::size_t size) { return at::or_throw(at::counted_new(size)); }
void* operator new[](std::size_t size) { return at::or_throw(at::counted_new(size)); }
void* operator new(std::size_t size, const std::nothrow_t&) noexcept { return at::counted_new(size); }
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept { return at::counted_new(size); }
void* operator new(std::size_t size, std::align_val_t a) { return at::or_throw(at::counted_aligned_new(size, a)); }
void* operator new[](std::size_t size, std::align_val_t a) { return at::or_throw(at::counted_aligned_new(size, a)); }
void* operator new(std::size_t size, std::align_val_t a, const std::nothrow_t&) noexcept {
    return at::counted_aligned_new(size, a);
}
void* operator new[](std::size_t size, std::align_val_t a, const std::nothrow_t&) noexcept {
    return at::counted_aligned_new(size, a);
}

void operator delete(void* p) noexcept { __libc_free(p); }
void operator delete[](void* p) noexcept { __libc_free(p); }
void operator delete(void* p, std::size_t) noexcept { __libc_free(p); }
void operator delete[](void* p, std::size_t) noexcept { __libc_free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { __libc_free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { __libc_free(p); }
void operator delete(void* p, std::align_val_t) noexcept { __libc_free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { __libc_free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { __libc_free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { __libc_free(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { __libc_free(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { __libc_free(p); }
