#include "app/reload.hpp"

#include "log/logging.hpp"
#include "rules/rule_diff.hpp"
#include "stats/process_info.hpp"

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <sstream>

namespace cacheproxy::app {

namespace {

/// describe() without the rules and the file's own path: the config file's keys.
std::vector<std::string> config_lines(const config::Config& cfg) {
    config::Config c = cfg;
    c.source_path.clear();
    c.rules_path.clear();
    c.rules = {};
    c.upstream.url.clear();  // applied by a reload (apply_upstream)
    c.upstream.host.clear();
    c.upstream.port = 0;
    c.logging.level.clear();  // applied by a reload (log::set_level)
    std::vector<std::string> lines;
    std::istringstream in(config::describe(c));
    for (std::string line; std::getline(in, line);)
        if (!line.empty() && line[0] != '#') lines.push_back(line);
    return lines;
}

/// "upstream.url" for the line "  url: ..." under "upstream:" (sections as describe() writes them).
std::string key_of(const std::vector<std::string>& lines, std::size_t i) {
    const auto name = [](const std::string& l) {
        const auto start = l.find_first_not_of(' ');
        const auto colon = l.find(':', start);
        return l.substr(start, colon - start);
    };
    const auto indent = [](const std::string& l) { return l.find_first_not_of(' '); };
    std::string key = name(lines[i]);
    auto depth = indent(lines[i]);
    for (std::size_t j = i; j-- > 0 && depth > 0;) {
        if (indent(lines[j]) < depth) {
            key = name(lines[j]) + "." + key;
            depth = indent(lines[j]);
        }
    }
    return key;
}

bool same_timeouts(const std::vector<config::PathTimeouts>& a, const std::vector<config::PathTimeouts>& b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (a[i].prefix != b[i].prefix || a[i].response != b[i].response || a[i].body != b[i].body) return false;
    return true;
}

double unix_now() {
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

/// The slots of `next`'s routes: a kept or retuned route keeps its slot (and
/// takes its new windows), a re-keyed or added one gets a new slot. `retire`
/// gets the slots no longer used. False when the store has no slot left.
bool assign_slots(cache::Cache& cache, const RuleSnapshot& running, const rules::RuleSet& next,
                  const rules::RuleDiff& diff, std::vector<std::size_t>& slots, std::vector<std::size_t>& retire) {
    for (std::size_t i = 0; i < next.routes.size(); ++i) {
        const auto change = diff.routes[i];
        if (change == rules::RouteChange::kept || change == rules::RouteChange::retuned) {
            slots.push_back(running.slot(diff.old_index[i]));
            if (change == rules::RouteChange::retuned) cache.retune_route(slots.back(), next.routes[i]);
            continue;
        }
        const auto slot = cache.add_route(next.routes[i]);
        if (!slot) return false;
        slots.push_back(*slot);
        if (change == rules::RouteChange::rekeyed) retire.push_back(running.slot(diff.old_index[i]));
    }
    for (const auto old : diff.removed) retire.push_back(running.slot(old));
    return true;
}

/// The counter slots of `next`'s triggers: a name the process has counted
/// keeps its slot, a new one gets the next unused slot (appended to `names`).
/// False when kTriggerSlots would be passed.
bool assign_trigger_slots(std::vector<std::string>& names, const rules::RuleSet& next,
                          std::vector<std::size_t>& slots) {
    for (const auto& trigger : next.triggers) {
        const auto slot = static_cast<std::size_t>(std::find(names.begin(), names.end(), trigger.name) - names.begin());
        if (slot == names.size() && names.size() >= kTriggerSlots) return false;
        if (slot == names.size()) names.push_back(trigger.name);
        slots.push_back(slot);
    }
    return true;
}

/// The upstream `next` names, when it is not the one running: its authority
/// and address (resolved here, on the reload's thread). Sets `why` when it
/// does not resolve.
struct UpstreamChange {
    std::string authority;
    boost::asio::ip::tcp::endpoint endpoint;
};
std::optional<UpstreamChange> upstream_change(const ServerContext& ctx, const config::Config& next, std::string& why) {
    const auto authority = ServerContext::authority_of(next.upstream);
    const auto& running = ctx.later_authorities.empty() ? ctx.upstream_authority : ctx.later_authorities.back();
    if (authority == running) return std::nullopt;
    std::string err;
    const auto endpoint = resolve(next.upstream.host, next.upstream.port, err);
    if (!endpoint) {
        why = "upstream.url: " + err;
        return std::nullopt;
    }
    return UpstreamChange{authority, *endpoint};
}

/// Posts each worker the new upstream: its pool connects there from now on
/// (idle connections to the old one closed, those in use not pooled again),
/// its requests send its authority as the HTTP/1.0 Host; the health checker
/// (on worker 0) probes the pool's new endpoint.
void apply_upstream(ServerContext& ctx, const std::vector<std::unique_ptr<Worker>>& workers, UpstreamChange change) {
    ctx.later_authorities.push_back(std::move(change.authority));
    const std::string* authority = &ctx.later_authorities.back();
    for (const auto& w : workers)
        boost::asio::post(w->ioc, [&worker = *w, authority, endpoint = change.endpoint] {
            worker.pool.retarget(endpoint);
            worker.upstream_authority = authority;
        });
}

/// The parts of the config file a reload applies besides the rules, once
/// nothing is refused: the upstream, and logging.level. Their summary ("" = none changed).
std::string apply_config(ServerContext& ctx, const std::vector<std::unique_ptr<Worker>>& workers,
                         const config::Config& next, std::optional<UpstreamChange> upstream) {
    std::string note;
    if (upstream) {
        note += "; upstream now " + upstream->authority;
        apply_upstream(ctx, workers, std::move(*upstream));
    }
    if (log::set_level(next.logging.level)) note += "; logging.level now " + next.logging.level;
    return note;
}

ReloadOutcome record(ServerContext& ctx, ReloadOutcome outcome, const std::string& running_version) {
    auto text = ctx.reloads.text();
    text.last_unix = unix_now();
    text.last_ok = outcome.applied;
    text.running_version = running_version;
    if (outcome.applied) {
        ctx.reloads.ok.fetch_add(1);
        spdlog::info("reload applied: {}", outcome.message);
    } else {
        ctx.reloads.failed.fetch_add(1);
        text.last_error = outcome.message;
        spdlog::error("reload refused, the running configuration stays: {}", outcome.message);
    }
    ctx.reloads.set(std::move(text));
    return outcome;
}

}  // namespace

std::optional<boost::asio::ip::tcp::endpoint> resolve(const std::string& host, std::uint16_t port, std::string& err) {
    boost::asio::io_context ioc;
    boost::asio::ip::tcp::resolver resolver(ioc);
    boost::system::error_code ec;
    auto results = resolver.resolve(host, std::to_string(port), ec);
    if (ec || results.empty()) {
        err = "cannot resolve " + host + ": " + ec.message();
        return std::nullopt;
    }
    return results.begin()->endpoint();
}

std::optional<std::string> config_restart_needed(const config::Config& running, const config::Config& next) {
    const auto a = config_lines(running);
    const auto b = config_lines(next);
    for (std::size_t i = 0; i < a.size() && i < b.size(); ++i)
        if (a[i] != b[i]) return key_of(b, i) + ": changed: needs a restart";
    if (a.size() != b.size()) return std::string("configuration: changed: needs a restart");
    if (running.admin.token != next.admin.token) return std::string("admin.token: changed: needs a restart");
    if (!same_timeouts(running.timeouts, next.timeouts)) return std::string("timeouts: changed: needs a restart");
    if (running.rules_path.empty() != next.rules_path.empty())
        return std::string("rules: turning the cache on or off needs a restart");
    return std::nullopt;
}

ReloadOutcome refuse_reload(ServerContext& ctx, std::string why) {
    return record(ctx, {false, std::move(why)}, ctx.reloads.text().running_version);
}

ReloadOutcome apply_reload(ServerContext& ctx, const std::vector<std::unique_ptr<Worker>>& workers,
                           const config::Config& next) {
    const auto running_version = ctx.reloads.text().running_version;
    if (auto why = config_restart_needed(ctx.cfg, next)) return record(ctx, {false, *why}, running_version);
    std::string why;
    auto upstream = upstream_change(ctx, next, why);
    if (!why.empty()) return record(ctx, {false, why}, running_version);
    const auto next_version = stats::config_version(next);
    if (!ctx.cache) {
        if (!next.rules.routes.empty()) return record(ctx, {false, "routes: enabling the cache needs a restart"}, running_version);
        return record(ctx, {true, "nothing cached" + apply_config(ctx, workers, next, std::move(upstream))},
                      next_version);
    }
    CacheContext& shared = *ctx.cache;
    const auto running = shared.current();
    const auto diff = rules::diff_rules(running->rules, next.rules);
    if (auto why = rules::reload_refusal(running->rules, next.rules, diff))
        return record(ctx, {false, *why}, running_version);

    auto trigger_names = shared.trigger_slot_names;
    std::vector<std::size_t> trigger_slots;
    if (!assign_trigger_slots(trigger_names, next.rules, trigger_slots))
        return record(ctx, {false, "triggers: no counter slot left for an added trigger: restart"}, running_version);
    std::vector<std::size_t> slots, retire;
    if (!assign_slots(shared.cache, *running, next.rules, diff, slots, retire))
        return record(ctx, {false, "routes: no store slot left for an added or re-keyed route: restart"},
                      running_version);
    shared.trigger_slot_names = std::move(trigger_names);
    // Retired first: a write on the new rules then happens after no lookup can
    // find, nor any fill store, an entry under a retired slot (ARCHITECTURE.md).
    std::size_t dropped = 0;
    for (const auto slot : retire) dropped += shared.cache.retire_route(slot);

    auto snapshot = std::make_shared<const RuleSnapshot>(next.rules, slots, trigger_slots, running->version + 1,
                                                         next_version, shared.cache, shared.hasher);
    shared.publish(snapshot);
    for (const auto& w : workers)
        boost::asio::post(w->ioc, [&worker = *w, copy = snapshot->copy()]() mutable { worker.snapshot = std::move(copy); });
    const auto config_note = apply_config(ctx, workers, next, std::move(upstream));

    std::ostringstream msg;
    msg << "rules version " << snapshot->version << " (config " << next_version << "): " << diff.summary() << "; "
        << dropped << " entr" << (dropped == 1 ? "y" : "ies") << " of removed or re-keyed routes dropped"
        << config_note;
    return record(ctx, {true, msg.str()}, next_version);
}

}  // namespace cacheproxy::app
