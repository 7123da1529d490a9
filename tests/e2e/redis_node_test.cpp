// redis::Node and redis::Client (proxy/redis/) against real redis-server
// processes (tests/support/redis_server.hpp): pipelining, deadlines, the
// close-and-reconnect path (SIGSTOP, kill, restart, CLIENT KILL), the
// subscriber's push-before-reply ordering, and Cluster slot routing with a
// MOVED after a slot changes owner.
//
// Every test drives its own io_context on the test thread; every wait is a
// bounded poll of a condition, and timings are only asserted loosely.

#include "redis/client.hpp"
#include "redis/node.hpp"
#include "support/redis_server.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <gtest/gtest.h>

#include <exception>
#include <functional>
#include <map>
#include <optional>
#include <set>

namespace cacheproxy::redis_e2e {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using redis::Error;
using redis::Reply;
using redis::Result;
using boost::system::error_code;

// ------------------------------------------------------------------ helpers

/// Runs the io_context until `done()` or `limit`; true if done.
bool run_until(asio::io_context& io, const std::function<bool()>& done, std::chrono::milliseconds limit = 5s) {
    const auto deadline = Clock::now() + limit;
    io.restart();
    while (!done() && Clock::now() < deadline) io.run_one_for(20ms);
    return done();
}

/// Runs `aw` to completion on io (bounded); fails the test if it does not finish.
template <class T>
std::optional<T> run_co(asio::io_context& io, asio::awaitable<T> aw, std::chrono::milliseconds limit = 10s) {
    std::optional<T> out;
    std::exception_ptr error;
    bool finished = false;
    asio::co_spawn(io, std::move(aw), [&](std::exception_ptr e, T value) {
        finished = true;
        error = e;
        if (!e) out = std::move(value);
    });
    EXPECT_TRUE(run_until(io, [&] { return finished; }, limit)) << "coroutine did not finish in time";
    if (error) std::rethrow_exception(error);
    return out;
}

std::vector<std::string> args(std::initializer_list<std::string> list) { return list; }

redis::Node::Options node_options(std::uint16_t port) {
    redis::Node::Options o;
    o.host = "127.0.0.1";
    o.port = port;
    o.connect_timeout = 500ms;
    o.op_timeout = 2s;  // generous: the tests give a short one where they mean it
    o.backoff_min = 20ms;
    o.backoff_max = 200ms;
    return o;
}

/// A fresh server per test; the io_context outlives every Node (declared first).
class RedisNode : public ::testing::Test {
protected:
    void TearDown() override {
        // The callbacks capture the test body's locals, gone by now: drop
        // them, then let the stopped nodes' coroutines finish before the io_context goes.
        for (auto& n : nodes_) {
            n->on_connect = nullptr;
            n->on_up = nullptr;
            n->on_down = nullptr;
            n->on_push = nullptr;
            n->stop();
        }
        io.restart();
        io.run_for(1s);
    }
    /// A Node owned by the fixture (destroyed after TearDown, before the io_context).
    redis::Node& make_node(redis::Node::Options o) {
        nodes_.push_back(std::make_unique<redis::Node>(io.get_executor(), std::move(o)));
        return *nodes_.back();
    }
    bool wait_up(redis::Node& n, std::chrono::milliseconds limit = 5s) {
        return run_until(io, [&] { return n.up(); }, limit);
    }
    Result exec(redis::Node& n, std::vector<std::string> argv, std::chrono::milliseconds timeout = {}) {
        return run_co(io, n.exec(std::move(argv), timeout)).value_or(Result{});
    }

