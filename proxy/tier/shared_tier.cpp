#include "tier/shared_tier.hpp"

#include "cache/cache_key.hpp"
#include "redis/client.hpp"
#include "redis/node.hpp"
#include "tier/barrier.hpp"
#include "tier/entry_codec.hpp"
#include "tier/keys.hpp"
#include "tier/scripts.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <openssl/evp.h>
#include <spdlog/spdlog.h>

#include <charconv>
#include <cstring>
#include <deque>
#include <fstream>
#include <random>
#include <thread>
#include <unordered_map>

namespace cacheproxy::tier {

namespace asio = boost::asio;
using boost::system::error_code;
using std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;
constexpr auto tuple_awaitable = asio::as_tuple(asio::use_awaitable);

namespace {

std::string sha1_hex(std::string_view text) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_Digest(text.data(), text.size(), md, &n, EVP_sha1(), nullptr);
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    for (unsigned i = 0; i < n; ++i) {
        out += digits[md[i] >> 4];
        out += digits[md[i] & 15];
    }
    return out;
}

struct Script {
    std::string_view source;
    std::string sha;
    explicit Script(std::string_view s) : source(s), sha(sha1_hex(s)) {}
};

std::string random_id() {
    std::random_device rd;
    std::uint64_t v = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
    return buf;
}

std::string first_line_of(const std::string& path) {
    if (path.empty()) return {};
    std::ifstream in(path);
    std::string line;
    std::getline(in, line);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    return line;
}

std::int64_t unix_us() {
    return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::int64_t unix_ms() { return unix_us() / 1000; }

void raise_max(std::atomic<std::uint64_t>& max, std::uint64_t v) {
    if (v > max.load(std::memory_order_relaxed)) max.store(v, std::memory_order_relaxed);
}

/// A command's argv (a function: GCC 12 cannot take a braced list inside a co_await).
template <typename... T>
std::vector<std::string> cmd(T&&... parts) {
    std::vector<std::string> v;
    v.reserve(sizeof...(parts));
    (v.emplace_back(std::forward<T>(parts)), ...);
    return v;
}

/// A read waiting for a barrier: its timer is the deadline and the wake-up.
struct Waiter {
    explicit Waiter(asio::any_io_executor ex) : timer(std::move(ex)) {}
    asio::steady_timer timer;
    bool ok = false;
};
using WaiterPtr = std::shared_ptr<Waiter>;

/// A write whose invalidation is not delivered yet.
struct Debt {
    cache::IdentityHash identity{};
    std::optional<cache::IdentityHash> principal;
    std::vector<std::string> routes;
    bool drop_credential = false;
    bool generations_done = false;
    bool published = false;
};

struct IdentityHashing {
    std::size_t operator()(const cache::IdentityHash& h) const noexcept {
        std::size_t v;
        std::memcpy(&v, h.data(), sizeof v);
        return v;
    }
};

}  // namespace

struct SharedTier::Impl : std::enable_shared_from_this<Impl> {
    Impl(SharedTier& o, const config::SharedTierConfig& c, const cache::IdentityHasher& h, Hooks k, milliseconds gen_ttl,
         milliseconds hold)
        : owner(o), cfg(c), hasher(h), hooks(std::move(k)), generation_ttl(gen_ttl), error_hold(hold),
          work(asio::make_work_guard(ioc)), rng(std::random_device{}()) {}

