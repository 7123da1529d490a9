/// The shared tier (issue 15): three cacheproxy instances on one Redis (or a
/// 3-master Redis Cluster) in front of one legacy simulator. Each test says
/// which instance the client used for what, and what the origin saw. The
/// client-visible guarantee under test: after an order answered by any
/// instance, no instance answers that user's positions from before it; and
/// Redis stopped, paused, killed, restarted or flushed makes no client error.

#include "support/cache_helpers.hpp"
#include "support/fixtures.hpp"
#include "support/invalidation_helpers.hpp"
#include "support/json_lite.hpp"
#include "support/raw_client.hpp"
#include "support/redis_server.hpp"

#include <gtest/gtest.h>

#include <sys/stat.h>

#include <atomic>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace cacheproxy::e2e {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

/// A 64-hex-character key file, mode 0600, in `dir`.
std::string write_key_file(const TempDir& dir, const std::string& name, char fill) {
    const auto path = dir.file(name);
    std::ofstream(path) << std::string(64, fill) << "\n";
    ::chmod(path.c_str(), 0600);
    return path;
}

/// /stats of an instance, parsed (nullopt if it did not answer).
std::optional<Json> stats_of(const Proxy& p) {
    const auto r = http_request(p.admin_port(), "GET", "/stats");
    if (r.status != 200) return std::nullopt;
    return parse_json(r.body);
}

long long tier_counter(const Proxy& p, const std::string& name) {
    const auto s = stats_of(p);
    return s ? (*s)["shared_tier"][name].as_int() : -1;
}

std::string tier_state(const Proxy& p) {
    const auto s = stats_of(p);
    return s ? (*s)["shared_tier"]["state"].as_string() : "";
}

bool is_l2_hit(const Response& r) {
    const auto status = r.header("Cache-Status");
    return x_cache(r) == "HIT" && status && status->find("detail=l2") != std::string::npos;
}

class SharedTier : public SimulatorTest {
protected:
    static void SetUpTestSuite() { StartSharedSimulator(); }
    static void TearDownTestSuite() { StopSharedSimulator(); }

    /// Three instances with the order rules on `redis` (one address) or `cluster` (seeds).
    void start_instances(const std::string& redis, const std::vector<std::string>& cluster = {},
                         const std::string& extra_key = "", const std::string& extra_value = "") {
        key_file_ = write_key_file(dir_, "identity.key", 'a');
        for (int i = 0; i < 3; ++i)
            proxies_.push_back(StartProxy(with_rules(invalidation_rules(), [&](ProxyConfig& c) {
                configure(c, redis, cluster, key_file_);
                if (!extra_key.empty()) c.set(extra_key, extra_value);
            })));
        for (const auto& p : proxies_)
            ASSERT_TRUE(wait_until([&] { return tier_state(*p) == "up"; }, seconds(10)))
                << "shared tier not up: " << tier_state(*p) << "\n" << p->log().substr(0, 4000);
    }

    static void configure(ProxyConfig& c, const std::string& redis, const std::vector<std::string>& cluster,
                          const std::string& key_file) {
        if (!redis.empty()) c.set("shared_tier.redis", "\"" + redis + "\"");
        if (!cluster.empty()) {
            std::string list = "[";
            for (std::size_t i = 0; i < cluster.size(); ++i) list += (i ? ", \"" : "\"") + cluster[i] + "\"";
            c.set("shared_tier.cluster", list + "]");
        }
        c.set("shared_tier.identity_key_file", "\"" + key_file + "\"");
        c.set("shared_tier.op_timeout", "100ms");
        c.set("shared_tier.barrier_timeout", "100ms");
        c.set("shared_tier.publish_timeout", "3s");
    }

    Proxy& p(std::size_t i) { return *proxies_.at(i); }

    TempDir dir_{"shared-tier"};
    std::string key_file_;
    std::vector<std::unique_ptr<Proxy>> proxies_;
};

Response get(const Proxy& proxy, const std::string& target, int user) {
    return http_request(proxy.port(), "GET", target, bearer(user));
}

// ------------------------------------------------------------------ sharing

