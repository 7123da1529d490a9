#include "support/fixtures.hpp"

#include "support/json_lite.hpp"
#include "support/ports.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <openssl/evp.h>

namespace cacheproxy::e2e {

using Clock = std::chrono::steady_clock;

// ------------------------------------------------------------------ TempDir

TempDir::TempDir(const std::string& prefix) {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/" + prefix + "-XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (!::mkdtemp(buf.data())) throw std::runtime_error("mkdtemp " + tmpl + " failed");
    path_ = buf.data();
}

TempDir::~TempDir() {
    if (::testing::Test::HasFailure()) {
        std::cerr << "[ e2e ] kept " << path_ << " for inspection\n";
        return;
    }
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
}

std::string TempDir::write(const std::string& name, const std::string& content) const {
    std::string p = file(name);
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out << content;
    if (!out) throw std::runtime_error("cannot write " + p);
    return p;
}

// ------------------------------------------------------------------ helpers

std::string sim_bytes(std::size_t n, std::size_t offset) {
    std::string out(n, '\0');
    for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<char>(((offset + i) * 31 + 7) % 251);
    return out;
}

std::string binary_body(std::size_t n, unsigned seed) {
    std::string s(n, '\0');
    std::uint32_t x = 2463534242u * seed;
    for (std::size_t i = 0; i < n; ++i) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        s[i] = static_cast<char>(x & 0xFF);
    }
    return s;
}

std::size_t first_sim_bytes_mismatch(const std::string& body, std::size_t offset) {
    for (std::size_t i = 0; i < body.size(); ++i)
        if (static_cast<unsigned char>(body[i]) != ((offset + i) * 31 + 7) % 251) return i;
    return std::string::npos;
}

std::string sha256_hex(const std::string& data) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
    static const char* hex = "0123456789abcdef";
    std::string out;
    for (unsigned i = 0; i < len; ++i) {
        out += hex[md[i] >> 4];
        out += hex[md[i] & 15];
    }
    return out;
}

// ------------------------------------------------------------------ echo

std::vector<std::string> EchoSeen::values(std::string_view name) const {
    std::vector<std::string> out;
    for (const auto& [k, v] : headers)
        if (iequals(k, name)) out.push_back(v);
    return out;
}

std::optional<std::string> EchoSeen::header(std::string_view name) const {
    for (const auto& [k, v] : headers)
        if (iequals(k, name)) return v;
    return std::nullopt;
}

std::string EchoSeen::headers_text() const {
    std::string out;
    for (const auto& [k, v] : headers) out += "  " + k + ": " + v + "\n";
    return out;
}

std::optional<EchoSeen> parse_echo(const std::string& body, std::string* error) {
    std::string err;
    auto doc = parse_json(body, &err);
    if (!doc || doc->kind != Json::Kind::object || (*doc)["method"].kind != Json::Kind::string) {
        if (error) *error = "not an /echo answer (" + (err.empty() ? std::string("no method") : err) + "): " +
                            body.substr(0, 300);
        return std::nullopt;
    }
    const Json& d = *doc;
    EchoSeen e;
    e.method = d["method"].as_string();
    e.path = d["path"].as_string();
    e.raw_path = d["raw_path"].as_string();
    e.raw_query = d["raw_query"].as_string();
    e.http_version = d["http_version"].as_string();
    const Json& hs = d["headers"];
    for (std::size_t i = 0; i < hs.size(); ++i)
        e.headers.emplace_back(hs.at(i).at(0).as_string(), hs.at(i).at(1).as_string());
    e.body_len = d["body_len"].as_int();
    e.body_sha256 = d["body_sha256"].as_string();
    return e;
}

// ------------------------------------------------------------------ Simulator

long long SimStats::route(const std::string& name) const {
    auto it = requests.find(name);
    return it == requests.end() ? 0 : it->second;
}

