// A Redis deployment over redis::Node: standalone (one Node) or Cluster (a
// slot -> primary map read with CLUSTER SLOTS, one Node per primary).
//
// Discovery runs in the background until the map is known, with the same
// doubling backoff as a Node's reconnects; until then exec() fails at once
// with not_connected, like a Node that is down. A MOVED reply means the map
// is stale: it is read again (one refresh at a time; concurrent MOVEDs wait
// for it) and the command retried once. ASK (a slot being migrated) is given
// back as the error reply it is: the proxy does not reshard under load.
//
// Lifetime mirrors Node: the coroutines hold the shared_ptr<Impl>, the
// Nodes are shared_ptrs so a command in flight keeps its Node while the map
// drops it, and on_change is reached through `owner`, cleared by ~Client.

#include "redis/client.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <array>
#include <charconv>
#include <map>

namespace cacheproxy::redis {

namespace asio = boost::asio;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t slot_count = 16384;

/// CRC16-CCITT (XMODEM): polynomial 0x1021, initial 0, no reflection, as in
/// Redis's crc16.c; the table is built at compile time.
constexpr std::array<std::uint16_t, 256> make_crc16_table() {
    std::array<std::uint16_t, 256> table{};
    for (unsigned i = 0; i < 256; ++i) {
        std::uint16_t crc = static_cast<std::uint16_t>(i << 8);
        for (int bit = 0; bit < 8; ++bit)
            crc = static_cast<std::uint16_t>((crc & 0x8000) ? (crc << 1) ^ 0x1021 : crc << 1);
        table[i] = crc;
    }
    return table;
}
constexpr auto crc16_table = make_crc16_table();

std::uint16_t crc16(std::string_view bytes) {
    std::uint16_t crc = 0;
    for (unsigned char c : bytes)
        crc = static_cast<std::uint16_t>((crc << 8) ^ crc16_table[((crc >> 8) ^ c) & 0xff]);
    return crc;
}

std::string address_text(const Address& a) {
    return a.host.find(':') != std::string::npos ? "[" + a.host + "]:" + std::to_string(a.port)
                                                 : a.host + ":" + std::to_string(a.port);
}

}  // namespace

std::uint16_t key_slot(std::string_view key) {
    // The cluster spec's hash tag: the bytes between the first '{' and the
    // first '}' after it, when there are any; otherwise the whole key.
    const auto open = key.find('{');
    if (open != std::string_view::npos) {
        const auto close = key.find('}', open + 1);
        if (close != std::string_view::npos && close > open + 1) key = key.substr(open + 1, close - open - 1);
    }
    return static_cast<std::uint16_t>(crc16(key) & (slot_count - 1));
}

std::optional<Address> parse_address(std::string_view text) {
    std::string_view host, port;
    if (!text.empty() && text.front() == '[') {
        const auto end = text.find(']');
        if (end == std::string_view::npos || end + 1 >= text.size() || text[end + 1] != ':') return std::nullopt;
        host = text.substr(1, end - 1);
        port = text.substr(end + 2);
    } else {
        const auto colon = text.rfind(':');
        if (colon == std::string_view::npos) return std::nullopt;
        host = text.substr(0, colon);
        port = text.substr(colon + 1);
        if (host.find(':') != std::string_view::npos) return std::nullopt;  // IPv6 needs its brackets
    }
    if (host.empty() || port.empty()) return std::nullopt;
    unsigned value = 0;
    const auto [end, err] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (err != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535) return std::nullopt;
    error_code ec;
    asio::ip::make_address(std::string(host), ec);  // numeric only: there is no resolver on this path
    if (ec) return std::nullopt;
    return Address{std::string(host), static_cast<std::uint16_t>(value)};
}

struct Client::Impl : std::enable_shared_from_this<Client::Impl> {
    Impl(asio::any_io_executor ex, Options opts)
        : executor(std::move(ex)), options(std::move(opts)), backoff_timer(executor) {}