    asio::io_context io;
    e2e::RedisServer server;

private:
    std::vector<std::unique_ptr<redis::Node>> nodes_;
};

// ------------------------------------------------------------------ Node

TEST_F(RedisNode, SetGetRoundTrip) {
    redis::Node& node = make_node(node_options(server.port()));
    node.start();
    ASSERT_TRUE(wait_up(node));
    EXPECT_FALSE(node.run_id().empty());

    const std::string value("bin\0ary\r\n", 9);
    Result set = exec(node, args({"SET", "k", value}));
    ASSERT_TRUE(set.ok()) << set.ec.message() << " " << set.reply.str;
    EXPECT_EQ(set.reply.str, "OK");
    Result get = exec(node, args({"GET", "k"}));
    ASSERT_TRUE(get.ok());
    EXPECT_EQ(get.reply.str, value);
    Result missing = exec(node, args({"GET", "absent"}));
    EXPECT_TRUE(missing.ok());
    EXPECT_TRUE(missing.reply.is_nil());
    Result wrong = exec(node, args({"NOSUCHCOMMAND"}));
    EXPECT_FALSE(wrong.ec);
    EXPECT_TRUE(wrong.reply.is_error());
    EXPECT_GE(node.stats().ops.load(), 4u);
    EXPECT_EQ(node.stats().connects.load(), 1u);
}

TEST_F(RedisNode, PipelinedIncrFromConcurrentCoroutinesAnsweredInOrder) {
    redis::Node& node = make_node(node_options(server.port()));
    node.start();
    ASSERT_TRUE(wait_up(node));

    constexpr int n = 1000;
    std::vector<long long> got(n, -1);
    int finished = 0;
    for (int i = 0; i < n; ++i) {
        asio::co_spawn(io, node.exec(args({"INCR", "counter"})), [&, i](std::exception_ptr e, Result r) {
            ++finished;
            if (!e && r.ok()) got[i] = r.reply.integer;
        });
    }
    ASSERT_TRUE(run_until(io, [&] { return finished == n; }, 10s));
    int wrong = 0;
    for (int i = 0; i < n; ++i) wrong += got[i] != i + 1;
    EXPECT_EQ(wrong, 0) << "first: got[0]=" << got[0] << " got[999]=" << got[n - 1];
    EXPECT_EQ(server.cmd({"GET", "counter"}).str, "1000");
}

TEST_F(RedisNode, DeadlineMissedClosesFailsAllAndReconnects) {
    redis::Node& node = make_node(node_options(server.port()));
    std::vector<error_code> downs;
    node.on_down = [&](error_code ec) { downs.push_back(ec); };
    node.start();
    ASSERT_TRUE(wait_up(node));

    server.pause();
    std::optional<Result> slow, fast;
    asio::co_spawn(io, node.exec(args({"GET", "a"}), 10s), [&](std::exception_ptr, Result r) { slow = r; });
    asio::co_spawn(io, node.exec(args({"GET", "b"}), 100ms), [&](std::exception_ptr, Result r) { fast = r; });
    const auto start = Clock::now();
    ASSERT_TRUE(run_until(io, [&] { return slow && fast; }, 5s));
    EXPECT_LT(Clock::now() - start, 2s);
    EXPECT_EQ(fast->ec, make_error_code(Error::timeout));
    EXPECT_EQ(slow->ec, make_error_code(Error::closed));
    EXPECT_FALSE(node.up());
    ASSERT_EQ(downs.size(), 1u);
    EXPECT_EQ(downs[0], make_error_code(Error::timeout));
    EXPECT_EQ(node.stats().timeouts.load(), 1u);
    EXPECT_EQ(node.stats().disconnects.load(), 1u);

    // Down: refused at once, nothing sent.
    const auto before = Clock::now();
    Result refused = exec(node, args({"PING"}));
    EXPECT_EQ(refused.ec, make_error_code(Error::not_connected));
    EXPECT_LT(Clock::now() - before, 1s);

    server.resume();
    ASSERT_TRUE(wait_up(node, 10s)) << "no reconnect after SIGCONT";
    Result pong = exec(node, args({"PING"}));
    EXPECT_TRUE(pong.ok());
    EXPECT_EQ(pong.reply.str, "PONG");
}

TEST_F(RedisNode, ExecWhileDownFailsAtOnce) {
    redis::Node& node = make_node(node_options(server.port()));
    Result before_start = exec(node, args({"PING"}));
    EXPECT_EQ(before_start.ec, make_error_code(Error::not_connected));

    server.kill();
    node.start();
    const auto start = Clock::now();
    for (int i = 0; i < 5; ++i) {
        Result r = exec(node, args({"PING"}));
        EXPECT_EQ(r.ec, make_error_code(Error::not_connected));
        run_until(io, [] { return false; }, 50ms);  // let a few reconnect attempts fail meanwhile
    }
    EXPECT_LT(Clock::now() - start, 3s);
    EXPECT_FALSE(node.up());
    EXPECT_EQ(node.stats().connects.load(), 0u);
}

TEST_F(RedisNode, KillAndRestartReconnectsWithNewRunId) {
    redis::Node& node = make_node(node_options(server.port()));
    int downs = 0;
    node.on_down = [&](error_code) { ++downs; };
    node.start();
    ASSERT_TRUE(wait_up(node));
    const std::string first = node.run_id();
    ASSERT_EQ(first, server.run_id());

    server.kill();
    ASSERT_TRUE(run_until(io, [&] { return downs == 1; }, 5s)) << "EOF not seen";
    EXPECT_FALSE(node.up());
    server.restart();
    ASSERT_TRUE(run_until(io, [&] { return node.up(); }, 10s));
    EXPECT_NE(node.run_id(), first);
    EXPECT_EQ(node.run_id(), server.run_id());
    EXPECT_TRUE(exec(node, args({"PING"})).ok());
    EXPECT_EQ(node.stats().connects.load(), 2u);
}

TEST_F(RedisNode, SubscriberPushesArriveBeforeLaterReplies) {
    redis::Node& sub = make_node(node_options(server.port()));
    std::vector<std::string> pushes;
    redis::Node* raw = &sub;
    sub.on_connect = [raw]() -> asio::awaitable<error_code> {
        std::vector<std::string> argv{"SSUBSCRIBE", "ch"};
        Result r = co_await raw->exec(std::move(argv));
        co_return r.ok() ? error_code{} : make_error_code(Error::protocol);
    };
    sub.on_push = [&](const Reply& r) { pushes.push_back(r.elements.back().str); };
    redis::Node& pub = make_node(node_options(server.port()));
    sub.start();
    pub.start();
    ASSERT_TRUE(wait_up(sub));
    ASSERT_TRUE(wait_up(pub));

    constexpr int rounds = 200;
    int violations = 0, published = 0;
    auto loop = [&]() -> asio::awaitable<int> {
        for (int i = 0; i < rounds; ++i) {
            std::vector<std::string> spublish{"SPUBLISH", "ch", "msg-" + std::to_string(i)};
            Result p = co_await pub.exec(std::move(spublish));
            published += p.ok() && p.reply.integer == 1;
            std::vector<std::string> ping{"PING"};
            Result pong = co_await sub.exec(std::move(ping));
            if (!pong.ok() || !pong.reply.is_array() || pushes.size() != static_cast<std::size_t>(i + 1) ||
                pushes.back() != "msg-" + std::to_string(i))
                ++violations;
        }
        co_return 0;
    };
    ASSERT_TRUE(run_co(io, loop(), 20s));
    EXPECT_EQ(published, rounds);
    EXPECT_EQ(violations, 0);
    EXPECT_EQ(pushes.size(), static_cast<std::size_t>(rounds));
}

TEST_F(RedisNode, ClientKillPubsubReconnectsAndResubscribes) {
    redis::Node& sub = make_node(node_options(server.port()));
    int connects = 0, downs = 0;
    std::vector<std::string> pushes;
    redis::Node* raw = &sub;
    sub.on_connect = [raw, &connects]() -> asio::awaitable<error_code> {
        ++connects;
        std::vector<std::string> argv{"SSUBSCRIBE", "ch"};
        Result r = co_await raw->exec(std::move(argv));
        co_return r.ok() ? error_code{} : make_error_code(Error::protocol);
    };
    sub.on_down = [&](error_code) { ++downs; };
    sub.on_push = [&](const Reply& r) { pushes.push_back(r.elements.back().str); };
    sub.start();
    ASSERT_TRUE(wait_up(sub));
    EXPECT_EQ(connects, 1);

    Reply killed = server.cmd({"CLIENT", "KILL", "TYPE", "pubsub"});
    EXPECT_EQ(killed.integer, 1);
    ASSERT_TRUE(run_until(io, [&] { return downs == 1 && connects == 2 && sub.up(); }, 5s))
        << "downs " << downs << " connects " << connects;

    // Subscribed again: a message published now arrives.
    Reply receivers = server.cmd({"SPUBLISH", "ch", "after"});
    EXPECT_EQ(receivers.integer, 1);
    ASSERT_TRUE(run_until(io, [&] { return !pushes.empty(); }, 5s));
    EXPECT_EQ(pushes.back(), "after");
}

TEST_F(RedisNode, AuthAndClientNameOnConnect) {
    e2e::RedisServer::Options so;
    so.extra_args = {"--requirepass", "s3cret"};
    e2e::RedisServer guarded(so);
    auto o = node_options(guarded.port());
    o.password = "s3cret";
    o.client_name = "cacheproxy-test";
    redis::Node& node = make_node(o);
    node.start();
    ASSERT_TRUE(wait_up(node));
    Result name = exec(node, args({"CLIENT", "GETNAME"}));
    EXPECT_EQ(name.reply.str, "cacheproxy-test");
    EXPECT_FALSE(node.run_id().empty());

    // A wrong password: AUTH fails, so the node never comes up.
    o.password = "wrong";
    redis::Node& refused = make_node(o);
    refused.start();
    EXPECT_FALSE(wait_up(refused, 500ms));
    EXPECT_EQ(exec(refused, args({"PING"})).ec, make_error_code(Error::not_connected));
    refused.stop();
}

TEST_F(RedisNode, DestroyedWithCommandsPendingCompletesThemClosed) {
    auto node = std::make_unique<redis::Node>(io.get_executor(), node_options(server.port()));
    node->start();
    ASSERT_TRUE(wait_up(*node));
    server.pause();
    std::vector<Result> results;
    for (int i = 0; i < 3; ++i)
        asio::co_spawn(io, node->exec(args({"PING"}), 10s), [&](std::exception_ptr, Result r) { results.push_back(r); });
    run_until(io, [] { return false; }, 50ms);  // written, waiting
    EXPECT_TRUE(results.empty());
    node.reset();  // ~Node: stop(); the coroutines still hold the state
    ASSERT_TRUE(run_until(io, [&] { return results.size() == 3; }, 2s));
    for (const auto& r : results) EXPECT_EQ(r.ec, make_error_code(Error::closed));
    server.resume();
}

// ------------------------------------------------------------------ Cluster

/// One three-primary cluster for the whole suite (creating one takes seconds).
class RedisCluster : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        try {
            cluster_ = std::make_unique<e2e::RedisCluster>();
        } catch (const std::exception& e) {
            error_ = e.what();
        }
    }
    static void TearDownTestSuite() { cluster_.reset(); }
    void SetUp() override { ASSERT_TRUE(cluster_) << error_; }
    void TearDown() override {
        if (client) {
            client->on_change = nullptr;  // it may capture the test body's locals
            client->stop();
        }
        for (auto& n : nodes_) n->stop();
        io.restart();
        io.run_for(1s);
    }

    static e2e::RedisCluster& cluster() { return *cluster_; }

    redis::Client& start_client() {
        redis::Client::Options o;
        o.cluster = true;
        for (const auto& s : cluster().seeds()) o.seeds.push_back(*redis::parse_address(s));
        o.node = node_options(0);
        client = std::make_unique<redis::Client>(io.get_executor(), o);
        client->start();
        EXPECT_TRUE(run_until(io, [&] { return client->up(); }, 10s)) << "cluster client not up";
        return *client;
    }
    Result exec(std::string_view key, std::vector<std::string> argv) {
        return run_co(io, client->exec(key, std::move(argv))).value_or(Result{});
    }
    redis::Node& make_node(std::uint16_t port) {
        nodes_.push_back(std::make_unique<redis::Node>(io.get_executor(), node_options(port)));
        return *nodes_.back();
    }
    /// The port of the primary that owns `slot`, as CLUSTER SLOTS on node 0 says.
    std::uint16_t owner_port(std::uint16_t slot) {
        Reply slots = cluster().node(0).cmd({"CLUSTER", "SLOTS"});
        for (const Reply& range : slots.elements)
            if (range.elements[0].integer <= slot && slot <= range.elements[1].integer)
                return static_cast<std::uint16_t>(range.elements[2].elements[1].integer);
        return 0;
    }

    asio::io_context io;
    std::unique_ptr<redis::Client> client;

