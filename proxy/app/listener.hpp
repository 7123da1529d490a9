#pragma once
/// The client listener: one acceptor (no SO_REUSEPORT, so a second instance
/// cannot silently share the port) that accepts each connection straight onto
/// the next worker's io_context, round-robin (Asio's io_context_pool shape).
/// A connection then lives on that worker's thread and needs no lock.

#include "core/worker.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/system/error_code.hpp>

#include <memory>
#include <vector>

namespace cacheproxy::app {

/// Opens, binds and listens.
boost::asio::ip::tcp::acceptor open_acceptor(boost::asio::io_context& ioc,
                                             const boost::asio::ip::tcp::endpoint& ep,
                                             boost::system::error_code& ec);

/// Accepts until the acceptor is closed; each connection becomes a session on
/// the next worker in turn. Connections over limits.max_client_connections
/// get a 503 and are closed.
boost::asio::awaitable<void> accept_loop(boost::asio::ip::tcp::acceptor& acceptor,
                                         std::vector<std::unique_ptr<app::Worker>>& workers);

/// Accepts, without waiting, every connection already in the backlog (before
/// the acceptor closes for a drain: those clients are answered, not reset).
/// Runs on the acceptor's thread.
void accept_pending(boost::asio::ip::tcp::acceptor& acceptor, std::vector<std::unique_ptr<app::Worker>>& workers);

}  // namespace cacheproxy::app
