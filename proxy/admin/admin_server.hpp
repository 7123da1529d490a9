#pragma once
/// The admin listener (default 127.0.0.1:9901): reads admin requests and
/// writes the answers admin::handle() gives (admin_handler.hpp lists the
/// endpoints). Separate from the data path: it runs on worker 0 and never
/// touches a client connection.

#include "admin/admin_handler.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

namespace cacheproxy::admin {

/// Accepts admin connections until the acceptor closes. `admin` must outlive it.
boost::asio::awaitable<void> admin_accept_loop(boost::asio::ip::tcp::acceptor& acceptor, AdminContext& admin);

}  // namespace cacheproxy::admin