private:
    std::vector<std::unique_ptr<redis::Node>> nodes_;
    static std::unique_ptr<e2e::RedisCluster> cluster_;
    static std::string error_;
};

std::unique_ptr<e2e::RedisCluster> RedisCluster::cluster_;
std::string RedisCluster::error_;

TEST_F(RedisCluster, SetGetOnEveryPrimary) {
    redis::Client& c = start_client();
    EXPECT_EQ(c.nodes(), 3u);
    std::set<std::uint16_t> ports;
    constexpr int keys = 300;
    for (int i = 0; i < keys; ++i) {
        const std::string key = "key-" + std::to_string(i);
        Result set = exec(key, args({"SET", key, "v" + std::to_string(i)}));
        ASSERT_TRUE(set.ok()) << key << ": " << set.ec.message() << " " << set.reply.str;
        auto where = c.node_for(key);
        ASSERT_TRUE(where);
        EXPECT_EQ(where->port, owner_port(redis::key_slot(key))) << key;
        ports.insert(where->port);
    }
    EXPECT_EQ(ports.size(), 3u);
    for (int i = 0; i < keys; ++i) {
        const std::string key = "key-" + std::to_string(i);
        Result get = exec(key, args({"GET", key}));
        ASSERT_TRUE(get.ok()) << key;
        EXPECT_EQ(get.reply.str, "v" + std::to_string(i));
    }
    // The keys really are spread: every node holds some.
    for (std::size_t n = 0; n < cluster().size(); ++n) EXPECT_GT(cluster().node(n).cmd({"DBSIZE"}).integer, 0);
    EXPECT_FALSE(c.run_id_for("key-1").empty());
    EXPECT_GE(c.totals().ops, 2u * keys);
}