TEST_F(SharedTier, AFillOnOneInstanceIsAnL2HitOnTheOthers) {
    RedisServer redis;
    start_instances(redis.address());
    ASSERT_FALSE(HasFailure());

    // client: user1 reads positions through A (a miss: the fill), then through B and C
    Response a = get(p(0), positions_target(), 1);
    ASSERT_EQ(a.status, 200u) << describe(a);
    EXPECT_TRUE(CacheIs(a, "MISS"));
    // the store to Redis runs after A's answer: wait until it is there
    ASSERT_TRUE(wait_until([&] { return tier_counter(p(0), "l2_stores") == 1; }, seconds(5)));
    Response b = get(p(1), positions_target(), 1);
    Response c = get(p(2), positions_target(), 1);
    // B and C answer from the shared tier, with A's body; then from their own cache
    EXPECT_TRUE(is_l2_hit(b)) << describe(b);
    EXPECT_TRUE(is_l2_hit(c)) << describe(c);
    EXPECT_EQ(b.body, a.body);
    EXPECT_EQ(c.body, a.body);
    EXPECT_TRUE(CacheIs(get(p(1), positions_target(), 1), "HIT"));
    // the origin saw one positions read
    EXPECT_EQ(sim().stats().route("positions"), 1);
    // Redis holds no credential: no key names the token
    const auto keys = redis.cmd({"KEYS", "*"});
    for (const auto& k : keys.elements) EXPECT_EQ(k.str.find("user1"), std::string::npos) << k.str;
    // another user is not served user1's entry
    Response other = get(p(1), positions_target(), 2);
    EXPECT_TRUE(CacheIs(other, "MISS"));
    EXPECT_EQ(user_id_of(other), sim_user_id(2));
    // SIGTERM: the tier's thread stops with the rest, exit 0
    p(2).terminate();
    EXPECT_EQ(p(2).wait_exit(seconds(10)), 0) << p(2).log().substr(0, 3000);
}

TEST_F(SharedTier, AColdKeyHitByAllThreeAtOnceCostsOneUpstreamCall) {
    RedisServer redis;
    start_instances(redis.address());
    ASSERT_FALSE(HasFailure());
    sim().set_latency(R"({"default":0.0,"positions":1.0})");
    const long long before = sim().stats().route("positions");

    // client: 30 readers of user1's cold positions, 10 on each instance, released at once
    std::vector<Response> got(30);
    {
        std::vector<std::jthread> readers;
        for (int i = 0; i < 30; ++i)
            readers.emplace_back([&, i] {
                got[i] = http_request(p(i % 3).port(), "GET", positions_target(), bearer(1), {}, seconds(10));
            });
    }
    for (const auto& r : got) {
        EXPECT_EQ(r.status, 200u) << describe(r);
        EXPECT_EQ(user_id_of(r), sim_user_id(1));
    }
    // the origin saw one positions read for the three instances
    EXPECT_EQ(sim().stats().route("positions") - before, 1);
}

// ------------------------------------------------------------------ read-your-writes across instances

TEST_F(SharedTier, AnOrderThroughOneInstanceIsSeenAtOnceThroughTheOthers) {
    RedisServer redis;
    start_instances(redis.address());
    ASSERT_FALSE(HasFailure());
    Response seed = get(p(0), positions_target(), 1);
    double eth = position_size(seed, "ETHUSDT");
    ASSERT_GE(eth, 0) << seed.body;

    std::mt19937 rng(15);
    int stale = 0;
    for (int round = 0; round < 100; ++round) {
        // client: user1 warms positions on every instance (hits from here on) ...
        for (std::size_t i = 0; i < 3; ++i) ASSERT_EQ(get(p(i), positions_target(), 1).status, 200u);
        // ... orders through a random instance ...
        const auto writer = rng() % 3;
        Response order = place_order(p(writer).port(), bearer(1), OrderBody{}.json());
        ASSERT_EQ(order.status, 200u) << describe(order);
        ASSERT_EQ(success_of(order), 1) << order.body;
        eth += 1;
        // ... and reads at once through every instance: each shows the order
        for (std::size_t i = 0; i < 3; ++i) {
            Response r = get(p(i), positions_target(), 1);
            ASSERT_EQ(r.status, 200u) << describe(r);
            if (std::abs(position_size(r, "ETHUSDT") - eth) > 1e-6) ++stale;
        }
    }
    EXPECT_EQ(stale, 0);
    EXPECT_GE(tier_counter(p(1), "bus_messages"), 1);
}

