#pragma once
/// The client listener: one acceptor per worker thread on the same port
/// (SO_REUSEPORT), so the kernel spreads connections and an accepted socket
/// never changes thread.

#include "app/worker.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/system/error_code.hpp>

namespace cacheproxy::net {

/// Opens, binds and listens; SO_REUSEPORT lets every worker bind the same port.
boost::asio::ip::tcp::acceptor open_acceptor(boost::asio::io_context& ioc,
                                             const boost::asio::ip::tcp::endpoint& ep,
                                             boost::system::error_code& ec);

/// Accepts until the acceptor is closed; each connection becomes a session
/// on this worker. Connections over the cap are closed at once.
boost::asio::awaitable<void> accept_loop(boost::asio::ip::tcp::acceptor& acceptor, app::Worker& worker);

}  // namespace cacheproxy::net