    SharedTier& owner;
    const config::SharedTierConfig cfg;
    const cache::IdentityHasher& hasher;
    Hooks hooks;
    const milliseconds generation_ttl;
    const milliseconds error_hold;
    asio::io_context ioc{1};
    asio::executor_work_guard<asio::io_context::executor_type> work;
    std::thread thread;
    std::unique_ptr<redis::Client> client;
    std::unique_ptr<redis::Node> bus;
    BarrierBatcher<WaiterPtr> batcher;
    const Script lookup{scripts::kLookup}, store{scripts::kStore}, lease{scripts::kLease}, bump{scripts::kBump};
    std::unordered_map<std::string, std::string> held;  ///< our leases: key -> value (renewed)
    std::deque<Debt> debt;
    /// Users whose global generations a write could not bump: their L2
    /// entries are not trusted until then.
    std::unordered_map<cache::IdentityHash, SteadyClock::time_point, IdentityHashing> blocked;
    std::atomic<int> key_state{0};  ///< 0 not checked yet, 1 same key, 2 another key
    std::atomic<std::int64_t> fresh_until_ns{0};  ///< max_invalidation_lag: a read before this needs no barrier
    std::atomic<std::int64_t> last_read_ns{0};    ///< the latest barrier asked for (background barriers)
    /// When the bus last came up (unix ms): per-user L2 values stored before
    /// are not trusted (a write during the gap may not have bumped its
    /// generation, and its debt may not be paid yet).
    std::int64_t bus_up_since_ms = 0;
    std::uint64_t lease_seq = 0;
    std::mt19937_64 rng;
    bool stopping = false;                 ///< stop() was called: the loops end
    std::atomic<bool> ran_out{false};      ///< the thread's run() returned

    std::string random_start() { return std::to_string((rng() >> 2) | 1); }
    bool usable() const { return client && key_state.load() == 1; }

    milliseconds lease_px() const { return std::chrono::duration_cast<milliseconds>(cfg.lease_ttl); }

    /// EVALSHA, and EVAL when the server does not have the script (a restart).
    asio::awaitable<redis::Result> run(const Script& s, const std::vector<std::string>& keys,
                                       std::vector<std::string> args, milliseconds timeout = {}) {
        std::vector<std::string> argv{"EVALSHA", s.sha, std::to_string(keys.size())};
        argv.insert(argv.end(), keys.begin(), keys.end());
        argv.insert(argv.end(), std::make_move_iterator(args.begin()), std::make_move_iterator(args.end()));
        auto r = co_await client->exec(keys.front(), argv, timeout);
        if (!r.ec && r.reply.is_error() && r.reply.str.starts_with("NOSCRIPT")) {
            argv[0] = "EVAL";
            argv[1] = std::string(s.source);
            r = co_await client->exec(keys.front(), std::move(argv), timeout);
        }
        co_return r;
    }

    static std::vector<std::string> key_list(const EntryKeys& k) {
        std::vector<std::string> v{k.entry, k.lease};
        if (!k.generation.empty()) v.push_back(k.generation);
        return v;
    }

    // --- the bus -------------------------------------------------------------

    asio::awaitable<bool> check_key() {
        const auto fp = key_fingerprint(hasher);
        co_await client->exec(std::string(kKeyCheck), cmd("SET", kKeyCheck, fp, "NX"));
        const auto r = co_await client->exec(std::string(kKeyCheck), cmd("GET", kKeyCheck));
        if (!r.ok() || !r.reply.is_string()) co_return false;
        if (r.reply.str != fp) {
            if (key_state.exchange(2) != 2)
                spdlog::error("shared tier: Redis holds another identity key's fingerprint: this instance hashes "
                              "credentials differently from the others and will not share (check identity_key_file)");
        } else {
            key_state.store(1);
        }
        co_return true;
    }

    void on_bus_up() {
        if (key_state.load() != 1) return;
        // Invalidations published while we were not subscribed are lost:
        // nothing per-user cached before now is served again.
        hooks.bump_all();
        bus_up_since_ms = unix_ms() + 1;
        owner.stats_.bus_epochs.fetch_add(1, std::memory_order_relaxed);
        owner.bus_up_.store(true, std::memory_order_release);
        spdlog::info("shared tier: bus up ({} node(s)); per-user entries cached before are dropped", client->nodes());
    }

    void on_bus_down(error_code ec) {
        const bool was = owner.bus_up_.exchange(false, std::memory_order_acq_rel);
        fresh_until_ns.store(0);
        for (auto& w : batcher.on_failure()) w->timer.cancel();
        if (was) spdlog::warn("shared tier: bus down ({}); per-user reads {}", ec.message(),
                              owner.bypass_when_down_ ? "bypass the cache until it is back" : "use this instance's cache");
    }

