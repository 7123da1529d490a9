/// BOOST_ASSERT in the fuzz build (BOOST_ENABLE_ASSERT_HANDLER): every Boost
/// assertion aborts with its place, so libFuzzer records it, except one that
/// is wrong in Boost 1.81 itself.
///
/// beast/http/impl/basic_parser.ipp parse_chunk_header() asserts `n >= 5`
/// when it is entered again after the last chunk's line ("0\r\n") was seen;
/// a last chunk that arrives in pieces ("0\r\n", "\r", "\n") enters it with
/// n == 3 or 4, and the code after the assert handles that (need_more).
/// Fixed upstream (boostorg/beast pull request 2861, "it's possible that we
/// reach code only with 3 symbols"). Release builds (NDEBUG) compile the
/// assert out; a build without NDEBUG would abort on such a client.

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace boost {

void assertion_failed(char const* expr, char const* function, char const* file, long line) {
    if (std::strstr(file, "beast/http/impl/basic_parser.ipp") != nullptr && std::strcmp(expr, "n >= 5") == 0) return;
    std::fprintf(stderr, "\n==fuzz== Boost assertion failed: %s in %s at %s:%ld\n", expr, function, file, line);
    std::fflush(stderr);
    std::abort();
}

void assertion_failed_msg(char const* expr, char const* msg, char const* function, char const* file, long line) {
    std::fprintf(stderr, "\n==fuzz== Boost assertion failed: %s (%s) in %s at %s:%ld\n", expr, msg, function, file,
                 line);
    std::fflush(stderr);
    std::abort();
}

}  // namespace boost
