#pragma once
/// The `Date` every response carries (RFC 9110 6.6.1), as nginx sends its own:
/// an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT", always 29 bytes). The
/// formatting is pure (tests/http/date_test.cpp, fixed times); each thread
/// keeps the text of the current second and formats again only when
/// time(nullptr) moves on, so an answer costs one clock read and a compare.

#include <cstddef>
#include <ctime>
#include <limits>
#include <string_view>

namespace cacheproxy::http {

/// Length of an IMF-fixdate.
inline constexpr std::size_t imf_fixdate_size = 29;

/// Writes `t` (seconds since the epoch, UTC) as an IMF-fixdate into `out`
/// (exactly imf_fixdate_size bytes, no terminating NUL). Pure: no locale, no
/// gmtime. Years outside 0..9999 are clamped to that range's ends.
void format_imf_fixdate(std::time_t t, char out[imf_fixdate_size]) noexcept;

/// One formatted second, reformatted only when the second changes. Holds the
/// whole header line, so a hand-written head appends it in one copy.
class DateCache {
public:
    static constexpr std::size_t line_size = 6 + imf_fixdate_size + 2;  ///< "Date: " date CRLF

    constexpr DateCache() = default;
    /// The IMF-fixdate of `now`; the view stays valid until the next call.
    std::string_view at(std::time_t now) noexcept { return {line_at(now).data() + 6, imf_fixdate_size}; }
    /// "Date: <IMF-fixdate of now>\r\n"; the view stays valid until the next call.
    std::string_view line_at(std::time_t now) noexcept {
        if (now != second_) {
            format_imf_fixdate(now, line_ + 6);
            second_ = now;
        }
        return {line_, line_size};
    }

private:
    // Starts as the line of the earliest time_t (clamped to year 0), so a
    // first call at any second, that one included, gives the right text.
    std::time_t second_ = std::numeric_limits<std::time_t>::min();
    char line_[line_size] = {'D', 'a', 't', 'e', ':', ' ', 'S', 'a', 't', ',', ' ', '0', '1',
                             ' ', 'J', 'a', 'n', ' ', '0', '0', '0', '0', ' ', '0', '0', ':',
                             '0', '0', ':', '0', '0', ' ', 'G', 'M', 'T', '\r', '\n'};
};

/// The current Date on this thread (a thread-local DateCache at
/// time(nullptr)). The view is valid on this thread until its next call in
/// a later second: copy it (into a header) before suspending.
std::string_view current_date() noexcept;
/// The same as a whole header line, "Date: ...\r\n".
std::string_view current_date_line() noexcept;

}  // namespace cacheproxy::http