    void on_push(const redis::Reply& r) {
        if (!r.is_array() || r.elements.size() < 3) return;
        const auto m = decode(r.elements.back().str);
        if (!m) {
            owner.stats_.bus_bad_messages.fetch_add(1, std::memory_order_relaxed);
            return;
        }
        auto& st = owner.stats_;
        st.bus_messages.fetch_add(1, std::memory_order_relaxed);
        const auto lag = static_cast<std::uint64_t>(std::max<std::int64_t>(0, unix_us() - m->published_us));
        st.bus_lag_us_last.store(lag, std::memory_order_relaxed);
        raise_max(st.bus_lag_us_max, lag);
        if (m->generations_unacknowledged) blocked[m->identity] = SteadyClock::now() + generation_ttl;
        if (m->origin != owner.instance_id_) hooks.apply(*m);
    }

    void make_bus(const redis::Address& at) {
        auto o = cfg_node_options();
        o.host = at.host;
        o.port = at.port;
        o.client_name = "cacheproxy-" + owner.instance_id_ + "-bus";
        bus = std::make_unique<redis::Node>(ioc.get_executor(), o);
        bus->on_connect = [this]() -> asio::awaitable<error_code> {
            const auto r = co_await bus->exec(cmd("SSUBSCRIBE", kBusChannel));
            if (!r.ok()) co_return redis::Error::closed;
            const bool checked = co_await check_key();
            if (!checked) co_return redis::Error::not_connected;
            co_return error_code{};
        };
        bus->on_up = [this] { on_bus_up(); };
        bus->on_down = [this](error_code ec) { on_bus_down(ec); };
        bus->on_push = [this](const redis::Reply& r) { on_push(r); };
        bus->start();
    }

    redis::Node::Options cfg_node_options() const {
        redis::Node::Options o;
        o.connect_timeout = std::chrono::duration_cast<milliseconds>(cfg.connect_timeout);
        o.op_timeout = std::chrono::duration_cast<milliseconds>(cfg.op_timeout);
        o.password = first_line_of(cfg.password_file);
        o.client_name = "cacheproxy-" + owner.instance_id_;
        return o;
    }

    /// Waits for the slot map (a Cluster), then subscribes on the node that
    /// owns the bus channel; then keeps the debt and the leases going.
    asio::awaitable<void> supervise() {
        asio::steady_timer timer(ioc);
        for (;;) {
            if (stopping) co_return;
            if (const auto at = client->node_for(kBusChannel)) {
                make_bus(*at);
                break;
            }
            timer.expires_after(milliseconds(50));
            co_await timer.async_wait(tuple_awaitable);
        }
        auto last_renew = SteadyClock::now();
        for (;;) {
            timer.expires_after(milliseconds(50));
            co_await timer.async_wait(tuple_awaitable);
            if (stopping) co_return;
            co_await pay_debt();
            if (SteadyClock::now() - last_renew >= cfg.lease_ttl / 3) {
                last_renew = SteadyClock::now();
                co_await renew_leases();
            }
            background_barrier();
            expire_blocks();
        }
    }

    void expire_blocks() {
        const auto now = SteadyClock::now();
        std::erase_if(blocked, [now](const auto& b) { return b.second <= now; });
    }

    // --- barriers ------------------------------------------------------------

    void send_ping() { asio::co_spawn(ioc, ping(), asio::detached); }

    asio::awaitable<void> ping() {
        auto self = shared_from_this();
        const auto r = co_await bus->exec(cmd("PING"), std::chrono::duration_cast<milliseconds>(cfg.barrier_timeout));
        const bool ok = !r.ec && ((r.reply.is_array() && !r.reply.elements.empty() &&
                                   r.reply.elements[0].str == "pong") ||
                                  (r.reply.is_string() && r.reply.str == "PONG"));
        if (!ok) {
            owner.stats_.barrier_failures.fetch_add(1, std::memory_order_relaxed);
            for (auto& w : batcher.on_failure()) w->timer.cancel();
            co_return;
        }
        owner.stats_.barriers.fetch_add(1, std::memory_order_relaxed);
        bool next = false;
        const auto now = SteadyClock::now();
        auto done = batcher.on_pong(now, next);
        if (cfg.max_invalidation_lag.count() > 0) publish_freshness();
        for (auto& w : done) {
            w->ok = true;
            w->timer.cancel();
        }
        if (next) send_ping();
    }

