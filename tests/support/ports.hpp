#pragma once
/// Free loopback ports for the end-to-end tests.

#include <chrono>
#include <cstdint>

namespace cacheproxy::e2e {

/// A port on 127.0.0.1 that was free a moment ago: binds 127.0.0.1:0, reads
/// the port the kernel chose, closes. Throws std::runtime_error on failure.
std::uint16_t free_port();

/// True if a TCP connection to 127.0.0.1:port is accepted right now.
bool port_accepts(std::uint16_t port);

/// Polls port_accepts() every `interval` until it succeeds or `timeout` passes.
bool wait_port_accepts(std::uint16_t port, std::chrono::milliseconds timeout,
                       std::chrono::milliseconds interval = std::chrono::milliseconds(20));

}  // namespace cacheproxy::e2e
