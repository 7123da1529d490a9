#pragma once
/// Helpers for the gzip end-to-end tests (tests/e2e/gzip_test.cpp): the
/// per-user positions / balance rules, a big positions body in the simulator,
/// gunzip for assertions, a proxy's memory from /proc, and a client that
/// reads a (possibly gzip, possibly chunked) body of the simulator's
/// deterministic bytes piece by piece, checking it as it arrives, so an
/// 8 MB stream is never held whole.
///
/// Everything lives in `cacheproxy::e2e::gz` so its names cannot clash with
/// the other suites' helpers (they share one test binary).

#include "support/cache_helpers.hpp"
#include "support/fixtures.hpp"
#include "support/raw_client.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include <sys/types.h>

namespace cacheproxy::e2e::gz {

// ------------------------------------------------------------------ rules and targets

// per_user_route() is cacheproxy::e2e's (support/cache_helpers.hpp).

/// A rules file with the per-user positions and balance routes (60 s TTL).
std::string positions_and_balance_rules();

/// "/api/trading/positions?exchange=bybit&account_type=demo"
std::string positions_target();

/// POST /__sim/positions straight to the simulator: `count` positions for
/// "Bearer user<user>" on bybit/demo (300 make about 29 kB of JSON).
/// Returns "" on success, else what went wrong.
std::string seed_positions(Simulator& sim, int user, int count = 300);

// ------------------------------------------------------------------ requests

/// {"Accept-Encoding", value}
Headers accept_encoding(const std::string& value);
/// bearer(user) plus Accept-Encoding: value.
Headers bearer_accepting(int user, const std::string& value);

// ------------------------------------------------------------------ bodies

/// The decoded bytes of a whole gzip body, or nullopt if it is not valid gzip
/// (or decodes to more than `max_out`).
std::optional<std::string> gunzip(std::string_view gz, std::size_t max_out = 64u * 1024 * 1024);

/// The number of "positions" entries in a positions body, or -1.
long long positions_count(const std::string& body);

/// `s` in ASCII lower case.
std::string lower(std::string s);

// ------------------------------------------------------------------ /proc

/// A "kB" field of /proc/<pid>/status (VmRSS, VmHWM, ...), in kB; -1 if unreadable.
long long proc_status_kb(pid_t pid, const std::string& field);

/// Resets the process's peak RSS (VmHWM) to its current RSS by writing "5" to
/// /proc/<pid>/clear_refs (Linux >= 4.0; the process must be ours). False if refused.
bool reset_peak_rss(pid_t pid);

// ------------------------------------------------------------------ streaming client

/// What stream_sim_bytes() saw.
struct StreamedBody {
    unsigned status = 0;
    Headers headers;                  ///< as received
    bool chunked = false;             ///< Transfer-Encoding: chunked on the wire
    bool gzip = false;                ///< Content-Encoding: gzip (and decoded as such)
    bool complete = false;            ///< the message ended properly (last chunk / length / gzip trailer)
    std::uint64_t wire_body_bytes = 0;///< body bytes as sent (after de-chunking, before gunzip)
    std::uint64_t decoded_bytes = 0;  ///< body bytes after gunzip (== wire for identity)
    std::uint64_t mismatch_at = UINT64_MAX;  ///< first decoded byte that is not sim_bytes' byte, or UINT64_MAX
    std::string error;                ///< why it stopped early ("" when complete)

    std::optional<std::string> header(std::string_view name) const;
    std::string head_text() const;
};

/// Sends one GET `target` with `headers` on a fresh connection to
/// 127.0.0.1:port and reads the answer incrementally (each read bounded by
/// `read_timeout`, the whole by `total_timeout`): the head, then the body
/// de-chunked, gunzipped when Content-Encoding is gzip, and compared byte by
/// byte with the simulator's pattern, without keeping it. `on_progress` is
/// called after every socket read with the decoded byte count so far.
StreamedBody stream_sim_bytes(std::uint16_t port, const std::string& target, const Headers& headers,
                              std::chrono::milliseconds read_timeout = std::chrono::seconds(5),
                              std::chrono::milliseconds total_timeout = std::chrono::seconds(20),
                              const std::function<void(std::uint64_t)>& on_progress = {});

}  // namespace cacheproxy::e2e::gz