TEST_F(RedisCluster, HashTaggedKeysInOneScript) {
    start_client();
    const std::string script =
        "redis.call('SET', KEYS[1], ARGV[1]); redis.call('SET', KEYS[2], ARGV[1]); "
        "return redis.call('MGET', KEYS[1], KEYS[2])";
    ASSERT_EQ(redis::key_slot("{user42}.a"), redis::key_slot("{user42}.b"));
    Result r = exec("{user42}", args({"EVAL", script, "2", "{user42}.a", "{user42}.b", "x"}));
    ASSERT_TRUE(r.ok()) << r.ec.message() << " " << r.reply.str;
    ASSERT_EQ(r.reply.elements.size(), 2u);
    EXPECT_EQ(r.reply.elements[0].str, "x");
    EXPECT_EQ(r.reply.elements[1].str, "x");
    // Without the tag the keys hash apart: Redis refuses the script.
    ASSERT_NE(redis::key_slot("a"), redis::key_slot("b"));
    Result cross = exec("a", args({"EVAL", script, "2", "a", "b", "x"}));
    EXPECT_FALSE(cross.ec);
    EXPECT_TRUE(cross.reply.is_error());
}

TEST_F(RedisCluster, WrongNodeAnswersMoved) {
    const std::string key = "moved-probe";
    const std::uint16_t slot = redis::key_slot(key);
    const std::uint16_t owner = owner_port(slot);
    std::uint16_t other = 0;
    for (std::size_t i = 0; i < cluster().size(); ++i)
        if (cluster().node(i).port() != owner) other = cluster().node(i).port();
    redis::Node& wrong = make_node(other);
    wrong.start();
    ASSERT_TRUE(run_until(io, [&] { return wrong.up(); }));
    Result r = run_co(io, wrong.exec(args({"GET", key}))).value_or(Result{});
    std::uint16_t moved_slot = 0;
    std::string address;
    ASSERT_TRUE(r.reply.moved(moved_slot, address)) << r.reply.str;
    EXPECT_EQ(moved_slot, slot);
    EXPECT_EQ(address, "127.0.0.1:" + std::to_string(owner));
}