TEST_F(SharedTier, AFillInFlightOnBWhenTheOrderPassesAIsNeverServedAfterIt) {
    RedisServer redis;
    start_instances(redis.address());
    ASSERT_FALSE(HasFailure());
    Response seed = sim().direct("GET", positions_target(), bearer(1));
    const double eth = position_size(seed, "ETHUSDT");
    ASSERT_GE(eth, 0);
    sim().set_latency(R"({"default":0.0,"positions":1.5})");

    // client X: user1 reads positions through B (cold: the fill; the origin snapshots at arrival)
    const auto t0 = Clock::now();
    Response slow;
    std::jthread reader([&] { slow = http_request(p(1).port(), "GET", positions_target(), bearer(1), {}, seconds(10)); });
    sleep_until_offset(t0, milliseconds(400));
    // client Y: user1 orders through A while B's fill is in flight; answered before the fill ends
    Response order = place_order(p(0).port(), bearer(1), OrderBody{}.json());
    ASSERT_EQ(order.status, 200u) << describe(order);
    ASSERT_LT(seconds_since(t0), 1.5) << "the order did not pass while the fill was in flight";
    reader.join();
    ASSERT_EQ(slow.status, 200u) << describe(slow);
    EXPECT_NEAR(position_size(slow, "ETHUSDT"), eth, 1e-6) << "the in-flight read was fetched before the order";
    sim().set_latency(R"({"default":0.0})");
    // client: reads through B and C after the order: neither is the pre-order fill
    for (std::size_t i : {1u, 2u, 0u}) {
        Response r = get(p(i), positions_target(), 1);
        ASSERT_EQ(r.status, 200u) << describe(r);
        EXPECT_NEAR(position_size(r, "ETHUSDT"), eth + 1, 1e-6) << "instance " << i << ": " << describe(r);
    }
}

TEST_F(SharedTier, AnOrderThroughOneTokenReachesTheUsersOtherTokenOnAnotherInstance) {
    // The rules know the user behind the token (user_id): tokens "user1" and
    // "phone-1" are the same user 999001 in the simulator.
    RedisServer redis;
    key_file_ = write_key_file(dir_, "identity.key", 'a');
    const std::string rules = "principal: { learn: { field: user_id } }\n" + invalidation_rules();
    for (int i = 0; i < 3; ++i)
        proxies_.push_back(StartProxy(with_rules(rules, [&](ProxyConfig& c) { configure(c, redis.address(), {}, key_file_); })));
    for (const auto& proxy : proxies_) ASSERT_TRUE(wait_until([&] { return tier_state(*proxy) == "up"; }, seconds(10)));
    const Headers desktop = {{"Authorization", "Bearer user1"}}, phone = {{"Authorization", "Bearer phone-1"}};

    // client: the phone reads positions through B (a miss, then a hit: B now knows the phone is user 999001)
    Response before = http_request(p(1).port(), "GET", positions_target(), phone);
    ASSERT_EQ(before.status, 200u) << describe(before);
    ASSERT_TRUE(CacheIs(http_request(p(1).port(), "GET", positions_target(), phone), "HIT"));
    const double eth = position_size(before, "ETHUSDT");
    // client: the desktop reads through A (A learns the desktop's user), then orders through A
    ASSERT_EQ(http_request(p(0).port(), "GET", positions_target(), desktop).status, 200u);
    Response order = place_order(p(0).port(), desktop, OrderBody{}.json());
    ASSERT_EQ(order.status, 200u) << describe(order);
    // client: the phone reads through B at once: the order is there
    Response after = http_request(p(1).port(), "GET", positions_target(), phone);
    ASSERT_EQ(after.status, 200u) << describe(after);
    EXPECT_NEAR(position_size(after, "ETHUSDT"), eth + 1, 1e-6) << describe(after);
    // per-user entries stay in each instance (a token another instance maps could not be reached in Redis)
    EXPECT_EQ(tier_counter(p(1), "l2_stores"), 0);
}