    /// A read arriving before fresh_until_ns needs no barrier: the last one
    /// completed was sent at most max_invalidation_lag before it.
    void publish_freshness() {
        const auto lag = std::chrono::duration_cast<SteadyClock::duration>(cfg.max_invalidation_lag);
        if (const auto at = batcher.completed_sent_at())
            fresh_until_ns.store((*at + lag).time_since_epoch().count(), std::memory_order_release);
    }

    /// With max_invalidation_lag H: a PING every H/2 while per-user reads come.
    void background_barrier() {
        if (cfg.max_invalidation_lag.count() == 0 || !owner.bus_up()) return;
        const auto now = SteadyClock::now();
        if (now.time_since_epoch().count() - last_read_ns.load() > std::chrono::nanoseconds(std::chrono::seconds(1)).count())
            return;
        if (batcher.start_background(now)) send_ping();
    }

    asio::awaitable<bool> wait_barrier() {
        if (!owner.bus_up()) co_return false;
        const auto start = SteadyClock::now();
        last_read_ns.store(start.time_since_epoch().count());
        auto w = std::make_shared<Waiter>(ioc.get_executor());
        w->timer.expires_after(cfg.barrier_timeout);
        if (batcher.add(w, start)) send_ping();
        co_await w->timer.async_wait(tuple_awaitable);
        auto& st = owner.stats_;
        st.barrier_waits.fetch_add(1, std::memory_order_relaxed);
        st.barrier_wait_us.fetch_add(
            std::chrono::duration_cast<std::chrono::microseconds>(SteadyClock::now() - start).count(),
            std::memory_order_relaxed);
        if (!w->ok) st.barrier_failures.fetch_add(1, std::memory_order_relaxed);
        co_return w->ok;
    }

    // --- L2 and leases -------------------------------------------------------

    asio::awaitable<Found> find(cache::CacheKey key, std::string route, bool shared, std::uint64_t local_generation,
                                cache::TimePoint now, milliseconds wait_limit) {
        Found out;
        if (!usable()) co_return out;
        if (!shared && blocked.contains(key.identity)) co_return out;
        out.keys = keys_for(key, route, shared);
        const auto& k = out.keys;
        const auto start = SteadyClock::now();
        auto backoff = milliseconds(20);
        bool waited = false;
        for (;;) {
            const auto token = owner.instance_id_ + ":" + std::to_string(++lease_seq);
            const auto r = co_await run(lookup, key_list(k),
                                        cmd(random_start(), std::to_string(generation_ttl.count()), token,
                                            std::to_string(lease_px().count()), "1", std::to_string(unix_ms())));
            if (!r.ok() || !r.reply.is_array() || r.reply.elements.size() != 3) {
                owner.stats_.l2_errors.fetch_add(1, std::memory_order_relaxed);
                co_return out;
            }
            const auto& gen = r.reply.elements[0].str;
            const auto& kind = r.reply.elements[1].str;
            const auto& payload = r.reply.elements[2].str;
            if (kind == "hit") {
                decoded(out, key, gen, payload, local_generation, now + (SteadyClock::now() - start));
                co_return out;
            }
            if (kind == "lead") {
                owner.stats_.lease_won.fetch_add(1, std::memory_order_relaxed);
                owner.stats_.l2_misses.fetch_add(1, std::memory_order_relaxed);
                out.kind = Found::Kind::lead;
                out.generation = gen;
                out.lease = gen + "|" + token;
                held[k.lease] = out.lease;
                if (!payload.empty()) {  // a value past its freshness: a fallback if the fetch fails
                    Found stale;
                    stale.keys = k;
                    decoded(stale, key, gen, payload, local_generation, now + (SteadyClock::now() - start), false);
                    if (stale.kind == Found::Kind::hit) out.stale = std::move(stale.entry);
                }
                co_return out;
            }
            if (kind == "fail") {
                owner.stats_.lease_failed_seen.fetch_add(1, std::memory_order_relaxed);
                unsigned status = 502;
                std::from_chars(payload.data(), payload.data() + payload.size(), status);
                out.kind = Found::Kind::failed;
                out.status = status;
                co_return out;
            }
            if (!waited) owner.stats_.lease_waits.fetch_add(1, std::memory_order_relaxed);
            waited = true;
            if (SteadyClock::now() + backoff - start > wait_limit) {
                owner.stats_.lease_timeouts.fetch_add(1, std::memory_order_relaxed);
                out.kind = Found::Kind::lead;  // on our own, no lease
                out.generation = gen;
                co_return out;
            }
            asio::steady_timer timer(ioc, backoff);
            co_await timer.async_wait(tuple_awaitable);
            backoff = std::min(backoff * 2, milliseconds(200));
        }
    }

