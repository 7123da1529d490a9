#pragma once
/// SIGHUP: re-read the config and rules files and apply what can be applied
/// while serving. The pure decisions (which config keys need a restart) are
/// plain functions; apply_reload() swaps the rules without a lock on the hot
/// path: the cache stays, each worker gets its own copy of the new rules by a
/// post to its io_context, and a request runs to its end on the copy it took.
///
/// What a reload applies: the rules file's routes (TTL and stale windows of
/// kept routes; key changes re-key a route: new empty slot, old one retired;
/// an added route gets a new slot, a removed one's slot is retired and its
/// entries dropped; a rename is a removal and an addition), its triggers
/// (added, removed, changed, in any order), coalesce.timeout, and
/// upstream.url (resolved on the reload's thread, refused when it does not
/// resolve; each worker's pool is posted the new address: new connections
/// go there, idle ones to the old address close, those in use finish and
/// are not pooled again; the HTTP/1.0 Host and the health checker follow),
/// and logging.level.
/// Counters
/// follow the slots (core/cache_context.hpp): a kept route or a trigger of
/// the same name keeps its totals. What it refuses, naming the key (the
/// running configuration stays): every other key of the config file
/// (listen, threads, admin, upstream's pool and timeouts, limits, logging, ...), the identity
/// source, the other coalesce settings (rules/rule_diff.hpp), and an added
/// route or trigger once the slots are used up (1,024 route slots, 256
/// trigger names over the process's life: never reused).

#include "config/config.hpp"
#include "core/worker.hpp"

#include <boost/asio/ip/tcp.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace cacheproxy::app {

/// `host`'s first address with `port`, resolved on the calling thread
/// (start-up, or the reload's: never a worker); nullopt and `err` set when it
/// does not resolve.
std::optional<boost::asio::ip::tcp::endpoint> resolve(const std::string& host, std::uint16_t port, std::string& err);

/// The first key of the config file (not the rules) whose value differs
/// between `running` and `next`, as "KEY: changed: needs a restart";
/// nullopt when only the rules and upstream.url may differ.
std::optional<std::string> config_restart_needed(const config::Config& running, const config::Config& next);

/// What a reload did: applied, or refused with why.
struct ReloadOutcome {
    bool applied = false;
    std::string message;  ///< a summary when applied; the refusal (file:line:column: key: why, or key: why) otherwise
};

/// Applies `next` (already loaded and validated) over the running rules of
/// `ctx`, posting each worker its copy. Runs on one thread (the signal
/// thread), one reload at a time. Records the outcome in ctx.reloads.
ReloadOutcome apply_reload(ServerContext& ctx, const std::vector<std::unique_ptr<Worker>>& workers,
                           const config::Config& next);

/// A reload whose files did not load: counted and recorded as refused.
ReloadOutcome refuse_reload(ServerContext& ctx, std::string why);

}  // namespace cacheproxy::app