TEST_F(SharedTier, AnInstanceWithAnotherKeyRefusesToStart) {
    RedisServer redis;
    start_instances(redis.address());
    ASSERT_FALSE(HasFailure());
    const auto other_key = write_key_file(dir_, "other.key", 'b');
    Proxy::Options o = with_rules(invalidation_rules(), [&](ProxyConfig& c) { configure(c, redis.address(), {}, other_key); });
    std::unique_ptr<Proxy> wrong;
    try {
        wrong = StartProxy(o);
    } catch (const std::exception& e) {
        EXPECT_NE(std::string(e.what()).find("another identity key"), std::string::npos) << e.what();
        return;
    }
    FAIL() << "an instance with another identity key started:\n" << wrong->log();
}

// ------------------------------------------------------------------ Redis faults under load

/// Users each placing orders and reading their positions through random
/// instances, counting errors and stale reads (a read after the user's own
/// answered order that does not show it). Runs until stopped, bounded by
/// `rounds` per user (and each request by its 10 s deadline).
struct Load {
    std::atomic<int> errors{0}, stale{0}, reads{0}, writes{0};
    std::atomic<bool> stop{false};
    std::vector<std::jthread> users;
    std::vector<std::string> error_samples;
    std::mutex mu;

    /// `n_users` users who order and read, from `first_user` on, and two more
    /// who only read (so reads go on while every writer waits on its order).
    void start(std::vector<std::uint16_t> ports, int first_user, int n_users, int rounds) {
        for (int u = first_user; u < first_user + n_users + 2; ++u) {
            const bool writes = u < first_user + n_users;
            users.emplace_back([this, ports, u, rounds, writes] { run_user(ports, u, rounds, writes); });
        }
    }
    void note(const Response& r) {
        ++errors;
        std::lock_guard lock(mu);
        if (error_samples.size() < 5) error_samples.push_back(describe(r));
    }
    void run_user(const std::vector<std::uint16_t>& ports, int user, int rounds, bool orders) {
        std::mt19937 rng(user);
        Response seed = http_request(ports[0], "GET", positions_target(), bearer(user), {}, seconds(10));
        if (seed.status != 200) return note(seed);
        double eth = position_size(seed, "ETHUSDT");
        for (int i = 0; i < rounds && !stop.load(); ++i) {
            for (int k = 0; k < 3; ++k) {  // reads through random instances
                Response r = http_request(ports[rng() % 3], "GET", positions_target(), bearer(user), {}, seconds(10));
                ++reads;
                if (r.status != 200) note(r);
                else if (std::abs(position_size(r, "ETHUSDT") - eth) > 1e-6) ++stale;
            }
            if (!orders) continue;
            Response order = place_order(ports[rng() % 3], bearer(user), OrderBody{}.json(), seconds(10));
            ++writes;
            if (order.status != 200 || success_of(order) != 1) note(order);
            else eth += 1;
        }
    }
    void join() { users.clear(); }
};

class SharedTierFaults : public SharedTier {
protected:
    std::vector<std::uint16_t> ports() { return {p(0).port(), p(1).port(), p(2).port()}; }
    /// Runs the load before, while and after `fault` happens, then checks the outcome.
    void under_load(const std::function<void()>& fault, int rounds = 3000) {
        Load load;
        load.start(ports(), 10, 4, rounds);
        std::this_thread::sleep_for(milliseconds(300));
        const int before = load.reads.load();
        fault();
        const int during = load.reads.load() - before;
        std::this_thread::sleep_for(milliseconds(700));  // and after it
        load.stop = true;
        load.join();
        EXPECT_GT(during, 0) << "no read while the fault lasted";
        EXPECT_EQ(load.errors.load(), 0) << (load.error_samples.empty() ? "" : load.error_samples[0]);
        EXPECT_EQ(load.stale.load(), 0) << "stale reads after an own write";
        EXPECT_GT(load.writes.load(), 10);
        // the tier comes back by itself
        for (const auto& proxy : proxies_)
            EXPECT_TRUE(wait_until([&] { return tier_state(*proxy) == "up"; }, seconds(10))) << tier_state(*proxy);
    }
};

