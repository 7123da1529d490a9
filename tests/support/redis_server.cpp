#include "support/redis_server.hpp"

#include "support/ports.hpp"
#include "support/resp_client.hpp"

#include <csignal>
#include <stdexcept>
#include <thread>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace cacheproxy::e2e {

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

std::string reply_text(const redis::Reply& r) {
    if (r.is_array()) return "(array of " + std::to_string(r.elements.size()) + ")";
    if (r.type == redis::Reply::Type::integer) return std::to_string(r.integer);
    return r.str;
}

/// True if 127.0.0.1:port can be bound right now.
bool bindable(std::uint16_t port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    const int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);  // as redis binds
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    return ok;
}

/// A free port; for a cluster node also one whose bus port (port + 10000,
/// so at most 55535) is free.
std::uint16_t pick_port(bool cluster) {
    for (int draw = 0; draw < 100; ++draw) {
        const std::uint16_t port = free_port();
        if (!cluster) return port;
        if (port <= 55535 && bindable(static_cast<std::uint16_t>(port + 10000))) return port;
    }
    throw std::runtime_error("redis-server: no free port (and bus port) in 100 draws");
}

}  // namespace

RedisServer::RedisServer(Options options) : options_(std::move(options)) {
    for (int attempt = 0; attempt < 3; ++attempt) {
        if (start_on(pick_port(options_.cluster))) return;  // else the port was taken meanwhile: another one
    }
    throw std::runtime_error("redis-server: no free port after 3 attempts");
}

std::string RedisServer::address() const { return "127.0.0.1:" + std::to_string(port_); }

std::vector<std::string> RedisServer::argv(std::uint16_t port) const {
    std::vector<std::string> a{CACHEPROXY_REDIS_SERVER, "--port", std::to_string(port), "--bind", "127.0.0.1",
                               "--protected-mode", "yes", "--save", "", "--appendonly", "no",
                               "--daemonize", "no", "--dir", dir_.path(), "--logfile", "",
                               "--enable-debug-command", "local"};
    if (options_.cluster) {
        for (std::string arg : {"--cluster-enabled", "yes", "--cluster-node-timeout", "2000", "--cluster-config-file"})
            a.push_back(arg);
        a.push_back(dir_.file("nodes-" + std::to_string(port) + ".conf"));
    }
    a.insert(a.end(), options_.extra_args.begin(), options_.extra_args.end());
    return a;
}

bool RedisServer::start_on(std::uint16_t port) {
    port_ = port;
    const std::string log_path = dir_.file("redis-" + std::to_string(port) + ".log");
    process_ = std::make_unique<Process>(argv(port), log_path);
    const auto deadline = Clock::now() + options_.ready_timeout;
    while (Clock::now() < deadline) {
        auto reply = try_resp_command(port, {"PING"}, 200ms);
        // NOAUTH is an answer too: a server started with --requirepass.
        if (reply && (reply->str == "PONG" || reply->str.rfind("NOAUTH", 0) == 0)) return true;
        if (!process_->running()) break;
        std::this_thread::sleep_for(20ms);
    }
    const std::string tail = process_->log_tail();
    process_->kill();
    if (tail.find("Address already in use") != std::string::npos) return false;
    throw std::runtime_error("redis-server on port " + std::to_string(port) + " not ready:\n" + tail);
}

void RedisServer::stop() {
    if (!process_) return;
    process_->signal(SIGCONT);  // a paused server cannot act on SIGTERM
    process_->terminate();
    if (!process_->wait_exit(5s)) process_->kill();
}

void RedisServer::kill() {
    if (process_) process_->kill();
}

void RedisServer::pause() {
    if (process_) process_->signal(SIGSTOP);
}

void RedisServer::resume() {
    if (process_) process_->signal(SIGCONT);
}

void RedisServer::restart() {
    kill();
    // The same port: redis sets SO_REUSEADDR, so the old connections' TIME_WAIT does not block it.
    if (!start_on(port_)) throw std::runtime_error("redis-server: port " + std::to_string(port_) + " taken on restart");
}

redis::Reply RedisServer::cmd(const std::vector<std::string>& argv) const { return resp_command(port_, argv); }

std::string RedisServer::run_id() const {
    const std::string info = cmd({"INFO", "server"}).str;
    const auto at = info.find("run_id:");
    if (at == std::string::npos) return {};
    const auto end = info.find_first_of("\r\n", at);
    return info.substr(at + 7, end == std::string::npos ? std::string::npos : end - at - 7);
}

// ------------------------------------------------------------------ cluster

RedisCluster::RedisCluster() {
    RedisServer::Options options;
    options.cluster = true;
    for (int i = 0; i < 3; ++i) nodes_.push_back(std::make_unique<RedisServer>(options));

    std::vector<std::string> create{CACHEPROXY_REDIS_CLI, "--cluster", "create"};
    for (const auto& s : seeds()) create.push_back(s);
    for (std::string arg : {"--cluster-replicas", "0", "--cluster-yes"}) create.push_back(arg);
    Process cli(create, dir_.file("cluster-create.log"));
    const auto code = cli.wait_exit(30s);
    if (code != 0) {
        throw std::runtime_error("redis-cli --cluster create failed (" +
                                 (code ? std::to_string(*code) : std::string("timed out")) + "):\n" + cli.log_tail());
    }

    // redis-cli returns once the configuration is consistent; the state
    // turns ok on each node as the gossip reaches it.
    const auto deadline = Clock::now() + 10s;
    std::string last;
    for (;;) {
        bool ok = true;
        for (auto& n : nodes_) {
            auto reply = try_resp_command(n->port(), {"CLUSTER", "INFO"}, 1s);
            last = reply ? reply_text(*reply) : "no reply";
            if (last.find("cluster_state:ok") == std::string::npos) {
                ok = false;
                break;
            }
        }
        if (ok) return;
        if (Clock::now() >= deadline) throw std::runtime_error("redis cluster not ok within 10 s:\n" + last);
        std::this_thread::sleep_for(50ms);
    }
}

std::vector<std::string> RedisCluster::seeds() const {
    std::vector<std::string> out;
    for (const auto& n : nodes_) out.push_back(n->address());
    return out;
}

RedisServer* RedisCluster::by_port(std::uint16_t port) {
    for (auto& n : nodes_)
        if (n->port() == port) return n.get();
    return nullptr;
}

}  // namespace cacheproxy::e2e
