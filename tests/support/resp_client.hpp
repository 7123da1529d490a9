#pragma once
/// A blocking one-command Redis client for the tests' own checks and setup
/// (never the code under test): connect to 127.0.0.1:port, send one argv,
/// read one reply, close. Encoding and parsing are proxy/redis/resp's. Every
/// step has a deadline, so a stopped server fails a check instead of hanging it.

#include "redis/resp.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace cacheproxy::e2e {

/// The reply to argv, or std::nullopt (and *error) if the server cannot be
/// reached or does not answer within `timeout`.
std::optional<redis::Reply> try_resp_command(std::uint16_t port, const std::vector<std::string>& argv,
                                             std::chrono::milliseconds timeout = std::chrono::seconds(2),
                                             std::string* error = nullptr);
/// The same; throws std::runtime_error where try_resp_command gives nullopt.
redis::Reply resp_command(std::uint16_t port, const std::vector<std::string>& argv,
                          std::chrono::milliseconds timeout = std::chrono::seconds(2));

}  // namespace cacheproxy::e2e