Simulator::Simulator(Options options) {
    const std::string script = std::string(CACHEPROXY_SOURCE_DIR) + "/scripts/legacy_sim.py";
    if (!std::filesystem::exists(script)) throw std::runtime_error("simulator not found: " + script);
    std::ostringstream lat, ka;
    lat << options.latency;
    ka << options.keepalive_timeout;
    std::vector<std::string> argv{"/usr/bin/python3", "-u", script, "--host", "127.0.0.1", "--port", "0",
                                  "--latency", lat.str(), "--keepalive-timeout", ka.str()};
    argv.insert(argv.end(), options.extra_args.begin(), options.extra_args.end());
    process_ = std::make_unique<Process>(argv, dir_.file("sim.log"));

    // 1. The announced port ("legacy-sim listening on HOST:PORT").
    const auto deadline = Clock::now() + options.ready_timeout;
    static const std::regex announce(R"(legacy-sim listening on [^\s:]+:(\d+))");
    for (;;) {
        std::smatch m;
        std::string log = process_->read_log();
        if (std::regex_search(log, m, announce)) {
            port_ = static_cast<std::uint16_t>(std::stoi(m[1].str()));
            break;
        }
        if (!process_->running())
            throw std::runtime_error("simulator exited (code " + std::to_string(process_->exit_code().value_or(-1)) +
                                     ") before listening: " + process_->command_line() + "\n" + process_->log_tail());
        if (Clock::now() >= deadline)
            throw std::runtime_error("simulator did not announce its port within " +
                                     std::to_string(options.ready_timeout.count()) + " ms\n" + process_->log_tail());
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    // 2. GET /health answers 200.
    for (;;) {
        Response r = http_request(port_, "GET", "/health", {}, {}, std::chrono::seconds(2));
        if (r.status == 200) break;
        if (!process_->running() || Clock::now() >= deadline)
            throw std::runtime_error("simulator on port " + std::to_string(port_) +
                                     " never answered GET /health with 200 (last: " + r.head_text() + ")\n" +
                                     process_->log_tail());
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    // The readiness probe above counts as a "health" request: start from zero.
    reset();
}

std::string Simulator::url() const { return "http://127.0.0.1:" + std::to_string(port_); }

Response Simulator::direct(const std::string& method, const std::string& target, const Headers& headers,
                           const std::string& body) {
    return http_request(port_, method, target, headers, body, std::chrono::seconds(5));
}

void Simulator::control(const std::string& method, const std::string& target, const std::string& body) {
    Response r = direct(method, target, {{"Content-Type", "application/json"}}, body);
    if (r.status != 200)
        throw std::runtime_error("simulator control " + method + " " + target + " failed: " + r.head_text() + "\n" +
                                 r.body + "\n" + process_->log_tail());
}

SimStats Simulator::stats() {
    Response r = direct("GET", "/__sim/stats");
    if (r.status != 200)
        throw std::runtime_error("GET /__sim/stats failed: " + r.head_text() + "\n" + process_->log_tail());
    std::string err;
    auto doc = parse_json(r.body, &err);
    if (!doc) throw std::runtime_error("GET /__sim/stats: bad JSON (" + err + "): " + r.body);
    SimStats s;
    s.json = r.body;
    const Json& req = (*doc)["requests"];
    for (std::size_t i = 0; i < req.keys.size(); ++i) s.requests[req.keys[i]] = req.items[i].as_int();
    s.total = (*doc)["total"].as_int();
    s.connections = (*doc)["connections"].as_int();
    return s;
}

void Simulator::reset() { control("POST", "/__sim/reset?all=1"); }

void Simulator::set_latency(const std::string& json_body) { control("POST", "/__sim/latency", json_body); }

void Simulator::fail(const std::string& route, const std::string& mode, int count) {
    std::string body = R"({"route":")" + route + R"(","mode":")" + mode + "\"";
    if (count > 0) body += ",\"count\":" + std::to_string(count);
    body += "}";
    control("POST", "/__sim/fail", body);
}

// ------------------------------------------------------------------ ProxyConfig

ProxyConfig::ProxyConfig(const std::string& upstream_url) {
    listen_port_ = free_port();
    do admin_port_ = free_port();
    while (admin_port_ == listen_port_);
    set("listen", "\"127.0.0.1:" + std::to_string(listen_port_) + "\"");
    set("threads", "2");
    set("upstream.url", "\"" + upstream_url + "\"");
    set("upstream.max_connections", "50");
    set("upstream.idle_timeout", "300s");
    set("upstream.connect_timeout", "1s");
    set("upstream.response_timeout", "30s");
    set("upstream.health.path", "/health");
    set("upstream.health.interval", "1s");
    set("upstream.health.timeout", "1s");
    set("limits.max_header_bytes", "16KiB");
    set("limits.max_body_bytes", "1MiB");
    set("limits.max_chunk_extension_bytes", "256");
    set("limits.header_timeout", "10s");
    set("limits.idle_timeout", "60s");
    set("limits.body_timeout", "30s");
    set("limits.max_client_connections", "10000");
    set("limits.drain_timeout", "30s");
    set("logging.level", "debug");
    set("logging.file", "\"\"");
    set("logging.access_log", "true");
    set("admin.enabled", "true");
    set("admin.listen", "\"127.0.0.1:" + std::to_string(admin_port_) + "\"");
    set("admin.token", "\"\"");
}

namespace {

std::vector<std::string> split_key(const std::string& dotted) {
    std::vector<std::string> parts;
    std::string cur;
    for (char c : dotted) {
        if (c == '.') {
            parts.push_back(cur);
            cur.clear();
        } else {
            cur += c;
        }
    }
    parts.push_back(cur);
    return parts;
}

}  // namespace

ProxyConfig& ProxyConfig::set(const std::string& dotted_key, const std::string& yaml_value) {
    Node* node = &root_;
    for (const auto& part : split_key(dotted_key)) {
        Node* next = nullptr;
        for (auto& c : node->children)
            if (c.name == part) next = &c;
        if (!next) {
            node->children.push_back(Node{part, std::nullopt, {}});
            next = &node->children.back();
        }
        node = next;
    }
    node->value = yaml_value;
    node->children.clear();
    // Keep the port accessors in step with what is written.
    static const std::regex port_re(R"(:(\d+)\"?$)");
    std::smatch m;
    if ((dotted_key == "listen" || dotted_key == "admin.listen") && std::regex_search(yaml_value, m, port_re)) {
        auto p = static_cast<std::uint16_t>(std::stoi(m[1].str()));
        (dotted_key == "listen" ? listen_port_ : admin_port_) = p;
    }
    return *this;
}

ProxyConfig& ProxyConfig::erase(const std::string& dotted_key) {
    auto parts = split_key(dotted_key);
    Node* node = &root_;
    for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
        Node* next = nullptr;
        for (auto& c : node->children)
            if (c.name == parts[i]) next = &c;
        if (!next) return *this;
        node = next;
    }
    auto& ch = node->children;
    for (auto it = ch.begin(); it != ch.end(); ++it)
        if (it->name == parts.back()) {
            ch.erase(it);
            break;
        }
    return *this;
}

