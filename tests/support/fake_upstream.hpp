#pragma once
/// A scripted origin for what the simulator cannot do: answer with exact raw
/// bytes (hop-by-hop response fields, a body cut short, a broken header), in
/// steps with pauses, then close. A thread per connection, on a loopback port
/// chosen by the kernel. GET /health gets a plain 200 so the
/// proxy's health checker never consumes the script.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace cacheproxy::e2e {

class FakeUpstream {
public:
    /// One piece of the reply: wait `pause_before`, then write `bytes`.
    struct Step {
        std::string bytes;
        std::chrono::milliseconds pause_before{0};
    };

    /// Every non-health request on any connection gets `script`, then the
    /// connection is closed after `hold_open` (a FIN, or a RST if `reset`).
    explicit FakeUpstream(std::vector<Step> script, std::chrono::milliseconds hold_open = std::chrono::milliseconds(0),
                          bool reset = false);
    /// Stops the thread and closes every socket.
    ~FakeUpstream();
    FakeUpstream(const FakeUpstream&) = delete;
    FakeUpstream& operator=(const FakeUpstream&) = delete;

    std::uint16_t port() const { return port_; }
    /// "http://127.0.0.1:PORT"
    std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

    /// The request heads (request line + fields) received, health checks excluded.
    std::vector<std::string> requests() const;
    std::size_t request_count() const;
    std::size_t connection_count() const { return connections_.load(); }
    /// From now on a connection stays open after the script, for the next
    /// request (the script must then frame its answer: Content-Length).
    void keep_alive() { keep_alive_ = true; }

private:
    void run();
    void serve(int fd);

    std::vector<Step> script_;
    std::chrono::milliseconds hold_open_;
    bool reset_;
    int listen_fd_ = -1;
    std::uint16_t port_ = 0;
    std::atomic<bool> stop_{false};
    std::atomic<bool> keep_alive_{false};
    std::atomic<std::size_t> connections_{0};
    mutable std::mutex mutex_;
    std::vector<std::string> requests_;
    std::vector<std::thread> workers_;  ///< owned by thread_
    std::thread thread_;
};

}  // namespace cacheproxy::e2e
