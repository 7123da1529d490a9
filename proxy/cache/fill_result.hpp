#pragma once
/// What one upstream fill produced, shared with every request coalesced on it.

#include "cache/cached_response.hpp"

namespace cacheproxy::cache {

/// The outcome of a fill.
struct FillResult {
    /// How the fill ended.
    enum class Outcome {
        stored,         ///< a storable response: `entry` is it (stored unless a write made it stale meanwhile)
        answer,         ///< a response that may go to every waiter but not into the store (a 4xx or 5xx,
                        ///< no-store, close-delimited): `entry` holds it, never inserted
        failed,         ///< no usable response (transport error, timeout, a body that fails to decode):
                        ///< every waiter answers `status` (502 / 504); nothing stored
        not_shareable,  ///< a response one client may not pass to another (Set-Cookie, Vary, private,
                        ///< too large to hold): each waiter fetches on its own, a few at a time
    };
    EntryPtr entry;                     ///< the response; null unless outcome is stored or answer
    Outcome outcome = Outcome::failed;  ///< how it ended
    unsigned status = 502;              ///< for `failed`: the status every waiter answers
    const char* detail = "";            ///< why it was not stored (a static string), for Cache-Status
};

/// Short stable name, for logs and stats.
inline const char* to_string(FillResult::Outcome o) {
    switch (o) {
        case FillResult::Outcome::stored: return "stored";
        case FillResult::Outcome::answer: return "answer";
        case FillResult::Outcome::failed: return "failed";
        case FillResult::Outcome::not_shareable: return "not_shareable";
    }
    return "unknown";
}

}  // namespace cacheproxy::cache