std::optional<std::string> ProxyConfig::get(const std::string& dotted_key) const {
    const Node* node = &root_;
    for (const auto& part : split_key(dotted_key)) {
        const Node* next = nullptr;
        for (const auto& c : node->children)
            if (c.name == part) next = &c;
        if (!next) return std::nullopt;
        node = next;
    }
    return node->value;
}

void ProxyConfig::emit(const Node& node, int indent, std::string& out) {
    for (const auto& c : node.children) {
        out.append(static_cast<std::size_t>(indent), ' ');
        out += c.name + ":";
        if (c.value) {
            out += " " + *c.value + "\n";
        } else {
            out += "\n";
            emit(c, indent + 2, out);
        }
    }
}

std::string ProxyConfig::to_yaml() const {
    std::string out = "# written by the cacheproxy e2e harness\n";
    emit(root_, 0, out);
    return out;
}

// ------------------------------------------------------------------ Proxy

Proxy::Proxy(const std::string& upstream_url, Options options) : config_(upstream_url) {
    if (options.rules_yaml) config_.set("rules", "\"" + dir_.write("rules.yaml", *options.rules_yaml) + "\"");
    if (options.configure) options.configure(config_);
    dir_.write("config.yaml", config_.to_yaml());

    std::vector<std::string> argv{CACHEPROXY_BINARY, "--config", config_path()};
    argv.insert(argv.end(), options.extra_args.begin(), options.extra_args.end());
    process_ = std::make_unique<Process>(argv, log_path());

    const auto deadline = Clock::now() + options.ready_timeout;
    for (;;) {
        if (port_accepts(port())) return;
        if (!process_->running())
            throw std::runtime_error("cacheproxy exited with code " +
                                     std::to_string(process_->exit_code().value_or(-1)) +
                                     " before accepting connections on 127.0.0.1:" + std::to_string(port()) +
                                     "\ncommand: " + process_->command_line() + "\nconfig:\n" + config_.to_yaml() +
                                     "log:\n" + process_->log_tail());
        if (Clock::now() >= deadline)
            throw std::runtime_error("cacheproxy did not accept connections on 127.0.0.1:" + std::to_string(port()) +
                                     " within " + std::to_string(options.ready_timeout.count()) +
                                     " ms\ncommand: " + process_->command_line() + "\nlog:\n" + process_->log_tail());
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
}

Proxy::~Proxy() {
    if (process_) {
        process_->kill();
        if (::testing::Test::HasFailure())
            std::cerr << "[ e2e ] cacheproxy log (" << log_path() << "), last lines:\n"
                      << process_->log_tail(3000) << "\n";
    }
}

// ------------------------------------------------------------------ fixture

std::unique_ptr<Simulator> SimulatorTest::shared_sim_;
std::string SimulatorTest::shared_sim_error_;

void SimulatorTest::StartSharedSimulator(Simulator::Options options) {
    shared_sim_error_.clear();
    try {
        shared_sim_ = std::make_unique<Simulator>(std::move(options));
    } catch (const std::exception& e) {
        shared_sim_.reset();
        shared_sim_error_ = e.what();
    }
}

void SimulatorTest::StopSharedSimulator() { shared_sim_.reset(); }

void SimulatorTest::SetUp() {
    ASSERT_TRUE(shared_sim_) << "no simulator: " << shared_sim_error_;
    ASSERT_TRUE(shared_sim_->process().running())
        << "the simulator died:\n" << shared_sim_->process().log_tail();
    shared_sim_->reset();
}

std::unique_ptr<Proxy> SimulatorTest::StartProxy(Proxy::Options options) {
    return std::make_unique<Proxy>(shared_sim_->url(), std::move(options));
}

}  // namespace cacheproxy::e2e