    /// `out` (its keys set) becomes a hit on `value`, or, refused, a lead
    /// without a lease (the fetch's store still compares the generation).
    void decoded(Found& out, const cache::CacheKey& key, const std::string& gen, const std::string& value,
                 std::uint64_t local_generation, cache::TimePoint now, bool count = true) {
        const auto d = decode_entry(value, key, gen, epoch_of(client->run_id_for(out.keys.entry)), local_generation,
                                    std::chrono::system_clock::now(), now, out.entry,
                                    key.has_identity ? bus_up_since_ms : 0);
        out.generation = gen;
        out.kind = d == Decoded::ok ? Found::Kind::hit : Found::Kind::lead;
        if (!count) return;
        (d == Decoded::ok ? owner.stats_.l2_hits : owner.stats_.l2_rejected).fetch_add(1, std::memory_order_relaxed);
        if (d != Decoded::ok) spdlog::debug("shared tier: L2 value refused ({})", to_string(d));
    }

    asio::awaitable<Found> generation(cache::CacheKey key, std::string route, bool shared) {
        Found out;
        if (!usable()) co_return out;
        out.keys = keys_for(key, route, shared);
        const auto r = co_await run(lookup, key_list(out.keys),
                                    cmd(random_start(), std::to_string(generation_ttl.count()), "-", "1", "0",
                                        std::to_string(unix_ms())));
        if (!r.ok() || !r.reply.is_array() || r.reply.elements.size() != 3) co_return out;
        out.kind = Found::Kind::lead;
        out.generation = r.reply.elements[0].str;
        co_return out;
    }

    asio::awaitable<void> put(cache::CacheKey key, Found found, cache::EntryPtr entry, cache::TimePoint now) {
        const auto& k = found.keys;
        held.erase(k.lease);
        if (!usable()) co_return;
        auto value = encode_entry(*entry, key, found.generation, epoch_of(client->run_id_for(k.entry)),
                                  std::chrono::system_clock::now(), now);
        const auto r = co_await run(store, key_list(k),
                                    cmd(std::move(value), std::to_string(value_px(*entry, now)), found.generation,
                                        found.lease));
        auto& st = owner.stats_;
        if (!r.ok()) st.l2_errors.fetch_add(1, std::memory_order_relaxed);
        else if (r.reply.integer == 1) st.l2_stores.fetch_add(1, std::memory_order_relaxed);
        else st.l2_store_refused.fetch_add(1, std::memory_order_relaxed);
    }

    /// Sets our lease to `value` ("" = drops it).
    asio::awaitable<void> set_lease(std::string lease_key, std::string ours, std::string value, milliseconds px) {
        if (value != ours) held.erase(lease_key);
        if (!usable() || ours.empty()) co_return;
        const auto r = co_await run(lease, cmd(lease_key), cmd(ours, value, std::to_string(std::max<long long>(1, px.count()))));
        if (!r.ok()) owner.stats_.l2_errors.fetch_add(1, std::memory_order_relaxed);
    }

    asio::awaitable<void> renew_leases() {
        const auto copy = held;
        for (const auto& [key, value] : copy) co_await set_lease(key, value, value, lease_px());
    }

    // --- writes --------------------------------------------------------------

    /// One attempt at what `d` still needs; true when nothing is left.
    asio::awaitable<bool> deliver(Debt& d, milliseconds timeout) {
        if (!d.generations_done) {
            std::vector<std::string> keys;
            std::vector<std::string> args{std::to_string(generation_ttl.count())};
            for (const auto& route : d.routes) {
                keys.push_back(generation_key(d.identity, route));
                args.push_back(random_start());
            }
            if (keys.empty()) d.generations_done = true;
            else d.generations_done = (co_await run(bump, keys, std::move(args), timeout)).ok();
        }
        if (!d.published) {
            const BusMessage m{.origin = owner.instance_id_,
                               .published_us = unix_us(),
                               .drop_credential = d.drop_credential,
                               .generations_unacknowledged = !d.generations_done,
                               .identity = d.identity,
                               .principal = d.principal,
                               .routes = d.routes};
            const auto r = co_await client->exec(std::string(kBusChannel),
                                                 cmd("SPUBLISH", kBusChannel, encode(m)), timeout);
            d.published = r.ok();
        }
        co_return d.generations_done && d.published;
    }