    asio::any_io_executor executor;
    Options options;
    Client* owner = nullptr;
    bool started = false, stopped = false;

    std::map<std::string, std::shared_ptr<Node>> nodes;  ///< by "host:port": standalone's one, or the primaries
    std::vector<std::shared_ptr<Node>> slots;            ///< cluster: slot -> primary (empty until known)
    std::shared_ptr<asio::steady_timer> refreshing;      ///< set while a refresh runs: others wait on it
    std::shared_ptr<asio::steady_timer> seed_wait;       ///< ask_seed waiting for its node: stop() cuts it short
    asio::steady_timer backoff_timer;

    std::shared_ptr<Node> make_node(const Address& a);
    std::shared_ptr<Node> owner_of(std::string_view slot_key) const;
    void changed();
    bool apply_slots(const Reply& reply, const Address& asked);

    static asio::awaitable<void> discover(std::shared_ptr<Impl> self);
    static asio::awaitable<bool> refresh(std::shared_ptr<Impl> self);
    static asio::awaitable<bool> read_slots(std::shared_ptr<Impl> self);
    static asio::awaitable<Result> ask_seed(std::shared_ptr<Impl> self, Address seed);
    static asio::awaitable<Result> exec(std::shared_ptr<Impl> self, std::string slot_key,
                                        std::vector<std::string> argv, std::chrono::milliseconds timeout);
};

void Client::Impl::changed() {
    if (owner != nullptr && owner->on_change) {
        auto on_change = owner->on_change;
        on_change();
    }
}

std::shared_ptr<Node> Client::Impl::make_node(const Address& a) {
    Node::Options o = options.node;
    o.host = a.host;
    o.port = a.port;
    auto node = std::make_shared<Node>(executor, std::move(o));
    std::weak_ptr<Impl> weak = weak_from_this();
    node->on_up = [weak] {
        if (auto self = weak.lock()) self->changed();
    };
    node->on_down = [weak](error_code) {
        if (auto self = weak.lock()) self->changed();
    };
    return node;
}

std::shared_ptr<Node> Client::Impl::owner_of(std::string_view slot_key) const {
    if (!options.cluster) return nodes.empty() ? nullptr : nodes.begin()->second;
    if (slots.empty()) return nullptr;
    return slots[key_slot(slot_key)];
}

/// CLUSTER SLOTS: [[start, end, [host, port, id, ...], replicas...], ...].
/// Rebuilds the map and the set of primary Nodes (keeping the ones still
/// primaries, so their connections survive a refresh). False if malformed.
bool Client::Impl::apply_slots(const Reply& reply, const Address& asked) {
    if (!reply.is_array() || reply.elements.empty()) return false;
    std::vector<std::shared_ptr<Node>> map(slot_count);
    std::map<std::string, std::shared_ptr<Node>> next;
    for (const Reply& range : reply.elements) {
        if (!range.is_array() || range.elements.size() < 3) return false;
        const Reply& lo = range.elements[0];
        const Reply& hi = range.elements[1];
        const Reply& primary = range.elements[2];
        if (lo.type != Reply::Type::integer || hi.type != Reply::Type::integer || lo.integer < 0 ||
            hi.integer >= static_cast<long long>(slot_count) || lo.integer > hi.integer)
            return false;
        if (!primary.is_array() || primary.elements.size() < 2 || primary.elements[1].type != Reply::Type::integer)
            return false;
        Address a{primary.elements[0].str, static_cast<std::uint16_t>(primary.elements[1].integer)};
        if (a.host.empty() || a.host == "?") a.host = asked.host;  // the node does not know its own address
        const std::string key = address_text(a);
        auto& node = next[key];
        if (!node) {
            auto old = nodes.find(key);
            node = old != nodes.end() ? old->second : make_node(a);
        }
        for (long long s = lo.integer; s <= hi.integer; ++s) map[static_cast<std::size_t>(s)] = node;
    }
    for (auto& [key, node] : next)
        if (!nodes.count(key)) node->start();
    for (auto& [key, node] : nodes)
        if (!next.count(key)) node->stop();
    nodes = std::move(next);
    slots = std::move(map);
    changed();
    return true;
}

