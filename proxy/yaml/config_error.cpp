#include "yaml/config_error.hpp"

namespace cacheproxy::config {

std::string ConfigError::to_string() const {
    return file + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + key + ": " + message;
}

}  // namespace cacheproxy::config