    asio::awaitable<bool> publish(cache::IdentityHash identity, std::vector<std::string> routes, bool drop,
                                  std::optional<cache::IdentityHash> principal) {
        auto& st = owner.stats_;
        Debt d{.identity = identity, .principal = principal, .routes = std::move(routes), .drop_credential = drop};
        const auto deadline = SteadyClock::now() + cfg.publish_timeout;
        asio::steady_timer timer(ioc);
        for (;;) {
            if (key_state.load() == 2) co_return false;  // not sharing (logged at the check)
            // The bump first: a receiver that applies the message must find the
            // global generation already moved, or be told it is not ("n").
            // A paused Redis (CLIENT PAUSE WRITE) answers late, not never: wait for it, within the budget.
            const auto left = std::chrono::duration_cast<milliseconds>(deadline - SteadyClock::now());
            const bool done = co_await deliver(d, std::max(left, std::chrono::duration_cast<milliseconds>(cfg.op_timeout)));
            if (done) {
                st.published.fetch_add(1, std::memory_order_relaxed);
                co_return true;
            }
            if (d.published) break;  // told the others; the bump goes on as debt
            if (SteadyClock::now() + milliseconds(20) >= deadline) break;
            timer.expires_after(milliseconds(20));
            co_await timer.async_wait(tuple_awaitable);
        }
        if (!d.published) st.publish_failures.fetch_add(1, std::memory_order_relaxed);
        else st.published.fetch_add(1, std::memory_order_relaxed);
        if (debt.size() < 100000) debt.push_back(std::move(d));
        st.debt.store(debt.size(), std::memory_order_relaxed);
        spdlog::warn("shared tier: a write's invalidation is not acknowledged yet ({}); queued ({} in debt)",
                     d.published ? "published, generations pending" : "not published", debt.size());
        co_return d.published;
    }