TEST_F(RedisCluster, SlotMovedAfterStartIsFollowed) {
    redis::Client& c = start_client();
    const std::string key = "migrating-key";
    const std::string slot = std::to_string(redis::key_slot(key));
    const std::uint16_t from = owner_port(redis::key_slot(key));
    ASSERT_EQ(c.node_for(key)->port, from);
    e2e::RedisServer* source = cluster().by_port(from);
    e2e::RedisServer* target = nullptr;
    for (std::size_t i = 0; i < cluster().size(); ++i)
        if (cluster().node(i).port() != from) target = &cluster().node(i);
    ASSERT_TRUE(source && target);

    // The slot holds no key yet, so it moves without MIGRATE: importing,
    // migrating, then every primary is told its new owner.
    ASSERT_EQ(source->cmd({"CLUSTER", "COUNTKEYSINSLOT", slot}).integer, 0);
    const std::string source_id = source->cmd({"CLUSTER", "MYID"}).str;
    const std::string target_id = target->cmd({"CLUSTER", "MYID"}).str;
    EXPECT_EQ(target->cmd({"CLUSTER", "SETSLOT", slot, "IMPORTING", source_id}).str, "OK");
    EXPECT_EQ(source->cmd({"CLUSTER", "SETSLOT", slot, "MIGRATING", target_id}).str, "OK");
    for (std::size_t i = 0; i < cluster().size(); ++i)
        EXPECT_EQ(cluster().node(i).cmd({"CLUSTER", "SETSLOT", slot, "NODE", target_id}).str, "OK");

    // The client's map still names the source: MOVED, refresh, retry.
    Result set = exec(key, args({"SET", key, "moved"}));
    ASSERT_TRUE(set.ok()) << set.ec.message() << " " << set.reply.str;
    EXPECT_EQ(c.node_for(key)->port, target->port());
    EXPECT_EQ(target->cmd({"GET", key}).str, "moved");
    Result get = exec(key, args({"GET", key}));
    EXPECT_EQ(get.reply.str, "moved");
}