// ------------------------------------------------------------------ discovery

asio::awaitable<void> Client::Impl::discover(std::shared_ptr<Impl> self) {
    // Until the map is known, and again whenever a primary is down (a
    // failover moves its slots to a replica, and a dead node sends no MOVED):
    // read CLUSTER SLOTS, backing off like a Node's reconnects. While all is
    // well this only looks at the nodes' state once per backoff_max.
    const auto lo = std::max(self->options.node.backoff_min, std::chrono::milliseconds(1));
    const auto hi = std::max(self->options.node.backoff_max, lo);
    auto delay = lo;
    while (!self->stopped) {
        bool healthy = !self->slots.empty();
        for (const auto& [key, node] : self->nodes) healthy = healthy && node->up();
        if (healthy) {
            delay = lo;
            self->backoff_timer.expires_after(hi);
        } else {
            co_await refresh(self);  // after a first map, its nodes connect during the delay
            self->backoff_timer.expires_after(delay);
            delay = std::min(delay * 2, hi);
        }
        co_await self->backoff_timer.async_wait(use_tuple);
    }
}

asio::awaitable<bool> Client::Impl::refresh(std::shared_ptr<Impl> self) {
    if (self->refreshing) {  // one at a time: wait for the one running
        auto wait = self->refreshing;
        co_await wait->async_wait(use_tuple);
        co_return !self->slots.empty();
    }
    self->refreshing = std::make_shared<asio::steady_timer>(self->executor, Clock::time_point::max());
    bool ok = false;
    try {
        ok = co_await read_slots(self);
    } catch (...) {
        ok = false;
    }
    self->refreshing->cancel();
    self->refreshing.reset();
    co_return ok;
}

asio::awaitable<bool> Client::Impl::read_slots(std::shared_ptr<Impl> self) {
    // The primaries we are connected to first, then the seeds.
    std::vector<std::pair<Address, std::shared_ptr<Node>>> known;
    for (auto& [key, node] : self->nodes)
        if (node->up()) known.emplace_back(Address{node->options().host, node->options().port}, node);
    for (auto& [a, node] : known) {
        std::vector<std::string> cluster_slots{"CLUSTER", "SLOTS"};  // a named local: see node.cpp's handshake
        const Result r = co_await node->exec(std::move(cluster_slots));
        if (self->stopped) co_return false;
        if (r.ok() && self->apply_slots(r.reply, a)) co_return true;
    }
    for (const Address& seed : self->options.seeds) {
        const Result r = co_await ask_seed(self, seed);
        if (self->stopped) co_return false;
        if (r.ok() && self->apply_slots(r.reply, seed)) co_return true;
    }
    co_return false;
}

/// CLUSTER SLOTS over a temporary Node to `seed`, waited for at most about
/// two connect timeouts.
asio::awaitable<Result> Client::Impl::ask_seed(std::shared_ptr<Impl> self, Address seed) {
    Node::Options o = self->options.node;
    o.host = seed.host;
    o.port = seed.port;
    auto node = std::make_shared<Node>(self->executor, o);
    auto ready = std::make_shared<asio::steady_timer>(self->executor, 2 * o.connect_timeout + o.op_timeout);
    node->on_up = [ready] { ready->cancel(); };
    node->start();
    self->seed_wait = ready;
    co_await ready->async_wait(use_tuple);
    self->seed_wait.reset();
    Result r{make_error_code(Error::not_connected), {}};
    std::vector<std::string> cluster_slots{"CLUSTER", "SLOTS"};
    if (node->up()) r = co_await node->exec(std::move(cluster_slots), std::max(o.op_timeout, o.connect_timeout));
    node->stop();
    co_return r;
}

