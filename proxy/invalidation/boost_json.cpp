/// Boost.JSON's implementation, compiled once for the whole program (its
/// header-only mode). No other .cpp may include <boost/json/src.hpp>: include
/// the ordinary <boost/json/...> headers and link proxy_core.
#include <boost/json/src.hpp>