TEST_F(RedisCluster, PrimaryDownThenBack) {
    redis::Client& c = start_client();
    int changes = 0;
    c.on_change = [&] { ++changes; };
    const std::string key = "pause-probe";
    e2e::RedisServer* owner = cluster().by_port(c.node_for(key)->port);
    ASSERT_TRUE(owner);
    // Paused well under cluster-node-timeout (2 s), so the cluster itself never notices.
    owner->pause();
    Result r = run_co(io, c.exec(key, args({"GET", key}), 100ms)).value_or(Result{});
    owner->resume();
    EXPECT_EQ(r.ec, make_error_code(Error::timeout));
    EXPECT_FALSE(c.up());
    EXPECT_GE(changes, 1);
    EXPECT_EQ(c.totals().timeouts, 1u);
    ASSERT_TRUE(run_until(io, [&] { return c.up(); }, 10s));
    EXPECT_TRUE(run_co(io, c.exec(key, args({"GET", key}))).value_or(Result{}).ok());
}

TEST_F(RedisCluster, NotConnectedUntilSlotsAreKnown) {
    redis::Client::Options o;
    o.cluster = true;
    o.seeds.push_back(redis::Address{"127.0.0.1", 1});  // nothing listens on port 1
    o.node = node_options(0);
    client = std::make_unique<redis::Client>(io.get_executor(), o);
    client->start();
    Result r = exec("k", args({"GET", "k"}));
    EXPECT_EQ(r.ec, make_error_code(Error::not_connected));
    EXPECT_FALSE(client->up());
    EXPECT_FALSE(client->node_for("k"));
}

TEST(RedisClient, StandaloneRoutesEverythingToTheOneServer) {
    asio::io_context io;
    e2e::RedisServer server;
    redis::Client::Options o;
    o.seeds.push_back(redis::Address{"127.0.0.1", server.port()});
    o.node = node_options(0);
    auto client = std::make_unique<redis::Client>(io.get_executor(), o);
    int changes = 0;
    client->on_change = [&] { ++changes; };
    client->start();
    ASSERT_TRUE(run_until(io, [&] { return client->up(); }));
    EXPECT_GE(changes, 1);
    Result r = run_co(io, client->exec("any", args({"SET", "a", "1"}))).value_or(Result{});
    EXPECT_TRUE(r.ok());
    EXPECT_EQ(server.cmd({"GET", "a"}).str, "1");
    EXPECT_EQ(client->node_for("x")->port, server.port());
    EXPECT_EQ(client->run_id_for("x"), server.run_id());
    client.reset();
    io.restart();
    io.run_for(1s);
}

}  // namespace
}  // namespace cacheproxy::redis_e2e
