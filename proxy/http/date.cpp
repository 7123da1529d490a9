#include "http/date.hpp"

namespace cacheproxy::http {

namespace {

constexpr char day_names[7][4] = {"Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"};  // from 1970-01-01, a Thursday
constexpr char month_names[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

void two_digits(char* p, unsigned v) noexcept {
    p[0] = static_cast<char>('0' + v / 10);
    p[1] = static_cast<char>('0' + v % 10);
}

void copy3(char* p, const char* s) noexcept {
    p[0] = s[0];
    p[1] = s[1];
    p[2] = s[2];
}

}  // namespace

void format_imf_fixdate(std::time_t t, char out[imf_fixdate_size]) noexcept {
    // 0000-01-01T00:00:00Z .. 9999-12-31T23:59:59Z
    constexpr long long min_t = -62167219200LL;
    constexpr long long max_t = 253402300799LL;
    long long s = static_cast<long long>(t);
    if (s < min_t) s = min_t;
    if (s > max_t) s = max_t;
    long long days = s / 86400;
    long long rem = s % 86400;
    if (rem < 0) {
        rem += 86400;
        --days;
    }
    const auto hour = static_cast<unsigned>(rem / 3600);
    const auto minute = static_cast<unsigned>(rem / 60 % 60);
    const auto second = static_cast<unsigned>(rem % 60);
    const auto weekday = static_cast<unsigned>(((days % 7) + 7) % 7);

    // Civil date from days since 1970-01-01 (H. Hinnant, "chrono-compatible
    // low-level date algorithms"): eras of 400 years starting on 1 March.
    const long long z = days + 719468;
    const long long era = (z >= 0 ? z : z - 146096) / 146097;
    const auto doe = static_cast<unsigned>(z - era * 146097);                 // [0, 146096]
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;  // [0, 399]
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);              // [0, 365]
    const unsigned mp = (5 * doy + 2) / 153;                                   // [0, 11], from March
    const unsigned day = doy - (153 * mp + 2) / 5 + 1;                         // [1, 31]
    const unsigned month = mp < 10 ? mp + 3 : mp - 9;                          // [1, 12]
    const auto year = static_cast<unsigned>(static_cast<long long>(yoe) + era * 400 + (month <= 2 ? 1 : 0));

    // "Www, DD Mmm YYYY HH:MM:SS GMT"
    copy3(out, day_names[weekday]);
    out[3] = ',';
    out[4] = ' ';
    two_digits(out + 5, day);
    out[7] = ' ';
    copy3(out + 8, month_names[month - 1]);
    out[11] = ' ';
    two_digits(out + 12, year / 100);
    two_digits(out + 14, year % 100);
    out[16] = ' ';
    two_digits(out + 17, hour);
    out[19] = ':';
    two_digits(out + 20, minute);
    out[22] = ':';
    two_digits(out + 23, second);
    copy3(out + 25, " GM");
    out[28] = 'T';
}

namespace {
// Constant-initialized and trivially destructible: no TLS guard, no
// registration at thread exit.
thread_local DateCache this_thread;
}  // namespace

std::string_view current_date() noexcept { return this_thread.at(std::time(nullptr)); }

std::string_view current_date_line() noexcept { return this_thread.line_at(std::time(nullptr)); }

}  // namespace cacheproxy::http