    asio::awaitable<void> pay_debt() {
        while (!debt.empty() && key_state.load() == 1) {
            const bool done = co_await deliver(debt.front(), std::chrono::duration_cast<milliseconds>(cfg.op_timeout));
            if (!done) break;
            debt.pop_front();
            owner.stats_.debt_delivered.fetch_add(1, std::memory_order_relaxed);
        }
        owner.stats_.debt.store(debt.size(), std::memory_order_relaxed);
    }
};

// --- the face ---------------------------------------------------------------

SharedTier::SharedTier(const config::SharedTierConfig& cfg, const cache::IdentityHasher& hasher, Hooks hooks,
                       milliseconds generation_ttl, milliseconds error_hold, bool principals)
    : bypass_when_down_(cfg.on_redis_down != "local"), l2_(cfg.l2), principals_(principals), instance_id_(random_id()) {
    impl_ = std::make_shared<Impl>(*this, cfg, hasher, std::move(hooks), generation_ttl, error_hold);
}

SharedTier::~SharedTier() { stop(); }

std::optional<std::string> SharedTier::start(milliseconds wait) {
    auto& im = *impl_;
    redis::Client::Options o;
    o.cluster = !im.cfg.cluster.empty();
    for (const auto& a : o.cluster ? im.cfg.cluster : std::vector<std::string>{im.cfg.redis})
        if (auto parsed = redis::parse_address(a)) o.seeds.push_back(*parsed);
    o.node = im.cfg_node_options();
    im.client = std::make_unique<redis::Client>(im.ioc.get_executor(), o);
    im.client->start();
    asio::co_spawn(im.ioc, im.supervise(), asio::detached);
    im.thread = std::thread([p = impl_.get()] {
        p->ioc.run();
        p->ran_out.store(true);
    });
    const auto until = SteadyClock::now() + wait;
    while (SteadyClock::now() < until && im.key_state.load() == 0) std::this_thread::sleep_for(milliseconds(10));
    if (im.key_state.load() == 2)
        return "the shared tier's Redis holds another identity key (shared_tier.identity_key_file differs from the "
               "other instances')";
    if (im.key_state.load() == 0)
        spdlog::warn("shared tier: Redis not reachable yet; per-user reads {} until it is",
                     bypass_when_down_ ? "bypass the cache" : "use this instance's cache");
    return std::nullopt;
}

void SharedTier::stop() {
    if (!impl_ || !impl_->thread.joinable()) return;
    auto im = impl_;
    asio::post(im->ioc, [im] {
        im->stopping = true;
        for (auto& w : im->batcher.on_failure()) w->timer.cancel();
        if (im->bus) im->bus->stop();
        if (im->client) im->client->stop();
        im->work.reset();
    });
    // What is pending completes (closed connections, cancelled timers) and the
    // thread runs out of work; after a second whatever is left is cut.
    const auto until = SteadyClock::now() + std::chrono::seconds(1);
    while (!im->ran_out.load() && SteadyClock::now() < until) std::this_thread::sleep_for(milliseconds(5));
    im->ioc.stop();
    im->thread.join();
}

std::string SharedTier::state() const {
    switch (impl_->key_state.load()) {
        case 2: return "key-mismatch";
        case 0: return "connecting";
        default: break;
    }
    return bus_up() ? "up" : "down";
}

SharedTier::Transport SharedTier::transport() const {
    Transport t;
    if (!impl_->client) return t;
    const auto c = impl_->client->totals();
    t = {c.ops, c.errors, c.timeouts, c.connects, c.last_rtt_us, impl_->client->nodes()};
    return t;
}

asio::awaitable<bool> SharedTier::barrier() {
    if (!bus_up()) co_return false;
    if (SteadyClock::now().time_since_epoch().count() < impl_->fresh_until_ns.load(std::memory_order_acquire)) {
        stats_.barrier_fresh.fetch_add(1, std::memory_order_relaxed);
        co_return true;
    }
    co_return co_await asio::co_spawn(impl_->ioc, impl_->wait_barrier(), asio::use_awaitable);
}

asio::awaitable<SharedTier::Found> SharedTier::find(const cache::CacheKey& key, const rules::RouteRule& rule,
                                                    std::uint64_t local_generation, cache::TimePoint now,
                                                    milliseconds wait_limit) {
    if (!impl_->usable()) co_return Found{};
    co_return co_await asio::co_spawn(impl_->ioc, impl_->find(key, rule.name, !cache::per_user(rule), local_generation, now, wait_limit),
                                      asio::use_awaitable);
}

asio::awaitable<SharedTier::Found> SharedTier::generation(const cache::CacheKey& key, const rules::RouteRule& rule) {
    if (!impl_->usable()) co_return Found{};
    co_return co_await asio::co_spawn(impl_->ioc, impl_->generation(key, rule.name, !cache::per_user(rule)), asio::use_awaitable);
}

void SharedTier::store(const cache::CacheKey& key, const Found& found, cache::EntryPtr entry, cache::TimePoint now) {
    if (found.generation.empty() || !entry) return release(found);
    asio::co_spawn(impl_->ioc, impl_->put(key, found, std::move(entry), now), asio::detached);
}

void SharedTier::fail(const Found& found, unsigned status) {
    if (found.lease.empty()) return;
    asio::co_spawn(impl_->ioc,
                   impl_->set_lease(found.keys.lease, found.lease, found.generation + "|!" + std::to_string(status),
                                    impl_->error_hold),
                   asio::detached);
}

void SharedTier::release(const Found& found) {
    if (found.lease.empty()) return;
    asio::co_spawn(impl_->ioc, impl_->set_lease(found.keys.lease, found.lease, "", milliseconds(1)), asio::detached);
}

asio::awaitable<bool> SharedTier::publish(cache::IdentityHash identity, std::vector<std::string> routes,
                                          bool drop_credential, std::optional<cache::IdentityHash> principal) {
    co_return co_await asio::co_spawn(impl_->ioc,
                                      impl_->publish(identity, std::move(routes), drop_credential, principal),
                                      asio::use_awaitable);
}

}  // namespace cacheproxy::tier