TEST_F(SharedTierFaults, RedisStoppedWithSigstopThenContinued) {
    RedisServer redis;
    start_instances(redis.address());
    ASSERT_FALSE(HasFailure());
    under_load([&] {
        redis.pause();
        std::this_thread::sleep_for(milliseconds(200));
        // client: a read through each instance while Redis hangs: answered, uncached
        for (std::size_t i = 0; i < 3; ++i) {
            Response r = get(p(i), positions_target(), 50);
            EXPECT_EQ(r.status, 200u) << describe(r);
            EXPECT_NE(r.header("Cache-Status").value_or("").find("shared-tier-down"), std::string::npos) << describe(r);
        }
        std::this_thread::sleep_for(milliseconds(1300));
        redis.resume();
    });
    // each bus came back (and made stale what it may have missed meanwhile)
    for (std::size_t i = 0; i < 3; ++i) EXPECT_GE(tier_counter(p(i), "bus_epochs"), 2) << i;
}

TEST_F(SharedTierFaults, RedisPausedWithClientPause) {
    RedisServer redis;
    start_instances(redis.address());
    ASSERT_FALSE(HasFailure());
    under_load([&] {
        redis.cmd({"CLIENT", "PAUSE", "1000", "WRITE"});
        std::this_thread::sleep_for(milliseconds(1200));
        redis.cmd({"CLIENT", "PAUSE", "1000", "ALL"});
        std::this_thread::sleep_for(milliseconds(1200));
    });
}

TEST_F(SharedTierFaults, RedisKilledAndRestartedEmpty) {
    RedisServer redis;
    start_instances(redis.address());
    ASSERT_FALSE(HasFailure());
    const auto run_id = redis.run_id();
    under_load([&] {
        redis.kill();
        std::this_thread::sleep_for(milliseconds(800));
        redis.restart();
    });
    EXPECT_NE(redis.run_id(), run_id);
}

TEST_F(SharedTierFaults, RedisFlushedUnderLoad) {
    RedisServer redis;
    start_instances(redis.address());
    ASSERT_FALSE(HasFailure());
    under_load([&] {
        for (int i = 0; i < 5; ++i) {
            redis.cmd({"FLUSHALL"});
            std::this_thread::sleep_for(milliseconds(200));
        }
    });
}

// ------------------------------------------------------------------ Redis Cluster

TEST_F(SharedTier, OnAThreeMasterClusterSharingAndReadYourWritesHold) {
    RedisCluster cluster;
    start_instances("", cluster.seeds());
    ASSERT_FALSE(HasFailure());
    // client: users 1..6 (their keys spread over the masters) fill on A, are L2 hits on B
    for (int user = 1; user <= 6; ++user) {
        Response a = get(p(0), positions_target(), user);
        ASSERT_EQ(a.status, 200u) << describe(a);
    }
    ASSERT_TRUE(wait_until([&] { return tier_counter(p(0), "l2_stores") == 6; }, seconds(5)))
        << tier_counter(p(0), "l2_stores");
    for (int user = 1; user <= 6; ++user) EXPECT_TRUE(is_l2_hit(get(p(1), positions_target(), user))) << user;
    std::set<std::uint16_t> holders;  // the entries sit on more than one master
    for (std::size_t i = 0; i < cluster.size(); ++i)
        if (cluster.node(i).cmd({"DBSIZE"}).integer > 0) holders.insert(cluster.node(i).port());
    EXPECT_GE(holders.size(), 2u);
    // client: each user orders through C and reads through B at once: it shows the order
    for (int user = 1; user <= 6; ++user) {
        const double before = position_size(get(p(1), positions_target(), user), "ETHUSDT");
        Response order = place_order(p(2).port(), bearer(user), OrderBody{}.json());
        ASSERT_EQ(order.status, 200u) << describe(order);
        Response after = get(p(1), positions_target(), user);
        EXPECT_NEAR(position_size(after, "ETHUSDT"), before + 1, 1e-6) << user << ": " << describe(after);
    }
}

}  // namespace
}  // namespace cacheproxy::e2e
