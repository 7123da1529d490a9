#pragma once
/// What one upstream fill produced, shared with every request coalesced on it.

#include "cache/cached_response.hpp"

namespace cacheproxy::cache {

/// The outcome of a fill.
struct FillResult {
    /// How the fill ended.
    enum class Outcome {
        stored,        ///< a storable response: `entry` is it (and it is in the store)
        failed,        ///< upstream error, timeout, or the leader gave up: nothing stored
        not_storable,  ///< a response came back but may not be shared (check_storable said no)
    };
    EntryPtr entry;                     ///< the stored entry; null unless outcome == stored
    Outcome outcome = Outcome::failed;  ///< how it ended
};

/// Short stable name, for logs and stats.
inline const char* to_string(FillResult::Outcome o) {
    switch (o) {
        case FillResult::Outcome::stored: return "stored";
        case FillResult::Outcome::failed: return "failed";
        case FillResult::Outcome::not_storable: return "not_storable";
    }
    return "unknown";
}

}  // namespace cacheproxy::cache
