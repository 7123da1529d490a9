#pragma once
/// The admin listener (default 127.0.0.1:9901): health endpoints for now;
/// stats, metrics and purge build on it. Separate from the data path: it runs
/// on worker 0 and never touches a client connection.

#include "app/worker.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

namespace cacheproxy::admin {

/// Accepts admin connections until the acceptor closes.
boost::asio::awaitable<void> admin_accept_loop(boost::asio::ip::tcp::acceptor& acceptor,
                                               app::ServerContext& ctx);

}  // namespace cacheproxy::admin
