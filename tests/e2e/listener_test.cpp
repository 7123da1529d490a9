/// The client listeners (app/listener.hpp): every worker accepts its own
/// connections (one SO_REUSEPORT socket each when there are several), and a
/// second instance on the same port still refuses to start instead of
/// silently sharing it.

#include "support/fixtures.hpp"
#include "support/json_lite.hpp"
#include "support/process.hpp"
#include "support/raw_client.hpp"

#include <gtest/gtest.h>

#include <string>
#include <utility>

namespace cacheproxy::e2e {
namespace {

using std::chrono::seconds;

class Listener : public SimulatorTest {
protected:
    static void SetUpTestSuite() { StartSharedSimulator(); }
    static void TearDownTestSuite() { StopSharedSimulator(); }

    /// The per-worker "connections_accepted" figures of GET /stats.
    std::vector<long long> accepted_by_worker(Proxy& proxy) {
        Response r = http_request(proxy.admin_port(), "GET", "/stats");
        EXPECT_EQ(r.status, 200u) << r.head_text();
        std::vector<long long> out;
        const auto j = parse_json(r.body);
        if (!j) {
            ADD_FAILURE() << "/stats is not JSON: " << r.body.substr(0, 300);
            return out;
        }
        const Json& workers = (*j)["workers"];
        for (std::size_t i = 0; i < workers.items.size(); ++i)
            out.push_back(workers.at(i)["connections_accepted"].as_int());
        return out;
    }
};

TEST_F(Listener, ASecondInstanceOnTheSamePortRefusesToStartWithAddressInUse) {
    // (first's threads, second's threads): one worker binds without
    // SO_REUSEPORT, several bind a probe without it, then an SO_REUSEPORT group.
    for (const auto& [first_threads, second_threads] :
         std::vector<std::pair<int, int>>{{2, 2}, {1, 2}, {2, 1}}) {
        SCOPED_TRACE("first threads " + std::to_string(first_threads) + ", second threads " +
                     std::to_string(second_threads));
        auto first = StartProxy(Proxy::with_config(
            [t = first_threads](ProxyConfig& c) { c.set("threads", std::to_string(t)); }));

        // a second cacheproxy on the same listen port (its own admin port)
        TempDir dir("cacheproxy-second");
        ProxyConfig config(sim().url());
        config.set("listen", "\"127.0.0.1:" + std::to_string(first->port()) + "\"");
        config.set("threads", std::to_string(second_threads));
        Process second({CACHEPROXY_BINARY, "--config", dir.write("config.yaml", config.to_yaml())},
                       dir.file("proxy.log"));

        // it exits non-zero, saying why
        const auto code = second.wait_exit(seconds(10));
        ASSERT_TRUE(code.has_value()) << "the second instance kept running:\n" << second.read_log();
        EXPECT_NE(*code, 0);
        const std::string log = second.read_log();
        EXPECT_NE(log.find("cannot listen on 127.0.0.1:" + std::to_string(first->port())), std::string::npos) << log;
        EXPECT_NE(log.find("Address already in use"), std::string::npos) << log;

        // and the first one serves every connection still (none went to the second)
        for (int i = 0; i < 20; ++i) {
            Response r = http_request(first->port(), "GET", "/echo/first");
            ASSERT_EQ(r.status, 200u) << r.head_text();
        }
    }
}

TEST_F(Listener, WithTwoThreadsBothWorkersAcceptConnections) {
    auto proxy = StartProxy();  // threads: 2
    // clients: 200 connections, one request each (the kernel spreads them by their address and port)
    constexpr int kConnections = 200;
    for (int i = 0; i < kConnections; ++i) {
        Response r = http_request(proxy->port(), "GET", "/echo/spread");
        ASSERT_EQ(r.status, 200u) << r.head_text();
    }
    const auto accepted = accepted_by_worker(*proxy);
    ASSERT_EQ(accepted.size(), 2u);
    EXPECT_GT(accepted[0], 0) << "worker 0 accepted nothing";
    EXPECT_GT(accepted[1], 0) << "worker 1 accepted nothing";
    // the readiness probe's connections count too
    EXPECT_GE(accepted[0] + accepted[1], kConnections);

    const Response metrics = http_request(proxy->admin_port(), "GET", "/metrics");
    EXPECT_NE(metrics.body.find("cacheproxy_worker_connections_accepted_total{worker=\"1\"}"), std::string::npos);
}

TEST_F(Listener, WithOneThreadTheOneWorkerAcceptsEverything) {
    auto proxy = StartProxy(Proxy::with_config([](ProxyConfig& c) { c.set("threads", "1"); }));
    for (int i = 0; i < 20; ++i) {
        Response r = http_request(proxy->port(), "GET", "/echo/one");
        ASSERT_EQ(r.status, 200u) << r.head_text();
    }
    const auto accepted = accepted_by_worker(*proxy);
    ASSERT_EQ(accepted.size(), 1u);
    EXPECT_GE(accepted[0], 20);
}

}  // namespace
}  // namespace cacheproxy::e2e