// ------------------------------------------------------------------ commands

asio::awaitable<Result> Client::Impl::exec(std::shared_ptr<Impl> self, std::string slot_key,
                                           std::vector<std::string> argv, std::chrono::milliseconds timeout) {
    for (int attempt = 0;; ++attempt) {
        std::shared_ptr<Node> node = self->owner_of(slot_key);
        if (!node) {  // not started, or no map yet: like a node that is down; else a slot nobody serves
            const bool unknown = !self->options.cluster || self->slots.empty();
            co_return Result{make_error_code(unknown ? Error::not_connected : Error::no_node), {}};
        }
        // The first try sends a copy: a MOVED needs argv again for the retry.
        std::vector<std::string> send = attempt == 0 && self->options.cluster ? argv : std::move(argv);
        Result r = co_await node->exec(std::move(send), timeout);
        std::uint16_t slot = 0;
        std::string where;
        if (!self->options.cluster || !r.reply.moved(slot, where)) co_return r;
        if (attempt > 0) co_return Result{make_error_code(Error::redirected), {}};
        co_await refresh(self);
        if (self->stopped) co_return Result{make_error_code(Error::closed), {}};
    }
}

// ------------------------------------------------------------------ Client

Client::Client(asio::any_io_executor executor, Options options)
    : impl_(std::make_shared<Impl>(std::move(executor), std::move(options))) {
    impl_->owner = this;
}

Client::~Client() {
    impl_->owner = nullptr;
    stop();
}

void Client::start() {
    if (impl_->started || impl_->stopped) return;
    impl_->started = true;
    if (!impl_->options.cluster) {
        if (impl_->options.seeds.empty()) return;
        const Address& a = impl_->options.seeds.front();
        auto node = impl_->make_node(a);
        impl_->nodes.emplace(address_text(a), node);
        node->start();
        return;
    }
    asio::co_spawn(impl_->executor, Impl::discover(impl_), asio::detached);
}

void Client::stop() {
    if (impl_->stopped) return;
    impl_->stopped = true;
    impl_->backoff_timer.cancel();
    if (impl_->seed_wait) impl_->seed_wait->cancel();
    for (auto& [key, node] : impl_->nodes) node->stop();
}

bool Client::up() const {
    if (impl_->nodes.empty() || (impl_->options.cluster && impl_->slots.empty())) return false;
    for (const auto& [key, node] : impl_->nodes)
        if (!node->up()) return false;
    return true;
}

asio::awaitable<Result> Client::exec(std::string_view slot_key, std::vector<std::string> argv,
                                     std::chrono::milliseconds timeout) {
    // Not a coroutine itself: the key is copied into the frame, which holds the Impl, not this Client.
    return Impl::exec(impl_, std::string(slot_key), std::move(argv), timeout);
}

std::optional<Address> Client::node_for(std::string_view slot_key) const {
    auto node = impl_->owner_of(slot_key);
    if (!node) return std::nullopt;
    return Address{node->options().host, node->options().port};
}

std::string Client::run_id_for(std::string_view slot_key) const {
    auto node = impl_->owner_of(slot_key);
    return node ? node->run_id() : std::string();
}

Client::Totals Client::totals() const {
    Totals t;
    for (const auto& [key, node] : impl_->nodes) {
        const auto& s = node->stats();
        t.ops += s.ops.load(std::memory_order_relaxed);
        t.errors += s.errors.load(std::memory_order_relaxed);
        t.timeouts += s.timeouts.load(std::memory_order_relaxed);
        t.connects += s.connects.load(std::memory_order_relaxed);
        t.disconnects += s.disconnects.load(std::memory_order_relaxed);
        t.last_rtt_us = std::max(t.last_rtt_us, s.last_rtt_us.load(std::memory_order_relaxed));
    }
    return t;
}

std::size_t Client::nodes() const { return impl_->nodes.size(); }

}  // namespace cacheproxy::redis
