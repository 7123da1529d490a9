#pragma once
/// The client listeners: every worker accepts its own connections on its own
/// io_context, so a connection is accepted, served and closed on one thread
/// and needs no lock, and no accept is handed across cores.
///
/// With one worker, one acceptor without SO_REUSEPORT (as before). With
/// several, one SO_REUSEPORT socket per worker, all bound to listen.host:port
/// (the kernel spreads the connections). A second instance still cannot share
/// the port silently: the group is bound only after a probe socket without
/// SO_REUSEPORT binds the port (and is closed), and on Linux a bind without
/// SO_REUSEPORT to a port held by SO_REUSEPORT sockets fails with EADDRINUSE,
/// so the second instance's probe fails against our group.

#include "core/worker.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/system/error_code.hpp>

#include <memory>
#include <vector>

namespace cacheproxy::app {

/// Opens, binds and listens (no SO_REUSEPORT).
boost::asio::ip::tcp::acceptor open_acceptor(boost::asio::io_context& ioc,
                                             const boost::asio::ip::tcp::endpoint& ep,
                                             boost::system::error_code& ec);

/// One listening acceptor per worker, each on its worker's io_context, all on
/// `ep` (port 0: the port the probe got): a single acceptor as open_acceptor()
/// for one worker; else the probe (address in use: `ec` set, nothing bound),
/// then an SO_REUSEPORT group.
std::vector<std::unique_ptr<boost::asio::ip::tcp::acceptor>> open_acceptors(
    std::vector<std::unique_ptr<app::Worker>>& workers, const boost::asio::ip::tcp::endpoint& ep,
    boost::system::error_code& ec);

/// Accepts until the acceptor is closed; each connection becomes a session on
/// `worker`, whose io_context the acceptor runs on. Connections over
/// limits.max_client_connections (all workers) get a 503 and are closed.
boost::asio::awaitable<void> accept_loop(boost::asio::ip::tcp::acceptor& acceptor, app::Worker& worker);

/// Accepts, without waiting, every connection already in the acceptor's
/// backlog (before it closes for a drain: those clients are answered, not
/// reset; an SO_REUSEPORT socket's backlog is reset by its close, so each
/// worker runs this on its own acceptor). Runs on `worker`'s thread.
void accept_pending(boost::asio::ip::tcp::acceptor& acceptor, app::Worker& worker);

}  // namespace cacheproxy::app
